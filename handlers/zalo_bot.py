"""Zalo Bot Platform adapter: webhook (production) or getUpdates polling (development).

- Webhook: ``X-Bot-Api-Secret-Token`` must equal ``ZALO_BOT_WEBHOOK_SECRET`` (constant-time
  comparison; 403 and nothing processed otherwise). Both envelope shapes are accepted
  (``{"ok", "result": {...}}`` and the flat ``{"event_name", "message"}``).
- Polling: ``getUpdates`` replays what it returned before and answers at once while its queue
  is not empty, so polls are at least a second apart and repeats are dropped by
  ``message_id`` (in memory, and durably by the conversation store).
- The platform has no buttons, no deep links and cannot delete a user's message: options are
  numbered lines, a volunteer's code is typed ("ma VK7M2QX"), a photo gets a warning.
- Replies go out through ``sendMessage``, split under 2,000 characters; ``ok: false`` is an
  error even with HTTP 200. An install step's picture goes out through ``sendPhoto`` with its
  public URL (handlers/pictures.py), or, without one, as what it shows in words.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
from aiohttp import web

from bot.config import ConfigError
from bot.model import Input, Media, MediaKind, OutMessage, Text
from handlers import webhook
from handlers.channel import Capabilities, ChannelSpec, Incoming, Route, Services
from handlers.delivery import InDoubt, NotSent, Rejected, RetryLater, Unreachable
from handlers.inbound import Inbound, split_text
from handlers.pictures import Gallery
from handlers.render import numbered
from handlers.webhook import Malformed

CHANNEL = "zalo_bot"
DEFAULT_API_BASE_URL = "https://bot-api.zaloplatforms.com"
WEBHOOK_PATH = "/zalo/bot/webhook"
POLL_PAUSE = 1.0
POLL_TIMEOUT = 30
#: How long sends pause after "quota exceeded" (429). The free plan's quota is monthly; a
#: paid plan's is not published: a quarter of an hour costs one futile call per pause.
QUOTA_PAUSE = 15 * 60.0
CAPABILITIES = Capabilities(
    buttons=False,
    can_delete=False,
    max_text=2000,
    deep_links=False,
    files=False,
    # Zalo wants a webhook's answer within about 2 s.
    ack_within=1.5,
)
EVENTS: dict[str, MediaKind] = {
    "message.image.received": "photo",
    "message.sticker.received": "sticker",
    "message.voice.received": "voice",
    "message.unsupported.received": "other",
}
#: The events Zalo's docs describe (voice: a second source), read strictly.
DOCUMENTED = frozenset({"message.text.received", *EVENTS})

log = logging.getLogger(__name__)


def outcome(code: int, description: str) -> Exception:
    """How a send that Zalo answered with error ``code`` ended, from the docs' table of error
    codes (zalo.md §1.4), for the outbox and the reply path to act on:

    - 400 bad request (a wrong method or parameter): the message is refused, not tried again;
    - 401 the token is expired or invalid: nothing was sent, and nothing will be until the
      operator sets the new token -- tried again later, the message is not at fault;
    - 403 is the docs' *internal server error*: transient, nothing was sent (the user did not
      block anyone: the old mapping to "unreachable" marked citizens stopped);
    - 404 not found: a send names nothing but the chat, so the chat is gone;
    - 408 the request timed out on Zalo's side: it may have gone out, never sent twice;
    - 429 quota exceeded (3,000 messages a month on the free plan): a retry a second later
      is futile, so sends on this channel pause for :data:`QUOTA_PAUSE`;
    - a 5xx from a gateway in front of the API: it may have gone out; anything else: refused.
    """
    if code == 429:
        return RetryLater(QUOTA_PAUSE)
    if code in (401, 403):
        return NotSent(description)
    if code == 404:
        return Unreachable(description)
    if code == 408 or code >= 500:
        return InDoubt(description)
    return Rejected(description)


class ZaloBotError(Exception):
    def __init__(self, code: int, description: str):
        super().__init__(f"Zalo Bot API error {code}: {description}")
        self.code = code


def translate(body: object) -> Incoming | None:
    """The incoming delivery of an update (event None: a group chat), or None to ignore it;
    :class:`Malformed` when a field the bot reads is missing or of the wrong type.

    The documented events are read strictly (``from`` and ``chat`` are required objects);
    an event the docs do not name is acted on only if it carries a well-formed message."""
    body = webhook.obj(body, "update")
    update = body["result"] if body.get("ok") is True and "result" in body else body
    update = webhook.obj(update, "result")
    name = webhook.string(update.get("event_name", ""), "event_name")
    if name not in DOCUMENTED:
        try:
            return _message(name, update.get("message"))
        except Malformed:
            return None
    return _message(name, update.get("message"))


def _message(name: str, value: object) -> Incoming:
    message = webhook.obj(value, "message")
    chat = webhook.obj(message.get("chat"), "message.chat")
    webhook.obj(message.get("from"), "message.from")
    chat_id = webhook.ident(chat.get("id"), "message.chat.id")
    message_id = webhook.ident(message.get("message_id"), "message.message_id")
    chat_type = webhook.string(chat.get("chat_type", "PRIVATE"), "message.chat.chat_type")
    delivery = f"{name}:{message_id}"
    event: Input | None
    if chat_type.upper() != "PRIVATE":
        event = None
    elif name == "message.text.received":
        event = Text(webhook.string(message.get("text"), "message.text"))
    elif name == "message.image.received" and _photo_url(message):
        # Zalo's address of the picture (a volunteer's may be passed on in a help chat).
        caption = message.get("caption")
        event = Media("photo", _photo_url(message), caption if isinstance(caption, str) else "")
    else:
        event = Media(EVENTS.get(name, "other"))
    return Incoming(user=chat_id, chat=chat_id, event=event, delivery_id=delivery)


def _photo_url(message: dict[str, Any]) -> str:
    """The picture's address: its field's name is unsettled (zalo.md 1.3: ``photo_url`` in
    the libraries, ``photo`` in the docs, ``url`` elsewhere) -- the first that is one."""
    for key in ("photo_url", "photo", "url"):
        value = message.get(key)
        if isinstance(value, str) and value.startswith("https://"):
            return value
    return ""


def pieces(message: OutMessage) -> list[str]:
    """The texts one message is sent as: its options numbered, split under the limit (each
    piece is a message, a notification, and counts against the monthly quota)."""
    return split_text(numbered(message), CAPABILITIES.max_text)


class ZaloBotChannel:
    """Receives Zalo Bot updates and answers them through the Bot API."""

    name = CHANNEL
    capabilities = CAPABILITIES

    def __init__(
        self,
        inbound: Inbound,
        token: str,
        *,
        base_url: str = DEFAULT_API_BASE_URL,
        webhook_secret: str | None = None,
        polling: bool = False,
        gallery: Gallery | None = None,
    ):
        self.inbound = inbound
        self.gallery = gallery or Gallery.empty()
        self._token = token
        self._base = base_url.rstrip("/")
        self._secret = webhook_secret
        self._polling = polling
        self._session: aiohttp.ClientSession | None = None
        self._poller: asyncio.Task[None] | None = None

    def routes(self) -> Sequence[Route]:
        return () if self._polling else (Route("POST", WEBHOOK_PATH, self.webhook),)

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=POLL_TIMEOUT + 10)
        )
        if self._polling:
            self._poller = asyncio.create_task(self._poll_forever())

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        await self.inbound.drain()
        if self._session is not None:
            await self._session.close()

    # --- receiving ------------------------------------------------------------------------

    async def webhook(self, request: web.Request) -> web.Response:
        """The Bot Platform's webhook (handlers/webhook.py): the secret header is checked in
        constant time before the body is read."""
        given = request.headers.get("X-Bot-Api-Secret-Token", "")
        if not self._secret or not hmac.compare_digest(given.encode(), self._secret.encode()):
            return web.json_response({"ok": False}, status=403)
        try:
            incoming = translate(webhook.parse(await request.read()))
        except Malformed as exc:
            return webhook.refused(CHANNEL, exc)
        if incoming is not None and not await self.inbound.receive(self, incoming):
            return web.json_response({"ok": False}, status=503)
        return web.json_response({"ok": True})

    async def _poll_forever(self) -> None:
        """Development mode: fetch updates with getUpdates (never with a webhook set). It
        replays what it returned before and answers at once while its queue is not empty,
        so polls are at least a second apart and repeats are dropped by ``message_id``."""
        while True:
            try:
                update = await self.call("getUpdates", {"timeout": str(POLL_TIMEOUT)})
                incoming = translate(update) if isinstance(update, dict) else None
                if incoming is not None:
                    self.inbound.submit(self, incoming)
            except Malformed as exc:  # skipped: the next poll goes on
                log.warning("Zalo getUpdates: malformed update skipped (%s)", exc)
            except ZaloBotError as exc:
                if exc.code != 408:  # 408: nothing new within the timeout
                    log.warning("Zalo getUpdates failed: %s", exc.code)
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("Zalo getUpdates failed: %s", type(exc).__name__)
            await asyncio.sleep(POLL_PAUSE)

    # --- sending --------------------------------------------------------------------------

    async def deliver(self, chat: str, messages: Sequence[OutMessage]) -> None:
        """Send to a chat, telling how a failure ended (handlers/delivery.py)."""
        try:
            for message in messages:
                if message.photo:  # a volunteer's picture, passed on by its address
                    params = {"chat_id": chat, "photo": message.photo}
                    if message.text:
                        params["caption"] = message.text[: CAPABILITIES.max_text]
                    await self.call("sendPhoto", params)
                    continue
                if message.picture:
                    await self._send_picture(chat, message.picture)
                    continue
                for piece in pieces(message):
                    await self.call("sendMessage", {"chat_id": chat, "text": piece})
        except ZaloBotError as exc:
            raise outcome(exc.code, str(exc)) from exc
        except aiohttp.ClientConnectorError as exc:
            raise NotSent(type(exc).__name__) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise InDoubt(type(exc).__name__) from exc

    async def _send_picture(self, chat: str, picture_id: str) -> None:
        """The picture by its public URL; without one, what it shows in words."""
        picture = await self.gallery.picture(picture_id)
        if picture is None:
            log.warning("Zalo Bot: no picture %r to send", picture_id)
            return
        url = self.gallery.url(picture)
        if url is not None:
            await self.call("sendPhoto", {"chat_id": chat, "photo": url})
        else:
            await self.call(
                "sendMessage", {"chat_id": chat, "text": self.gallery.in_words(picture)}
            )

    async def discard(self, incoming: Incoming) -> None:
        """The Bot Platform cannot delete a user's message (the engine warns instead)."""

    async def acknowledge(self, incoming: Incoming) -> None:
        """No buttons, nothing to acknowledge."""

    async def call(self, method: str, payload: dict[str, Any]) -> Any:
        """One Bot API call; raises :class:`ZaloBotError` when the answer is not ok."""
        assert self._session is not None, "start() first"
        url = f"{self._base}/bot{self._token}/{method}"
        async with self._session.post(url, json=payload) as response:
            try:
                body = await response.json(content_type=None)
            except ValueError:
                body = {}
        if not isinstance(body, dict):
            raise ZaloBotError(response.status, "")
        if body.get("ok") is not True:
            code = int(body.get("error_code") or response.status)
            raise ZaloBotError(code, str(body.get("description", "")))
        return body.get("result")


def build(env: Mapping[str, str], services: Services) -> ZaloBotChannel | None:
    """The Zalo Bot Platform, if ``ZALO_BOT_TOKEN`` is set: a webhook
    (``ZALO_BOT_WEBHOOK_SECRET`` required) or, with ``run``, getUpdates polling."""
    token = env.get("ZALO_BOT_TOKEN", "").strip()
    if not token or services.mode == "interactive":
        return None
    secret: str | None = None
    if services.mode == "webhook":
        secret = env.get("ZALO_BOT_WEBHOOK_SECRET") or None
        if secret is None:
            raise ConfigError("the Zalo Bot webhook needs ZALO_BOT_WEBHOOK_SECRET")
    return ZaloBotChannel(
        services.inbound,
        token,
        base_url=env.get("ZALO_BOT_API_BASE_URL") or DEFAULT_API_BASE_URL,
        webhook_secret=secret,
        polling=services.mode == "polling",
        gallery=services.gallery,
    )


SPEC = ChannelSpec(CHANNEL, build)
