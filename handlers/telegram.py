"""Telegram adapter (python-telegram-bot 22): translate updates, send the engine's messages.

- Long polling (our own loop on PTB's ``get_updates``) or the webhook; either way a delivery
  is confirmed to Telegram only after its step is committed. ``base_url`` may point at another
  Bot API server (self-hosted, or the local stand-in the tests use).
- PTB's durations are read as ``timedelta`` (the application sets ``PTB_TIMEDELTA``, PTB's
  opt-in to its next major version; ``_seconds`` accepts both).
- Every update goes through the one inbound path (handlers/inbound.py): in order per user,
  staff first, committed before it is confirmed; photos, documents, contacts and locations
  are then deleted from the private chat (they may carry ID images or personal data) and
  never downloaded.
- Button data is "<screen>|<option>"; stale or forged data is answered by the engine.
- A user who blocked the bot is marked stopped; group chats get a polite "chat privately".
- An install step's picture is uploaded once (the PNG); after that, the file id Telegram
  gave it is sent instead (handlers/pictures.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import logging
import ssl
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import httpx
from aiohttp import web
from telegram import (
    Bot,
    BotCommand,
    Chat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    LinkPreviewOptions,
    MaybeInaccessibleMessage,
    Message,
    Update,
    User,
)
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import AIORateLimiter, Application, ContextTypes, Job
from telegram.request import HTTPXRequest

from bot.config import ConfigError
from bot.content import Content
from bot.model import (
    TELEGRAM_PHOTO,
    Blocked,
    Choice,
    Input,
    Media,
    MediaKind,
    Option,
    OutMessage,
    Start,
    Text,
)
from handlers import webhook
from handlers.channel import Capabilities, ChannelSpec, Incoming, Route, Services
from handlers.delivery import InDoubt, NotSent, Rejected, RetryLater, Unreachable
from handlers.inbound import Inbound, split_text
from handlers.pictures import Gallery
from handlers.webhook import Malformed

CHANNEL = "telegram"
DEFAULT_API_BASE_URL = "https://api.telegram.org/bot"
WEBHOOK_PATH = "/telegram/webhook"
ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "my_chat_member"]
CAPABILITIES = Capabilities(
    buttons=True,
    can_delete=True,
    max_text=4096,
    deep_links=True,
    files=True,
    # Telegram waits about a minute for a webhook's answer; a step takes milliseconds.
    ack_within=10.0,
)

log = logging.getLogger(__name__)


def pieces(message: OutMessage) -> list[str]:
    """The texts one message is sent as (a file goes with its caption, in one message)."""
    if message.attachment is not None:
        return [message.text]
    return split_text(message.text, CAPABILITIES.max_text)


def file_base_url(base_url: str) -> str:
    """The file endpoint that goes with a Bot API base URL (".../bot" -> ".../file/bot")."""
    head, sep, tail = base_url.rstrip("/").rpartition("/")
    return f"{head}/file/{tail}" if sep else base_url


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


def parse_update(body: object, bot: Bot | None = None) -> Update:
    """The update in a webhook body, or :class:`Malformed`: PTB builds its objects without
    checking them (a message without its chat, a text that is a number), so what the bot
    reads is checked again by :func:`translate`."""
    body = webhook.obj(body, "update")
    if type(body.get("update_id")) is not int:
        raise Malformed("update_id: not a whole number")
    try:
        return Update.de_json(body, bot)
    except Exception as exc:
        # Whatever PTB raises on a body means it is not an update: TypeError, KeyError,
        # ValueError -- and OverflowError for a date past the year 9999. The type is enough
        # for the log (PTB's message may quote the body).
        raise Malformed(f"update: {type(exc).__name__}") from exc


def _id(value: object, where: str) -> int:
    """A chat or user id: Telegram's are whole numbers."""
    if type(value) is not int:
        raise Malformed(f"{where}: not a whole number")
    return value


def _chat(message: Message, where: str) -> Chat:
    if not isinstance(message.chat, Chat):
        raise Malformed(f"{where}.chat: missing")
    _id(message.chat.id, f"{where}.chat.id")
    return message.chat


