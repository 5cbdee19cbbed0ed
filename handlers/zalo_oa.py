"""Zalo Official Account adapter: signed webhook in, customer-service messages out.

- Webhook: ``X-ZEvent-Signature`` must be the SHA-256 of ``app_id + raw body + timestamp +
  OA secret key`` (a ``mac=`` prefix is tolerated); 403 and nothing processed otherwise.
  Repeated deliveries (same ``msg_id``) are applied once by the conversation store.
- Replies: ``POST /v3.0/oa/message/cs`` with the ``access_token`` header; options become
  template buttons of type ``oa.query.show`` whose payload is the option's own label, so a
  tap comes back as that text and is understood like a typed answer. Text is split under
  2,000 characters (longer is rejected with -210, not cut).
- Tokens: the access token lives 25 hours, the refresh token works once. The pair is kept in
  the database; it is refreshed ahead of expiry (and on -216/-220, then the send is retried
  once) under a lock, and the new pair is saved *before* it is used, so that a crash or a
  restart never leaves the bot holding only a spent refresh token.
- -230 (no interaction in the last 7 days) and -213 (not following) are not retried.
- An install step's picture is a media template with its public URL (handlers/pictures.py),
  or, without one, what it shows in words.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import logging
import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import web

from bot.config import ConfigError
from bot.logs import OncePerInterval
from bot.model import Blocked, Input, Media, MediaKind, OutMessage, Start, Text
from handlers import webhook
from handlers.channel import Capabilities, ChannelSpec, Incoming, Route, Services
from handlers.conversation import utcnow
from handlers.delivery import InDoubt, NotSent, OutsideWindow, Rejected, Unreachable
from handlers.inbound import Inbound, split_text
from handlers.pictures import Gallery
from handlers.render import numbered
from handlers.webhook import Malformed
from storage.leases import Leases
from storage.tokens import Tokens, TokenStore

CHANNEL = "zalo_oa"
WEBHOOK_PATH = "/zalo/oa/webhook"
TOKEN_NAME = "zalo_oa"
REFRESH_LEASE = "zalo_oa_refresh"
REFRESH_LEASE_TTL = timedelta(seconds=30)
REFRESH_PATIENCE = 15.0
DEFAULT_API_BASE_URL = "https://openapi.zalo.me"
DEFAULT_OAUTH_BASE_URL = "https://oauth.zaloapp.com"
MAX_BUTTONS = 5
CAPABILITIES = Capabilities(
    buttons=True,
    can_delete=False,
    max_text=2000,  # longer is refused with -210, not cut
    deep_links=False,
    files=False,
    # Zalo wants a webhook's answer within about 2 s.
    ack_within=1.5,
)
#: Refresh this long before the access token expires.
REFRESH_AHEAD = timedelta(hours=2)
#: After a failed refresh, the next try waits this long (sending goes on meanwhile with the
#: token in hand, for as long as it is valid).
REFRESH_BACKOFF = timedelta(minutes=5)
#: Signed events older than this are refused. Zalo retries a delivery for about 2 hours
#: (after 30 s, 5, 15, 30 and 60 min) and then disables the webhook, so no genuine delivery
#: is older; a day leaves room for clock error and for retries the docs do not describe --
#: and stays far inside the 7 days the deliveries table remembers ids for, so a replayed
#: event is either refused here or recognised there as applied, never applied again.
MAX_AGE = timedelta(days=1)
#: Events from the future: only clock error between Zalo and us.
MAX_AHEAD = timedelta(minutes=10)
#: The largest unsigned body taken for a URL check.
URL_CHECK_MAX = 1024
TOKEN_ERRORS = (-216, -220)
GIVE_UP = (-230, -213, -204, -205, -219, -212)
#: The user has not written to the OA for 7 days (zalo.md 2.5): nothing goes until they do.
OUTSIDE_WINDOW = -230
MEDIA: dict[str, MediaKind] = {
    "user_send_image": "photo",
    "user_send_gif": "sticker",
    "user_send_file": "document",
    "user_send_video": "video",
    "user_send_sticker": "sticker",
    "user_send_audio": "voice",
    "user_send_location": "location",
    "user_send_business_card": "contact",
    "user_send_link": "other",
}

log = logging.getLogger(__name__)
#: What unauthenticated or replayed deliveries cause is told once a minute at most (a storm
#: of them is one line).
quiet = logging.getLogger(f"{__name__}.webhook")
quiet.addFilter(OncePerInterval(60.0))


class ZaloOAError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(f"Zalo OA error {code}: {message}")
        self.code = code


@dataclass(frozen=True, slots=True)
class OASettings:
    app_id: str
    secret_key: str  # the app's secret, for OAuth
    oa_secret_key: str  # the OA's secret, for webhook signatures
    access_token: str  # the first pair, used only while the database holds none
    refresh_token: str
    api_base_url: str = DEFAULT_API_BASE_URL
    oauth_base_url: str = DEFAULT_OAUTH_BASE_URL

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> OASettings | None:
        """From the ``ZALO_OA_*`` variables of ``env``: None when no OA is configured.

        ``ZALO_OA_SECRET_KEY`` is the OA's secret key (it signs webhook events);
        ``ZALO_OA_APP_SECRET`` is the app's secret, the one OAuth takes. They are different
        keys: refreshing with the OA's secret fails about two hours in (a refresh comes due
        two hours before the 25-hour token expires), and from then on every send fails --
        so both are required, and a missing one stops the start with a one-line reason."""
        if not env.get("ZALO_OA_APP_ID"):
            return None
        names = (
            "ZALO_OA_SECRET_KEY",
            "ZALO_OA_APP_SECRET",
            "ZALO_OA_ACCESS_TOKEN",
            "ZALO_OA_REFRESH_TOKEN",
        )
        missing = [n for n in names if not env.get(n)]
        if missing:
            raise ValueError(
                f"Zalo OA needs {', '.join(missing)} (ZALO_OA_APP_SECRET: the app's secret "
                "from developers.zalo.me, for OAuth; ZALO_OA_SECRET_KEY: the OA secret key "
                "from the webhook page)"
            )
        return cls(
            app_id=env["ZALO_OA_APP_ID"],
            secret_key=env["ZALO_OA_APP_SECRET"],
            oa_secret_key=env["ZALO_OA_SECRET_KEY"],
            access_token=env["ZALO_OA_ACCESS_TOKEN"],
            refresh_token=env["ZALO_OA_REFRESH_TOKEN"],
            api_base_url=env.get("ZALO_OA_API_BASE_URL") or DEFAULT_API_BASE_URL,
            oauth_base_url=env.get("ZALO_OAUTH_BASE_URL") or DEFAULT_OAUTH_BASE_URL,
        )


#: Where a body names its timestamp: the signature covers it, so it is read from the raw
#: bytes (the top-level field is the one Zalo signs with; the first few candidates are tried,
#: so that nothing is parsed before the delivery is known to be Zalo's).
_TIMESTAMP = re.compile(rb'"timestamp"\s*:\s*"?(\d{1,20})"?')
_CANDIDATES = 4


def signature_ok(raw: bytes, header: str, app_id: str, oa_secret_key: str) -> bool:
    """Whether ``header`` signs ``raw``: plain SHA-256 of app id, raw body, the body's
    timestamp and the OA secret key (a ``mac=`` prefix is tolerated). Checked on the raw
    bytes, before anything is parsed."""
    given = header.strip()
    if given.lower().startswith("mac="):
        given = given[4:]
    given_bytes = given.lower().encode("ascii", "replace")
    found = [m.group(1) for m in itertools.islice(_TIMESTAMP.finditer(raw), _CANDIDATES)]
    head, tail = app_id.encode(), oa_secret_key.encode()
    matched = False
    for timestamp in found or [b""]:
        expected = hashlib.sha256(head + raw + timestamp + tail).hexdigest().encode()
        matched |= hmac.compare_digest(expected, given_bytes)
    return matched


def url_check(raw: bytes) -> bool:
    """Whether an unsigned request is Zalo checking the webhook URL as it is saved: an empty
    body or a small JSON object that holds no event (Zalo sends ``{}`` and wants a 200, or
    the URL cannot be saved). It is answered 200 and nothing is processed."""
    if not raw.strip():
        return True
    if len(raw) > URL_CHECK_MAX:
        return False
    try:
        body = webhook.parse(raw)
    except Malformed:
        return False
    return isinstance(body, dict) and "event_name" not in body


def event_time(body: dict[str, Any]) -> datetime:
    """The event's ``timestamp`` (epoch milliseconds, a string or a number)."""
    raw = body.get("timestamp")
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise Malformed("timestamp: missing")
    text = str(raw)
    # ASCII digits only ("١٢" is a digit to str.isdigit); 13 digits reach the year 2286.
    if not (text.isascii() and text.isdigit()) or len(text) > 13:
        raise Malformed("timestamp: not epoch milliseconds")
    return datetime.fromtimestamp(int(text) / 1000, tz=UTC)


