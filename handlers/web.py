"""The web chat: the guide as a web page at /chat, opened from a link or a QR code (in Zalo's
own browser, say) with nothing to install and no account.

A channel like the others (handlers/channel.py): one person is a random id their browser
keeps in a cookie (HttpOnly; the store sees only its keyed hash, like a Telegram id); every
form post is a delivery, made durable in the inbox and applied once (the form's own id is
the delivery id: a post sent twice -- a double tap, a reload -- is one step); it goes through
the one inbound path, and the replies come back to the request that posted it
(:meth:`WebChannel.deliver` fills that request's basket, :meth:`Inbound.settled` says when
the step is answered). So the page answers with the step's replies, whichever worker holds
the connection.

- ``GET /chat`` (``?ref=CODE``: a volunteer's link): before anyone has started, what the
  page is and a button to start -- a link preview or a prefetch counts nobody; pressing it
  starts the conversation (the volunteer's code is kept then, once). Someone who has started
  and comes back (a reload, the link opened again) gets /start: "continue at step 4/9?".
- ``POST /chat``: a button (``option`` + ``screen``), a typed question (``text``) or the
  start (``start``, ``ref``); the page with the replies, or, from chat.js, the replies as
  HTML to add in place.
- ``POST /chat/size``: larger or normal text (a cookie; chat.js toggles it in place).
- A post must carry the session's cookie, come from this site (Origin, Sec-Fetch-Site:
  refused with 403 before the body is read) and hold the token derived from the session
  (CSRF); a body that is no form of this page is a 400. No upload exists: only
  ``application/x-www-form-urlencoded`` bodies of at most 16 kB are read.
- Rate limits: per session, the conversation's flood limit (as on every channel); per client
  address, :data:`PER_ADDRESS` requests a minute (behind the reverse proxy on this machine,
  the address it names in X-Forwarded-For).
- "Delete my data" (the privacy buttons under the chat) deletes every row of the session
  (as /xoadulieu does) and the cookie with it.
- There is no push: the page cannot write first, so there are no reminders (the engine says
  so, Variant.WEB), and announcements never reach the web.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

from aiohttp import web

from bot.engine.guards import REFERRAL
from bot.model import TOKEN_RE, Choice, Input, OutMessage, Start, Text
from handlers.channel import Capabilities, ChannelSpec, Incoming, Route, Services
from handlers.inbound import Inbound
from handlers.limits import RateLimiter, Verdict
from handlers.pictures import Gallery
from handlers.webpage import (
    CHAT_PATH,
    STATIC_PATH,
    Bubble,
    View,
    WebPage,
    load_webchat_texts,
)
from storage.repository import StoredSession

CHANNEL = "web"
CAPABILITIES = Capabilities(
    buttons=True,
    # A message holding a secret is taken back out of the page (chat.js removes it; without
    # JavaScript the page never shows what was typed).
    can_delete=True,
    max_text=100_000,
    deep_links=True,  # /chat?ref=CODE
    files=False,
    # The page waits for its own step: milliseconds, unless the store is in trouble.
    ack_within=10.0,
    push=False,
)
#: The cookie holding the browser's random id, and the one holding the text size.
COOKIE = "chat_id"
SIZE_COOKIE = "chat_size"
#: A year: the browser keeps the id so that the person can come back on the same phone
#: (idle sessions are deleted with the retention period all the same).
COOKIE_AGE = 365 * 24 * 3600
_SESSION = re.compile(r"^[A-Za-z0-9_-]{32}$")
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
#: The largest body read: a question is at most 600 characters (about 5 kB as a form).
MAX_FORM = 16 * 1024
#: Requests a minute per client address. Generous: a mobile network puts a whole village
#: behind a few addresses, and a citizen makes about three a minute -- this is a hundred
#: people at once; a script from one address is slowed to it.
PER_ADDRESS = 300
#: Only a reverse proxy on this machine may say who the client is (X-Forwarded-For).
TRUSTED_PROXIES = frozenset({"127.0.0.1", "::1"})
#: How long a page waits for its step (a step takes milliseconds).
PATIENCE = 10.0
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # The page's own address (a form's Origin) goes to this site only, to nobody else.
    "Referrer-Policy": "same-origin",
}

log = logging.getLogger(__name__)


class Malformed(ValueError):
    """A body that is no form of this page: answered 400, nothing processed."""


@dataclass(slots=True)
class _Basket:
    """What the step of one request answered."""

    messages: list[OutMessage] = field(default_factory=list)
    discarded: bool = False


class WebChannel:
    """The web chat, on the bot's own web server."""

    name = CHANNEL
    capabilities = CAPABILITIES

    def __init__(
        self,
        inbound: Inbound,
        *,
        gallery: Gallery | None = None,
        texts: Mapping[str, str] | None = None,
        per_address: int = PER_ADDRESS,
    ):
        self.inbound = inbound
        conversations = inbound.conversations
        self.engine = conversations.engine
        self.refs = conversations.refs
        self.repo = conversations.repo
        self.gallery = gallery or Gallery.empty()
        public = self.gallery.public_url
        self.secure = public.startswith("https://")
        self._public_host = urlsplit(public).netloc if public else ""
        locale = self.engine.content.locale
        self.page = WebPage(texts or load_webchat_texts(locale), self.engine.config.links, locale)
        self.medium = CAPABILITIES.medium(CHANNEL)
        self._baskets: dict[str, _Basket] = {}
        self._addresses = RateLimiter(per_address)

    def routes(self) -> Sequence[Route]:
        return (
            Route("GET", CHAT_PATH, self.show),
            Route("POST", CHAT_PATH, self.post),
            Route("POST", CHAT_PATH + "/size", self.size),
            Route("GET", STATIC_PATH + "/{name}", self.static),
        )

    async def start(self) -> None:
        """Nothing to connect to: the server routes the requests."""

    async def stop(self) -> None:
        await self.inbound.drain()

    # --- the channel contract ---------------------------------------------------------------

    async def deliver(self, chat: str, messages: Sequence[OutMessage]) -> None:
        """Into the basket of the request waiting for them (``chat``: that request). Nobody
        waits for replies a crash cut off, nor for announcements: a page cannot be written
        to first -- they are dropped, and the person sees where they are when they come
        back."""
        basket = self._baskets.get(chat)
        if basket is not None:
            basket.messages.extend(messages)

    async def discard(self, incoming: Incoming) -> None:
        """Take the person's message back out of the page (chat.js does it)."""
        basket = self._baskets.get(incoming.chat)
        if basket is not None:
            basket.discarded = True

    async def acknowledge(self, incoming: Incoming) -> None:
        """Nothing to acknowledge: the page waits for its answer."""

    # --- requests -------------------------------------------------------------------------

    async def show(self, request: web.Request) -> web.StreamResponse:
        """The page: a start button before anyone has started; /start for someone back."""
        limited = self._limited(request)
        if limited is not None:
            return limited
        session, new = self._session(request)
        found = REFERRAL.match(request.query.get("ref", "").strip().upper())
        ref = found.group(0) if found else ""
        stored = None if new else await self._stored(session)
        if stored is None:
            view = View(csrf=self._csrf(session), landing=True, ref=ref, big=_big(request))
            return self._respond(request, view, set_session=session if new else None)
        basket = await self._step(session, Start(ref or None), None)
        return await self._answer(request, session, basket, stored)

    async def post(self, request: web.Request) -> web.StreamResponse:
        """A button, a typed question or the start: one delivery, answered with its replies."""
        refused = self._limited(request) or self._foreign(request)
        if refused is not None:
            return refused
        session = request.cookies.get(COOKIE, "")
        if not _SESSION.match(session):
            return await self._stale(request, None)
        try:
            form = await _form(request)
            if not hmac.compare_digest(form.get("csrf", ""), self._csrf(session)):
                return await self._stale(request, session)
            event, nonce = _event(form)
        except Malformed as exc:
            log.warning("web: a malformed form refused (%s)", exc)
            return web.Response(status=400, text="malformed", headers=HEADERS)
        before = await self._stored(session)
        delivery = hashlib.sha256(f"{session}:{nonce}".encode()).hexdigest()[:32]
        basket = await self._step(session, event, delivery)
        return await self._answer(request, session, basket, before)

    async def size(self, request: web.Request) -> web.StreamResponse:
        """Larger or normal text, without JavaScript: the page again, as chosen."""
        refused = self._limited(request) or self._foreign(request)
        if refused is not None:
            return refused
        session = request.cookies.get(COOKIE, "")
        try:
            form = await _form(request)
        except Malformed:
            return web.Response(status=400, text="malformed", headers=HEADERS)
        if not _SESSION.match(session) or not hmac.compare_digest(
            form.get("csrf", ""), self._csrf(session)
        ):
            return await self._stale(request, session if _SESSION.match(session) else None)
        big = form.get("size") == "big"
        response = await self._current(request, session, big=big)
        response.set_cookie(
            SIZE_COOKIE,
            "big" if big else "normal",
            max_age=COOKIE_AGE,
            path=CHAT_PATH,
            samesite="Lax",
            secure=self.secure,
        )
        return response

    async def static(self, request: web.Request) -> web.StreamResponse:
        found = self.page.files.get(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound()
        data, kind = found
        return web.Response(
            body=data,
            headers={
                "Content-Type": kind,
                "Cache-Control": "public, max-age=31536000, immutable",
                "X-Content-Type-Options": "nosniff",
            },
        )

    # --- one step -------------------------------------------------------------------------

    async def _step(self, session: str, event: Input, delivery: str | None) -> _Basket | None:
        """Run ``event`` through the inbound path and collect its replies; None if it could
        not be taken now (the store is in trouble: a post stays in the inbox, tried again)."""
        chat = secrets.token_hex(8)
        basket = self._baskets[chat] = _Basket()
        incoming = Incoming(session, chat, event, delivery_id=delivery, message_id=chat)
        try:
            if delivery is None:
                self.inbound.submit(self, incoming)
            elif not await self.inbound.receive(self, incoming):
                return None
            async with asyncio.timeout(PATIENCE):
                await self.inbound.settled(self, session)
            return basket
        except TimeoutError:
            log.warning("web: a step was not answered within %.0f s", PATIENCE)
            return None
        finally:
            del self._baskets[chat]

    async def _answer(
        self,
        request: web.Request,
        session: str,
        basket: _Basket | None,
        before: StoredSession | None,
    ) -> web.StreamResponse:
        if basket is None:
            return await self._current(
                request, session, notice=self.page.texts["busy"], status=503
            )
        after = await self._stored(session)
        erased = before is not None and after is None
        bubbles = [await self._bubble(m) for m in basket.messages]
        if not bubbles and after is not None:
            # Nothing new (a form sent twice, a message over the flood limit): where they are.
            bubbles = await self._again(after)
        view = View(
            bubbles=bubbles,
            csrf=self._csrf(session),
            started=after is not None,
            erased=erased,
            big=_big(request),
        )
        return self._respond(request, view, clear=erased, discard=basket.discarded)

    async def _current(
        self,
        request: web.Request,
        session: str,
        *,
        big: bool | None = None,
        notice: str = "",
        status: int = 200,
    ) -> web.Response:
        """The page at the person's current screen (no step), or the start page."""
        stored = await self._stored(session)
        view = View(
            bubbles=await self._again(stored) if stored else (),
            csrf=self._csrf(session),
            started=stored is not None,
            landing=stored is None,
            big=_big(request) if big is None else big,
            notice=notice,
        )
        return self._respond(request, view, status=status)

    async def _stale(self, request: web.Request, session: str | None) -> web.StreamResponse:
        """A post without its cookie or with another session's token (an old page, cookies
        cleared): the page again, to press once more."""
        if request.headers.get("X-Chat") == "1":
            return web.json_response({}, status=403, headers=HEADERS)  # chat.js: a new page
        new = session is None
        session = session or _new_session()
        response = await self._current(
            request, session, notice=self.page.texts["expired"], status=403
        )
        if new:
            self._set_session(response, session)
        return response

    async def _again(self, stored: StoredSession) -> list[Bubble]:
        messages = self.engine.render(stored.state, self.medium)
        return [_again(await self._bubble(m)) for m in messages]

    async def _bubble(self, message: OutMessage) -> Bubble:
        if not message.picture:
            return self.page.bubble(message, None)
        picture = await self.gallery.picture(message.picture)
        src = Gallery.path(picture) if picture else ""
        return self.page.bubble(message, picture, src)

    async def _stored(self, session: str) -> StoredSession | None:
        return await self.repo.load(CHANNEL, self.refs.ref(CHANNEL, session))

    # --- who, from where --------------------------------------------------------------------

    def _session(self, request: web.Request) -> tuple[str, bool]:
        """The browser's id, and whether it is new (no cookie yet: one is made)."""
        given = request.cookies.get(COOKIE, "")
        return (given, False) if _SESSION.match(given) else (_new_session(), True)

    def _csrf(self, session: str) -> str:
        """The token of a session's forms: a keyed hash of its id (under another name than
        the id the store keeps), so it needs no storage."""
        return self.refs.ref("web-form", session)

    def _address(self, request: web.Request) -> str:
        peer = request.remote or ""
        forwarded = request.headers.get("X-Forwarded-For", "")
        if peer in TRUSTED_PROXIES and forwarded:
            return forwarded.split(",")[-1].strip()  # what the proxy itself saw
        return peer

    def _limited(self, request: web.Request) -> web.Response | None:
        # Kept as a keyed hash: the address is never held as it is, even in memory.
        who = self.refs.ref("web-address", self._address(request))
        if self._addresses.check(who, self.inbound.clock()) is Verdict.OK:
            return None
        view = View(notice=self.page.texts["too_fast"], big=_big(request))
        return self._respond(request, view, status=429)

    def _foreign(self, request: web.Request) -> web.Response | None:
        """A post from another site (a forged form): refused before its body is read."""
        if request.headers.get("Sec-Fetch-Site") == "cross-site":
            return web.Response(status=403, headers=HEADERS)
        origin = request.headers.get("Origin", "")
        if origin and origin != "null":  # "null": no origin given (a privacy setting)
            host = urlsplit(origin).netloc
            if host not in (request.host, self._public_host):
                return web.Response(status=403, headers=HEADERS)
        return None

    # --- answers ----------------------------------------------------------------------------

    def _respond(
        self,
        request: web.Request,
        view: View,
        *,
        status: int = 200,
        set_session: str | None = None,
        clear: bool = False,
        discard: bool = False,
    ) -> web.Response:
        response: web.Response
        if request.headers.get("X-Chat") == "1":
            body = {
                "html": self.page.turn(view),
                "started": view.started,
                "erased": view.erased,
                "discard": discard,
            }
            response = web.json_response(body, status=status, headers=HEADERS)
        else:
            response = web.Response(
                text=self.page.page(view),
                status=status,
                content_type="text/html",
                charset="utf-8",
                headers=HEADERS,
            )
        if set_session is not None:
            self._set_session(response, set_session)
        if clear:
            response.del_cookie(COOKIE, path=CHAT_PATH)
        return response

    def _set_session(self, response: web.StreamResponse, session: str) -> None:
        response.set_cookie(
            COOKIE,
            session,
            max_age=COOKIE_AGE,
            path=CHAT_PATH,
            httponly=True,
            samesite="Lax",  # sent when the link is opened from Zalo; not on others' forms
            secure=self.secure,
        )


def _new_session() -> str:
    return secrets.token_urlsafe(24)  # 32 characters, 192 random bits


def _big(request: web.Request) -> bool:
    return request.cookies.get(SIZE_COOKIE) == "big"


def _again(bubble: Bubble) -> Bubble:
    return Bubble(bubble.html, bubble.options, bubble.screen, bubble.picture, again=True)


async def _form(request: web.Request) -> dict[str, str]:
    """The fields of a form post; :class:`Malformed` for anything else (an upload, a body
    too long, not UTF-8, a field twice)."""
    if request.content_type != "application/x-www-form-urlencoded":
        raise Malformed(f"content type {request.content_type[:40]!r}")
    if (request.content_length or 0) > MAX_FORM:
        raise Malformed("too long")
    raw = await request.read()  # within the server's deadline and size limit
    if len(raw) > MAX_FORM:
        raise Malformed("too long")
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=12)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Malformed(type(exc).__name__) from exc
    fields = dict(pairs)
    if len(fields) != len(pairs):
        raise Malformed("a field twice")
    return fields


