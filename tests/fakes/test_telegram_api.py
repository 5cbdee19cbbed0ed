"""Tests for the fake Telegram Bot API server, driven by real PTB over HTTP."""

from __future__ import annotations

import asyncio
import datetime as dtm
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import telegram
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, Forbidden, InvalidToken, RetryAfter
from telegram.ext import ApplicationBuilder, CommandHandler, ContextTypes

from tests.fakes.telegram_api import FakeBotAPI, make_callback_update, make_text_update

ROOT = Path(__file__).resolve().parents[2]
USER = 1001


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as server:
        yield server


@pytest.fixture
async def bot(api: FakeBotAPI) -> AsyncIterator[telegram.Bot]:
    async with telegram.Bot(
        api.token, base_url=api.base_url, base_file_url=api.base_file_url
    ) as client:
        yield client


def keyboard(*data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(d, callback_data=d) for d in data]])


async def test_urls_and_get_me(api: FakeBotAPI, bot: telegram.Bot) -> None:
    assert api.base_url == f"http://127.0.0.1:{api.port}/bot"
    assert api.base_file_url == f"http://127.0.0.1:{api.port}/file/bot"
    me = await bot.get_me()
    assert me.id == 123
    assert me.is_bot
    assert me.username == "test_bot"
    assert me.can_join_groups is True
    assert me.supports_inline_queries is False
    # Bot.initialize() (from `async with bot`) already called getMe once, with no params.
    assert [c.method for c in api.calls] == ["getMe", "getMe"]
    assert api.calls[0].params == {}


async def test_send_message_recorded(api: FakeBotAPI, bot: telegram.Bot) -> None:
    first = await bot.send_message(USER, "Xin chào", reply_markup=keyboard("a", "b"))
    second = await bot.send_message(USER, "123")  # a plain string that looks like JSON
    other = await bot.send_message(2002, "khác")

    assert (first.message_id, second.message_id, other.message_id) == (1, 2, 1)
    assert first.chat.id == USER
    assert first.chat.type == "private"
    assert first.from_user is not None
    assert first.from_user.id == 123
    assert first.text == "Xin chào"
    assert first.reply_markup == keyboard("a", "b")
    assert second.reply_markup is None

    assert [p["text"] for p in api.sent(USER)] == ["Xin chào", "123"]
    assert [p["text"] for p in api.sent()] == ["Xin chào", "123", "khác"]
    assert api.sent(USER)[0]["reply_markup"] == keyboard("a", "b").to_dict()
    assert api.sent(USER)[1]["chat_id"] == USER
    assert api.sent(9999) == []


async def test_message_ids_shared_between_user_and_bot(api: FakeBotAPI, bot: telegram.Bot) -> None:
    api.add_text(USER, "một")
    sent = await bot.send_message(USER, "hai")
    api.add_text(USER, "ba")
    updates = await bot.get_updates(timeout=0)
    ids = [u.message.message_id for u in updates if u.message]
    assert ids == [1, 3]
    assert sent.message_id == 2


async def test_delete_message_and_answer_callback(api: FakeBotAPI, bot: telegram.Bot) -> None:
    msg = await bot.send_message(USER, "ảnh CCCD")
    assert await bot.delete_message(USER, msg.message_id) is True
    assert await bot.answer_callback_query("987654321") is True
    assert api.deleted == [(USER, msg.message_id)]
    # callback ids are strings even when they look like numbers
    assert api.answered_callbacks == ["987654321"]


async def test_get_updates_in_order_and_confirmed_by_offset(
    api: FakeBotAPI, bot: telegram.Bot
) -> None:
    ids = [api.add_text(USER, f"tin {i}") for i in range(5)]
    assert ids == [1, 2, 3, 4, 5]
    assert api.pending_updates() == 5

    batch = await bot.get_updates(timeout=0, limit=3)
    assert [u.update_id for u in batch] == [1, 2, 3]
    assert [u.message.text for u in batch if u.message] == ["tin 0", "tin 1", "tin 2"]
    assert api.pending_updates() == 5  # nothing confirmed yet

    batch = await bot.get_updates(offset=batch[-1].update_id + 1, timeout=0)
    assert [u.update_id for u in batch] == [4, 5]
    assert api.pending_updates() == 2

    assert await bot.get_updates(offset=6, timeout=0) == ()
    assert api.pending_updates() == 0


