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
  error even with HTTP 200.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections import OrderedDict
from typing import Any

import aiohttp
from aiohttp import web

from bot.model import Input, Media, OutMessage, Text
from handlers.conversation import Conversations, Outcome
from handlers.delivery import InDoubt, NotSent, Rejected, RetryLater, Unreachable
from handlers.inbound import Inbound, as_text, split_text

CHANNEL = "zalo_bot"
DEFAULT_API_BASE_URL = "https://bot-api.zaloplatforms.com"
MAX_TEXT = 2000
POLL_PAUSE = 1.0
POLL_TIMEOUT = 30
EVENTS: dict[str, str] = {
    "message.image.received": "photo",
    "message.sticker.received": "sticker",
    "message.voice.received": "voice",
    "message.unsupported.received": "other",
}

log = logging.getLogger(__name__)


class ZaloBotError(Exception):
    def __init__(self, code: int, description: str):
        super().__init__(f"Zalo Bot API error {code}: {description}")
        self.code = code


def translate(body: dict[str, Any]) -> tuple[str, Input | None, str] | None:
    """(chat id, engine input or None for a group chat, delivery id) of an update."""
    update = body["result"] if body.get("ok") is True and "result" in body else body
    if not isinstance(update, dict):
        return None
    message = update.get("message")
    if not isinstance(message, dict):
        return None
    chat = message.get("chat") or {}
    chat_id = str(chat.get("id") or (message.get("from") or {}).get("id") or "")
    message_id = str(message.get("message_id") or "")
    if not chat_id or not message_id:
        return None
    name = str(update.get("event_name", ""))
    delivery = f"{name}:{message_id}"
    if str(chat.get("chat_type", "PRIVATE")).upper() != "PRIVATE":
        return chat_id, None, delivery
    if name == "message.text.received" and isinstance(message.get("text"), str):
        return chat_id, Text(message["text"]), delivery
    kind = EVENTS.get(name, "other")
    return chat_id, Media(kind), delivery  # type: ignore[arg-type]


class ZaloBotChannel:
    """Receives Zalo Bot updates and answers them through the Bot API."""

    def __init__(
        self,
        conversations: Conversations,
        token: str,
        *,
        base_url: str = DEFAULT_API_BASE_URL,
        webhook_secret: str | None = None,
        concurrency: int = 8,
    ):
        self.conversations = conversations
        self.inbound = Inbound(conversations, CHANNEL, concurrency)
        self._token = token
        self._base = base_url.rstrip("/")
        self._secret = webhook_secret
        self._session: aiohttp.ClientSession | None = None
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._poller: asyncio.Task[None] | None = None

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self, *, polling: bool = False) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=POLL_TIMEOUT + 10)
        )
        if polling:
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
        given = request.headers.get("X-Bot-Api-Secret-Token", "")
        if not self._secret or not hmac.compare_digest(given.encode(), self._secret.encode()):
            return web.json_response({"ok": False}, status=403)
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"ok": False}, status=400)
        committed = self._receive(body) if isinstance(body, dict) else None
        if committed is not None:
            await self.inbound.acknowledge_after_commit(committed)
        return web.json_response({"ok": True})

    def _receive(self, body: dict[str, Any]) -> asyncio.Future[None] | None:
        found = translate(body)
        if found is None:
            return None
        chat_id, event, delivery = found
        if delivery in self._seen:
            return None
        self._seen[delivery] = None
        while len(self._seen) > 10_000:
            self._seen.popitem(last=False)
        if event is None:
            notice = self.conversations.notice("group_chat").text
            self.inbound.runner.submit(chat_id, lambda: self._send_texts(chat_id, [notice]))
            return None
        return self.inbound.submit(
            chat_id,
            event,
            lambda outcome: self._reply(chat_id, outcome),
            delivery_id=delivery,
        )

    async def _poll_forever(self) -> None:
        """Development mode: fetch updates with getUpdates (never with a webhook set)."""
        while True:
            try:
                update = await self.call("getUpdates", {"timeout": str(POLL_TIMEOUT)})
                if isinstance(update, dict):
                    self._receive(update)
            except ZaloBotError as exc:
                if exc.code != 408:  # 408: nothing new within the timeout
                    log.warning("Zalo getUpdates failed: %s", exc.code)
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("Zalo getUpdates failed: %s", type(exc).__name__)
            await asyncio.sleep(POLL_PAUSE)

    # --- sending --------------------------------------------------------------------------

    async def _reply(self, chat_id: str, outcome: Outcome) -> None:
        await self._send_texts(chat_id, as_text(outcome.messages))

    async def deliver(self, address: str, messages: tuple[OutMessage, ...]) -> None:
        """For the outbox: send to a stored chat, telling how a failure ended."""
        try:
            await self._send_texts(address, as_text(messages))
        except ZaloBotError as exc:
            if exc.code == 429:
                raise RetryLater(1.0) from exc
            if exc.code in (403, 404):
                raise Unreachable(str(exc)) from exc
            raise Rejected(str(exc)) from exc
        except aiohttp.ClientConnectorError as exc:
            raise NotSent(type(exc).__name__) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise InDoubt(type(exc).__name__) from exc

    async def _send_texts(self, chat_id: str, texts: list[str]) -> None:
        for text in texts:
            for piece in split_text(text, MAX_TEXT):
                await self.call("sendMessage", {"chat_id": chat_id, "text": piece})

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