def translate(body: object) -> Incoming | None:
    """The incoming delivery of a webhook event we act on, or None; :class:`Malformed`
    when a field the bot reads is missing or of the wrong type."""
    body = webhook.obj(body, "event")
    name = webhook.string(body.get("event_name"), "event_name")
    timestamp = str(body.get("timestamp", ""))
    if name in ("follow", "unfollow"):
        follower = webhook.obj(body.get("follower"), "follower")
        user = webhook.ident(follower.get("id"), "follower.id")
        event: Input = Start() if name == "follow" else Blocked()
        return Incoming(user, user, event, delivery_id=f"{name}:{user}:{timestamp}")
    if name != "user_send_text" and name not in MEDIA:
        return None  # seen/received receipts, our own sends, ...
    sender = webhook.obj(body.get("sender"), "sender")
    user = webhook.ident(sender.get("id"), "sender.id")
    message = webhook.obj(body.get("message"), "message")
    msg_id = message.get("msg_id")
    delivery = (
        webhook.ident(msg_id, "message.msg_id")
        if msg_id is not None
        else f"{name}:{user}:{timestamp}"
    )
    if name == "user_send_text":
        text = webhook.string(message.get("text"), "message.text")
        return Incoming(user, user, Text(text), delivery_id=delivery)
    return Incoming(user, user, _media(name, message), delivery_id=delivery)


