"""A local stand-in for the Telegram Bot API server, for tests and benchmarks.

`FakeBotAPI` is a small aiohttp server that speaks the subset of the Bot API that our
python-telegram-bot (PTB 22.x) bot uses. Point PTB at it with
``ApplicationBuilder().token(api.token).base_url(api.base_url).base_file_url(api.base_file_url)``
(or ``telegram.Bot(token, base_url=..., base_file_url=...)``). It then:

* answers ``POST /bot<token>/<method>`` like Telegram does (form-encoded, multipart or JSON bodies;
  ``{"ok": true, "result": ...}`` on success, non-2xx ``{"ok": false, ...}`` on error);
* records every call (`FakeBotAPI.calls`) with per-chat / per-method indexes, so tests can
  assert on what the bot sent (`sent`, `deleted`, `answered_callbacks`) and await it (`wait_for`,
  `wait_sent`) without sleeping;
* lets tests inject realistic updates (`add_text`, `add_command`, `add_callback`, ...) that are
  delivered through a real long-polling ``getUpdates``;
* injects failures: `block` (403 "bot was blocked by the user") and `fail_next` (any status,
  optionally with ``parameters.retry_after`` for 429 flood control), plus a per-call `latency`;
* optionally enforces Telegram's flood limits (`flood_limit`, off by default): at most
  ``flood_limit`` messages a second in all and one a second to any one chat; a message over
  either limit is refused with 429 ``Too Many Requests: retry after N`` (with
  ``parameters.retry_after``), is not delivered, and is counted (``stats()["flood_429"]``).

Flood limits
------------
The limits count *messages* (``sendMessage``, ``sendPhoto``, ``sendDocument``) that were
delivered, over a **sliding** one-second window: a message arriving at ``t`` is refused if
``flood_limit`` messages were delivered in ``(t - 1 s, t]``, or one to the same chat in
``(t - flood_per_chat, t]`` (1 s by default). A sliding window is the stricter reading of
"30 a second" (a fixed window would allow 60 across a second's boundary); Telegram does not
publish its algorithm. Refused calls do not occupy the window. ``retry_after`` is the whole
seconds until the window would admit the message (at least 1: always 1 for these windows).
Messages are judged when their request has been read, in that order; the injected failures
above (`fail_next`, then `block`) come first.

Run it standalone for benchmarks in another process::

    python -m tests.fakes.telegram_api --port 8081 [--token 123:TEST] [--latency 0.0]
        [--flood-limit 30 [--flood-per-chat 1.0]]

It prints ``listening on http://127.0.0.1:8081`` once ready and serves until SIGINT/SIGTERM.
Control endpoints on the same server (JSON in and out, no token): ``POST /_control/enqueue``
``{"updates": [...]}``, ``GET /_control/stats``, ``GET /_control/sends?since=K`` (successful
``sendMessage`` calls from the K-th on: chat, time, text), ``GET
/_control/calls?method=M&since=K`` (calls of method ``M`` from the K-th on, refused ones too:
status, time, chat) and ``POST /_control/reset``. Times are ``time.monotonic()`` of the server.
`make_text_update` and `make_callback_update` build update payloads.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Self

from aiohttp import web

__all__ = [
    "Call",
    "FakeBotAPI",
    "make_callback_update",
    "make_text_update",
]

JSONDict = dict[str, Any]
ChatKey = int | str

DEFAULT_TOKEN: Final = "123:TEST"
DEFAULT_BOT_USERNAME: Final = "test_bot"
LANGUAGE_CODE: Final = "vi"

# Parameters PTB always sends as raw strings. Everything else is JSON-encoded on the wire, but a
# raw string such as "123" or "true" is indistinguishable from a JSON number/bool, so these are
# never decoded (otherwise ``send_message(text="123")`` would be recorded with ``text == 123``).
_STRING_FIELDS: Final = frozenset(
    {
        "text",
        "caption",
        "parse_mode",
        "caption_parse_mode",
        "callback_query_id",
        "inline_message_id",
        "data",
        "url",
        "secret_token",
        "ip_address",
        "language_code",
        "description",
        "short_description",
        "name",
        "title",
        "emoji",
        "action",
        "file_id",
        "business_connection_id",
        "message_effect_id",
        "query_id",
        "phone_number",
        "first_name",
        "last_name",
        "address",
        "question",
    }
)
_JSON_START: Final = frozenset('{["-0123456789tfn')

# Methods refused with 403 for a chat passed to `FakeBotAPI.block`.
_BLOCKABLE: Final = frozenset(
    {
        "sendMessage",
        "editMessageText",
        "editMessageReplyMarkup",
        "sendPhoto",
        "sendDocument",
        "sendChatAction",
    }
)
_BLOCKED_DESCRIPTION: Final = "Forbidden: bot was blocked by the user"

# Methods that send a message: what the flood limits count (when `FakeBotAPI.flood_limit` is set).
_FLOOD_LIMITED: Final = frozenset({"sendMessage", "sendPhoto", "sendDocument"})
#: The window of the overall flood limit, in seconds.
FLOOD_WINDOW: Final = 1.0

_message_ids = itertools.count(1)
_callback_ids = itertools.count(1)


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class Call:
    """One request the fake server received.

    ``status`` is the HTTP status it was answered with (200, or the injected/validation error);
    rejected calls are kept in `FakeBotAPI.calls` *and* in `FakeBotAPI.rejected`.
    ``at`` is ``time.monotonic()`` when the request arrived.
    """

    method: str
    params: dict[str, Any]
    at: float
    status: int = 200

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass(slots=True)
class _Failure:
    status: int
    description: str
    retry_after: int | None
    remaining: int


class _APIError(Exception):
    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after


def _bad_request(description: str) -> _APIError:
    return _APIError(400, f"Bad Request: {description}")


# --------------------------------------------------------------------------- payload builders


def _now() -> int:
    return int(time.time())


def make_user(user_id: int) -> JSONDict:
    """The ``from`` object of an injected (human) user."""
    return {
        "id": user_id,
        "is_bot": False,
        "first_name": f"User{user_id}",
        "language_code": LANGUAGE_CODE,
    }


def make_bot_user(bot_id: int, username: str) -> JSONDict:
    """The bot's own ``User`` as returned by ``getMe``."""
    return {
        "id": bot_id,
        "is_bot": True,
        "first_name": "Test Bot",
        "username": username,
        "can_join_groups": True,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
    }