async def test_long_poll_wakes_on_add_text(api: FakeBotAPI, bot: telegram.Bot) -> None:
    started = time.monotonic()
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await api.wait_for(lambda: bool(api.calls_of("getUpdates")))
    assert not poll.done()
    api.add_text(USER, "dậy đi")
    updates = await asyncio.wait_for(poll, 2)
    assert time.monotonic() - started < 2
    assert [u.message.text for u in updates if u.message] == ["dậy đi"]


async def test_long_poll_times_out_empty(api: FakeBotAPI, bot: telegram.Bot) -> None:
    started = time.monotonic()
    assert await bot.get_updates(timeout=1) == ()
    assert 0.9 <= time.monotonic() - started < 3


async def test_unknown_method_is_404(api: FakeBotAPI) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{api.base_url}{api.token}/sendRocket", data={"a": "1"}) as resp,
    ):
        assert resp.status == 404
        assert await resp.json() == {
            "ok": False,
            "error_code": 404,
            "description": "Not Found: method not found",
        }
    assert api.rejected[-1].method == "sendRocket"
    assert api.rejected[-1].status == 404


async def test_wrong_token_is_401(api: FakeBotAPI) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{api.base_url}999:WRONG/getMe") as resp,
    ):
        assert resp.status == 401
        assert await resp.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}

    wrong = telegram.Bot("999:WRONG", base_url=api.base_url, base_file_url=api.base_file_url)
    with pytest.raises(InvalidToken):
        await wrong.initialize()
    await wrong.shutdown()


async def test_json_body_accepted(api: FakeBotAPI) -> None:
    url = f"{api.base_url}{api.token}/sendMessage"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json={"chat_id": 7, "text": "json"}) as resp,
    ):
        body = await resp.json()
    assert resp.status == 200
    assert body["ok"] is True
    assert body["result"]["text"] == "json"
    assert api.sent(7) == [{"chat_id": 7, "text": "json"}]


async def test_block_gives_forbidden(api: FakeBotAPI, bot: telegram.Bot) -> None:
    api.block(USER)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(USER, "còn đó không?")
    await bot.send_message(2002, "ok")  # other chats unaffected
    assert api.sent(USER) == []
    assert [(c.method, c.status) for c in api.rejected] == [("sendMessage", 403)]
    assert api.calls_of("sendMessage")[0].status == 403


