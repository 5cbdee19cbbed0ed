"""Local stand-ins for the two Zalo APIs, for tests of the Zalo channels.

See ``/work/shared/reference/zalo.md`` (§1 Bot Platform, §2 Official Account) for the real
contracts. Both fakes are small aiohttp servers in the style of `tests.fakes.telegram_api`:
they record every call (`Call`), let tests await what the bot sent without sleeping
(`wait_for`, `wait_sent`: re-checked after each recorded call, no polling) and inject failures
(`fail_next`).

`FakeZaloBotAPI` (Zalo Bot Platform) answers ``/bot<token>/<method>`` at `FakeZaloBotAPI.base_url`:

* ``{"ok": true, "result": ...}`` on success; errors are ``{"ok": false, "error_code",
  "description"}``, with HTTP 200 for validation errors (as Zalo does) and 401/404/408 for a wrong
  token, an unknown (case-sensitive) method and an idle ``getUpdates``; ``getWebhookInfo``
  answers 404 while no webhook is set, as a real bot does, and ``getMe`` has ``display_name``;
* ``getUpdates`` returns **one** update per call and, like the real server, does not remove it:
  with ``replay=True`` (default) pending updates are returned again and again, round robin, until
  the test `consume`\\ s them; with ``replay=False`` each update is returned once. Queue updates
  with `add_update` or the builders `FakeZaloBotAPI.text_event` etc. (the module-level
  `text_event`, `image_event`, `sticker_event` and `unsupported_event` only build webhook bodies).

`FakeZaloOA` (OA Open API v3 + OAuth v4) serves ``POST /v3.0/oa/message/cs`` and
``POST /v4/oa/access_token`` on one port (`api_base_url` == `oauth_base_url`). It enforces the
single-use refresh token (every refresh rotates both tokens and revokes the old pair), the
``-216``/``-220`` token errors, the 2,000-character limit (``-210``), the 7-day window (``-230``)
and button validation (``-201``); all OA errors come with HTTP 200.

Webhook bodies for the OA are built by `oa_text_event`, `oa_image_event`, `oa_sticker_event` and
`oa_follow_event`, and signed by `oa_signature` (or `oa_webhook_request`, which also returns the
headers). Shapes marked "unverified" in the reference (sticker payloads, quota object, OAuth
error codes other than -14001/-14014) are plausible guesses, not Zalo's documented contract.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Self

from aiohttp import web

__all__ = [
    "BOT_INFO",
    "CS_PATH",
    "OAUTH_TOKEN_PATH",
    "Call",
    "FakeZaloBotAPI",
    "FakeZaloOA",
    "image_event",
    "oa_follow_event",
    "oa_image_event",
    "oa_signature",
    "oa_sticker_event",
    "oa_text_event",
    "oa_webhook_request",
    "sticker_event",
    "text_event",
    "unsupported_event",
]

JSONDict = dict[str, Any]

DEFAULT_BOT_TOKEN: Final = "1234567890:ZBOTTOKEN"
#: The ``getMe`` result: the docs' fields, and ``display_name`` (the name people see, which
#: must start with "Bot"), which real bots answer with though the docs' sample lacks it.
BOT_INFO: Final[JSONDict] = {
    "id": "1459232241454765289",
    "account_name": "bot.test",
    "account_type": "BASIC",
    "can_join_groups": False,
    "display_name": "Bot Test",
}
MAX_TEXT: Final = 2000
DEFAULT_PHOTO_URL: Final = "https://photo-stal.zadn.vn/test/photo.jpg"
DEFAULT_STICKER: Final = "bfe458bf64fa8da4d4eb"

CS_PATH: Final = "/v3.0/oa/message/cs"
OAUTH_TOKEN_PATH: Final = "/v4/oa/access_token"
#: Free customer-service messages per 48 h window (only used for the illustrative ``quota``).
CS_FREE_QUOTA: Final = 8
BUTTON_TYPES: Final = frozenset(
    {"oa.query.show", "oa.query.hide", "oa.open.url", "oa.open.phone", "oa.open.sms"}
)
MAX_BUTTONS: Final = 5

_NO_RESULT: Final = object()  # a Bot API answer without "result" (``{"ok": true}``)


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class Call:
    """One request a fake server received.

    ``method`` is the Bot API method (``"sendMessage"``) or, for the OA, the path
    (`CS_PATH`, `OAUTH_TOKEN_PATH`). ``params`` is the decoded body (plus query). ``at`` is
    ``time.monotonic()`` when the request arrived. ``status`` is the HTTP status of the answer
    and ``error`` the Zalo error code in the body (Bot ``error_code`` / OA ``error``; 0 when the
    call succeeded). ``auth`` is the credential presented: the Bot token from the path, the OA
    ``access_token`` header, or the OAuth ``secret_key`` header.
    """

    method: str
    params: dict[str, Any]
    at: float
    status: int = 200
    error: int = 0
    auth: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.error == 0


@dataclass(slots=True)
class _Failure:
    error: int
    description: str
    http_status: int
    remaining: int


class _NotFound(Exception):
    """A Bot API method answering ``404 {"ok": false, "description": "Not Found"}``."""


class _BadRequest(Exception):
    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _hex_id() -> str:
    """A 20-hex-digit id like Zalo's message ids."""
    return secrets.token_hex(10)


