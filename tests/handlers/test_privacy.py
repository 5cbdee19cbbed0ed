"""Privacy by design, proved end to end: what the database and the logs hold after real chats.

A user talks to the real Telegram channel (over HTTP, local Bot API stand-in), types codes and
numbers, sends a photo, reports completion, withdraws consent, deletes their data. Then the
whole database is dumped and searched for anything that identifies them or that they typed.
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta

import pytest

from bot.identity import UserRefs
from bot.logs import configure
from bot.model import Start, Text
from handlers.conversation import Conversations
from storage.database import Database
from tests.conftest import ROOT, T0, TEST_SECRET, rows
from tests.handlers.harness import USER, Harness

TABLES = (
    "sessions", "events", "completions", "deliveries", "daily_events", "reached", "staff",
    "invites", "assisted", "audit", "population",
)  # fmt: skip
TYPED = [
    "ma otp cua toi la 482913",
    "so can cuoc 038123456789",
    "so dien thoai 0912345678",
    "toi ten la Nguyen Van An o thon Dong",
    "cks co mat tien ko",
]


async def dump(db: Database) -> str:
    lines = []
    for table in TABLES:
        lines += [repr(tuple(row)) for row in await rows(db, f"SELECT * FROM {table}")]
    return "\n".join(lines)


async def report_completion(h: Harness) -> None:
    await h.answer(lambda: h.api.add_command(USER, "/start"))
    await h.press("done")
    await h.press("yes")
    await h.press("i:dong-hoa")
    await h.press("yes")
    await h.press("i:vnpt")


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """The bot's real logging set-up, at its most verbose, written to a buffer."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    configure("DEBUG", stream)
    try:
        yield stream
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


async def test_the_database_holds_nothing_that_identifies_the_user(harness: Harness) -> None:
    await report_completion(harness)
    for words in TYPED:
        await harness.say(words)
    await harness.answer(lambda: harness.api.add_photo(USER))
    contents = await dump(harness.db)
    assert "completed" in contents, "the test did store something"
    for secret in (str(USER), f"User{USER}", "482913", "038123456789", "0912345678", "Nguyen"):
        assert secret not in contents, secret
    for words in TYPED:
        assert words not in contents
    assert "AgAC" not in contents, "no file id of the photo"


async def test_deleting_leaves_nothing_linked_to_the_user(harness: Harness) -> None:
    await report_completion(harness)
    other = USER + 1
    await harness.answer(lambda: harness.api.add_command(other, "/start"), user=other)
    await harness.say("xóa dữ liệu của tôi")
    await harness.press("erase")
    ref = UserRefs(TEST_SECRET).ref("telegram", USER)
    contents = await dump(harness.db)
    assert ref not in contents
    assert (await rows(harness.db, "SELECT count(*) FROM completions"))[0][0] == 0
    other_ref = UserRefs(TEST_SECRET).ref("telegram", other)
    assert other_ref in contents, "other users are untouched"


async def test_withdrawing_consent_removes_the_completion_at_once(harness: Harness) -> None:
    await report_completion(harness)
    assert (await rows(harness.db, "SELECT count(*) FROM completions"))[0][0] == 1
    await harness.answer(lambda: harness.api.add_command(USER, "/baomat"))
    reply = await harness.press("withdraw")
    assert "rút lại" in reply[0]["text"]
    assert (await rows(harness.db, "SELECT count(*) FROM completions"))[0][0] == 0
    kinds = [r[0] for r in await rows(harness.db, "SELECT kind FROM events")]
    assert "consent_withdrawn" in kinds


async def test_consent_evidence_is_kept(harness: Harness) -> None:
    await report_completion(harness)
    found = await rows(harness.db, "SELECT detail, at FROM events WHERE kind = 'consent'")
    assert len(found) == 1
    assert found[0][0] == harness.engine.content.texts["consent_version"]
    assert found[0][1] is not None


async def test_logs_hold_no_token_code_or_message_text(
    harness: Harness, captured_logs: io.StringIO
) -> None:
    await report_completion(harness)
    for words in TYPED:
        await harness.say(words)
    logging.getLogger("handlers.telegram").error("failed for 0912345678 with %s", "482913")
    logs = captured_logs.getvalue()
    assert logs, "something was logged"
    assert harness.api.token not in logs
    assert harness.api.token.split(":")[1] not in logs
    for words in TYPED:
        assert words not in logs
    assert "482913" not in logs
    assert "0912345678" not in logs


async def test_rate_limit_slows_a_flood_down(conversations: Conversations) -> None:
    await conversations.handle("telegram", 9, Start())
    replies = [await conversations.handle("telegram", 9, Text("2")) for _ in range(24)]
    answered = [r for r in replies if r.messages]
    slow_down = conversations.engine.notice("slow_down").text
    assert len(answered) == 20
    assert [m.text for m in answered[-1].messages] == [slow_down]
    assert all(not r.messages for r in replies[20:])


async def test_a_flood_of_photos_is_still_deleted(conversations: Conversations) -> None:
    from bot.model import Media

    outcomes = [await conversations.handle("telegram", 9, Media("photo")) for _ in range(25)]
    assert all(o.delete_input for o in outcomes)
    assert not outcomes[-1].messages, "silence after the warning"


async def test_rate_limit_frees_up_after_a_minute(conversations: Conversations) -> None:
    now = T0
    conversations.clock = lambda: now
    for _ in range(21):
        await conversations.handle("telegram", 9, Text("menu"))
    now = T0 + timedelta(seconds=61)
    again = await conversations.handle("telegram", 9, Text("menu"))
    assert again.messages
    assert again.messages[0].text != conversations.engine.notice("slow_down").text


def test_production_refuses_to_start_without_the_id_secret(tmp_path: object) -> None:
    env = {k: v for k, v in os.environ.items() if k != "BOT_ID_SECRET"}
    env.update(BOT_ENV="production", TELEGRAM_BOT_TOKEN="123:X", DATABASE_URL="sqlite://")
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )
    assert result.returncode == 2
    assert "BOT_ID_SECRET" in result.stderr