def make_chat(chat_id: ChatKey, chat_type: str = "private") -> JSONDict:
    chat: JSONDict = {"id": chat_id, "type": chat_type}
    if chat_type == "private":
        chat["first_name"] = f"User{chat_id}"
    else:
        chat["title"] = f"Chat {chat_id}"
    return chat


def _default_chat_id(user_id: int, chat_type: str, chat_id: int | None) -> int:
    if chat_id is not None:
        return chat_id
    if chat_type == "private":
        return user_id
    return -1_000_000_000_000 - user_id if chat_type == "supergroup" else -user_id


def _command_entities(text: str) -> list[JSONDict]:
    """``bot_command`` entity for a text starting with ``/cmd`` (as Telegram adds it)."""
    if not text.startswith("/") or len(text) < 2:
        return []
    length = len(text.split(maxsplit=1)[0]) if text.strip() else 0
    # offsets/lengths are UTF-16 code units; commands are ASCII.
    return [{"type": "bot_command", "offset": 0, "length": length}] if length > 1 else []


def _text_message(
    user_id: int, text: str, chat_id: int, chat_type: str, message_id: int
) -> JSONDict:
    message: JSONDict = {
        "message_id": message_id,
        "date": _now(),
        "chat": make_chat(chat_id, chat_type),
        "from": make_user(user_id),
        "text": text,
    }
    entities = _command_entities(text)
    if entities:
        message["entities"] = entities
    return message


def _callback_query(
    user_id: int, data: str, message: JSONDict, callback_id: str, chat_id: ChatKey
) -> JSONDict:
    return {
        "id": callback_id,
        "from": make_user(user_id),
        "chat_instance": f"ci{chat_id}",
        "data": data,
        "message": message,
    }


def make_text_update(
    user_id: int,
    text: str,
    *,
    chat_type: str = "private",
    chat_id: int | None = None,
    message_id: int | None = None,
) -> JSONDict:
    """A ``message`` update without ``update_id`` (the server assigns one on enqueue).

    ``message_id`` defaults to a process-wide counter. Texts starting with ``/`` get a
    ``bot_command`` entity.
    """
    cid = _default_chat_id(user_id, chat_type, chat_id)
    mid = next(_message_ids) if message_id is None else message_id
    return {"message": _text_message(user_id, text, cid, chat_type, mid)}


def make_callback_update(
    user_id: int,
    data: str,
    *,
    message_id: int = 1,
    message_text: str = "menu",
    bot_id: int = 123,
    bot_username: str = DEFAULT_BOT_USERNAME,
    callback_id: str | None = None,
) -> JSONDict:
    """A ``callback_query`` update (private chat) without ``update_id``.

    The attached message is a bot message ``message_id`` with text ``message_text``.
    """
    message: JSONDict = {
        "message_id": message_id,
        "date": _now(),
        "chat": make_chat(user_id),
        "from": make_bot_user(bot_id, bot_username),
        "text": message_text,
    }
    cb_id = callback_id if callback_id is not None else f"cb{next(_callback_ids)}"
    return {"callback_query": _callback_query(user_id, data, message, cb_id, user_id)}


def _decode_field(key: str, value: str) -> Any:
    if key in _STRING_FIELDS or not value or value[0] not in _JSON_START:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _json_response(payload: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(payload, ensure_ascii=False).encode(),
        status=status,
        content_type="application/json",
    )


def _error_payload(status: int, description: str, retry_after: int | None = None) -> JSONDict:
    payload: JSONDict = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        payload["parameters"] = {"retry_after": retry_after}
    return payload


