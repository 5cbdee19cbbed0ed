"""Reminders through the outbox, on SQLite and PostgreSQL, sent to the local Bot API stand-in.

Time is a clock the test moves; T0 is 08:00 in Vietnam.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import pytest

from bot.config import Config
from bot.engine import Engine
from bot.identity import UserRefs
from bot.model import Start, Text
from handlers import outbox
from handlers.conversation import Conversations
from handlers.inbound import Inbound
from handlers.outbox import OutboxWorker, Pacer
from handlers.telegram import TelegramChannel
from storage.database import Database
from storage.outbox import OutboxStore
from storage.repository import Repository
from tests.conftest import T0, TEST_SECRET, rows
from tests.fakes.telegram_api import FakeBotAPI

ALICE, BOB = 5101, 5102  # Alice says yes to reminders, Bob says no
TO_FIRST_STEP = ("2", "1", "1", "1")  # menu -> ready -> provider -> phone -> reminders?


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def move(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Setup:
    api: FakeBotAPI
    db: Database
    clock: Clock
    conversations: Conversations
    telegram: TelegramChannel
    worker: OutboxWorker

    async def say(self, user: int, *texts: str) -> None:
        for text in texts:
            event = Start() if text == "/start" else Text(text)
            await self.conversations.handle("telegram", user, event)
            self.clock.move(seconds=5)

    async def round(self) -> int:
        """What the outbox does each minute: plan, then send what is due."""
        planned = await self.worker.plan()
        await self.worker.send_due()
        await self.worker.drain()
        return planned

    async def statuses(self) -> list[str]:
        return [r[0] for r in await rows(self.db, "SELECT status FROM outbox ORDER BY id")]

    def reminders(self, user: int) -> list[str]:
        return [t for t in self.api.sent_texts(user) if t.startswith("🔔")]


def fast(config: Config) -> Config:
    return replace(config, outbox=replace(config.outbox, messages_per_second=30.0))


@pytest.fixture
async def s(engine: Engine, db: Database) -> AsyncIterator[Setup]:
    clock = Clock(T0)
    engine = Engine(engine.content, fast(engine.config), engine.understanding)
    conversations = Conversations(engine, Repository(db), UserRefs(TEST_SECRET), clock=clock)
    async with FakeBotAPI() as api:
        telegram = TelegramChannel(
            Inbound(conversations),
            engine.content,
            api.token,
            base_url=api.base_url,
            rate_limiter=False,
        )
        await telegram.app.initialize()
        worker = OutboxWorker(
            OutboxStore(db), conversations, {"telegram": telegram}, "test-holder", clock=clock
        )
        try:
            yield Setup(api, db, clock, conversations, telegram, worker)
        finally:
            await telegram.app.shutdown()


async def two_citizens_mid_way(s: Setup) -> None:
    await s.say(ALICE, "/start", *TO_FIRST_STEP, "1", "2")  # "✅ Có, nhắc tôi", no announcements
    await s.say(BOB, "/start", *TO_FIRST_STEP, "2")  # "Không cần"


async def test_reminded_after_a_day_then_three_days_never_a_third_time(s: Setup) -> None:
    await two_citizens_mid_way(s)
    s.clock.move(hours=23)
    assert await s.round() == 0
    s.clock.move(hours=1, minutes=1)
    assert await s.round() == 1
    (reminder,) = s.reminders(ALICE)
    assert "Bước 1/9" in reminder
    assert s.reminders(BOB) == []  # said no
    s.clock.move(hours=71)
    assert await s.round() == 0  # 3 days after the first, not yet
    s.clock.move(hours=1, minutes=1)
    assert await s.round() == 1
    s.clock.move(days=30)
    assert await s.round() == 0
    assert len(s.reminders(ALICE)) == 2
    assert await s.statuses() == ["sent", "sent"]
    events = await rows(s.db, "SELECT count(*) FROM events WHERE kind = 'reminder'")
    assert events[0][0] == 2


async def test_coming_back_moves_the_reminder_and_completing_ends_them(s: Setup) -> None:
    await two_citizens_mid_way(s)
    s.clock.move(hours=3)
    await s.say(ALICE, "xong")  # step 1 done: the next reminder counts from now
    s.clock.move(hours=23)
    assert await s.round() == 0
    s.clock.move(hours=1, minutes=1)
    assert await s.round() == 1
    assert "Bước 2/9" in s.reminders(ALICE)[0]
    await s.say(ALICE, "menu")  # back at the menu: not mid-way any more
    s.clock.move(days=4)
    assert await s.round() == 0
    assert len(s.reminders(ALICE)) == 1


async def test_quiet_hours_hold_reminders_until_morning(s: Setup) -> None:
    s.clock.move(hours=13)  # 21:00 in Vietnam
    await two_citizens_mid_way(s)
    s.clock.move(hours=24, minutes=30)  # 21:31 the next day: due, but quiet
    assert await s.round() == 1
    s.clock.move(hours=9)  # 06:31
    await s.round()
    assert s.reminders(ALICE) == []
    s.clock.move(minutes=30)  # 07:01
    await s.round()
    assert len(s.reminders(ALICE)) == 1
    sent_at = await rows(s.db, "SELECT done_at FROM outbox")
    assert sent_at[0][0] is not None


async def test_stop_cancels_what_is_waiting_and_forgets_the_address(s: Setup) -> None:
    s.clock.move(hours=13)
    await two_citizens_mid_way(s)
    s.clock.move(hours=24, minutes=30)  # planned, held by quiet hours
    assert await s.round() == 1
    await s.say(ALICE, "dừng")
    assert await s.statuses() == ["cancelled"]
    assert await rows(s.db, "SELECT * FROM contacts") == []
    s.clock.move(hours=10)
    await s.round()
    assert s.reminders(ALICE) == []


async def test_delete_my_data_deletes_address_and_outbox_rows(s: Setup) -> None:
    await two_citizens_mid_way(s)
    s.clock.move(hours=25)
    await s.round()
    assert await rows(s.db, "SELECT count(*) FROM contacts") == [(1,)]
    await s.say(ALICE, "/xoadulieu", "1")  # "🗑 Xóa hết"
    assert await rows(s.db, "SELECT count(*) FROM contacts") == [(0,)]
    assert await rows(s.db, "SELECT count(*) FROM outbox") == [(0,)]


async def test_the_address_is_kept_sealed(s: Setup) -> None:
    await two_citizens_mid_way(s)
    ((sealed,),) = await rows(s.db, "SELECT address FROM contacts")
    assert str(ALICE) not in sealed
    ref = UserRefs(TEST_SECRET).ref("telegram", ALICE)
    assert UserRefs(TEST_SECRET).unseal("telegram", ref, sealed) == str(ALICE)
    assert UserRefs(TEST_SECRET).unseal("telegram", "another-ref", sealed) is None


async def test_a_blocked_user_is_marked_stopped_and_not_tried_again(s: Setup) -> None:
    await two_citizens_mid_way(s)
    s.api.block(ALICE)
    s.clock.move(hours=25)
    await s.round()
    assert await s.statuses() == ["failed"]
    assert await rows(s.db, "SELECT count(*) FROM contacts") == [(0,)]
    ref = UserRefs(TEST_SECRET).ref("telegram", ALICE)
    stopped = await rows(s.db, f"SELECT stopped FROM sessions WHERE user_ref = '{ref}'")
    assert bool(stopped[0][0]) is True
    blocked = await rows(s.db, "SELECT count(*) FROM events WHERE kind = 'blocked'")
    assert blocked == [(1,)]


async def test_flood_control_is_waited_out_and_the_reminder_sent_once(s: Setup) -> None:
    await two_citizens_mid_way(s)
    s.api.fail_next("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    s.clock.move(hours=25)
    await s.round()
    assert s.reminders(ALICE) == []
    assert await s.statuses() == ["pending"]
    assert s.worker.stats.flood_waits == 1
    s.clock.move(seconds=2)
    await asyncio.sleep(1.0)  # the pacer honours retry_after in real time too
    await s.round()
    assert len(s.reminders(ALICE)) == 1
    assert await s.statuses() == ["sent"]
    events = await rows(s.db, "SELECT count(*) FROM events WHERE kind = 'reminder'")
    assert events == [(1,)]  # the step was taken once; the retry resent its messages


async def test_rows_left_in_flight_by_a_dead_worker_are_never_resent(s: Setup) -> None:
    await two_citizens_mid_way(s)
    s.clock.move(hours=25)
    await s.worker.plan()
    await s.db.run(
        lambda conn: conn.exec_driver_sql(
            "UPDATE outbox SET status = 'sending', claimed_by = 'dead-worker'"
        )
    )
    assert await s.worker.store.sweep_in_doubt("test-holder", s.clock()) == 1
    await s.round()
    assert s.reminders(ALICE) == []
    assert await s.statuses() == ["unknown"]


async def test_pacer_keeps_to_the_rate_overall_and_per_chat() -> None:
    now = [0.0]
    released: list[tuple[str, float]] = []

    async def no_wait(_seconds: float) -> None:
        return None

    pacer = Pacer(rate=25, per_chat=1.0, clock=lambda: now[0], sleep=no_wait)

    async def take(chat: str) -> None:
        released.append((chat, await pacer.wait(chat)))

    await asyncio.gather(*(take(f"c{i % 40}") for i in range(40)))
    times = sorted(t for _, t in released)
    assert all(b - a >= 0.04 - 1e-9 for a, b in itertools.pairwise(times))
    await asyncio.gather(*(take("c0") for _ in range(3)))
    own = sorted(t for c, t in released if c == "c0")
    assert all(b - a >= 1.0 - 1e-9 for a, b in itertools.pairwise(own))
    pacer.pause(5)
    await take("new")
    assert released[-1][1] >= 5.0


async def test_pacer_spaces_waiters_out_again_after_the_loop_was_held() -> None:
    """Ten waiters whose slots all passed while the event loop was held (a long
    transaction) are let out one interval apart, not at once."""
    now = [0.0]

    async def held(seconds: float) -> None:
        await asyncio.sleep(0)
        now[0] = max(now[0], 1.0)  # everyone wakes at 1.0, past their slots

    pacer = Pacer(rate=25, per_chat=1.0, clock=lambda: now[0], sleep=held)
    out = await asyncio.gather(*(pacer.wait(f"c{i}") for i in range(10)))
    assert out[0] == 0.0
    assert out[1:] == pytest.approx([1.0 + 0.04 * i for i in range(9)])


async def test_pacer_pause_holds_back_those_already_waiting() -> None:
    now = [0.0]
    paused = False

    async def sleep(seconds: float) -> None:
        nonlocal paused
        if not paused:  # a 429 arrives while they wait for their slots
            paused = True
            pacer.pause(3.0)
        await asyncio.sleep(0)
        now[0] += seconds

    pacer = Pacer(rate=25, per_chat=1.0, clock=lambda: now[0], sleep=sleep)
    out = await asyncio.gather(*(pacer.wait(f"c{i}") for i in range(4)))
    assert out[0] == 0.0  # it had left before the 429
    assert min(out[1:]) >= 3.0


async def test_a_store_refusing_writes_is_one_warning_and_the_reminder_goes_later(
    s: Setup, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process holds SQLite's write lock: every claim fails. bench/faults.py saw an
    ERROR with a traceback per row and round; now one warning, then the reminder once the
    store takes writes again."""
    if s.db.dialect != "sqlite":
        pytest.skip("the write lock of another process is SQLite's")
    await two_citizens_mid_way(s)
    s.clock.move(days=1, minutes=1)
    assert await s.worker.plan() == 1
    monkeypatch.setattr(outbox, "TROUBLE_PAUSE", 0.1)
    path = s.db.url.removeprefix("sqlite:///")
    db = Database(s.db.url, lock_wait=0.05)  # the store as the bot sees it, waiting briefly
    conversations = Conversations(
        s.conversations.engine, Repository(db), UserRefs(TEST_SECRET), clock=s.clock
    )
    worker = OutboxWorker(
        OutboxStore(db), conversations, {"telegram": s.telegram}, "h", clock=s.clock,
        idle_wait=0.02,
    )  # fmt: skip
    holder = sqlite3.connect(path, timeout=0)
    holder.execute("BEGIN IMMEDIATE")
    caplog.set_level(logging.INFO, logger="handlers.outbox")
    running = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(1.5)  # 15 tries or more at a pause of 0.1 s
        assert s.reminders(ALICE) == []
        holder.rollback()
        for _ in range(200):
            if s.reminders(ALICE):
                break
            await asyncio.sleep(0.05)
    finally:
        holder.close()
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await db.dispose()
    assert len(s.reminders(ALICE)) == 1
    said = [r for r in caplog.records if r.name == "handlers.outbox"]
    assert [r.levelname for r in said] == ["WARNING"], [r.getMessage() for r in said]
    assert said[0].exc_info is None
    assert "refuses writes" in said[0].getMessage()