def _media(name: str, message: dict[str, Any]) -> Media:
    """A photo with Zalo's address of it (a volunteer's may be passed on in a help chat)."""
    attachments = message.get("attachments")
    if name == "user_send_image" and isinstance(attachments, list) and attachments:
        first = attachments[0]
        payload = first.get("payload") if isinstance(first, dict) else None
        url = payload.get("url") if isinstance(payload, dict) else None
        if isinstance(url, str):
            text = message.get("text")
            return Media("photo", url, text if isinstance(text, str) else "")
    return Media(MEDIA[name])


def payloads(message: OutMessage) -> list[dict[str, Any]]:
    """The CS messages one engine message is sent as: text pieces, the options as buttons on
    the last piece (numbered lines if there are more than the OA shows)."""
    buttons = message.options[:MAX_BUTTONS] if len(message.options) <= MAX_BUTTONS else ()
    text = message.text if buttons or not message.options else numbered(message)
    pieces = split_text(text, CAPABILITIES.max_text)
    out: list[dict[str, Any]] = []
    for number, piece in enumerate(pieces, start=1):
        payload: dict[str, Any] = {"text": piece}
        if buttons and number == len(pieces):
            payload["attachment"] = {
                "type": "template",
                "payload": {
                    "buttons": [
                        {"title": o.label, "type": "oa.query.show", "payload": o.label}
                        for o in buttons
                    ]
                },
            }
        out.append(payload)
    return out