def _short(params: JSONDict, limit: int = 160) -> str:
    text = json.dumps(params, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------- the server


class FakeBotAPI:
    """In-process fake Telegram Bot API server (see the module docstring)."""

    def __init__(self, token: str = DEFAULT_TOKEN, bot_username: str = DEFAULT_BOT_USERNAME):
        self.token = token
        self.bot_username = bot_username
        head = token.split(":", 1)[0]
        self.bot_id = int(head) if head.isdigit() else 1
        self.bot_user: JSONDict = make_bot_user(self.bot_id, bot_username)
        #: Seconds added to every response (benchmarks).
        self.latency: float = 0.0
        #: Flood limits (see the module docstring): messages a second in all (None: no limits)
        #: and the seconds that must pass between two messages to one chat.
        self.flood_limit: int | None = None
        self.flood_per_chat: float = 1.0
        #: The flood limits' clock (tests may freeze it).
        self.flood_clock: Callable[[], float] = time.monotonic
        #: 429s issued by the flood limits (overall limit, per-chat limit).
        self.flood_429_overall = 0
        self.flood_429_chat = 0

        self.calls: list[Call] = []
        self.rejected: list[Call] = []
        self.deleted: list[tuple[int, int]] = []
        self.answered_callbacks: list[str] = []
        self._calls_by_method: dict[str, list[Call]] = {}
        self._sent_all: list[JSONDict] = []
        self._sent_by_chat: dict[ChatKey, list[JSONDict]] = {}
        self._send_log: list[tuple[ChatKey, float, str]] = []

        self._updates: deque[tuple[int, str, JSONDict]] = deque()
        self._next_update_id = 1
        self._next_message_id: dict[ChatKey, int] = {}
        self._chat_types: dict[ChatKey, str] = {}
        self._bot_messages: dict[tuple[ChatKey, int], JSONDict] = {}
        self._last_bot_message: dict[ChatKey, int] = {}
        self._last_user_message: dict[ChatKey, JSONDict] = {}
        self._files: dict[str, JSONDict] = {}
        self._file_seq = itertools.count(1)
        self._callback_seq = itertools.count(1)
        self._commands: dict[str, list[Any]] = {}

        self._blocked: set[ChatKey] = set()
        self._failures: dict[str, deque[_Failure]] = {}
        self._flood_window: deque[float] = deque()  # delivery times in the last FLOOD_WINDOW
        self._flood_chats: dict[ChatKey, float] = {}  # last delivery time per chat

        self._updates_event: asyncio.Event | None = None
        self._calls_event: asyncio.Event | None = None
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._host = "127.0.0.1"

        self._methods: dict[str, tuple[str, Callable[[JSONDict], Any]]] = {}
        for name, handler in (
            ("getMe", self._get_me),
            ("deleteWebhook", self._delete_webhook),
            ("setWebhook", self._true),
            ("getWebhookInfo", self._get_webhook_info),
            ("setMyCommands", self._set_my_commands),
            ("deleteMyCommands", self._delete_my_commands),
            ("getMyCommands", self._get_my_commands),
            ("setMyDescription", self._true),
            ("setMyShortDescription", self._true),
            ("setChatMenuButton", self._true),
            ("sendChatAction", self._send_chat_action),
            ("answerCallbackQuery", self._answer_callback_query),
            ("deleteMessage", self._delete_message),
            ("close", self._true),
            ("logOut", self._true),
            ("sendMessage", self._send_message),
            ("editMessageText", self._edit_message_text),
            ("editMessageReplyMarkup", self._edit_message_reply_markup),
            ("sendPhoto", self._send_photo),
            ("sendDocument", self._send_document),
            ("getFile", self._get_file),
            ("getUpdates", self._true),  # handled specially (long poll) in `_handle_method`
        ):
            self._methods[name.lower()] = (name, handler)

    # ------------------------------------------------------------------ lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Start serving; ``port=0`` picks a free port (see `port`)."""
        if self._runner is not None:
            raise RuntimeError("FakeBotAPI already started")
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_method)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        app.router.add_post("/_control/enqueue", self._control_enqueue)
        app.router.add_get("/_control/stats", self._control_stats)
        app.router.add_get("/_control/sends", self._control_sends)
        app.router.add_get("/_control/calls", self._control_calls)
        app.router.add_post("/_control/reset", self._control_reset)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=5.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._closing = False
        self._host = host
        address = runner.addresses[0]
        self._port = int(address[1])

    async def stop(self) -> None:
        """Stop serving; pending long polls are answered with an empty list first."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._closing = True
        self._wake_pollers()
        await runner.cleanup()
        self._port = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeBotAPI is not running; call start() first")
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def base_url(self) -> str:
        """For PTB's ``base_url``: PTB appends the token."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.url}/file/bot"

    # ------------------------------------------------------------------ queries

    def sent(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        """Params of successful ``sendMessage`` calls (all, or those to one chat)."""
        if chat_id is None:
            return list(self._sent_all)
        return list(self._sent_by_chat.get(chat_id, ()))

    def sent_texts(self, chat_id: int) -> list[str]:
        return [str(p.get("text", "")) for p in self._sent_by_chat.get(chat_id, ())]

    def calls_of(self, method: str) -> list[Call]:
        """Calls of one method (exact Bot API name, e.g. ``"editMessageText"``)."""
        return list(self._calls_by_method.get(method, ()))

    def last_user_message_id(self, chat_id: int) -> int | None:
        """The id of the last message a user sent in ``chat_id`` (e.g. a photo to delete)."""
        last = self._last_user_message.get(chat_id)
        return int(last["message_id"]) if last is not None else None

    def pending_updates(self) -> int:
        """Updates injected and not yet confirmed by a ``getUpdates`` offset."""
        return len(self._updates)

    def commands(self) -> list[Any]:
        """The default-scope command list last set with ``setMyCommands``."""
        return list(self._commands.get(self._commands_key({}), []))

    # ------------------------------------------------------------------ waiting

    async def wait_for(
        self,
        predicate: Callable[[], bool],
        timeout: float = 5.0,  # noqa: ASYNC109  (part of the helper's documented API)
        *,
        message: str = "",
    ) -> None:
        """Wait until ``predicate()`` is true.

        The predicate is re-checked after every recorded call and injected update (no polling),
        so it should depend on this server's state. Raises AssertionError on timeout.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(self._describe_timeout(timeout, message))
            if self._calls_event is None:
                self._calls_event = asyncio.Event()
            event = self._calls_event
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await event.wait()

    async def wait_sent(
        self,
        chat_id: int,
        count: int,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[dict[str, Any]]:
        """Wait for at least ``count`` successful ``sendMessage`` calls to ``chat_id``."""
        await self.wait_for(
            lambda: len(self._sent_by_chat.get(chat_id, ())) >= count,
            timeout,
            message=(
                f"expected >= {count} sendMessage to chat {chat_id}, "
                f"got {len(self._sent_by_chat.get(chat_id, ()))}"
            ),
        )
        return self.sent(chat_id)

    def _describe_timeout(self, timeout: float, message: str, last: int = 15) -> str:
        head = f"wait_for timed out after {timeout}s"
        if message:
            head += f": {message}"
        lines = [f"{head}; {len(self.calls)} calls recorded, last {min(last, len(self.calls))}:"]
        lines.extend(f"  {c.method} [{c.status}] {_short(c.params)}" for c in self.calls[-last:])
        lines.append(f"  pending updates: {len(self._updates)}")
        return "\n".join(lines)

    def _notify_calls(self) -> None:
        event = self._calls_event
        if event is not None:
            self._calls_event = None
            event.set()

    def _wake_pollers(self) -> None:
        event = self._updates_event
        if event is not None:
            self._updates_event = None
            event.set()

    # ------------------------------------------------------------------ failure injection

    def block(self, chat_id: int) -> None:
        """Sends/edits to ``chat_id`` get 403 "Forbidden: bot was blocked by the user"."""
        self._blocked.add(chat_id)

    def unblock(self, chat_id: int) -> None:
        self._blocked.discard(chat_id)

    def fail_next(
        self,
        method: str,
        status: int,
        description: str,
        retry_after: int | None = None,
        count: int = 1,
    ) -> None:
        """The next ``count`` calls of ``method`` get this error (queued after earlier ones)."""
        if count < 1:
            raise ValueError("count must be >= 1")
        failure = _Failure(status, description, retry_after, count)
        self._failures.setdefault(method.lower(), deque()).append(failure)

    def _flood_check(self, method: str, params: JSONDict, now: float) -> ChatKey | None:
        """Refuse (429) a message over the flood limits; the chat to note it for, or None when
        the limits are off or do not apply (an invalid chat is left to the method to refuse)."""
        if self.flood_limit is None or method not in _FLOOD_LIMITED:
            return None
        try:
            chat = self._chat_key(params)
        except _APIError:
            return None
        window = self._flood_window
        while window and window[0] <= now - FLOOD_WINDOW:
            window.popleft()
        last = self._flood_chats.get(chat)
        if last is not None and now - last < self.flood_per_chat:
            self.flood_429_chat += 1
            wait = last + self.flood_per_chat - now
        elif len(window) >= self.flood_limit:
            self.flood_429_overall += 1
            # Until the oldest delivery that must leave the window for this one to fit does.
            limit = self.flood_limit
            wait = window[len(window) - limit] + FLOOD_WINDOW - now if limit > 0 else FLOOD_WINDOW
        else:
            return chat
        retry_after = max(1, math.ceil(wait))
        raise _APIError(429, f"Too Many Requests: retry after {retry_after}", retry_after)

    def _flood_note(self, chat: ChatKey, now: float) -> None:
        """A message to ``chat`` was delivered at ``now``: it occupies the windows."""
        self._flood_window.append(now)
        self._flood_chats[chat] = now
        if len(self._flood_chats) > 100_000:  # forget chats whose window has passed
            horizon = now - self.flood_per_chat
            self._flood_chats = {c: t for c, t in self._flood_chats.items() if t > horizon}

    def _take_failure(self, key: str) -> _Failure | None:
        queue = self._failures.get(key)
        if not queue:
            return None
        failure = queue[0]
        failure.remaining -= 1
        if failure.remaining <= 0:
            queue.popleft()
        return failure

    # ------------------------------------------------------------------ injecting updates

    def add_raw(self, update: dict[str, Any]) -> int:
        """Queue an update dict as is; assigns ``update_id`` if missing. Returns the id."""
        if "update_id" in update:
            update_id = int(update["update_id"])
            self._next_update_id = max(self._next_update_id, update_id + 1)
        else:
            update_id = self._next_update_id
            self._next_update_id += 1
            update = {"update_id": update_id, **update}
        kind = next((k for k in update if k != "update_id"), "")
        entry = (update_id, kind, update)
        if self._updates and self._updates[-1][0] >= update_id:
            self._updates = deque(sorted([*self._updates, entry], key=lambda e: e[0]))
        else:
            self._updates.append(entry)
        self._wake_pollers()
        self._notify_calls()
        return update_id

    def add_text(
        self, user_id: int, text: str, *, chat_type: str = "private", chat_id: int | None = None
    ) -> int:
        """A text message from ``user_id`` (texts starting with ``/`` get a command entity)."""
        cid = self._user_chat(user_id, chat_type, chat_id)
        message = _text_message(user_id, text, cid, chat_type, self._new_message_id(cid))
        return self._add_user_message(cid, message)

    def add_command(self, user_id: int, command: str, payload: str | None = None) -> int:
        """``/command`` (+ ``" " + payload``) in the user's private chat."""
        text = command if command.startswith("/") else f"/{command}"
        if payload is not None:
            text = f"{text} {payload}"
        return self.add_text(user_id, text)

    def add_callback(self, user_id: int, data: str, *, message_id: int | None = None) -> int:
        """A button press on ``message_id`` (default: the bot's last message in the chat)."""
        cid = self._user_chat(user_id, "private", None)
        if message_id is None:
            message_id = self._last_bot_message.get(cid)
        message = self._bot_messages.get((cid, message_id)) if message_id is not None else None
        if message is None:
            # The button belongs to a bot message we never saw (e.g. sent before the test).
            mid = message_id if message_id is not None else self._new_message_id(cid)
            message = {
                "message_id": mid,
                "date": _now(),
                "chat": self._chat_dict(cid),
                "from": self.bot_user,
                "text": "…",
            }
            self._store_bot_message(cid, message)
        callback_id = f"{self.bot_id}{user_id}{next(self._callback_seq)}"
        return self.add_raw(
            {"callback_query": _callback_query(user_id, data, dict(message), callback_id, cid)}
        )

    def add_photo(self, user_id: int, caption: str | None = None) -> int:
        cid = self._user_chat(user_id, "private", None)
        message = self._user_message_base(user_id, cid)
        message["photo"] = self._photo_sizes()
        if caption is not None:
            message["caption"] = caption
        return self._add_user_message(cid, message)

    def add_document(
        self, user_id: int, file_name: str = "cccd.jpg", mime_type: str = "image/jpeg"
    ) -> int:
        cid = self._user_chat(user_id, "private", None)
        message = self._user_message_base(user_id, cid)
        document = self._new_file("BQACAgI", 48_213)
        document.update(file_name=file_name, mime_type=mime_type)
        message["document"] = document
        return self._add_user_message(cid, message)

    def add_sticker(self, user_id: int) -> int:
        cid = self._user_chat(user_id, "private", None)
        message = self._user_message_base(user_id, cid)
        sticker = self._new_file("CAACAgI", 23_456)
        sticker.update(
            type="regular", width=512, height=512, is_animated=False, is_video=False, emoji="👍"
        )
        message["sticker"] = sticker
        return self._add_user_message(cid, message)

    def add_voice(self, user_id: int, duration: int = 3) -> int:
        cid = self._user_chat(user_id, "private", None)
        message = self._user_message_base(user_id, cid)
        voice = self._new_file("AwACAgI", 9_876)
        voice.update(duration=duration, mime_type="audio/ogg")
        message["voice"] = voice
        return self._add_user_message(cid, message)

    def add_location(
        self, user_id: int, latitude: float = 21.028511, longitude: float = 105.804817
    ) -> int:
        cid = self._user_chat(user_id, "private", None)
        message = self._user_message_base(user_id, cid)
        message["location"] = {"latitude": latitude, "longitude": longitude}
        return self._add_user_message(cid, message)

    def add_contact(self, user_id: int, phone_number: str = "+84912345678") -> int:
        cid = self._user_chat(user_id, "private", None)
        message = self._user_message_base(user_id, cid)
        message["contact"] = {
            "phone_number": phone_number,
            "first_name": f"User{user_id}",
            "user_id": user_id,
        }
        return self._add_user_message(cid, message)

    def add_edited_text(self, user_id: int, text: str, *, message_id: int | None = None) -> int:
        """An ``edited_message`` for the user's last message (or ``message_id``)."""
        cid = self._user_chat(user_id, "private", None)
        last = self._last_user_message.get(cid)
        if message_id is None:
            message_id = last["message_id"] if last is not None else self._new_message_id(cid)
        date = last["date"] if last is not None and last["message_id"] == message_id else _now()
        message = _text_message(user_id, text, cid, self._chat_types[cid], message_id)
        message["date"] = date
        message["edit_date"] = max(_now(), date + 1)
        return self.add_raw({"edited_message": message})

    def _user_chat(self, user_id: int, chat_type: str, chat_id: int | None) -> int:
        cid = _default_chat_id(user_id, chat_type, chat_id)
        self._chat_types.setdefault(cid, chat_type)
        return cid

    def _user_message_base(self, user_id: int, cid: int) -> JSONDict:
        return {
            "message_id": self._new_message_id(cid),
            "date": _now(),
            "chat": self._chat_dict(cid),
            "from": make_user(user_id),
        }

    def _add_user_message(self, cid: int, message: JSONDict) -> int:
        self._last_user_message[cid] = message
        return self.add_raw({"message": message})

    def _new_message_id(self, chat: ChatKey) -> int:
        mid = self._next_message_id.get(chat, 0) + 1
        self._next_message_id[chat] = mid
        return mid

    def _new_file(self, prefix: str, size: int) -> JSONDict:
        n = next(self._file_seq)
        file_id = f"{prefix}{self.bot_id:x}{n:08d}"
        info: JSONDict = {"file_id": file_id, "file_unique_id": f"AQAD{n:08d}", "file_size": size}
        self._files[file_id] = {
            "file_id": file_id,
            "file_unique_id": info["file_unique_id"],
            "file_size": size,
            "file_path": f"files/file_{n}",
        }
        return info

    def _photo_sizes(self) -> list[JSONDict]:
        small = self._new_file("AgACAgI", 1_342)
        small.update(width=90, height=60)
        large = self._new_file("AgACAgI", 98_512)
        large.update(width=1280, height=853)
        return [small, large]

    def _chat_dict(self, chat: ChatKey) -> JSONDict:
        chat_type = self._chat_types.get(chat)
        if chat_type is None:
            chat_type = "channel" if isinstance(chat, str) else "private" if chat > 0 else "group"
        return make_chat(chat, chat_type)

    def _store_bot_message(self, chat: ChatKey, message: JSONDict) -> None:
        mid = int(message["message_id"])
        self._bot_messages[(chat, mid)] = message
        if mid >= self._last_bot_message.get(chat, 0):
            self._last_bot_message[chat] = mid
        self._next_message_id[chat] = max(self._next_message_id.get(chat, 0), mid)

    # ------------------------------------------------------------------ HTTP plumbing

    async def _read_params(self, request: web.Request) -> JSONDict:
        params: JSONDict = {k: _decode_field(k, v) for k, v in request.query.items()}
        if not request.body_exists:
            return params
        ctype = request.content_type
        if ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, str):
                    params[key] = _decode_field(key, value)
                elif isinstance(value, bytes | bytearray):
                    params[key] = _decode_field(key, bytes(value).decode(errors="replace"))
                else:  # web.FileField
                    with value.file as fh:
                        size = len(fh.read())
                    params[key] = {
                        "file_name": value.filename,
                        "mime_type": value.content_type,
                        "size": size,
                    }
            return params
        body = await request.read()
        if body.strip():
            try:
                data = json.loads(body)
            except ValueError as exc:
                raise _bad_request("can't parse JSON body") from exc
            if not isinstance(data, dict):
                raise _bad_request("JSON body must be an object")
            params.update(data)
        return params

    def _record(self, method: str, params: JSONDict, at: float, status: int) -> Call:
        call = Call(method, params, at, status)
        self.calls.append(call)
        self._calls_by_method.setdefault(method, []).append(call)
        if status != 200:
            self.rejected.append(call)
        self._notify_calls()
        return call

    async def _respond(self, payload: JSONDict, status: int) -> web.Response:
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        return _json_response(payload, status)

    async def _handle_method(self, request: web.Request) -> web.Response:
        at = time.monotonic()
        raw_method = request.match_info["method"]
        entry = self._methods.get(raw_method.lower())
        method = entry[0] if entry is not None else raw_method
        try:
            params = await self._read_params(request)
        except _APIError as exc:
            self._record(method, {}, at, exc.status)
            return await self._respond(_error_payload(exc.status, exc.description), exc.status)

        if request.match_info["token"] != self.token:
            self._record(method, params, at, 401)
            return await self._respond(_error_payload(401, "Unauthorized"), 401)
        if entry is None:
            self._record(method, params, at, 404)
            return await self._respond(_error_payload(404, "Not Found: method not found"), 404)

        try:
            failure = self._take_failure(raw_method.lower())
            if failure is not None:
                raise _APIError(failure.status, failure.description, failure.retry_after)
            if method in _BLOCKABLE and self._blocked:
                chat = params.get("chat_id")
                if chat in self._blocked or (
                    isinstance(chat, str)
                    and chat.lstrip("-").isdigit()
                    and int(chat) in self._blocked
                ):
                    raise _APIError(403, _BLOCKED_DESCRIPTION)
            if method == "getUpdates":
                poll = self._parse_poll(params)
                self._record(method, params, at, 200)
                result: Any = await self._get_updates(*poll)
            else:
                judged = self.flood_clock()
                flood_chat = self._flood_check(method, params, judged)
                result = entry[1](params)
                if flood_chat is not None:
                    self._flood_note(flood_chat, judged)
                self._record(method, params, at, 200)
        except _APIError as exc:
            self._record(method, params, at, exc.status)
            payload = _error_payload(exc.status, exc.description, exc.retry_after)
            return await self._respond(payload, exc.status)
        return await self._respond({"ok": True, "result": result}, 200)

    async def _handle_file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _json_response(_error_payload(401, "Unauthorized"), 401)
        return web.Response(body=b"\xff\xd8\xff\xe0fake-file\xff\xd9", content_type="image/jpeg")

    # ------------------------------------------------------------------ control endpoints

    async def _control_enqueue(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            updates = body["updates"]
            if not isinstance(updates, list):
                raise TypeError("updates must be a list")
        except (ValueError, KeyError, TypeError) as exc:
            return _json_response({"error": f"bad body: {exc}"}, 400)
        ids = [self.add_raw(u) for u in updates]
        return _json_response(
            {
                "enqueued": len(ids),
                "first_update_id": ids[0] if ids else None,
                "last_update_id": ids[-1] if ids else None,
            }
        )

    @property
    def flood_429(self) -> int:
        """429s issued by the flood limits (not those injected with `fail_next`)."""
        return self.flood_429_overall + self.flood_429_chat

    def stats(self) -> JSONDict:
        log = self._send_log
        return {
            "send_message": len(log),
            "calls": len(self.calls),
            "pending_updates": len(self._updates),
            "first_send_at": log[0][1] if log else None,
            "last_send_at": log[-1][1] if log else None,
            "flood_limit": self.flood_limit,
            "flood_429": self.flood_429,
            "flood_429_overall": self.flood_429_overall,
            "flood_429_chat": self.flood_429_chat,
        }

    async def _control_stats(self, request: web.Request) -> web.Response:
        return _json_response(self.stats())

    async def _control_sends(self, request: web.Request) -> web.Response:
        try:
            since = max(0, int(request.query.get("since", "0")))
        except ValueError:
            return _json_response({"error": "since must be an integer"}, 400)
        return _json_response(
            [{"chat_id": c, "at": at, "text": t} for c, at, t in self._send_log[since:]]
        )

    async def _control_calls(self, request: web.Request) -> web.Response:
        method = request.query.get("method", "")
        try:
            since = max(0, int(request.query.get("since", "0")))
        except ValueError:
            return _json_response({"error": "since must be an integer"}, 400)
        calls = self._calls_by_method.get(method, [])[since:]
        return _json_response(
            [{"status": c.status, "at": c.at, "chat_id": c.params.get("chat_id")} for c in calls]
        )

    async def _control_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return _json_response({"reset": True})

    def reset(self) -> None:
        """Clear the call records (calls, sends, deletes, answers, rejections, failures).

        Pending updates, update/message id counters and blocked chats are kept, so a polling
        bot is not confused by ids going backwards; so are the flood limits' windows (what
        was delivered in the last second still counts), but their 429 counters restart.
        """
        self.flood_429_overall = 0
        self.flood_429_chat = 0
        self.calls.clear()
        self.rejected.clear()
        self.deleted.clear()
        self.answered_callbacks.clear()
        self._calls_by_method.clear()
        self._sent_all.clear()
        self._sent_by_chat.clear()
        self._send_log.clear()
        self._failures.clear()

    # ------------------------------------------------------------------ Bot API methods

    def _true(self, params: JSONDict) -> bool:
        return True

    def _get_me(self, params: JSONDict) -> JSONDict:
        return self.bot_user

    def _delete_webhook(self, params: JSONDict) -> bool:
        if params.get("drop_pending_updates") is True:
            self._updates.clear()
        return True

    def _get_webhook_info(self, params: JSONDict) -> JSONDict:
        return {
            "url": "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }

    @staticmethod
    def _commands_key(params: JSONDict) -> str:
        scope = params.get("scope") or {"type": "default"}
        return json.dumps([scope, params.get("language_code") or ""], sort_keys=True)

    def _set_my_commands(self, params: JSONDict) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _bad_request("commands must be an array")
        self._commands[self._commands_key(params)] = commands
        return True

    def _delete_my_commands(self, params: JSONDict) -> bool:
        self._commands.pop(self._commands_key(params), None)
        return True

    def _get_my_commands(self, params: JSONDict) -> list[Any]:
        return self._commands.get(self._commands_key(params), [])

    def _answer_callback_query(self, params: JSONDict) -> bool:
        callback_id = params.get("callback_query_id")
        if not callback_id:
            raise _bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        self.answered_callbacks.append(str(callback_id))
        return True

    def _send_chat_action(self, params: JSONDict) -> bool:
        self._chat_key(params)
        return True

    @staticmethod
    def _chat_key(params: JSONDict) -> ChatKey:
        chat = params.get("chat_id")
        if isinstance(chat, bool) or chat is None or chat == "":
            raise _bad_request("chat_id is empty")
        if isinstance(chat, int):
            return chat
        if isinstance(chat, str):
            if chat.lstrip("-").isdigit():
                return int(chat)
            if chat.startswith("@") and len(chat) > 1:
                return chat
        raise _bad_request("chat not found")

    @staticmethod
    def _message_id(params: JSONDict) -> int:
        mid = params.get("message_id")
        if isinstance(mid, bool) or not isinstance(mid, int | str):
            raise _bad_request("message identifier is not specified")
        try:
            return int(mid)
        except ValueError as exc:
            raise _bad_request("message identifier is not specified") from exc

    @staticmethod
    def _inline_markup(params: JSONDict) -> JSONDict | None:
        markup = params.get("reply_markup")
        # Telegram only echoes inline keyboards; PTB parses Message.reply_markup as one.
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            return markup
        return None

    def _bot_message(self, chat: ChatKey, **content: Any) -> JSONDict:
        message: JSONDict = {
            "message_id": self._new_message_id(chat),
            "date": _now(),
            "chat": self._chat_dict(chat),
            "from": self.bot_user,
        }
        message.update(content)
        self._store_bot_message(chat, message)
        return message

    def _send_message(self, params: JSONDict) -> JSONDict:
        chat = self._chat_key(params)
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise _bad_request("message text is empty")
        if len(text) > 4096:
            raise _bad_request("message is too long")
        content: JSONDict = {"text": text}
        if isinstance(params.get("entities"), list):
            content["entities"] = params["entities"]
        markup = self._inline_markup(params)
        if markup is not None:
            content["reply_markup"] = markup
        message = self._bot_message(chat, **content)
        self._sent_all.append(params)
        self._sent_by_chat.setdefault(chat, []).append(params)
        self._send_log.append((chat, time.monotonic(), text))
        return message

    def _find_bot_message(self, params: JSONDict, what: str) -> tuple[ChatKey, JSONDict] | None:
        if params.get("inline_message_id"):
            return None
        chat = self._chat_key(params)
        mid = self._message_id(params)
        message = self._bot_messages.get((chat, mid))
        if message is None:
            raise _bad_request(f"message to {what} not found")
        return chat, message

    def _edit_message_text(self, params: JSONDict) -> JSONDict | bool:
        found = self._find_bot_message(params, "edit")
        if found is None:
            return True
        chat, old = found
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise _bad_request("message text is empty")
        markup = self._inline_markup(params)
        if old.get("text") == text and old.get("reply_markup") == markup:
            raise _bad_request(
                "message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message"
            )
        new = {k: v for k, v in old.items() if k not in ("reply_markup", "entities")}
        new.update(text=text, edit_date=_now())
        if isinstance(params.get("entities"), list):
            new["entities"] = params["entities"]
        if markup is not None:
            new["reply_markup"] = markup
        self._bot_messages[(chat, int(new["message_id"]))] = new
        return new

    def _edit_message_reply_markup(self, params: JSONDict) -> JSONDict | bool:
        found = self._find_bot_message(params, "edit")
        if found is None:
            return True
        chat, old = found
        markup = self._inline_markup(params)
        if old.get("reply_markup") == markup:
            raise _bad_request(
                "message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message"
            )
        new = {k: v for k, v in old.items() if k != "reply_markup"}
        new["edit_date"] = _now()
        if markup is not None:
            new["reply_markup"] = markup
        self._bot_messages[(chat, int(new["message_id"]))] = new
        return new

    def _delete_message(self, params: JSONDict) -> bool:
        chat = self._chat_key(params)
        mid = self._message_id(params)
        self._bot_messages.pop((chat, mid), None)
        if isinstance(chat, int):
            self.deleted.append((chat, mid))
        return True

    def _media_content(self, params: JSONDict) -> JSONDict:
        content: JSONDict = {}
        caption = params.get("caption")
        if isinstance(caption, str) and caption:
            content["caption"] = caption
        markup = self._inline_markup(params)
        if markup is not None:
            content["reply_markup"] = markup
        return content

    def _send_photo(self, params: JSONDict) -> JSONDict:
        chat = self._chat_key(params)
        photo = params.get("photo")
        if not photo:
            raise _bad_request("there is no photo in the request")
        # A file id: only one this server gave (Telegram: "wrong file identifier").
        is_url = isinstance(photo, str) and photo.startswith(("http://", "https://"))
        if isinstance(photo, str) and not is_url and photo not in self._files:
            raise _bad_request("wrong file identifier/HTTP URL specified")
        return self._bot_message(chat, photo=self._photo_sizes(), **self._media_content(params))

    def _send_document(self, params: JSONDict) -> JSONDict:
        chat = self._chat_key(params)
        source = params.get("document")
        if not source:
            raise _bad_request("there is no document in the request")
        document = self._new_file("BQACAgI", 12_345)
        if isinstance(source, dict):
            document["file_name"] = source.get("file_name") or "document"
            if source.get("mime_type"):
                document["mime_type"] = source["mime_type"]
            document["file_size"] = source.get("size", document["file_size"])
        return self._bot_message(chat, document=document, **self._media_content(params))

    def _get_file(self, params: JSONDict) -> JSONDict:
        info = self._files.get(str(params.get("file_id", "")))
        if info is None:
            raise _bad_request("invalid file_id")
        return info

    @staticmethod
    def _parse_poll(params: JSONDict) -> tuple[int, int, float, frozenset[str] | None]:
        offset = params.get("offset")
        limit = params.get("limit")
        timeout = params.get("timeout")
        allowed = params.get("allowed_updates")
        try:
            offset_n = int(offset) if offset is not None else 0
            limit_n = min(max(int(limit), 1), 100) if limit is not None else 100
            timeout_s = max(float(timeout), 0.0) if timeout is not None else 0.0
        except (TypeError, ValueError) as exc:
            raise _bad_request("wrong offset, limit or timeout") from exc
        allowed_set = frozenset(allowed) if isinstance(allowed, list) and allowed else None
        return offset_n, limit_n, timeout_s, allowed_set

    async def _get_updates(
        self, offset_n: int, limit_n: int, timeout_s: float, allowed_set: frozenset[str] | None
    ) -> list[JSONDict]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            result = self._select_updates(offset_n, limit_n, allowed_set)
            remaining = deadline - loop.time()
            if result or remaining <= 0 or self._closing:
                return result
            if self._updates_event is None:
                self._updates_event = asyncio.Event()
            event = self._updates_event
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await event.wait()

    def _select_updates(
        self, offset: int, limit: int, allowed: frozenset[str] | None
    ) -> list[JSONDict]:
        queue = self._updates
        confirmed = False
        if offset > 0:
            while queue and queue[0][0] < offset:
                queue.popleft()
                confirmed = True
        elif offset < 0:
            while len(queue) > -offset:
                queue.popleft()
                confirmed = True
        if confirmed:
            self._notify_calls()
        out: list[JSONDict] = []
        for _, kind, update in queue:
            if allowed is not None and kind not in allowed:
                continue
            out.append(update)
            if len(out) >= limit:
                break
        return out


# --------------------------------------------------------------------------- standalone mode


async def _serve(
    host: str,
    port: int,
    token: str,
    latency: float,
    flood_limit: int | None = None,
    flood_per_chat: float = 1.0,
) -> None:
    api = FakeBotAPI(token=token)
    api.latency = latency
    api.flood_limit = flood_limit
    api.flood_per_chat = flood_per_chat
    await api.start(host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        print(f"listening on {api.url}", flush=True)
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await api.stop()


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.telegram_api", description="Fake Telegram Bot API server."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081, help="0 picks a free port")
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added per response")
    parser.add_argument(
        "--flood-limit",
        type=int,
        default=None,
        metavar="N",
        help="enforce flood limits: at most N messages a second in all (429 above it); "
        "default: no limits",
    )
    parser.add_argument(
        "--flood-per-chat",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="with --flood-limit: seconds between two messages to one chat (default 1)",
    )
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.flood_limit is not None and args.flood_limit < 1:
        parser.error("--flood-limit must be at least 1")
    asyncio.run(
        _serve(
            args.host,
            args.port,
            args.token,
            args.latency,
            args.flood_limit,
            args.flood_per_chat,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