def translate(update: Update) -> Incoming | None:
    """The incoming delivery of a Telegram update, or None for updates we ignore;
    :class:`Malformed` when a field the bot reads is missing or of the wrong type."""
    delivery = str(update.update_id)
    if update.my_chat_member is not None:
        member = update.my_chat_member
        if not isinstance(member.chat, Chat) or not isinstance(member.from_user, User):
            raise Malformed("my_chat_member: no chat or user")
        if member.chat.type == ChatType.PRIVATE and (
            getattr(member.new_chat_member, "status", None) == ChatMemberStatus.BANNED
        ):
            user = _id(member.from_user.id, "my_chat_member.from.id")
            return _incoming(
                user, _id(member.chat.id, "my_chat_member.chat.id"), Blocked(), delivery
            )
        return None
    if update.callback_query is not None:
        query = update.callback_query
        if not isinstance(query.from_user, User):
            raise Malformed("callback_query.from: missing")
        user = _id(query.from_user.id, "callback_query.from.id")
        callback = webhook.ident(query.id, "callback_query.id")
        data = query.data if query.data is not None else ""
        webhook.string(data, "callback_query.data")
        # The pressed message, or (older than 48 hours) what Telegram still tells of it.
        pressed = query.message if isinstance(query.message, MaybeInaccessibleMessage) else None
        chat = pressed.chat if pressed is not None else None
        if chat is not None and not isinstance(chat, Chat):
            raise Malformed("callback_query.message.chat: not a chat")
        chat_id = _id(chat.id, "callback_query.message.chat.id") if chat is not None else user
        if chat is not None and chat.type != ChatType.PRIVATE:
            return _incoming(user, chat_id, None, delivery, callback=callback)
        screen, sep, option = data.partition("|")
        choice = Choice(option=option, screen=screen) if sep else Choice(option=screen, screen="")
        return _incoming(user, chat_id, choice, delivery, callback=callback)
    edited = update.edited_message
    if edited is not None and isinstance(edited.from_user, User):
        chat = _chat(edited, "edited_message")
        if chat.type != ChatType.PRIVATE:
            return None
        user = _id(edited.from_user.id, "edited_message.from.id")
        return _incoming(user, chat.id, Media("edited"), delivery)
    message = update.message
    if message is None or not isinstance(message.from_user, User):
        return None
    chat = _chat(message, "message")
    user_id, chat_id = _id(message.from_user.id, "message.from.id"), chat.id
    text = message.text
    if text is not None:
        webhook.string(text, "message.text")
    message_id = _id(message.message_id, "message.message_id")
    if chat.type != ChatType.PRIVATE:
        # Only answer commands in groups, so the bot does not talk over people.
        if text and text.startswith("/"):
            return _incoming(user_id, chat_id, None, delivery)
        return None
    event: Input = Media(_media_kind(message))
    if message.photo:  # its largest size, by Telegram's id (a volunteer's may be passed on)
        caption = message.caption or ""
        event = Media("photo", TELEGRAM_PHOTO + message.photo[-1].file_id, caption)
    if text is not None:
        head, _, payload = text.partition(" ")
        event = Start(payload.strip() or None) if head.split("@")[0] == "/start" else Text(text)
    return _incoming(user_id, chat_id, event, delivery, message=message_id)


def _incoming(
    user: int,
    chat: int,
    event: Input | None,
    delivery: str,
    *,
    message: int | None = None,
    callback: str | None = None,
) -> Incoming:
    return Incoming(
        user=str(user),
        chat=str(chat),
        event=event,
        delivery_id=delivery,
        message_id=str(message) if message is not None else None,
        callback_id=callback,
    )


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


@functools.cache
def _tls() -> ssl.SSLContext:
    """The TLS settings every connection to Telegram uses (httpx's defaults: certifi's CA
    list), made once per process. PTB gives each Application two HTTP clients (its requests,
    and getUpdates), and httpx builds a context for each, reading and parsing the 140 CA
    certificates each time: 40 ms of CPU apiece, 80 ms of the 125 ms an Application took."""
    return httpx.create_ssl_context()


def _requests(pool: int) -> HTTPXRequest:
    """PTB's HTTP client as its builder makes it (pool size and timeouts), over :func:`_tls`."""
    return HTTPXRequest(connection_pool_size=pool, httpx_kwargs={"verify": _tls()})


def _seconds(delay: timedelta | float) -> float:
    return delay.total_seconds() if isinstance(delay, timedelta) else float(delay)


