"""End to end over HTTP: the real PTB Application against a local stand-in of the Bot API.

A citizen goes from /start to a recorded completion with a photo that must be deleted and a
bot restart in the middle; plus the bad inputs Telegram can deliver.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from bot.model import Choice, Media, Text
from bot.officials import Scope
from handlers.telegram import file_base_url, translate
from storage.database import Database
from storage.staff import StaffRepository
from tests.conftest import T0, rows
from tests.handlers.harness import USER, Harness, buttons


async def query(db: Database, sql: str) -> list[Any]:
    return await rows(db, sql)


async def enrolled_volunteer(db: Database) -> str:
    """The code of a new volunteer of Xã Nông Cống."""
    staff = StaffRepository(db)
    invite = await staff.create_invite(
        "volunteer", Scope("communes", ("16279",)), created_by="test", now=T0
    )
    member = await staff.redeem("telegram", "volunteer-ref", invite, T0)
    assert member is not None
    assert member.code is not None
    return member.code


async def test_citizen_walks_from_start_to_recorded_completion(harness: Harness) -> None:
    api = harness.api
    code = await enrolled_volunteer(harness.db)
    greeting = await harness.answer(lambda: api.add_command(USER, "/start", code))
    assert "KHÔNG BAO GIỜ" in greeting[0]["text"]
    assert [label for label, _ in buttons(greeting[-1])][1] == "📱 Hướng dẫn cài từng bước"
    assert [c["command"] for c in api.commands()][:3] == ["start", "menu", "huongdan"]

    await harness.press("install")
    await harness.press("ok")
    await harness.press("i:vnpt")
    offer = await harness.press("android")
    assert "nhắc" in offer[-1]["text"]
    announcements = await harness.press("yes")
    assert "thông báo" in announcements[-1]["text"], "asked apart from the reminders"
    step1 = await harness.press("no")
    assert step1[-1]["text"].startswith("Bước 1/9")
    kept = "SELECT reminders, announcements FROM contacts"
    assert [tuple(map(bool, r)) for r in await query(harness.db, kept)] == [(True, False)]
    await harness.press("done")
    await harness.press("done")

    # A photo of an ID card sent by mistake: deleted at once, never downloaded.
    reply = await harness.answer(lambda: api.add_photo(USER))
    photo_id = api.last_user_message_id(USER)
    assert (USER, photo_id) in api.deleted
    assert not api.calls_of("getFile")
    assert "xóa ảnh" in reply[0]["text"]

    # The bot restarts in the middle of step 3/9.
    await harness.stop_bot()
    await harness.start_bot()
    resumed = await harness.answer(lambda: api.add_command(USER, "/start"))
    assert "Bước 3/9" in resumed[-1]["text"]
    step3 = await harness.press("resume")
    assert step3[-1]["text"].startswith("Bước 3/9")

    for _ in range(7):
        await harness.press("done")
    await harness.press("yes")
    await harness.say("khu pho 1")  # one commune: not asked
    done = await harness.press("yes")  # the provider just installed: not asked again
    assert "Đã ghi nhận" in done[0]["text"]

    rows = await query(harness.db, "SELECT commune, village, provider, referral FROM completions")
    assert [tuple(r) for r in rows] == [("16279", "kp-1", "vnpt", code)]
    # Every button press was answered, so no spinner is left on the user's phone.
    assert len(api.answered_callbacks) == harness.presses == 18


async def test_sensitive_text_is_deleted_and_not_stored(harness: Harness) -> None:
    api = harness.api
    await harness.answer(lambda: api.add_command(USER, "/start"))
    reply = await harness.say("ma otp cua toi la 482913")
    assert "OTP" in reply[0]["text"]
    assert (USER, api.last_user_message_id(USER)) in api.deleted
    for table in ("sessions", "events"):
        assert "482913" not in repr(await query(harness.db, f"SELECT * FROM {table}"))


async def test_group_chat_is_asked_to_chat_privately(harness: Harness) -> None:
    api = harness.api
    group = -100777
    before = len(api.sent(group))
    api.add_text(USER, "/start", chat_type="supergroup", chat_id=group)
    await api.wait_for(lambda: len(api.sent(group)) > before)
    assert "riêng" in api.sent(group)[-1]["text"]
    assert await query(harness.db, "SELECT * FROM sessions") == []


async def test_forged_button_data_is_refused_kindly(harness: Harness) -> None:
    api = harness.api
    await harness.answer(lambda: api.add_command(USER, "/start"))
    reply = await harness.answer(lambda: api.add_callback(USER, "x" * 64))
    assert "đã cũ" in reply[0]["text"]
    reply = await harness.answer(lambda: api.add_callback(USER, "menu|g:erase"))
    assert "đã cũ" in reply[0]["text"]


@pytest.mark.parametrize(
    "send",
    ["add_sticker", "add_voice", "add_location", "add_contact", "add_document", "edited"],
)
async def test_other_inputs_get_a_reply(harness: Harness, send: str) -> None:
    api = harness.api
    await harness.answer(lambda: api.add_command(USER, "/start"))
    if send == "edited":
        reply = await harness.answer(lambda: api.add_edited_text(USER, "sửa"))
    else:
        reply = await harness.answer(lambda: getattr(api, send)(USER))
    assert reply[0]["text"]
    assert reply[-1].get("reply_markup"), "the current screen is shown again"


async def test_blocked_user_is_marked_stopped(harness: Harness) -> None:
    api = harness.api
    await harness.answer(lambda: api.add_command(USER, "/start"))
    api.block(USER)
    api.add_text(USER, "menu")
    await api.wait_for(lambda: bool(api.rejected))
    assert harness.channel is not None
    await harness.channel.inbound.drain()
    rows = await query(harness.db, "SELECT stopped FROM sessions")
    assert [bool(r[0]) for r in rows] == [True]


async def test_a_reply_refused_with_429_is_sent_again_after_the_delay(harness: Harness) -> None:
    api = harness.api
    await harness.answer(lambda: api.add_command(USER, "/start"))
    menu = api.sent(USER)[-1]["text"].rpartition("\n\n")[2]  # after greeting and promise
    api.fail_next("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    started = time.monotonic()
    reply = await harness.say("menu")
    assert time.monotonic() - started >= 1.0
    assert [m["text"] for m in reply] == [menu]


async def test_a_redelivered_update_is_applied_once(harness: Harness) -> None:
    api = harness.api
    await harness.answer(lambda: api.add_command(USER, "/start"))
    update_id = api.add_text(USER, "2")
    await api.wait_for(lambda: api.pending_updates() == 0)
    await harness.stop_bot()
    await asyncio.sleep(1.2)  # the stopped bot's last long poll (1 s) ends at the stand-in
    sent = len(api.sent(USER))
    # The same update again, as Telegram does when a crash kept the offset from advancing:
    # the restarted bot's first getUpdates (no offset) receives it.
    message = {"message_id": 999, "date": 0, "chat": {"id": USER, "type": "private"}}
    message |= {"from": {"id": USER, "is_bot": False, "first_name": "U"}, "text": "2"}
    api.add_raw({"update_id": update_id, "message": message})
    await harness.start_bot()
    await api.wait_for(lambda: api.pending_updates() == 0)
    await harness.say("menu")  # answered: the redelivered one was taken and passed over
    assert len(api.sent(USER)) == sent + 1
    events = await query(harness.db, "SELECT count(*) FROM events WHERE kind='step'")
    assert events[0][0] == 3  # menu, ready, menu -- not ready twice


def test_translate_maps_button_data_and_commands() -> None:
    from telegram import Update

    def upd(raw: dict[str, Any]) -> Update:
        return Update.de_json({"update_id": 1, **raw}, None)

    user = {"id": 9, "is_bot": False, "first_name": "U"}
    chat = {"id": 9, "type": "private"}
    shown = {"message_id": 3, "date": 0, "chat": chat}
    press = upd(
        {"callback_query": {"id": "c", "from": user, "chat_instance": "i", "data": "store|done"}}
    )
    press = upd({"callback_query": {**press.to_dict()["callback_query"], "message": shown}})
    incoming = translate(press)
    assert incoming is not None
    assert incoming.event == Choice(option="done", screen="store")
    sent = {"message_id": 1, "date": 0, "chat": chat, "from": user}
    start = upd({"message": {**sent, "text": "/start vol_1"}})
    assert translate(start) is not None
    typed = upd({"message": {**sent, "text": "xin chao"}})
    incoming = translate(typed)
    assert incoming is not None
    assert incoming.event == Text("xin chao")
    # A photo: its largest size by Telegram's id, and its caption (a volunteer's may be
    # passed on in a help chat).
    sizes = [{"file_id": f, "file_unique_id": f, "width": w, "height": w} for f, w in
             (("small", 90), ("large", 1280))]  # fmt: skip
    photo = upd({"message": {**sent, "photo": sizes, "caption": "nut xanh"}})
    incoming = translate(photo)
    assert incoming is not None
    assert incoming.event == Media("photo", "tg:large", "nut xanh")
    # A button under a group message older than 48 hours: Telegram sends what is left of the
    # message (date 0), still with its chat -- a group, so the group notice, not a step.
    old_group = {"message_id": 3, "date": 0, "chat": {"id": -100, "type": "group"}}
    press = upd({"callback_query": {**press.to_dict()["callback_query"], "message": old_group}})
    incoming = translate(press)
    assert incoming is not None
    assert (incoming.chat, incoming.event) == ("-100", None)


def test_file_url_follows_the_api_url() -> None:
    assert file_base_url("https://api.telegram.org/bot") == "https://api.telegram.org/file/bot"
    assert file_base_url("http://127.0.0.1:8081/bot") == "http://127.0.0.1:8081/file/bot"


async def test_official_enrols_and_gets_figures_on_telegram(harness: Harness) -> None:
    from datetime import UTC, datetime

    from bot.officials import Scope
    from storage.staff import StaffRepository

    api = harness.api
    staff = StaffRepository(harness.db)
    code = await staff.create_invite(
        "official", Scope("communes", ("16279",)), created_by="cli", now=datetime.now(UTC)
    )
    welcome = await harness.answer(lambda: api.add_command(USER, "/start", code))
    assert "/stats" in welcome[0]["text"]
    figures = await harness.say("/stats")
    assert "0/3.676" in figures[0]["text"]
    before = len(api.calls_of("sendDocument"))
    api.add_text(USER, "/export")
    await api.wait_for(lambda: len(api.calls_of("sendDocument")) > before)
    api.add_text(USER, "/chart")
    await api.wait_for(lambda: bool(api.calls_of("sendPhoto")))
    assert harness.channel is not None
    await harness.channel.inbound.drain()
    # A citizen typing the same command sees no figure.
    other = USER + 7
    await harness.answer(lambda: api.add_command(other, "/start"), user=other)
    reply = await harness.answer(lambda: api.add_text(other, "/stats"), user=other)
    assert "3.676" not in reply[0]["text"]


async def test_ptb_keeps_no_note_of_the_users_it_served(harness: Harness) -> None:
    """Without persistence PTB would keep every chat and user id seen, forever."""
    for user in range(USER, USER + 5):
        await harness.answer(lambda user=user: harness.api.add_command(user, "/start"), user)
    assert harness.channel is not None
    app = harness.channel.app
    assert not app._chat_ids_to_be_updated_in_persistence
    assert not app._user_ids_to_be_updated_in_persistence


async def test_a_link_with_a_code_no_volunteer_has_is_not_kept(harness: Harness) -> None:
    """A link with a wrong code credits nobody, and does not stop the right one counting."""
    api = harness.api
    await harness.answer(lambda: api.add_command(USER, "/start", "VWRONG1"))
    code = await enrolled_volunteer(harness.db)
    await harness.answer(lambda: api.add_command(USER, "/start", code))
    referrals = await query(harness.db, "SELECT detail FROM events WHERE kind = 'referral'")
    assert [tuple(r) for r in referrals] == [(code,)]
