"""The web chat's pages: the engine's messages as HTML, the page around them, its two files.

Server-rendered and progressive: every option is a button of a form that posts to /chat, so
the page works with JavaScript off, on any browser; ``chat.js`` (no framework, nothing from
elsewhere) turns the same forms into a chat that answers in place, and reads messages aloud
with the phone's own voice. Everything a person reads comes from content: the conversation
from texts.toml and flow.toml, the page's own words from ``content/<locale>/webchat.toml``.
Text is escaped; only links the deployment allows become links (the engine has already
hidden the others).

The templates and the two static files are in ``handlers/webchat/``; each static file is
served under a name with its digest, so that a phone keeps it until it changes.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape

from bot.content import CONTENT_ROOT, ContentError, read_texts
from bot.links import LinkPolicy, find_links
from bot.model import Option, OutMessage
from bot.pictures import Picture

HERE = Path(__file__).resolve().parent / "webchat"
#: The static files (nothing else under webchat/ is served).
STATIC = {"chat.css": "text/css; charset=utf-8", "chat.js": "text/javascript; charset=utf-8"}
#: Where the page is, and where its files are.
CHAT_PATH = "/chat"
STATIC_PATH = CHAT_PATH + "/static"
#: The words of webchat.toml every page needs.
REQUIRED = (
    "title", "lead", "point_free", "point_private", "point_listen", "start", "restart", "bot",
    "you", "listen", "listening", "bigger", "smaller", "ask_label", "ask_hint", "send",
    "privacy", "delete", "waiting", "expired", "busy", "offline", "too_fast", "not_found",
)  # fmt: skip


def load_webchat_texts(locale: str = "vi", root: Path = CONTENT_ROOT) -> dict[str, str]:
    """Every word of the page around the chat (a missing one is a ContentError)."""
    path = root / locale / "webchat.toml"
    texts = read_texts(path)
    missing = [key for key in REQUIRED if key not in texts]
    if missing:
        raise ContentError(f"{path}: missing {missing}")
    for key, text in texts.items():
        if any(name for _, name, _, _ in string.Formatter().parse(text)):
            raise ContentError(f"{path}: texts.{key} has a placeholder; the page fills none")
    return dict(texts)


@dataclass(frozen=True, slots=True)
class Shown:
    """A picture as the page shows it."""

    src: str
    alt: str
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class Bubble:
    """One message of the bot as the page shows it."""

    html: Markup
    options: tuple[Option, ...] = ()
    screen: str = ""
    picture: Shown | None = None
    #: Shown again (where the person is), not a new reply.
    again: bool = False


@dataclass(frozen=True, slots=True)
class View:
    """What one page, or one turn of the chat, shows."""

    bubbles: Sequence[Bubble] = ()
    #: The token every form of this browser's session carries.
    csrf: str = ""
    #: The person has a conversation: the question box and the privacy buttons are shown.
    started: bool = False
    #: Not yet: what the page is, and a button to start (with a volunteer's code, if any).
    landing: bool = False
    ref: str = ""
    #: Their data was just deleted: a link to start again.
    erased: bool = False
    big: bool = False
    notice: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


def nonce() -> str:
    """A form's own id: a post is a delivery, applied once however often it is sent."""
    return secrets.token_urlsafe(16)


def paragraphs(text: str, policy: LinkPolicy) -> Markup:
    """``text`` as HTML: paragraphs at blank lines, line breaks kept, allowed links live."""
    parts = []
    for block in text.strip().split("\n\n"):
        lines = [_linked(line, policy) for line in block.split("\n")]
        parts.append(Markup("<p>") + Markup("<br>").join(lines) + Markup("</p>"))
    return Markup("").join(parts)


def _linked(text: str, policy: LinkPolicy) -> Markup:
    out: list[Markup] = []
    last = 0
    for link in find_links(text):
        if not policy.allows(link):
            continue
        if link.kind == "telegram":
            href = f"https://t.me/{link.telegram}"
        elif link.scheme:
            href = link.written
        else:
            href = "https://" + link.written
        out.append(escape(text[last : link.start]))
        anchor = '<a href="{}" rel="noopener noreferrer" target="_blank">{}</a>'
        out.append(Markup(anchor).format(href, text[link.start : link.end]))
        last = link.end
    out.append(escape(text[last:]))
    return Markup("").join(out)


class WebPage:
    """Renders the chat's pages for one deployment."""

    def __init__(self, texts: Mapping[str, str], policy: LinkPolicy, locale: str = "vi"):
        self.texts = dict(texts)
        self.policy = policy
        self.locale = locale
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            # The templates are part of the code: not looked at on disk again at every page
            # (a stat of each template per render otherwise).
            auto_reload=False,
        )
        self.env.globals["nonce"] = nonce  # each form gets its own, wherever it is drawn
        self._page = self.env.get_template("page.html")
        self._turn = self.env.get_template("turn.html")
        # The bot's messages are mostly the same few hundred texts of content: each is turned
        # into HTML once (finding links in it is the costly part), not at every reply.
        self._paragraphs = functools.lru_cache(maxsize=1024)(
            functools.partial(paragraphs, policy=policy)
        )
        self.files: dict[str, tuple[bytes, str]] = {}
        #: "chat.css" -> "chat.<digest>.css": the name the page links to.
        self.names: dict[str, str] = {}
        for name, kind in STATIC.items():
            data = (HERE / name).read_bytes()
            stem, _, suffix = name.partition(".")
            versioned = f"{stem}.{hashlib.sha256(data).hexdigest()[:12]}.{suffix}"
            self.files[versioned] = (data, kind)
            self.names[name] = versioned

    def bubble(self, message: OutMessage, picture: Picture | None, src: str = "") -> Bubble:
        """One message of the engine as the page shows it (``picture``: the one it names)."""
        if message.picture:
            if picture is None:
                return Bubble(html=Markup(""))
            shown = Shown(src, picture.alt, picture.width, picture.height)
            return Bubble(html=Markup(""), picture=shown)
        return Bubble(
            html=self._paragraphs(message.text),
            options=message.options,
            screen=message.screen or "global",
        )

    def page(self, view: View) -> str:
        """A whole page."""
        return self._page.render(self._context(view))

    def turn(self, view: View) -> str:
        """One turn's messages, for the chat to add in place."""
        return self._turn.render(self._context(view))

    def _context(self, view: View) -> dict[str, Any]:
        return {
            "t": self.texts,
            "v": view,
            "lang": self.locale,
            "chat": CHAT_PATH,
            "css": f"{STATIC_PATH}/{self.names['chat.css']}",
            "js": f"{STATIC_PATH}/{self.names['chat.js']}",
        }
