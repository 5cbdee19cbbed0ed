"""Telegram adapter (python-telegram-bot 22): translate updates, send the engine's messages.

- Long polling (our own loop on PTB's ``get_updates``) or the webhook; either way a delivery
  is confirmed to Telegram only after its step is committed. ``base_url`` may point at another
  Bot API server (self-hosted, or the local stand-in the tests use).
- PTB's durations are read as ``timedelta`` (the application sets ``PTB_TIMEDELTA``, PTB's
  opt-in to its next major version; ``_seconds`` accepts both).
- Every update is queued on a :class:`~handlers.ordering.KeyedRunner`, so one user's updates
  are applied in order while different users are served concurrently.
- Photos, documents, contacts and locations are deleted from the private chat at once (they
  may carry ID images or personal data) and never downloaded.
- Button data is "<screen>|<option>"; stale or forged data is answered by the engine.
- A user who blocked the bot is marked stopped; group chats get a polite "chat privately".
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiohttp import web
from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    LinkPreviewOptions,
    Message,
    Update,
)
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import AIORateLimiter, Application, ContextTypes, Job

from bot.content import Content
from bot.model import Blocked, Choice, Input, Media, MediaKind, Option, OutMessage, Start, Text
from handlers.conversation import Conversations
from handlers.delivery import InDoubt, NotSent, Rejected, RetryLater, Unreachable
from handlers.ordering import KeyedRunner
from handlers.staff import Attachment, StaffDesk

CHANNEL = "telegram"
DEFAULT_API_BASE_URL = "https://api.telegram.org/bot"
ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "my_chat_member"]
#: A webhook answer waits this long at most for the step's commit.
WEBHOOK_PATIENCE = 10.0
#: A reply refused with 429 is sent again after the delay Telegram names, this many tries in all.
REPLY_ATTEMPTS = 3

log = logging.getLogger(__name__)


def file_base_url(base_url: str) -> str:
    """The file endpoint that goes with a Bot API base URL (".../bot" -> ".../file/bot")."""
    head, sep, tail = base_url.rstrip("/").rpartition("/")
    return f"{head}/file/{tail}" if sep else base_url


@dataclass(frozen=True, slots=True)
class Incoming:
    """One update, translated: who, where, what (None: a group chat), what to delete."""

    user_id: int
    chat_id: int
    event: Input | None
    delivery_id: str
    message_id: int | None = None
    callback_id: str | None = None


def _media_kind(message: Message) -> MediaKind:
    if message.photo:
        return "photo"
    if message.document:
        return "document"
    if message.video or message.video_note or message.animation:
        return "video"
    if message.contact:
        return "contact"
    if message.location or message.venue:
        return "location"
    if message.sticker:
        return "sticker"
    if message.voice or message.audio:
        return "voice"
    return "other"


def translate(update: Update) -> Incoming | None:
    """The engine input for a Telegram update, or None for updates we ignore."""
    delivery = str(update.update_id)
    if update.my_chat_member is not None:
        member = update.my_chat_member
        if member.chat.type == ChatType.PRIVATE and (
            member.new_chat_member.status == ChatMemberStatus.BANNED
        ):
            return Incoming(member.from_user.id, member.chat.id, Blocked(), delivery)
        return None
    if update.callback_query is not None:
        query = update.callback_query
        chat = query.message.chat if query.message else None
        chat_id = chat.id if chat else query.from_user.id
        if chat is not None and chat.type != ChatType.PRIVATE:
            return Incoming(query.from_user.id, chat_id, None, delivery, callback_id=query.id)
        screen, sep, option = (query.data or "").partition("|")
        choice = Choice(option=option, screen=screen) if sep else Choice(option=screen, screen="")
        return Incoming(query.from_user.id, chat_id, choice, delivery, callback_id=query.id)
    edited = update.edited_message
    if edited is not None and edited.from_user is not None:
        if edited.chat.type != ChatType.PRIVATE:
            return None
        return Incoming(edited.from_user.id, edited.chat.id, Media("edited"), delivery)
    message = update.message
    if message is None or message.from_user is None:
        return None
    user_id, chat_id = message.from_user.id, message.chat.id
    if message.chat.type != ChatType.PRIVATE:
        # Only answer commands in groups, so the bot does not talk over people.
        if message.text and message.text.startswith("/"):
            return Incoming(user_id, chat_id, None, delivery)
        return None
    event: Input
    if message.text is not None:
        head, _, payload = message.text.partition(" ")
        if head.split("@")[0] == "/start":
            event = Start(payload.strip() or None)
        else:
            event = Text(message.text)
    else:
        event = Media(_media_kind(message))
    return Incoming(user_id, chat_id, event, delivery, message_id=message.message_id)


class _Application(Application):  # type: ignore[type-arg]
    """PTB's Application, minus its note of every chat and user id seen, which it keeps for a
    persistence this bot does not use: without one, nothing ever empties it (it grew by about
    150 bytes per distinct user for the life of the process -- bench/memory.py -- and held raw
    Telegram ids)."""

    def _mark_for_persistence_update(
        self, *, update: object | None = None, job: Job[Any] | None = None
    ) -> None:
        if self.persistence is not None:
            super()._mark_for_persistence_update(update=update, job=job)


def keyboard(message: OutMessage) -> InlineKeyboardMarkup | None:
    """One button per row: long Vietnamese labels stay readable on small phones."""
    if not message.options:
        return None
    return _keyboard(message.screen or "global", message.options)


@functools.lru_cache(maxsize=1024)
def _keyboard(screen: str, options: tuple[Option, ...]) -> InlineKeyboardMarkup:
    # Screens repeat, and PTB's objects are immutable and costly to build: build each once.
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(option.label, callback_data=f"{screen}|{option.id}"[:64])]
            for option in options
        ]
    )


def _seconds(delay: timedelta | float) -> float:
    return delay.total_seconds() if isinstance(delay, timedelta) else float(delay)


def _settle(future: asyncio.Future[None] | None) -> None:
    if future is not None and not future.done():
        future.set_result(None)


class TelegramChannel:
    """A python-telegram-bot Application wired to the conversation service."""

    def __init__(
        self,
        conversations: Conversations,
        content: Content,
        token: str,
        *,
        base_url: str = DEFAULT_API_BASE_URL,
        concurrency: int = 8,
        rate_limiter: bool = True,
        staff: StaffDesk | None = None,
        webhook_secret: str | None = None,
    ):
        self.conversations = conversations
        self.content = content
        self.staff = staff
        self.runner = KeyedRunner(concurrency)
        base = base_url
        self._webhook_secret = webhook_secret
        builder = Application.builder().application_class(_Application)
        # Updates come from our own long polling (_poll) or our webhook, never PTB's Updater:
        # it confirms a batch to Telegram as soon as it has fetched it, so a crash before the
        # steps are committed would lose those messages.
        builder = builder.token(token).base_url(base).updater(None)
        builder = builder.base_file_url(file_base_url(base))
        if rate_limiter:
            # A second guard under Telegram's flood limits. It does not retry a 429 itself: it
            # would hold every request back meanwhile and then let them all go at once, which
            # brings the next 429s (a storm). The caller retries: _reply, or the outbox.
            builder = builder.rate_limiter(AIORateLimiter(max_retries=0))  # type: ignore[arg-type]
        self.app: Application = builder.build()  # type: ignore[type-arg]
        self.app.add_error_handler(self._on_error)
        self._preview = LinkPreviewOptions(is_disabled=True)
        self._poller: asyncio.Task[None] | None = None

    async def start(
        self, *, poll_interval: float = 0.0, poll_timeout: int = 10, webhook_url: str = ""
    ) -> None:
        """Initialise, publish the command menu, and start long polling -- or, in webhook
        mode, register ``webhook_url`` with Telegram (when given)."""
        await self.app.initialize()
        await self.app.bot.set_my_commands(
            [BotCommand(c.name, c.description) for c in self.content.commands if not c.hidden]
        )
        if self._webhook_secret is None:
            await self.app.bot.delete_webhook()  # getUpdates refuses to work while one is set
            self._poller = asyncio.create_task(self._poll(poll_timeout, poll_interval))
        elif webhook_url:
            await self.app.bot.set_webhook(
                webhook_url, secret_token=self._webhook_secret, allowed_updates=ALLOWED_UPDATES
            )
        await self.app.start()

    async def _poll(self, wait: int, interval: float) -> None:
        """Long polling that confirms a batch to Telegram (the next call's ``offset``) only
        once every step in it is committed. After a crash Telegram delivers the batch again;
        what was already applied is recognised by its update_id and not applied twice."""
        offset: int | None = None
        while True:
            try:
                updates = await self.app.bot.get_updates(
                    offset=offset, timeout=wait, allowed_updates=ALLOWED_UPDATES
                )
            except (TimedOut, NetworkError) as exc:
                log.warning("getUpdates failed (%s); trying again", type(exc).__name__)
                await asyncio.sleep(1.0)
                continue
            except TelegramError as exc:  # e.g. Conflict: another poller with this token
                log.error("getUpdates refused: %s", exc.message)
                await asyncio.sleep(5.0)
                continue
            pending = [f for u in updates if (f := self._receive(u)) is not None]
            if pending:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(WEBHOOK_PATIENCE):
                        await asyncio.gather(*map(asyncio.shield, pending))
            if updates:
                offset = updates[-1].update_id + 1
            if interval:
                await asyncio.sleep(interval)

    def _receive(self, update: Update) -> asyncio.Future[None] | None:
        """Queue one update (in order per chat); the future completes once it is committed."""
        incoming = translate(update)
        if incoming is None:
            return None
        committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.runner.submit(incoming.chat_id, lambda: self._process(incoming, committed))
        return committed

    async def webhook(self, request: web.Request) -> web.Response:
        """Telegram's webhook: the secret header is checked in constant time; the answer
        waits for the step's commit (Telegram delivers again if we fail before it)."""
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        secret = self._webhook_secret or ""
        if not secret or not hmac.compare_digest(given.encode(), secret.encode()):
            return web.Response(status=403)
        try:
            update = Update.de_json(await request.json(), self.app.bot)
        except (ValueError, KeyError, TypeError):
            return web.Response(status=400)
        committed = self._receive(update)
        if committed is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(WEBHOOK_PATIENCE):
                    await asyncio.shield(committed)
        return web.Response(status=200)

    async def stop(self) -> None:
        """Stop fetching, finish every update already received, then close."""
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        if self.app.running:
            await self.app.stop()
        await self.runner.drain()
        await self.app.shutdown()

    async def _process(
        self, incoming: Incoming, committed: asyncio.Future[None] | None = None
    ) -> None:
        bot = self.app.bot
        try:
            if incoming.callback_id is not None:
                await self._quietly(bot.answer_callback_query(incoming.callback_id))
            if incoming.event is None:
                _settle(committed)
                await self._send(incoming, (self.conversations.notice("group_chat"),))
                return
            if self.staff is not None:
                staff = await self.staff.handle(CHANNEL, incoming.user_id, incoming.event)
                if staff is not None:
                    _settle(committed)
                    await self._send(incoming, staff.messages)
                    await self._attach(incoming, staff.attachments)
                    return
            outcome = await self.conversations.handle(
                CHANNEL, incoming.user_id, incoming.event, delivery_id=incoming.delivery_id
            )
            _settle(committed)  # the step is committed: a webhook may be acknowledged now
            if outcome.delete_input and incoming.message_id is not None:
                await self._quietly(bot.delete_message(incoming.chat_id, incoming.message_id))
                log.info("deleted a sensitive message from a private chat")
            await self._send(incoming, outcome.messages)
        except Exception as exc:
            _settle(committed)
            # Never the message text: only what failed.
            log.exception("update %s failed: %s", incoming.delivery_id, type(exc).__name__)
            await self._quietly(
                bot.send_message(incoming.chat_id, self.conversations.notice("error").text)
            )

    async def _send(self, incoming: Incoming, messages: tuple[OutMessage, ...]) -> None:
        for message in messages:
            try:
                await self._reply(incoming.chat_id, message)
            except Forbidden:
                # The user blocked the bot: remember it, send nothing more.
                await self.conversations.handle(CHANNEL, incoming.user_id, Blocked())
                return

    async def _reply(self, chat_id: int, message: OutMessage) -> None:
        """Send one reply; after a 429 only this chat waits, then it is sent again."""
        for attempt in range(REPLY_ATTEMPTS):
            try:
                await self.app.bot.send_message(
                    chat_id,
                    message.text,
                    reply_markup=keyboard(message),
                    link_preview_options=self._preview,
                )
                return
            except RetryAfter as exc:
                if attempt == REPLY_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(_seconds(exc.retry_after))

    async def deliver(self, address: str, messages: tuple[OutMessage, ...]) -> None:
        """For the outbox: send to a stored chat, telling exactly how a failure ended
        (handlers/delivery.py)."""
        for message in messages:
            try:
                await self.app.bot.send_message(
                    int(address),
                    message.text,
                    reply_markup=keyboard(message),
                    link_preview_options=self._preview,
                )
            except RetryAfter as exc:
                raise RetryLater(_seconds(exc.retry_after)) from exc
            except Forbidden as exc:
                raise Unreachable(str(exc)) from exc
            except BadRequest as exc:
                if "chat not found" in exc.message.lower():
                    raise Unreachable(exc.message) from exc
                raise Rejected(exc.message) from exc
            except TimedOut as exc:
                # Only a pool timeout is certain: the request never left.
                raise (NotSent if "pool" in str(exc).lower() else InDoubt)(str(exc)) from exc
            except NetworkError as exc:
                raise (NotSent if "ConnectError" in str(exc) else InDoubt)(str(exc)) from exc

    async def _attach(self, incoming: Incoming, attachments: tuple[Attachment, ...]) -> None:
        for item in attachments:
            upload = InputFile(item.data, filename=item.filename)
            if item.kind == "photo":
                await self.app.bot.send_photo(incoming.chat_id, upload, caption=item.caption)
            else:
                await self.app.bot.send_document(incoming.chat_id, upload, caption=item.caption)

    @staticmethod
    async def _quietly(call: Awaitable[object]) -> None:
        try:
            await call
        except TelegramError as exc:
            log.warning("Telegram call failed: %s", type(exc).__name__)

    async def _on_error(self, _update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        error = context.error
        log.error("Telegram error: %s", type(error).__name__ if error else "unknown")