async def test_fail_next_429_gives_retry_after(
    api: FakeBotAPI, bot: telegram.Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without PTB_TIMEDELTA, reading RetryAfter.retry_after emits a PTBDeprecationWarning.
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    api.fail_next("sendMessage", 429, "Too Many Requests: retry after 3", retry_after=3, count=2)
    for _ in range(2):
        with pytest.raises(RetryAfter) as info:
            await bot.send_message(USER, "spam")
        assert info.value.retry_after == dtm.timedelta(seconds=3)
    await bot.send_message(USER, "ok now")
    assert [p["text"] for p in api.sent(USER)] == ["ok now"]
    assert [c.status for c in api.calls_of("sendMessage")] == [429, 429, 200]


async def test_fail_next_other_status(api: FakeBotAPI, bot: telegram.Bot) -> None:
    api.fail_next("editMessageText", 400, "Bad Request: message can't be edited")
    msg = await bot.send_message(USER, "a")
    with pytest.raises(BadRequest, match="can't be edited"):
        await bot.edit_message_text("b", USER, msg.message_id)
    edited = await bot.edit_message_text("b", USER, msg.message_id)
    assert isinstance(edited, telegram.Message)
    assert edited.text == "b"
    assert edited.edit_date is not None


async def test_edit_not_modified_and_not_found(api: FakeBotAPI, bot: telegram.Bot) -> None:
    msg = await bot.send_message(USER, "a", reply_markup=keyboard("x"))
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_text("a", USER, msg.message_id, reply_markup=keyboard("x"))
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("a", USER, 999)
    edited = await bot.edit_message_reply_markup(USER, msg.message_id, reply_markup=None)
    assert isinstance(edited, telegram.Message)
    assert edited.reply_markup is None


async def test_send_photo_and_document_recorded(api: FakeBotAPI, bot: telegram.Bot) -> None:
    photo = await bot.send_photo(USER, b"\xff\xd8\xff\xe0jpeg", caption="Mẫu CCCD")
    doc = await bot.send_document(USER, b"%PDF-1.7", filename="huong-dan.pdf")
    by_id = await bot.send_photo(USER, photo.photo[-1].file_id)
    assert photo.caption == "Mẫu CCCD"
    assert len(photo.photo) == 2
    assert doc.document is not None
    assert doc.document.file_name == "huong-dan.pdf"
    assert [m.message_id for m in (photo, doc, by_id)] == [1, 2, 3]
    uploads = [c.params for c in api.calls_of("sendPhoto")]
    assert uploads[0]["photo"]["size"] == 8
    assert uploads[0]["caption"] == "Mẫu CCCD"
    assert uploads[1]["photo"] == photo.photo[-1].file_id
    assert api.calls_of("sendDocument")[0].params["document"]["file_name"] == "huong-dan.pdf"
    assert api.sent(USER) == []  # sent() is sendMessage only


async def test_injected_updates_parse_in_ptb(api: FakeBotAPI, bot: telegram.Bot) -> None:
    menu = await bot.send_message(USER, "Chọn:", reply_markup=keyboard("yes", "no"))
    api.add_command(USER, "/start", "ref_42")
    api.add_callback(USER, "yes")
    api.add_photo(USER)
    api.add_document(USER)
    api.add_sticker(USER)
    api.add_voice(USER)
    api.add_location(USER)
    api.add_contact(USER)
    api.add_edited_text(USER, "sửa")
    api.add_text(USER, "nhóm", chat_type="group", chat_id=-5)
    api.add_raw(make_text_update(USER, "raw"))

    updates = await bot.get_updates(timeout=0)
    assert [u.update_id for u in updates] == list(range(1, 12))
    cmd, cb, photo, doc, sticker, voice, loc, contact, edited, group, raw = updates

    assert cmd.message is not None
    assert cmd.message.text == "/start ref_42"
    assert cmd.message.parse_entities(["bot_command"])
    assert cmd.message.from_user is not None
    assert cmd.message.from_user.language_code == "vi"
    assert cmd.message.from_user.first_name == f"User{USER}"
    assert cmd.message.date.timestamp() == pytest.approx(time.time(), abs=5)

    assert cb.callback_query is not None
    assert cb.callback_query.data == "yes"
    assert isinstance(cb.callback_query.message, telegram.Message)
    assert cb.callback_query.message.message_id == menu.message_id
    assert cb.callback_query.message.from_user == menu.from_user
    assert cb.callback_query.message.reply_markup == keyboard("yes", "no")

    assert photo.message is not None
    assert len(photo.message.photo) == 2
    assert photo.message.photo[-1].width > photo.message.photo[0].width
    assert doc.message is not None
    assert doc.message.document is not None
    assert doc.message.document.file_name == "cccd.jpg"
    assert doc.message.document.mime_type == "image/jpeg"
    assert sticker.message is not None
    assert sticker.message.sticker is not None
    assert voice.message is not None
    assert voice.message.voice is not None
    assert loc.message is not None
    assert loc.message.location is not None
    assert contact.message is not None
    assert contact.message.contact is not None
    assert contact.message.contact.user_id == USER
    assert edited.edited_message is not None
    assert edited.edited_message.text == "sửa"
    assert edited.edited_message.edit_date is not None
    # ids: 1 = menu, 2..8 = command..contact; the edit targets the user's last message
    assert edited.edited_message.message_id == 8
    assert group.effective_chat is not None
    assert (group.effective_chat.id, group.effective_chat.type) == (-5, "group")
    assert raw.message is not None
    assert raw.message.text == "raw"

    file = await bot.get_file(photo.message.photo[-1].file_id)
    assert await file.download_as_bytearray()


async def test_wait_for_times_out_with_useful_message(api: FakeBotAPI, bot: telegram.Bot) -> None:
    await bot.send_message(USER, "chỉ một tin")
    with pytest.raises(AssertionError, match=r"(?s)expected >= 2 sendMessage.*chỉ một tin"):
        await api.wait_sent(USER, 2, timeout=0.2)


async def test_wait_sent_wakes_on_call(api: FakeBotAPI, bot: telegram.Bot) -> None:
    async def later() -> None:
        await asyncio.sleep(0.05)
        await bot.send_message(USER, "a")
        await bot.send_message(USER, "b")

    task = asyncio.create_task(later())
    sent = await api.wait_sent(USER, 2, timeout=3)
    await task
    assert [p["text"] for p in sent] == ["a", "b"]


async def test_latency(api: FakeBotAPI, bot: telegram.Bot) -> None:
    api.latency = 0.2
    started = time.monotonic()
    await bot.send_message(USER, "chậm")
    assert time.monotonic() - started >= 0.2


async def test_commands_roundtrip(api: FakeBotAPI, bot: telegram.Bot) -> None:
    await bot.set_my_commands([("start", "Bắt đầu"), ("help", "Trợ giúp")])
    assert [c.command for c in await bot.get_my_commands()] == ["start", "help"]
    await bot.delete_my_commands()
    assert await bot.get_my_commands() == ()


async def test_application_polling_start_command(api: FakeBotAPI) -> None:
    seen_args: list[list[str]] = []

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        seen_args.append(list(context.args or []))
        assert update.effective_message is not None
        await update.effective_message.reply_text(f"Chào! payload={context.args}")

    app = (
        ApplicationBuilder()
        .token(api.token)
        .base_url(api.base_url)
        .base_file_url(api.base_file_url)
        .build()
    )
    app.add_handler(CommandHandler("start", start))
    async with app:
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=1)
        await app.start()
        api.add_command(USER, "/start", "abc")
        sent = await api.wait_sent(USER, 1)
        await api.wait_for(lambda: api.pending_updates() == 0)
        await app.updater.stop()
        await app.stop()

    assert seen_args == [["abc"]]
    assert sent[0]["text"] == "Chào! payload=['abc']"
    methods = [c.method for c in api.calls]
    assert methods[:3] == ["getMe", "deleteWebhook", "getUpdates"]
    polls = api.calls_of("getUpdates")
    assert polls[0].params["timeout"] == 1
    assert polls[-1].params["timeout"] == 0  # the final confirming poll on stop
    assert polls[-1].params["offset"] == 2
    assert api.pending_updates() == 0
    assert api.rejected == []