def _json_response(payload: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(payload, ensure_ascii=False).encode(),
        status=status,
        content_type="application/json",
    )


def _short(params: JSONDict, limit: int = 160) -> str:
    text = json.dumps(params, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def _read_params(request: web.Request, *, json_body: bool = True) -> JSONDict:
    """Query + form/multipart (+ JSON object when ``json_body``); raises `_BadRequest`."""
    params: JSONDict = dict(request.query)
    if not request.body_exists:
        return params
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, str):
                params[key] = value
            elif isinstance(value, bytes | bytearray):
                params[key] = bytes(value).decode(errors="replace")
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
    if not json_body or not body.strip():
        return params
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise _BadRequest("can't parse JSON body") from exc
    if not isinstance(data, dict):
        raise _BadRequest("JSON body must be an object")
    params.update(data)
    return params


# --------------------------------------------------------------------------- common server


class _FakeServer:
    """Lifecycle, call recording, waiting and failure queues shared by both fakes."""

    _label = "fake server"

    def __init__(self) -> None:
        #: Seconds added to every response.
        self.latency: float = 0.0
        self.calls: list[Call] = []
        self._calls_by_method: dict[str, list[Call]] = {}
        self._failures: dict[str, deque[_Failure]] = {}
        self._calls_event: asyncio.Event | None = None
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._host = "127.0.0.1"

    # ------------------------------------------------------------------ lifecycle

    def _build_app(self) -> web.Application:
        raise NotImplementedError

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Start serving; ``port=0`` picks a free port (see `port`)."""
        if self._runner is not None:
            raise RuntimeError(f"{self._label} already started")
        runner = web.AppRunner(
            self._build_app(), access_log=None, handle_signals=False, shutdown_timeout=5.0
        )
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
        self._port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        """Stop serving (pending long polls are answered first)."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._closing = True
        self._on_closing()
        await runner.cleanup()
        self._port = None

    def _on_closing(self) -> None:
        pass

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
            raise RuntimeError(f"{self._label} is not running; call start() first")
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    # ------------------------------------------------------------------ queries and waiting

    def calls_of(self, method: str) -> list[Call]:
        """Calls of one method (Bot API name, or OA path such as `CS_PATH`)."""
        return list(self._calls_by_method.get(method, ()))

    @property
    def rejected(self) -> list[Call]:
        """Calls that did not succeed (HTTP error or a Zalo error code)."""
        return [c for c in self.calls if not c.ok]

    async def wait_for(
        self,
        predicate: Callable[[], bool],
        timeout: float = 5.0,  # noqa: ASYNC109  (part of the helper's documented API)
        *,
        message: str = "",
    ) -> None:
        """Wait until ``predicate()`` is true.

        The predicate is re-checked after every recorded call and state change of this server
        (no polling), so it should depend on this server's state. AssertionError on timeout.
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

    def _describe_timeout(self, timeout: float, message: str, last: int = 15) -> str:
        head = f"wait_for timed out after {timeout}s"
        if message:
            head += f": {message}"
        lines = [f"{head}; {len(self.calls)} calls recorded, last {min(last, len(self.calls))}:"]
        lines.extend(
            f"  {c.method} [{c.status}/{c.error}] {_short(c.params)}" for c in self.calls[-last:]
        )
        return "\n".join(lines)

    def _notify_calls(self) -> None:
        event = self._calls_event
        if event is not None:
            self._calls_event = None
            event.set()

    def _record(
        self,
        method: str,
        params: JSONDict,
        at: float,
        *,
        status: int = 200,
        error: int = 0,
        auth: str | None = None,
    ) -> Call:
        call = Call(method, params, at, status, error, auth)
        self.calls.append(call)
        self._calls_by_method.setdefault(method, []).append(call)
        self._notify_calls()
        return call

    async def _respond(self, payload: Any, status: int = 200) -> web.Response:
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        return _json_response(payload, status)

    # ------------------------------------------------------------------ failure injection

    def _queue_failure(
        self, method: str, error: int, description: str, http_status: int, count: int
    ) -> None:
        if count < 1:
            raise ValueError("count must be >= 1")
        failure = _Failure(error, description, http_status, count)
        self._failures.setdefault(method, deque()).append(failure)

    def _take_failure(self, method: str) -> _Failure | None:
        queue = self._failures.get(method)
        if not queue:
            return None
        failure = queue[0]
        failure.remaining -= 1
        if failure.remaining <= 0:
            queue.popleft()
        return failure


# --------------------------------------------------------------------------- Bot Platform


def _bot_event(
    event_name: str,
    user_id: str,
    content: JSONDict,
    message_id: str | None,
    display_name: str | None,
    flat: bool,
) -> JSONDict:
    message: JSONDict = {
        "from": {
            "id": user_id,
            "display_name": display_name if display_name is not None else f"User {user_id}",
            "is_bot": False,
        },
        "chat": {"id": user_id, "chat_type": "PRIVATE"},
        **content,
        "message_id": message_id if message_id is not None else _hex_id(),
        "date": _now_ms(),
    }
    update: JSONDict = {"event_name": event_name, "message": message}
    return update if flat else {"ok": True, "result": update}


def text_event(
    user_id: str,
    text: str,
    *,
    message_id: str | None = None,
    display_name: str | None = None,
    flat: bool = True,
) -> JSONDict:
    """A ``message.text.received`` update from ``user_id`` in their private chat.

    ``flat=True`` gives ``{"event_name", "message"}`` (what real webhooks deliver, and what
    ``getUpdates`` puts in ``result``); ``flat=False`` the documented ``{"ok", "result"}`` form.
    ``message_id`` defaults to 20 random hex digits; ``date`` is now, in epoch milliseconds.
    """
    content = {"text": text}
    return _bot_event("message.text.received", user_id, content, message_id, display_name, flat)


def image_event(
    user_id: str,
    *,
    photo_url: str = DEFAULT_PHOTO_URL,
    caption: str | None = None,
    message_id: str | None = None,
    display_name: str | None = None,
    flat: bool = True,
) -> JSONDict:
    """A ``message.image.received`` update (image in ``message.photo_url``)."""
    content: JSONDict = {"photo_url": photo_url}
    if caption is not None:
        content["caption"] = caption
    return _bot_event("message.image.received", user_id, content, message_id, display_name, flat)


def sticker_event(
    user_id: str,
    *,
    sticker: str = DEFAULT_STICKER,
    message_id: str | None = None,
    display_name: str | None = None,
    flat: bool = True,
) -> JSONDict:
    """A ``message.sticker.received`` update (sticker id in ``message.sticker``)."""
    content = {"sticker": sticker}
    name = "message.sticker.received"
    return _bot_event(name, user_id, content, message_id, display_name, flat)


def unsupported_event(
    user_id: str,
    *,
    message_id: str | None = None,
    display_name: str | None = None,
    flat: bool = True,
) -> JSONDict:
    """A ``message.unsupported.received`` update: no content (e.g. a protected sender)."""
    name = "message.unsupported.received"
    return _bot_event(name, user_id, {}, message_id, display_name, flat)


def _unwrap(event: JSONDict) -> JSONDict:
    if event.get("ok") is True and isinstance(event.get("result"), dict):
        inner: JSONDict = event["result"]
        return inner
    return event


def _update_message_id(update: JSONDict) -> str | None:
    message = update.get("message")
    if isinstance(message, dict) and message.get("message_id") is not None:
        return str(message["message_id"])
    return None


def _bot_error(error_code: int, description: str) -> JSONDict:
    return {"ok": False, "error_code": error_code, "description": description}


class FakeZaloBotAPI(_FakeServer):
    """In-process fake Zalo Bot Platform server (see the module docstring).

    The client builds ``f"{api.base_url}/bot{api.token}/{method}"``.
    """

    _label = "FakeZaloBotAPI"

    def __init__(self, token: str = DEFAULT_BOT_TOKEN, *, replay: bool = True) -> None:
        super().__init__()
        self.token = token
        #: True: ``getUpdates`` keeps returning pending updates (round robin) until consumed.
        #: False: each pending update is returned once and then dropped. May be changed live.
        self.replay = replay
        self.bot_info: JSONDict = dict(BOT_INFO)
        #: Every update returned by ``getUpdates``, in order (repeats included).
        self.delivered: list[JSONDict] = []
        self.webhook_url = ""
        self.webhook_secret: str | None = None
        self._webhook_updated_at = 0
        self._updates: list[JSONDict] = []
        self._cursor = 0
        self._updates_event: asyncio.Event | None = None
        self._polling = 0
        self._sent_all: list[JSONDict] = []
        self._sent_by_chat: dict[str, list[JSONDict]] = {}
        self._methods: dict[str, Callable[[JSONDict], Any]] = {
            "getMe": self._get_me,
            "sendMessage": self._send_message,
            "sendPhoto": self._send_photo,
            "sendSticker": self._send_sticker,
            "sendChatAction": self._send_chat_action,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
        }

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        return app

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``; the client appends ``/bot{token}/{method}``."""
        return self.url

    # ------------------------------------------------------------------ queries

    def sent(self, chat_id: str | None = None) -> list[dict[str, Any]]:
        """Params of successful ``sendMessage`` calls (all, or those to one chat)."""
        if chat_id is None:
            return list(self._sent_all)
        return list(self._sent_by_chat.get(str(chat_id), ()))

    def sent_texts(self, chat_id: str) -> list[str]:
        return [str(p.get("text", "")) for p in self._sent_by_chat.get(str(chat_id), ())]

    async def wait_sent(
        self,
        chat_id: str,
        count: int,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[dict[str, Any]]:
        """Wait for at least ``count`` successful ``sendMessage`` calls to ``chat_id``."""
        key = str(chat_id)
        await self.wait_for(
            lambda: len(self._sent_by_chat.get(key, ())) >= count,
            timeout,
            message=(
                f"expected >= {count} sendMessage to chat {key}, "
                f"got {len(self._sent_by_chat.get(key, ()))}"
            ),
        )
        return self.sent(key)

    @property
    def polling(self) -> int:
        """``getUpdates`` calls currently waiting (long-polling) for an update."""
        return self._polling

    def pending_updates(self) -> int:
        """Updates queued and not yet consumed (with ``replay``, delivered ones stay pending)."""
        return len(self._updates)

    def _describe_timeout(self, timeout: float, message: str, last: int = 15) -> str:
        base = super()._describe_timeout(timeout, message, last)
        return f"{base}\n  pending updates: {len(self._updates)}"

    # ------------------------------------------------------------------ updates

    def add_update(self, event: dict[str, Any]) -> JSONDict:
        """Queue an update for ``getUpdates`` (either envelope; stored flat). Returns it."""
        update = _unwrap(event)
        self._updates.append(update)
        self._wake_pollers()
        self._notify_calls()
        return update

    def text_event(
        self,
        user_id: str,
        text: str,
        *,
        message_id: str | None = None,
        display_name: str | None = None,
        flat: bool = True,
    ) -> JSONDict:
        """Build (see module-level `text_event`) and queue a text update."""
        event = text_event(
            user_id, text, message_id=message_id, display_name=display_name, flat=flat
        )
        self.add_update(event)
        return event

    def image_event(
        self,
        user_id: str,
        *,
        photo_url: str = DEFAULT_PHOTO_URL,
        caption: str | None = None,
        message_id: str | None = None,
        display_name: str | None = None,
        flat: bool = True,
    ) -> JSONDict:
        """Build (see module-level `image_event`) and queue an image update."""
        event = image_event(
            user_id,
            photo_url=photo_url,
            caption=caption,
            message_id=message_id,
            display_name=display_name,
            flat=flat,
        )
        self.add_update(event)
        return event

    def sticker_event(
        self,
        user_id: str,
        *,
        sticker: str = DEFAULT_STICKER,
        message_id: str | None = None,
        display_name: str | None = None,
        flat: bool = True,
    ) -> JSONDict:
        """Build (see module-level `sticker_event`) and queue a sticker update."""
        event = sticker_event(
            user_id, sticker=sticker, message_id=message_id, display_name=display_name, flat=flat
        )
        self.add_update(event)
        return event

    def unsupported_event(
        self,
        user_id: str,
        *,
        message_id: str | None = None,
        display_name: str | None = None,
        flat: bool = True,
    ) -> JSONDict:
        """Build (see module-level `unsupported_event`) and queue an unsupported update."""
        event = unsupported_event(
            user_id, message_id=message_id, display_name=display_name, flat=flat
        )
        self.add_update(event)
        return event

    def consume(self, message_id: str | None = None) -> int:
        """Drop pending updates: all of them, or those with ``message_id``. Returns how many."""
        kept: list[JSONDict] = []
        removed = 0
        cursor = self._cursor
        for index, update in enumerate(self._updates):
            if message_id is None or _update_message_id(update) == message_id:
                removed += 1
                if index < self._cursor:
                    cursor -= 1
            else:
                kept.append(update)
        self._updates = kept
        self._cursor = cursor
        if removed:
            self._notify_calls()
        return removed

    def _next_update(self) -> JSONDict | None:
        if not self._updates:
            return None
        if self.replay:
            index = self._cursor % len(self._updates)
            self._cursor = index + 1
            return self._updates[index]
        if self._cursor > 0:
            self._cursor -= 1
        return self._updates.pop(0)

    def _wake_pollers(self) -> None:
        event = self._updates_event
        if event is not None:
            self._updates_event = None
            event.set()

    def _on_closing(self) -> None:
        self._wake_pollers()

    async def _poll(self, timeout_s: float) -> JSONDict | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            update = self._next_update()
            remaining = deadline - loop.time()
            if update is not None or remaining <= 0 or self._closing:
                return update
            if self._updates_event is None:
                self._updates_event = asyncio.Event()
            event = self._updates_event
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await event.wait()

    # ------------------------------------------------------------------ failure injection

    def fail_next(
        self,
        method: str,
        error_code: int,
        description: str,
        http_status: int = 200,
        count: int = 1,
    ) -> None:
        """The next ``count`` calls of ``method`` (with the right token) get
        ``{"ok": false, "error_code", "description"}`` with ``http_status``.

        Failures queue after earlier ones for the same method. A failed ``getUpdates`` does not
        touch the update queue.
        """
        self._queue_failure(method, error_code, description, http_status, count)

    # ------------------------------------------------------------------ HTTP

    async def _handle(self, request: web.Request) -> web.Response:
        at = time.monotonic()
        method = request.match_info["method"]
        token = request.match_info["token"]
        try:
            params = await _read_params(request)
        except _BadRequest as exc:
            self._record(method, {}, at, status=400, error=400, auth=token)
            return await self._respond(_bot_error(400, exc.description), 400)

        if token != self.token:
            self._record(method, params, at, status=401, error=401, auth=token)
            return await self._respond(_bot_error(401, "Unauthorized"), 401)
        handler = self._methods.get(method)
        if handler is None and method != "getUpdates":
            self._record(method, params, at, status=404, error=404, auth=token)
            return await self._respond(_bot_error(404, "Not Found"), 404)

        failure = self._take_failure(method)
        if failure is not None:
            self._record(
                method, params, at, status=failure.http_status, error=failure.error, auth=token
            )
            payload = _bot_error(failure.error, failure.description)
            return await self._respond(payload, failure.http_status)

        try:
            if handler is None:  # getUpdates
                return await self._get_updates(params, at)
            result = handler(params)
        except _BadRequest as exc:
            self._record(method, params, at, error=400, auth=token)
            return await self._respond(_bot_error(400, exc.description))
        except _NotFound:
            self._record(method, params, at, status=404, error=404, auth=token)
            return await self._respond(_bot_error(404, "Not Found"), 404)
        self._record(method, params, at, auth=token)
        if method == "sendMessage":
            chat = str(params["chat_id"])
            self._sent_all.append(params)
            self._sent_by_chat.setdefault(chat, []).append(params)
            self._notify_calls()
        if result is _NO_RESULT:
            return await self._respond({"ok": True})
        return await self._respond({"ok": True, "result": result})

    async def _get_updates(self, params: JSONDict, at: float) -> web.Response:
        raw = params.get("timeout", 0)
        try:
            timeout_s = max(float(raw), 0.0) if raw not in (None, "") else 0.0
        except (TypeError, ValueError) as exc:
            raise _BadRequest("timeout must be a number") from exc
        self._polling += 1
        self._notify_calls()
        try:
            update = await self._poll(timeout_s)
        finally:
            self._polling -= 1
        if update is None:
            self._record("getUpdates", params, at, status=408, error=408, auth=self.token)
            return await self._respond(_bot_error(408, "Request timeout"), 408)
        self.delivered.append(update)
        self._record("getUpdates", params, at, auth=self.token)
        return await self._respond({"ok": True, "result": update})

    # ------------------------------------------------------------------ methods

    @staticmethod
    def _chat_id(params: JSONDict) -> str:
        chat = params.get("chat_id")
        if isinstance(chat, bool) or not isinstance(chat, str | int) or str(chat) == "":
            raise _BadRequest("chat_id is required")
        return str(chat)

    @staticmethod
    def _sent_result() -> JSONDict:
        return {"message_id": _hex_id(), "date": _now_ms()}

    def _get_me(self, params: JSONDict) -> JSONDict:
        return self.bot_info

    def _send_message(self, params: JSONDict) -> JSONDict:
        self._chat_id(params)
        text = params.get("text")
        if not isinstance(text, str) or not text:
            raise _BadRequest("text is empty")
        if len(text) > MAX_TEXT:
            raise _BadRequest("text too long")
        return self._sent_result()

    def _send_photo(self, params: JSONDict) -> JSONDict:
        self._chat_id(params)
        if not params.get("photo"):
            raise _BadRequest("photo is required")
        caption = params.get("caption")
        if caption is not None and (not isinstance(caption, str) or len(caption) > MAX_TEXT):
            raise _BadRequest("caption too long")
        return self._sent_result()

    def _send_sticker(self, params: JSONDict) -> JSONDict:
        self._chat_id(params)
        if not params.get("sticker"):
            raise _BadRequest("sticker is required")
        return self._sent_result()

    def _send_chat_action(self, params: JSONDict) -> object:
        self._chat_id(params)
        return _NO_RESULT  # documented answer: {"ok": true}

    def _webhook_info(self) -> JSONDict:
        return {"url": self.webhook_url, "updated_at": self._webhook_updated_at}

    def _set_webhook(self, params: JSONDict) -> JSONDict:
        url = params.get("url")
        secret = params.get("secret_token")
        if not isinstance(url, str) or not url:
            raise _BadRequest("url is required")
        if not isinstance(secret, str) or not 8 <= len(secret) <= 256:
            raise _BadRequest("secret_token must be 8-256 characters")
        self.webhook_url, self.webhook_secret = url, secret
        self._webhook_updated_at = _now_ms()
        return self._webhook_info()

    def _delete_webhook(self, params: JSONDict) -> JSONDict:
        self.webhook_url, self.webhook_secret = "", None
        self._webhook_updated_at = _now_ms()
        return self._webhook_info()

    def _get_webhook_info(self, params: JSONDict) -> JSONDict:
        if not self.webhook_url:
            # As a real bot answers when no webhook is set: 404, not an empty url.
            raise _NotFound
        return self._webhook_info()


# --------------------------------------------------------------------------- Official Account


def _user_id_by_app(user_id: str, app_id: str) -> str:
    """A stable, numeric-looking app-scoped id (the real one differs from ``sender.id``)."""
    digest = hashlib.sha256(f"{app_id}:{user_id}".encode()).hexdigest()
    return str(int(digest[:15], 16))


def _oa_user_event(
    event_name: str,
    user_id: str,
    message: JSONDict,
    app_id: str,
    oa_id: str,
    timestamp: int | None,
) -> JSONDict:
    return {
        "app_id": app_id,
        "user_id_by_app": _user_id_by_app(user_id, app_id),
        "event_name": event_name,
        "sender": {"id": user_id},
        "recipient": {"id": oa_id},
        "message": message,
        "timestamp": str(timestamp if timestamp is not None else _now_ms()),
    }


def oa_text_event(
    user_id: str,
    text: str,
    *,
    app_id: str,
    oa_id: str = "OA1",
    msg_id: str | None = None,
    timestamp: int | None = None,
) -> JSONDict:
    """A ``user_send_text`` webhook body (``timestamp``: epoch ms as a string, default now)."""
    message = {"msg_id": msg_id if msg_id is not None else _hex_id(), "text": text}
    return _oa_user_event("user_send_text", user_id, message, app_id, oa_id, timestamp)


def oa_image_event(
    user_id: str,
    *,
    app_id: str,
    oa_id: str = "OA1",
    msg_id: str | None = None,
    url: str = DEFAULT_PHOTO_URL,
    thumbnail: str | None = None,
    timestamp: int | None = None,
) -> JSONDict:
    """A ``user_send_image`` body: ``message.attachments[0] = {type: image, payload}``."""
    message = {
        "msg_id": msg_id if msg_id is not None else _hex_id(),
        "attachments": [{"type": "image", "payload": {"url": url, "thumbnail": thumbnail or url}}],
    }
    return _oa_user_event("user_send_image", user_id, message, app_id, oa_id, timestamp)


def oa_sticker_event(
    user_id: str,
    *,
    app_id: str,
    oa_id: str = "OA1",
    msg_id: str | None = None,
    sticker_id: str = DEFAULT_STICKER,
    url: str = "https://zalo-api.zadn.vn/api/emoticon/sticker/webpc?eid=1&size=130",
    timestamp: int | None = None,
) -> JSONDict:
    """A ``user_send_sticker`` body (attachment payload ``{id, url}``: shape unverified)."""
    message = {
        "msg_id": msg_id if msg_id is not None else _hex_id(),
        "attachments": [{"type": "sticker", "payload": {"id": sticker_id, "url": url}}],
    }
    return _oa_user_event("user_send_sticker", user_id, message, app_id, oa_id, timestamp)


def oa_follow_event(
    user_id: str, *, app_id: str, oa_id: str = "OA1", timestamp: int | None = None
) -> JSONDict:
    """A ``follow`` body (its own shape: ``oa_id``, ``follower.id``, ``source``)."""
    return {
        "oa_id": oa_id,
        "follower": {"id": user_id},
        "event_name": "follow",
        "source": "oa_profile",
        "app_id": app_id,
        "timestamp": str(timestamp if timestamp is not None else _now_ms()),
    }


def oa_signature(raw_body: bytes, app_id: str, oa_secret_key: str) -> str:
    """``X-ZEvent-Signature`` value: ``"mac=" + sha256(app_id + body + timestamp + key)``.

    Plain SHA-256 (not HMAC), lowercase hex; ``timestamp`` is the body's field as a string.
    """
    try:
        data = json.loads(raw_body)
    except (ValueError, RecursionError):
        data = None
    timestamp = str(data.get("timestamp", "")) if isinstance(data, dict) else ""
    digest = hashlib.sha256(
        app_id.encode() + raw_body + timestamp.encode() + oa_secret_key.encode()
    ).hexdigest()
    return f"mac={digest}"


def oa_webhook_request(
    event: JSONDict, *, app_id: str, oa_secret_key: str
) -> tuple[bytes, dict[str, str]]:
    """The raw body and headers of a signed OA webhook delivery of ``event``."""
    body = json.dumps(event, ensure_ascii=False).encode()
    headers = {
        "Content-Type": "application/json",
        "X-ZEvent-Signature": oa_signature(body, app_id, oa_secret_key),
    }
    return body, headers


def _cs_error(error: int, message: str) -> JSONDict:
    return {"error": error, "message": message}


def _oauth_error(error: int, name: str, reason: str, description: str = "") -> JSONDict:
    return {
        "error": error,
        "error_name": name,
        "error_reason": reason,
        "error_description": description or reason,
    }


class _OAError(Exception):
    def __init__(self, error: int, message: str) -> None:
        super().__init__(message)
        self.error = error
        self.message = message


def _valid_button(button: Any) -> bool:
    if not isinstance(button, dict):
        return False
    title, kind, payload = button.get("title"), button.get("type"), button.get("payload")
    if not isinstance(title, str) or not title or kind not in BUTTON_TYPES:
        return False
    if kind in ("oa.query.show", "oa.query.hide"):
        return isinstance(payload, str) and bool(payload)
    if kind == "oa.open.url":
        return isinstance(payload, dict) and isinstance(payload.get("url"), str)
    return payload is not None


def _check_attachment(attachment: Any) -> None:
    if not isinstance(attachment, dict) or not isinstance(attachment.get("type"), str):
        raise _OAError(-201, "invalid attachment")
    if attachment["type"] != "template":
        return
    payload = attachment.get("payload")
    if not isinstance(payload, dict):
        raise _OAError(-201, "invalid attachment")
    if "buttons" in payload:
        buttons = payload["buttons"]
        if (
            not isinstance(buttons, list)
            or not 1 <= len(buttons) <= MAX_BUTTONS
            or not all(_valid_button(b) for b in buttons)
        ):
            raise _OAError(-201, "invalid buttons")
    if payload.get("template_type") == "media":
        # An image by its URL (zalo.md 2.4, [2ND]): Zalo's servers fetch it.
        elements = payload.get("elements")
        if (
            not isinstance(elements, list)
            or len(elements) != 1
            or not isinstance(elements[0], dict)
            or elements[0].get("media_type") not in ("image", "gif")
            or not str(elements[0].get("url", "")).startswith(("https://", "http://"))
        ):
            raise _OAError(-201, "invalid media")


class FakeZaloOA(_FakeServer):
    """In-process fake of the Zalo OA Open API v3 (CS messages) and OAuth v4 (token refresh).

    Tokens: the constructor's ``access_token``/``refresh_token`` are the current pair. Each
    successful refresh issues ``AT-<n>``/``RT-<n>`` (n = 2, 3, ...) and revokes the old pair: the
    old refresh token then gets ``invalid_grant`` (-14014) and the old access token ``-220``
    (expired/removed), like a token from `expire_access_token`. Unknown tokens get ``-216``.
    """

    _label = "FakeZaloOA"

    def __init__(
        self,
        app_id: str = "1234567890",
        secret_key: str = "APPSECRET",
        oa_secret_key: str = "OASECRET",
        access_token: str = "AT-1",
        refresh_token: str = "RT-1",
        *,
        oa_id: str = "OA1",
        refresh_latency: float = 0.0,
    ) -> None:
        super().__init__()
        self.app_id = app_id
        self.secret_key = secret_key
        self.oa_secret_key = oa_secret_key
        self.oa_id = oa_id
        #: Seconds added before answering a token request (after the tokens rotated).
        self.refresh_latency = refresh_latency
        #: Successful refreshes.
        self.refresh_count = 0
        self._access_token = access_token
        self._refresh_token = refresh_token
        self._valid_access: str | None = access_token
        self._issued_access: set[str] = {access_token}
        self._token_seq = 1
        self._outside: set[str] = set()
        self._sent_all: list[JSONDict] = []
        self._sent_by_user: dict[str, list[JSONDict]] = {}

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_post(CS_PATH, self._handle_cs)
        app.router.add_post(OAUTH_TOKEN_PATH, self._handle_token)
        app.router.add_route("*", "/{tail:.*}", self._handle_unknown)
        return app

    @property
    def api_base_url(self) -> str:
        """Stands in for ``https://openapi.zalo.me`` (paths start with ``/v3.0/oa/...``)."""
        return self.url

    @property
    def oauth_base_url(self) -> str:
        """Stands in for ``https://oauth.zaloapp.com`` (paths start with ``/v4/oa/...``)."""
        return self.url

    # ------------------------------------------------------------------ tokens

    @property
    def access_token(self) -> str:
        """The latest issued access token (answers -220 after `expire_access_token`)."""
        return self._access_token

    @property
    def refresh_token(self) -> str:
        """The refresh token that currently works (single use)."""
        return self._refresh_token

    def expire_access_token(self) -> None:
        """The current access token now answers ``-220`` until a refresh issues a new one."""
        self._valid_access = None
        self._notify_calls()

    def outside_window(self, user_id: str) -> None:
        """CS sends to ``user_id`` get ``-230`` (no interaction in the past 7 days)."""
        self._outside.add(str(user_id))

    def inside_window(self, user_id: str) -> None:
        """Undo `outside_window` (the user interacted again)."""
        self._outside.discard(str(user_id))

    def _rotate(self) -> JSONDict:
        self._token_seq += 1
        n = self._token_seq
        self._access_token = self._valid_access = f"AT-{n}"
        self._issued_access.add(self._access_token)
        self._refresh_token = f"RT-{n}"
        self.refresh_count += 1
        return {
            "access_token": self._access_token,
            "refresh_token": self._refresh_token,
            "expires_in": "90000",
        }

    # ------------------------------------------------------------------ queries

    def sent(self, user_id: str | None = None) -> list[dict[str, Any]]:
        """Request bodies (``{"recipient", "message"}``) of successful CS sends."""
        if user_id is None:
            return list(self._sent_all)
        return list(self._sent_by_user.get(str(user_id), ()))

    def sent_texts(self, user_id: str) -> list[str]:
        return [
            str(body["message"].get("text", ""))
            for body in self._sent_by_user.get(str(user_id), ())
        ]

    async def wait_sent(
        self,
        user_id: str,
        count: int,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[dict[str, Any]]:
        """Wait for at least ``count`` successful CS sends to ``user_id``."""
        key = str(user_id)
        await self.wait_for(
            lambda: len(self._sent_by_user.get(key, ())) >= count,
            timeout,
            message=(
                f"expected >= {count} CS messages to user {key}, "
                f"got {len(self._sent_by_user.get(key, ()))}"
            ),
        )
        return self.sent(key)

    # ------------------------------------------------------------------ webhooks

    def signed(self, event: JSONDict) -> tuple[bytes, dict[str, str]]:
        """`oa_webhook_request` with this OA's ``app_id`` and ``oa_secret_key``."""
        return oa_webhook_request(event, app_id=self.app_id, oa_secret_key=self.oa_secret_key)

    # ------------------------------------------------------------------ failure injection

    def fail_next(
        self,
        method: str,
        error: int,
        message: str,
        http_status: int = 200,
        count: int = 1,
    ) -> None:
        """The next ``count`` authenticated calls to ``method`` (`CS_PATH` or
        `OAUTH_TOKEN_PATH`) get this error: ``{"error", "message"}`` for CS,
        ``{"error", "error_name", "error_reason", "error_description"}`` for OAuth.

        Checked after the access token / ``secret_key`` (so e.g. ``-32`` rate limits can be
        injected for a valid token); an injected OAuth failure does not rotate tokens.
        """
        if method not in (CS_PATH, OAUTH_TOKEN_PATH):
            raise ValueError(f"method must be {CS_PATH!r} or {OAUTH_TOKEN_PATH!r}")
        self._queue_failure(method, error, message, http_status, count)

    # ------------------------------------------------------------------ HTTP

    async def _handle_unknown(self, request: web.Request) -> web.Response:
        self._record(request.path, dict(request.query), time.monotonic(), status=404, error=404)
        return await self._respond({"error": 404, "message": "Not Found"}, 404)

    async def _handle_cs(self, request: web.Request) -> web.Response:
        at = time.monotonic()
        token = request.headers.get("access_token")
        try:
            body = await _read_params(request)
        except _BadRequest:
            body = None
        params = body if body is not None else {}

        async def fail(error: int, message: str, http_status: int = 200) -> web.Response:
            self._record(CS_PATH, params, at, status=http_status, error=error, auth=token)
            return await self._respond(_cs_error(error, message), http_status)

        if not token or token not in self._issued_access:
            return await fail(-216, "Access token is invalid")
        if token != self._valid_access:
            return await fail(-220, "Access token has expired")
        failure = self._take_failure(CS_PATH)
        if failure is not None:
            return await fail(failure.error, failure.description, failure.http_status)
        try:
            if body is None:
                raise _OAError(-201, "body is not a JSON object")
            user_id = self._check_cs(body)
        except _OAError as exc:
            return await fail(exc.error, exc.message)

        self._record(CS_PATH, params, at, auth=token)
        self._sent_all.append(params)
        mine = self._sent_by_user.setdefault(user_id, [])
        mine.append(params)
        self._notify_calls()
        data = {
            "message_id": secrets.token_hex(16),
            "user_id": user_id,
            "sent_time": _now_ms(),
            # Illustrative: the real quota object's fields are not documented in the reference.
            "quota": {
                "quota_type": "reply",
                "remain": max(CS_FREE_QUOTA - len(mine), 0),
                "total": CS_FREE_QUOTA,
            },
        }
        return await self._respond({"error": 0, "message": "Success", "data": data})

    def _check_cs(self, body: JSONDict) -> str:
        recipient = body.get("recipient")
        user_id = recipient.get("user_id") if isinstance(recipient, dict) else None
        if isinstance(user_id, bool) or not isinstance(user_id, str | int) or user_id == "":
            raise _OAError(-201, "recipient.user_id is invalid")
        message = body.get("message")
        if not isinstance(message, dict):
            raise _OAError(-201, "message is invalid")
        text = message.get("text")
        attachment = message.get("attachment")
        if text is not None and not isinstance(text, str):
            raise _OAError(-201, "text is invalid")
        if isinstance(text, str) and len(text) > MAX_TEXT:
            raise _OAError(-210, "text exceeds limit")
        if not text and attachment is None:
            raise _OAError(-201, "message is empty")
        if attachment is not None:
            _check_attachment(attachment)
        if str(user_id) in self._outside:
            raise _OAError(-230, "User has not interacted with the OA in the past 7 days")
        return str(user_id)

    async def _handle_token(self, request: web.Request) -> web.Response:
        at = time.monotonic()
        secret = request.headers.get("secret_key")
        # Form-encoded like the real endpoint; a JSON body is not read (its fields are "missing").
        params = await _read_params(request, json_body=False)

        if secret != self.secret_key:
            self._record(OAUTH_TOKEN_PATH, params, at, error=-14001, auth=secret)
            payload = _oauth_error(-14001, "invalid_secret_key", "Invalid secret key")
            return await self._respond(payload)
        failure = self._take_failure(OAUTH_TOKEN_PATH)
        if failure is not None:
            self._record(
                OAUTH_TOKEN_PATH,
                params,
                at,
                status=failure.http_status,
                error=failure.error,
                auth=secret,
            )
            desc = failure.description
            return await self._respond(
                _oauth_error(failure.error, desc, desc), failure.http_status
            )

        reason = ""
        if params.get("grant_type") != "refresh_token":
            reason = "Unsupported grant_type"
        elif params.get("app_id") != self.app_id:
            reason = "Invalid app_id"
        elif not params.get("refresh_token") or params["refresh_token"] != self._refresh_token:
            reason = "Invalid refresh token"
        if reason:
            self._record(OAUTH_TOKEN_PATH, params, at, error=-14014, auth=secret)
            payload = _oauth_error(
                -14014,
                "invalid_grant",
                reason,
                "The refresh token is invalid, expired or has already been used",
            )
            return await self._respond(payload)

        # Rotate atomically (no await in between), then answer late: a concurrent second refresh
        # with the same token fails, as on the real server.
        result = self._rotate()
        self._record(OAUTH_TOKEN_PATH, params, at, auth=secret)
        if self.refresh_latency > 0:
            await asyncio.sleep(self.refresh_latency)
        return await self._respond(result)
