"""The pictures channels show with the hard install steps, and the route that serves them.

The engine names a picture in a message of its own (``OutMessage.picture``); each channel
shows it as it can:

- Telegram uploads the PNG once, then sends the file id Telegram gave it;
- the Zalo Bot and the Zalo OA send a link, so the picture must be on the web: this server
  serves it at ``/pictures/<id>-<digest>.png`` (the digest changes with the picture, so any
  cache may keep it for good) under ``PUBLIC_URL``. Without a public URL they say in words
  what the picture shows (its alt text) instead;
- the web chat shows ``<img alt>`` from the same route;
- the terminal prints the alt text.

The PNGs are rendered once (bot/pictures.py: about 1.2 s a picture, then kept in
``var/pictures`` for the next start and the other workers), in a thread as a process that
runs channels starts (:meth:`Gallery.start`) -- serving does not wait for it; a reply that
needs a picture meanwhile waits for it (:meth:`Gallery.picture`) -- and never in a command
that shows no picture.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable, Sequence

from aiohttp import web

from bot.pictures import Picture, Pictures
from handlers.channel import Route

#: Where the pictures are served.
PATH = "/pictures"
#: "<id>-<digest>.png"
_NAME = re.compile(r"^([a-z][a-z0-9_]*)-([0-9a-f]{16})\.png$")
#: A picture's address never serves other bytes: a year is "for good" to every cache.
_CACHE = "public, max-age=31536000, immutable"
#: What starts the words said in place of a picture (a framed picture).
FRAME = "🖼"


class Gallery:
    """The pictures of one deployment, and where people's phones can fetch them."""

    def __init__(self, load: Callable[[], Pictures], public_url: str = ""):
        self._load = load
        self._pictures: Pictures | None = None
        self._lock = threading.Lock()
        self._rendering: asyncio.Future[None] | None = None
        #: The server's public address (no trailing slash); "" when it has none.
        self.public_url = public_url.rstrip("/")

    @classmethod
    def of(cls, pictures: Pictures, public_url: str = "") -> Gallery:
        """A gallery of pictures already rendered."""
        return cls(lambda: pictures, public_url)

    @classmethod
    def empty(cls) -> Gallery:
        """No pictures at all (tools and tests that show none)."""
        return cls.of(Pictures(()))

    @property
    def pictures(self) -> Pictures:
        """Every picture, rendered on first use (once, whichever thread asks first)."""
        if self._pictures is None:
            with self._lock:
                if self._pictures is None:
                    self._pictures = self._load()
        return self._pictures

    def warm(self) -> None:
        """Render now, in this thread."""
        _ = self.pictures

    def start(self) -> None:
        """Render in a thread, from now (in a running event loop)."""
        if self._pictures is None and self._rendering is None:
            self._rendering = asyncio.ensure_future(asyncio.to_thread(self.warm))

    async def picture(self, picture_id: str) -> Picture | None:
        """The picture (waiting, without blocking the event loop, until it is rendered)."""
        if self._pictures is None:
            self.start()
            assert self._rendering is not None
            await asyncio.shield(self._rendering)
        return self.get(picture_id)

    def get(self, picture_id: str) -> Picture | None:
        """The picture (rendering in this thread if it is not yet)."""
        return self.pictures.get(picture_id)

    @staticmethod
    def path(picture: Picture) -> str:
        """The picture's address on this server (changes when the picture does)."""
        return f"{PATH}/{picture.id}-{picture.digest}.png"

    def url(self, picture: Picture) -> str | None:
        """Where a platform's servers can fetch the picture; None without a public URL."""
        return self.public_url + self.path(picture) if self.public_url else None

    @staticmethod
    def in_words(picture: Picture) -> str:
        """What the picture shows, said where it cannot be shown."""
        return f"{FRAME} {picture.alt}"

    def routes(self) -> Sequence[Route]:
        return (Route("GET", PATH + "/{name}", self._serve),)

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        found = _NAME.match(request.match_info["name"])
        picture = await self.picture(found.group(1)) if found else None
        if found is None or picture is None or picture.digest != found.group(2):
            raise web.HTTPNotFound()
        headers = {
            "Cache-Control": _CACHE,
            "ETag": f'"{picture.digest}"',
            "X-Content-Type-Options": "nosniff",
        }
        if request.headers.get("If-None-Match") == headers["ETag"]:
            return web.Response(status=304, headers=headers)
        return web.Response(body=picture.png, content_type="image/png", headers=headers)