async def test_control_endpoints(api: FakeBotAPI, bot: telegram.Bot) -> None:
    updates = [make_text_update(USER, "bench"), make_callback_update(USER, "go")]
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{api.url}/_control/enqueue", json={"updates": updates}) as r:
            assert (await r.json())["enqueued"] == 2
        await bot.send_message(USER, "one")
        await bot.send_message(USER + 1, "two")
        async with session.get(f"{api.url}/_control/stats") as r:
            stats = await r.json()
        assert stats["send_message"] == 2
        assert stats["pending_updates"] == 2
        assert stats["calls"] == len(api.calls)
        assert stats["first_send_at"] <= stats["last_send_at"] <= time.monotonic()
        async with session.get(f"{api.url}/_control/sends", params={"since": "1"}) as r:
            sends = await r.json()
        assert [(s["chat_id"], s["text"]) for s in sends] == [(USER + 1, "two")]
        async with session.post(f"{api.url}/_control/reset") as r:
            assert r.status == 200
        async with session.get(f"{api.url}/_control/stats") as r:
            stats = await r.json()
        assert stats["send_message"] == 0
        assert stats["calls"] == 0
        assert stats["first_send_at"] is None

    got = await bot.get_updates(timeout=0)
    assert got[0].message is not None
    assert got[0].message.text == "bench"
    assert got[1].callback_query is not None
    assert got[1].callback_query.data == "go"