def _event(form: Mapping[str, str]) -> tuple[Input, str]:
    """The input a form carries, and its id; :class:`Malformed` if it is no form of ours."""
    nonce = form.get("nonce", "")
    if not _NONCE.match(nonce):
        raise Malformed("no form id")
    kinds = [k for k in ("start", "option", "text") if k in form]
    if len(kinds) != 1:
        raise Malformed(f"{len(kinds)} inputs")
    if kinds[0] == "start":
        # Only a code the bot issues is ever passed on (the page only ever holds one).
        found = REFERRAL.match(form.get("ref", "").strip().upper())
        return Start(found.group(0) if found else None), nonce
    if kinds[0] == "option":
        option, screen = form["option"], form.get("screen", "")
        if not TOKEN_RE.match(option) or not TOKEN_RE.match(screen):
            raise Malformed("not an option of ours")
        return Choice(option, screen), nonce
    return Text(form["text"]), nonce


def build(env: Mapping[str, str], services: Services) -> WebChannel | None:
    """The web chat, served by ``python -m bot serve`` unless ``WEB_CHAT=off``."""
    if services.mode != "webhook":
        return None
    if env.get("WEB_CHAT", "on").strip().lower() in ("off", "0", "false", "no"):
        return None
    return WebChannel(services.inbound, gallery=services.gallery)


SPEC = ChannelSpec(CHANNEL, build)