class ZaloOAChannel:
    """Receives OA webhook events and answers with customer-service messages."""

    name = CHANNEL
    capabilities = CAPABILITIES

    def __init__(
        self,
        inbound: Inbound,
        settings: OASettings,
        tokens: TokenStore,
        *,
        clock: Callable[[], datetime] = utcnow,
        gallery: Gallery | None = None,
    ):
        self.inbound = inbound
        self.gallery = gallery or Gallery.empty()
        self.settings = settings
        self.tokens = tokens
        self.clock = clock
        self._session: aiohttp.ClientSession | None = None
        self._current: Tokens | None = None
        self._lock = asyncio.Lock()
        #: No refresh ahead of expiry before this (set after a failed one).
        self._next_refresh = datetime.min.replace(tzinfo=UTC)
        self.refreshes = 0

    def routes(self) -> Sequence[Route]:
        return (Route("POST", WEBHOOK_PATH, self.webhook),)

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20))

    async def stop(self) -> None:
        await self.inbound.drain()
        if self._session is not None:
            await self._session.close()

    # --- receiving ------------------------------------------------------------------------

    async def webhook(self, request: web.Request) -> web.Response:
        """The OA's webhook (handlers/webhook.py): the signature is checked on the raw bytes
        first; then the event's time (a signed event is refused outside the window Zalo
        delivers in, see :data:`MAX_AGE`), then its fields."""
        raw = await request.read()
        header = request.headers.get("X-ZEvent-Signature", "")
        settings = self.settings
        if not signature_ok(raw, header, settings.app_id, settings.oa_secret_key):
            if url_check(raw):
                quiet.info("Zalo OA: webhook URL check answered")
                return web.json_response({"error": 0})
            return web.json_response({"error": "bad signature"}, status=403)
        try:
            body = webhook.obj(webhook.parse(raw), "event")
            if "event_name" not in body:
                return web.json_response({"error": 0})  # a signed URL check
            at = event_time(body)
            incoming = translate(body)
        except Malformed as exc:
            return webhook.refused(CHANNEL, exc)
        now = self.clock()
        if not now - MAX_AGE <= at <= now + MAX_AHEAD:
            # Answered 200: a late but genuine delivery must not be retried, nor the webhook
            # disabled for it; the event itself is not applied.
            age = (now - at).total_seconds() / 3600
            quiet.warning("Zalo OA: an event %.1f hours old refused (outside the window)", age)
            return web.json_response({"error": 0})
        if incoming is not None and not await self.inbound.receive(self, incoming):
            return web.json_response({"error": "try again"}, status=503)
        return web.json_response({"error": 0})

    # --- sending --------------------------------------------------------------------------

    async def deliver(self, chat: str, messages: Sequence[OutMessage]) -> None:
        """Send to a user, telling how a failure ended (handlers/delivery.py)."""
        try:
            for message in messages:
                await self._send_message(chat, message)
        except ZaloOAError as exc:
            # GIVE_UP: the user blocked the OA, left, or is outside the window it may write in.
            if exc.code == OUTSIDE_WINDOW:
                raise OutsideWindow(str(exc)) from exc
            raise (Unreachable if exc.code in GIVE_UP else Rejected)(str(exc)) from exc
        except aiohttp.ClientConnectorError as exc:
            raise NotSent(type(exc).__name__) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise InDoubt(type(exc).__name__) from exc

    async def _send_message(self, user: str, message: OutMessage) -> None:
        """One engine message: a picture, or text pieces with the options as buttons."""
        if message.photo:  # a volunteer's picture, passed on by its address
            if message.text:
                await self._send_cs(user, {"text": message.text[: CAPABILITIES.max_text]})
            media = {"media_type": "image", "url": message.photo}
            payload = {"template_type": "media", "elements": [media]}
            await self._send_cs(user, {"attachment": {"type": "template", "payload": payload}})
            return
        if message.picture:
            await self._send_picture(user, message.picture)
            return
        for payload in payloads(message):
            await self._send_cs(user, payload)

    async def _send_picture(self, user: str, picture_id: str) -> None:
        """The picture as a media template with its public URL; without one, in words."""
        picture = await self.gallery.picture(picture_id)
        if picture is None:
            log.warning("Zalo OA: no picture %r to send", picture_id)
            return
        url = self.gallery.url(picture)
        if url is None:
            await self._send_cs(user, {"text": self.gallery.in_words(picture)})
            return
        media = {"media_type": "image", "url": url}
        payload = {"template_type": "media", "elements": [media]}
        await self._send_cs(user, {"attachment": {"type": "template", "payload": payload}})

    async def discard(self, incoming: Incoming) -> None:
        """The OA cannot delete a user's message (the engine warns instead)."""

    async def acknowledge(self, incoming: Incoming) -> None:
        """Buttons come back as text: nothing to acknowledge."""

    async def _send_cs(self, user: str, message: dict[str, Any]) -> None:
        body = {"recipient": {"user_id": user}, "message": message}
        token = await self.access_token()
        answer = await self._post_cs(token, body)
        if answer in TOKEN_ERRORS:
            await self.refresh(failed=token)
            answer = await self._post_cs(await self.access_token(), body)
        if answer:
            raise ZaloOAError(answer, "send failed")

    async def _post_cs(self, token: str, body: dict[str, Any]) -> int:
        assert self._session is not None, "start() first"
        url = f"{self.settings.api_base_url.rstrip('/')}/v3.0/oa/message/cs"
        async with self._session.post(url, json=body, headers={"access_token": token}) as r:
            data = await r.json(content_type=None)
        return int(data.get("error", 0)) if isinstance(data, dict) else -1

    # --- tokens ---------------------------------------------------------------------------

    async def access_token(self) -> str:
        """A valid access token, refreshed ahead of its expiry."""
        if self._current is None:
            self._current = await self.tokens.load(TOKEN_NAME) or Tokens(
                self.settings.access_token,
                self.settings.refresh_token,
                self.clock() + REFRESH_AHEAD * 2,  # unknown: assume fresh, refresh on error
            )
        now = self.clock()
        current = self._current
        if current.expires_at - now < REFRESH_AHEAD and now >= self._next_refresh:
            try:
                await self.refresh(failed=current.access_token)
            except (ZaloOAError, aiohttp.ClientError, TimeoutError) as exc:
                self._next_refresh = now + REFRESH_BACKOFF
                if self._current.expires_at <= now:
                    raise
                # The token in hand is still valid: keep sending with it, try again later.
                log.warning("Zalo OA: token refresh failed (%s); the current token is used", exc)
        return self._current.access_token

    async def refresh(self, *, failed: str) -> None:
        """Replace the token pair -- once, however many senders (in this process or in other
        workers) found ``failed`` stale: a refresh token works only once."""
        async with self._lock, self._refresh_turn():
            stored = await self.tokens.load(TOKEN_NAME)
            if stored is not None:
                self._current = stored  # another worker, or a previous run, may have refreshed
            current = self._current
            assert current is not None
            if (
                current.access_token != failed
                and current.expires_at - self.clock() >= REFRESH_AHEAD
            ):
                return
            try:
                fresh = await self._exchange(current.refresh_token)
            except ZaloOAError:
                # Spent meanwhile by a worker that did not wait its turn? Use what it saved.
                again = await self.tokens.load(TOKEN_NAME)
                if again is None or again.refresh_token == current.refresh_token:
                    raise
                self._current = again
                return
            # Saved before use: the old refresh token is spent from this moment on.
            await self.tokens.save(TOKEN_NAME, fresh, self.clock())
            self._current = fresh
            self.refreshes += 1
            log.info("Zalo OA tokens refreshed")

    @contextlib.asynccontextmanager
    async def _refresh_turn(self) -> AsyncIterator[None]:
        """Among workers sharing the database, one refreshes at a time (a lease); if the
        holder seems stuck, go ahead after a while rather than stop sending."""
        leases = Leases(self.tokens.db)
        deadline = asyncio.get_running_loop().time() + REFRESH_PATIENCE
        while not await leases.acquire(REFRESH_LEASE, self.clock(), REFRESH_LEASE_TTL):
            if asyncio.get_running_loop().time() > deadline:
                log.warning("Zalo OA: another worker's token refresh is taking long; going on")
                break
            await asyncio.sleep(0.1)
        try:
            yield
        finally:
            await leases.release(REFRESH_LEASE)

    async def _exchange(self, refresh_token: str) -> Tokens:
        assert self._session is not None, "start() first"
        url = f"{self.settings.oauth_base_url.rstrip('/')}/v4/oa/access_token"
        form = {
            "refresh_token": refresh_token,
            "app_id": self.settings.app_id,
            "grant_type": "refresh_token",
        }
        headers = {"secret_key": self.settings.secret_key}
        async with self._session.post(url, data=form, headers=headers) as response:
            data = await response.json(content_type=None)
        if not isinstance(data, dict) or "access_token" not in data:
            reason = data.get("error_name", "") if isinstance(data, dict) else ""
            raise ZaloOAError(
                int(data.get("error", -1)) if isinstance(data, dict) else -1, str(reason)
            )
        lifetime = int(str(data.get("expires_in", "90000")))
        return Tokens(
            access_token=str(data["access_token"]),
            refresh_token=str(data["refresh_token"]),
            expires_at=self.clock() + timedelta(seconds=lifetime),
        )


def build(env: Mapping[str, str], services: Services) -> ZaloOAChannel | None:
    """The Zalo OA, if ``ZALO_OA_APP_ID`` is set (webhook only: the OA cannot be polled)."""
    if services.mode != "webhook":
        return None
    try:
        settings = OASettings.from_env(env)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    if settings is None:
        return None
    tokens = TokenStore(services.db, services.inbound.conversations.refs)
    return ZaloOAChannel(services.inbound, settings, tokens, gallery=services.gallery)


SPEC = ChannelSpec(CHANNEL, build)