async def test_standalone_process() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.telegram_api",
        "--port",
        "0",
        "--token",
        "42:BENCH",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode().strip()
        assert line.startswith("listening on http://127.0.0.1:")
        url = line.removeprefix("listening on ")
        async with telegram.Bot("42:BENCH", base_url=f"{url}/bot") as client:
            await client.send_message(5, "hi")
        async with aiohttp.ClientSession() as session, session.get(f"{url}/_control/stats") as r:
            stats = await r.json()
        assert stats["send_message"] == 1
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0


# --------------------------------------------------------------------------- flood limits


@pytest.fixture
def ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    """PTB warns (an error here) on building RetryAfter unless durations are timedeltas."""
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


async def post_send(session: aiohttp.ClientSession, api: FakeBotAPI, chat: int) -> Any:
    url = f"{api.base_url}{api.token}/sendMessage"
    async with session.post(url, data={"chat_id": str(chat), "text": "🔔 nhắc"}) as resp:
        body = await resp.json()
        assert resp.status == (200 if body["ok"] else body["error_code"])
        return body


async def test_flood_limits_are_off_by_default(api: FakeBotAPI) -> None:
    assert api.flood_limit is None
    async with aiohttp.ClientSession() as session:
        bodies = await asyncio.gather(*(post_send(session, api, 3000 + i % 5) for i in range(40)))
    assert all(b["ok"] for b in bodies)
    assert len(api.sent()) == 40
    assert api.stats()["flood_429"] == 0


async def test_flood_burst_over_the_overall_limit_gets_429(api: FakeBotAPI) -> None:
    api.flood_limit = 30
    started = time.monotonic()
    async with aiohttp.ClientSession() as session:
        bodies = await asyncio.gather(*(post_send(session, api, 3000 + i) for i in range(40)))
    assert time.monotonic() - started < 1.0, "the burst must fit in one second"

    accepted = [b for b in bodies if b["ok"]]
    refused = [b for b in bodies if not b["ok"]]
    assert (len(accepted), len(refused)) == (30, 10)
    assert refused[0] == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 1",
        "parameters": {"retry_after": 1},
    }
    assert all(b["parameters"]["retry_after"] >= 1 for b in refused)
    # Refused messages were not delivered; each went to its own chat.
    assert len(api.sent()) == 30
    assert sorted(int(p["chat_id"]) for p in api.sent()) == sorted(
        int(b["result"]["chat"]["id"]) for b in accepted
    )
    assert [c.status for c in api.rejected] == [429] * 10
    stats = api.stats()
    assert (stats["flood_429"], stats["flood_429_overall"], stats["flood_429_chat"]) == (10, 10, 0)
    assert stats["send_message"] == 30


@pytest.mark.usefixtures("ptb_timedelta")
async def test_flood_second_message_to_one_chat_within_a_second_gets_429(
    api: FakeBotAPI, bot: telegram.Bot
) -> None:
    api.flood_limit = 30
    await bot.send_message(USER, "một")
    with pytest.raises(RetryAfter) as info:
        await bot.send_message(USER, "hai")
    assert info.value.retry_after == dtm.timedelta(seconds=1)
    await bot.send_message(USER + 1, "another chat is fine")
    assert api.sent_texts(USER) == ["một"]
    assert api.stats()["flood_429_chat"] == 1
    assert api.flood_429 == 1