class TelegramChannel:
    """A python-telegram-bot Application speaking for the bot on Telegram."""

    name = CHANNEL
    capabilities = CAPABILITIES

    def __init__(
        self,
        inbound: Inbound,
        content: Content,
        token: str,
        *,
        base_url: str = DEFAULT_API_BASE_URL,
        rate_limiter: bool = True,
        webhook_secret: str | None = None,
        webhook_url: str = "",
        poll_timeout: int = 10,
        poll_interval: float = 0.0,
        gallery: Gallery | None = None,
    ):
        self.inbound = inbound
        self.content = content
        self.gallery = gallery or Gallery.empty()
        #: A picture's digest -> the file id Telegram gave its first upload.
        self._photo_ids: dict[str, str] = {}
        self._webhook_secret = webhook_secret
        self._webhook_url = webhook_url
        self._poll_timeout = poll_timeout
        self._poll_interval = poll_interval
        builder = Application.builder().application_class(_Application)
        # Updates come from our own long polling (_poll) or our webhook, never PTB's Updater:
        # it confirms a batch to Telegram as soon as it has fetched it, so a crash before the
        # steps are committed would lose those messages.
        builder = builder.token(token).base_url(base_url).updater(None)
        builder = builder.base_file_url(file_base_url(base_url))
        # PTB's own pool sizes: 256 for the bot's requests, 1 for getUpdates (one at a time).
        builder = builder.request(_requests(256)).get_updates_request(_requests(1))
        if rate_limiter:
            # A second guard under Telegram's flood limits. It does not retry a 429 itself: it
            # would hold every request back meanwhile and then let them all go at once, which
            # brings the next 429s (a storm). The caller retries: the inbound path's replies,
            # or the outbox.
            builder = builder.rate_limiter(AIORateLimiter(max_retries=0))  # type: ignore[arg-type]
        self.app: Application = builder.build()  # type: ignore[type-arg]
        self.app.add_error_handler(self._on_error)
        self._preview = LinkPreviewOptions(is_disabled=True)
        self._poller: asyncio.Task[None] | None = None

    def routes(self) -> Sequence[Route]:
        if self._webhook_secret is None:
            return ()
        return (Route("POST", WEBHOOK_PATH, self.webhook),)

    async def start(self) -> None:
        """Initialise, publish the command menu, and start long polling -- or, in webhook
        mode, register the webhook URL with Telegram (when given)."""
        await self.app.initialize()
        await self.app.bot.set_my_commands(
            [BotCommand(c.name, c.description) for c in self.content.commands if not c.hidden]
        )
        if self._webhook_secret is None:
            await self.app.bot.delete_webhook()  # getUpdates refuses to work while one is set
            self._poller = asyncio.create_task(self._poll())
        elif self._webhook_url:
            await self.app.bot.set_webhook(
                self._webhook_url,
                secret_token=self._webhook_secret,
                allowed_updates=ALLOWED_UPDATES,
            )
        await self.app.start()

    async def _poll(self) -> None:
        """Long polling that confirms a batch to Telegram (the next call's ``offset``) only
        once every step in it is committed. After a crash Telegram delivers the batch again;
        what was already applied is recognised by its update_id and not applied twice."""
        offset: int | None = None
        while True:
            try:
                updates = await self.app.bot.get_updates(
                    offset=offset, timeout=self._poll_timeout, allowed_updates=ALLOWED_UPDATES
                )
            except (TimedOut, NetworkError) as exc:
                log.warning("getUpdates failed (%s); trying again", type(exc).__name__)
                await asyncio.sleep(1.0)
                continue
            except TelegramError as exc:  # e.g. Conflict: another poller with this token
                log.error("getUpdates refused: %s", exc.message)
                await asyncio.sleep(5.0)
                continue
            pending = [self._submit(u) for u in updates]
            confirmed = await self.inbound.committed(self, pending)
            if confirmed:
                offset = updates[confirmed - 1].update_id + 1
            if confirmed < len(updates):
                # A step could not be committed: Telegram delivers it (and what came after
                # it, applied once) again at the next call.
                await asyncio.sleep(1.0)
            elif self._poll_interval:
                await asyncio.sleep(self._poll_interval)

    def _submit(self, update: Update) -> asyncio.Future[None] | None:
        try:
            incoming = translate(update)
        except Malformed as exc:  # from getUpdates: skipped, the rest of the batch goes on
            log.warning("Telegram: malformed update skipped (%s)", exc)
            return None
        return self.inbound.submit(self, incoming) if incoming is not None else None

    async def webhook(self, request: web.Request) -> web.Response:
        """Telegram's webhook (handlers/webhook.py): the secret header is checked in constant
        time before the body is read; the answer waits until the delivery is durable
        (Telegram delivers again if we fail before)."""
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        secret = self._webhook_secret or ""
        if not secret or not hmac.compare_digest(given.encode(), secret.encode()):
            return web.Response(status=403)
        try:
            incoming = translate(parse_update(webhook.parse(await request.read()), self.app.bot))
        except Malformed as exc:
            return webhook.refused(CHANNEL, exc)
        if incoming is not None and not await self.inbound.receive(self, incoming):
            return web.Response(status=503)  # not stored: Telegram delivers it again later
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
        await self.inbound.drain()
        await self.app.shutdown()

    async def deliver(self, chat: str, messages: Sequence[OutMessage]) -> None:
        """Send to a chat, telling exactly how a failure ended (handlers/delivery.py)."""
        for message in messages:
            try:
                await self._send(int(chat), message)
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

    async def _send(self, chat: int, message: OutMessage) -> None:
        bot = self.app.bot
        if message.photo:  # a volunteer's picture, passed on (by its address or file id)
            photo = message.photo.removeprefix(TELEGRAM_PHOTO)
            await bot.send_photo(chat, photo, caption=message.text[:1024] or None)
            return
        if message.picture:
            await self._send_picture(chat, message.picture)
            return
        item = message.attachment
        if item is not None:
            upload = InputFile(item.data, filename=item.filename)
            caption = message.text or None
            if item.kind == "photo":
                await bot.send_photo(chat, upload, caption=caption)
            else:
                await bot.send_document(chat, upload, caption=caption)
            return
        texts = pieces(message)
        for number, piece in enumerate(texts, start=1):
            last = number == len(texts)
            await bot.send_message(
                chat,
                piece,
                reply_markup=keyboard(message) if last else None,
                link_preview_options=self._preview,
            )

    async def _send_picture(self, chat: int, picture_id: str) -> None:
        """Upload the picture the first time, then send Telegram's file id for it."""
        picture = await self.gallery.picture(picture_id)
        if picture is None:
            log.warning("Telegram: no picture %r to send", picture_id)
            return
        known = self._photo_ids.get(picture.digest)
        photo: str | InputFile = known or InputFile(picture.png, filename=f"{picture.id}.png")
        sent = await self.app.bot.send_photo(chat, photo)
        if known is None and sent.photo:
            self._photo_ids[picture.digest] = sent.photo[-1].file_id  # the largest size

    async def discard(self, incoming: Incoming) -> None:
        if incoming.message_id is not None:
            await self.app.bot.delete_message(int(incoming.chat), int(incoming.message_id))

    async def acknowledge(self, incoming: Incoming) -> None:
        if incoming.callback_id is not None:
            await self.app.bot.answer_callback_query(incoming.callback_id)

    async def _on_error(self, _update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        error = context.error
        log.error("Telegram error: %s", type(error).__name__ if error else "unknown")


def build(env: Mapping[str, str], services: Services) -> TelegramChannel | None:
    """Telegram, if ``TELEGRAM_BOT_TOKEN`` is set: a webhook (``TELEGRAM_WEBHOOK_SECRET``
    required; registered under ``TELEGRAM_WEBHOOK_URL`` by worker 0) or long polling."""
    token = env.get("TELEGRAM_BOT_TOKEN", "").strip()
    if not token or services.mode == "interactive":
        return None
    secret: str | None = None
    url = ""
    if services.mode == "webhook":
        secret = env.get("TELEGRAM_WEBHOOK_SECRET") or None
        if secret is None:
            raise ConfigError("the Telegram webhook needs TELEGRAM_WEBHOOK_SECRET")
        base = env.get("TELEGRAM_WEBHOOK_URL", "").strip().rstrip("/")
        if base and services.worker_index == 0:  # once, not once per worker
            url = base + WEBHOOK_PATH
    limiter = env.get("TELEGRAM_RATE_LIMITER", "on").strip().lower()
    return TelegramChannel(
        services.inbound,
        services.content,
        token,
        base_url=env.get("TELEGRAM_API_BASE_URL") or DEFAULT_API_BASE_URL,
        rate_limiter=limiter not in ("off", "0", "false", "no"),
        webhook_secret=secret,
        webhook_url=url,
        gallery=services.gallery,
    )


SPEC = ChannelSpec(CHANNEL, build)