@pytest.mark.usefixtures("ptb_timedelta")
async def test_flood_windows_slide(api: FakeBotAPI, bot: telegram.Bot) -> None:
    now = [100.0]
    api.flood_clock = lambda: now[0]
    api.flood_limit = 3

    async def send(chat: int) -> bool:
        try:
            await bot.send_message(chat, "x")
        except RetryAfter:
            return False
        return True

    assert [await send(c) for c in (1, 2, 3, 4)] == [True, True, True, False]
    now[0] += 0.5
    assert await send(5) is False  # still 3 delivered in the last second
    assert await send(1) is False  # and chat 1 had one 0.5 s ago
    now[0] += 0.5  # the first three leave the window (it is (t - 1 s, t])
    assert [await send(c) for c in (1, 4, 5, 6)] == [True, True, True, False]
    now[0] += 0.99
    assert await send(1) is False  # 0.99 s after its last: too soon for chat 1
    now[0] += 0.01
    assert await send(1) is True
    assert [int(p["chat_id"]) for p in api.sent()] == [1, 2, 3, 1, 4, 5, 1]
    assert (api.flood_429_overall, api.flood_429_chat) == (3, 2)


@pytest.mark.usefixtures("ptb_timedelta")
async def test_flood_limits_count_only_delivered_messages(
    api: FakeBotAPI, bot: telegram.Bot
) -> None:
    api.flood_clock = lambda: 7.0
    api.flood_limit = 2
    api.block(USER)
    with pytest.raises(Forbidden):
        await bot.send_message(USER, "blocked: not delivered, not counted")
    api.fail_next("sendMessage", 500, "Internal Server Error")
    with pytest.raises(telegram.error.NetworkError):
        await bot.send_message(2, "injected failure: not counted")
    with pytest.raises(BadRequest):
        await bot.send_message(2, " ")  # refused by the method: not counted
    await bot.send_message(2, "a")
    await bot.send_photo(3, b"\xff\xd8jpeg")  # photos are messages too
    with pytest.raises(RetryAfter):
        await bot.send_message(4, "b")
    await bot.edit_message_text("edits are not limited", 2, 1)
    await bot.send_chat_action(4, "typing")
    assert api.flood_429 == 1
    api.reset()
    assert api.stats()["flood_429"] == 0
    with pytest.raises(RetryAfter):  # the window outlives reset()
        await bot.send_message(4, "b")


@pytest.mark.usefixtures("ptb_timedelta")
async def test_control_stats_report_flood_429(api: FakeBotAPI, bot: telegram.Bot) -> None:
    api.flood_limit = 30
    await bot.send_message(USER, "a")
    with pytest.raises(RetryAfter):
        await bot.send_message(USER, "b")
    async with aiohttp.ClientSession() as session, session.get(f"{api.url}/_control/stats") as r:
        stats = await r.json()
        params = {"method": "sendMessage", "since": "0"}
        async with session.get(f"{api.url}/_control/calls", params=params) as r:
            calls = await r.json()
        async with session.get(f"{api.url}/_control/calls", params={"method": "nope"}) as r:
            none = await r.json()
    assert stats["flood_limit"] == 30
    assert stats["flood_429"] == 1
    assert stats["send_message"] == 1
    assert [(c["status"], c["chat_id"]) for c in calls] == [(200, USER), (429, USER)]
    assert calls[0]["at"] <= calls[1]["at"] <= time.monotonic()
    assert none == []


async def test_standalone_process_with_flood_limit() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.telegram_api",
        "--port",
        "0",
        "--flood-limit",
        "30",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode().strip()
        url = line.removeprefix("listening on ")
        api_url = f"{url}/bot123:TEST/sendMessage"
        async with aiohttp.ClientSession() as session:

            async def send(chat: int) -> int:
                async with session.post(api_url, json={"chat_id": chat, "text": "x"}) as r:
                    return r.status

            statuses = await asyncio.gather(*(send(9000 + i) for i in range(40)))
            async with session.get(f"{url}/_control/stats") as r:
                stats = await r.json()
        assert sorted(statuses) == [200] * 30 + [429] * 10
        assert (stats["send_message"], stats["flood_429"], stats["flood_limit"]) == (30, 10, 30)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
