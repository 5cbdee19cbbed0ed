"""Nothing lost, nothing doubled, nobody left without an answer: the inbound path's promises
under the faults a webhook server meets (a crash after a delivery was acknowledged, a crash
between a step's commit and its replies, a store that cannot commit), over real HTTP against
the Telegram stand-in."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import insert

from app.server import make_app
from bot.engine import Engine
from bot.identity import UserRefs
from handlers.conversation import Conversations
from handlers.inbound import Inbound, _from_json
from handlers.staff import StaffDesk
from handlers.telegram import TelegramChannel
from storage.database import Database, migrate
from storage.inbox import Inbox
from storage.models import Base
from storage.repository import CUT_OFF, Repository
from storage.staff import StaffRepository
from tests.conftest import T0, TEST_SECRET, rows
from tests.fakes.telegram_api import FakeBotAPI, make_text_update

SECRET = "inbound-webhook-secret"
USER = 7301


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> Any:
        return self.now


class Served:
    """A webhook server with the production wiring: an inbox in front of every step."""

    def __init__(
        self,
        api: FakeBotAPI,
        server: TestServer,
        db: Database,
        inbound: Inbound,
        channel: TelegramChannel,
        clock: Clock,
    ):
        self.api, self.server, self.db = api, server, db
        self.inbound, self.channel, self.clock = inbound, channel, clock
        self.next_id = 100

    async def post(self, update: dict[str, Any]) -> int:
        if "update_id" not in update:
            update = {"update_id": self.next_id, **update}
            self.next_id += 1
        headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                self.server.make_url("/telegram/webhook"), json=update, headers=headers
            ) as response,
        ):
            return response.status

    async def count(self, table: str) -> int:
        return int((await rows(self.db, f"SELECT count(*) FROM {table}"))[0][0])


async def _served(engine: Engine, db: Database, api: FakeBotAPI) -> AsyncIterator[Served]:
    clock = Clock()
    refs = UserRefs(TEST_SECRET)
    staff = StaffRepository(db)
    conversations = Conversations(engine, Repository(db), refs, clock=clock)
    desk = StaffDesk(engine.config, engine.content, db, staff, refs, clock)
    inbound = Inbound(conversations, desk, inbox=Inbox(db), clock=clock)
    channel = TelegramChannel(
        inbound, engine.content, api.token, base_url=api.base_url, webhook_secret=SECRET
    )
    await channel.start()
    server = TestServer(make_app([channel], store=db))
    await server.start_server()
    try:
        yield Served(api, server, db, inbound, channel, clock)
    finally:
        await server.close()
        await channel.stop()


@pytest.fixture
async def served(engine: Engine, db: Database) -> AsyncIterator[Served]:
    async with FakeBotAPI() as api:
        async for world in _served(engine, db, api):
            yield world


async def test_a_delivery_is_acknowledged_once_stored_then_its_step_is_done(
    served: Served,
) -> None:
    assert await served.post(make_text_update(USER, "/start")) == 200
    # Acknowledged once durable: the inbox row, or already the step.
    assert await served.count("inbox") + await served.count("sessions") >= 1
    await served.inbound.drain()
    assert await served.count("inbox") == 0, "deleted in the step's own transaction"
    assert await served.count("sessions") == 1
    assert len(served.api.sent(USER)) == 1
    sealed = repr(await rows(served.db, "SELECT * FROM deliveries"))
    assert str(USER) not in sealed, "no user id in delivery rows"


async def test_a_delivery_a_crash_left_in_the_inbox_is_taken_up_once(served: Served) -> None:
    """A worker stored the delivery, answered 200, and died before the step: the sweeper of
    any worker takes it up later, exactly once."""
    refs = served.inbound.conversations.refs
    ref = refs.ref("telegram", str(USER))
    payload = {
        "user": str(USER),
        "chat": str(USER),
        "event": {"text": "xin chào"},
        "delivery": "555",
        "message": "9",
    }
    inbox = served.inbound.inbox
    assert inbox is not None
    await inbox.put("telegram", ref, refs.seal("telegram", ref, json.dumps(payload)), T0)
    channels = {"telegram": served.channel}
    assert await served.inbound.sweep_once(channels) == 0, "not left behind yet"
    served.clock.now = T0 + CUT_OFF + timedelta(seconds=1)
    assert await served.inbound.sweep_once(channels) == 1
    assert await served.count("inbox") == 0
    assert len(served.api.sent(USER)) == 1
    assert await served.inbound.sweep_once(channels) == 0
    # Telegram delivering the same update (it was acknowledged, but say it was not): once.
    assert await served.post({"update_id": 555, **make_text_update(USER, "xin chào")}) == 200
    await served.inbound.drain()
    assert len(served.api.sent(USER)) == 1
    started = await rows(served.db, "SELECT count(*) FROM events WHERE kind = 'started'")
    assert started[0][0] == 1


async def test_a_row_from_before_the_start_is_taken_up_by_the_first_sweep(served: Served) -> None:
    """What a killed process acknowledged but never applied is taken up by the restarted
    one's first sweep, not 30 s later (the relay crash test waited that long for it)."""
    refs = served.inbound.conversations.refs
    ref = refs.ref("telegram", str(USER))
    left = {"user": str(USER), "chat": str(USER), "event": {"start": None}, "delivery": "42"}
    inbox = served.inbound.inbox
    assert inbox is not None
    await inbox.put(
        "telegram", ref, refs.seal("telegram", ref, json.dumps(left)), T0 - timedelta(seconds=2)
    )
    assert await served.inbound.sweep_once({"telegram": served.channel}) == 1
    assert await served.count("inbox") == 0
    assert len(served.api.sent(USER)) == 1, "the greeting"


async def test_a_delivery_a_crash_left_behind_is_applied_before_the_users_next(
    served: Served,
) -> None:
    """bench/faults.py (1,500 citizens, kill -9 in a burst): rows a crash left in the inbox
    waited for the sweeper -- minutes, with a backlog -- while the same citizens' next messages
    were applied at once, before them: 1,046 of 1,500 conversations went out of order. Now a
    citizen's rows left behind (from before this process started, or older than the
    sweeper's 30 s) are applied first, in order, when their next message comes."""
    refs = served.inbound.conversations.refs
    ref = refs.ref("telegram", str(USER))
    inbox = served.inbound.inbox
    assert inbox is not None
    left = {"user": str(USER), "chat": str(USER), "event": {"start": None}, "delivery": "41"}
    sealed = refs.seal("telegram", ref, json.dumps(left))
    await inbox.put("telegram", ref, sealed, T0 - timedelta(seconds=5))  # a previous life
    assert await served.post(make_text_update(USER, "1")) == 200
    await served.inbound.drain()
    assert await served.count("inbox") == 0
    kinds = await rows(served.db, "SELECT kind, step FROM events ORDER BY id")
    assert kinds[:2] == [("started", None), ("step", "menu")], kinds
    assert len(kinds) == 3, "then the menu's option 1"
    assert kinds[2] != ("step", "menu")
    # The sweeper finds nothing left to do, now or later.
    await asyncio.sleep(0.1)  # the "sent" marks are written shortly after
    served.clock.now = T0 + CUT_OFF + timedelta(seconds=1)
    assert await served.inbound.sweep_once({"telegram": served.channel}) == 0
    assert len(served.api.sent(USER)) == 2, "the /start's greeting, then the next screen"


async def test_a_row_the_sweeper_queued_behind_the_users_next_delivery_goes_first(
    served: Served,
) -> None:
    """The sweeper may queue a left-behind row after the same user's next delivery was
    queued (bench/faults.py, a backlog after a second kill: 171 of 1,500 conversations out
    of order): the older row is still applied first, and once."""
    refs = served.inbound.conversations.refs
    ref = refs.ref("telegram", str(USER))
    inbox = served.inbound.inbox
    assert inbox is not None
    deliveries: list[dict[str, object]] = [
        {"user": str(USER), "chat": str(USER), "event": event, "delivery": number}
        for event, number in (({"start": None}, "41"), ({"text": "1"}, "42"))
    ]
    ids = [
        await inbox.put("telegram", ref, refs.seal("telegram", ref, json.dumps(d)), at)
        for d, at in zip(deliveries, (T0 - timedelta(seconds=5), T0), strict=True)
    ]
    for delivery, row in reversed(list(zip(deliveries, ids, strict=True))):
        served.inbound._queue(served.channel, _from_json(delivery), row)  # newer first
    await served.inbound.drain()
    kinds = await rows(served.db, "SELECT kind, step FROM events ORDER BY id")
    assert kinds[:2] == [("started", None), ("step", "menu")], kinds
    assert len(kinds) == 3, "then the menu's option 1, and nothing twice"
    assert await served.count("inbox") == 0
    assert len(served.api.sent(USER)) == 2


async def test_the_sweeper_waits_for_its_own_rows_not_for_every_delivery(served: Served) -> None:
    """bench/faults.py (1,500 citizens writing without pause, serve killed twice): the
    sweeper waited for the whole queue to empty after each round, which under steady load it
    never did, so replies a crash cut off stayed unsent until the load ended (7 steps never
    answered). Here another citizen's delivery is still being processed."""
    release = asyncio.Event()

    async def busy() -> None:
        await release.wait()

    served.inbound.runner.submit(("telegram", "999"), busy)
    refs = served.inbound.conversations.refs
    ref = refs.ref("telegram", str(USER))
    inbox = served.inbound.inbox
    assert inbox is not None
    left = {"user": str(USER), "chat": str(USER), "event": {"start": None}, "delivery": "41"}
    await inbox.put("telegram", ref, refs.seal("telegram", ref, json.dumps(left)), T0)
    served.clock.now = T0 + CUT_OFF + timedelta(seconds=1)
    try:
        swept = served.inbound.sweep_once({"telegram": served.channel})
        assert await asyncio.wait_for(swept, 10) == 1
        assert len(served.api.sent(USER)) == 1  # the greeting, in one message
    finally:
        release.set()
    await served.inbound.drain()


async def test_replies_a_crash_cut_off_are_sent_on_redelivery(served: Served) -> None:
    """The step was committed but its replies never left (the platform refused them, as a
    worker dying at that moment would leave them): when Telegram delivers the update again,
    the citizen gets the answer -- not silence -- and only once."""
    served.api.fail_next("sendMessage", 500, "Internal Server Error")
    update = {"update_id": 700, **make_text_update(USER, "/start")}
    assert await served.post(update) == 200
    await served.inbound.drain()
    assert served.api.sent(USER) == []
    # Soon after, the replies may still be on their way: a repeat stays silent.
    assert await served.post(update) == 200
    await served.inbound.drain()
    assert served.api.sent(USER) == []
    served.clock.now = T0 + CUT_OFF + timedelta(seconds=1)
    assert await served.post(update) == 200
    await served.inbound.drain()
    await asyncio.sleep(0.1)  # the "sent" mark is written shortly after
    assert len(served.api.sent(USER)) == 1
    assert await served.count("deliveries WHERE outgoing IS NOT NULL") == 0
    assert await served.post(update) == 200
    await served.inbound.drain()
    assert len(served.api.sent(USER)) == 1, "sent once"


async def test_replies_a_crash_cut_off_are_sent_by_the_sweeper(served: Served) -> None:
    served.api.fail_next("sendMessage", 500, "Internal Server Error")
    assert await served.post(make_text_update(USER, "/start")) == 200
    await served.inbound.drain()
    assert served.api.sent(USER) == []
    served.clock.now = T0 + CUT_OFF + timedelta(seconds=1)
    assert await served.inbound.sweep_once({"telegram": served.channel}) == 1
    assert len(served.api.sent(USER)) == 1
    await asyncio.sleep(0.1)
    assert await served.inbound.sweep_once({"telegram": served.channel}) == 0


async def test_a_store_that_cannot_commit_is_reported_and_nothing_acknowledged(
    engine: Engine, tmp_path: Path
) -> None:
    """Another process holds SQLite's write lock: /healthz says so at once (503), and a
    webhook delivery is refused with 503 -- Telegram delivers it again -- instead of being
    acknowledged and dropped."""
    path = tmp_path / "locked.db"
    db = Database(f"sqlite:///{path}", lock_wait=0.3)
    await migrate(db)
    try:
        async with FakeBotAPI() as api:
            async for world in _served(engine, db, api):
                holder = sqlite3.connect(path, timeout=0)
                holder.execute("BEGIN IMMEDIATE")
                try:
                    async with aiohttp.ClientSession() as session:
                        started = asyncio.get_running_loop().time()
                        async with session.get(world.server.make_url("/healthz")) as response:
                            assert response.status == 503
                            assert (await response.json())["store"] in ("busy", "unavailable")
                        assert asyncio.get_running_loop().time() - started < 2.0
                    assert await world.post(make_text_update(USER, "/start")) == 503
                finally:
                    holder.rollback()
                    holder.close()
                assert await world.post(make_text_update(USER, "/start")) == 200
                await world.inbound.drain()
                assert len(api.sent(USER)) == 1
    finally:
        await db.dispose()


async def test_erasing_removes_delivery_and_inbox_rows_and_unlinks_the_audit(
    served: Served,
) -> None:
    await served.post(make_text_update(USER, "/start"))
    await served.post(make_text_update(USER, "/xoadulieu"))
    await served.inbound.drain()
    ref = served.inbound.conversations.refs.ref("telegram", str(USER))
    audit = insert(Base.metadata.tables["audit"]).values(
        at=T0, channel="telegram", user_ref=ref, action="x"
    )
    await served.db.run(lambda c: c.execute(audit))
    sent = served.api.sent(USER)
    erase = next(b for m in sent for b in _buttons(m) if b.endswith("|erase"))
    await served.post(
        {
            "callback_query": {
                "id": "cb1",
                "from": {"id": USER, "is_bot": False, "first_name": "U"},
                "chat_instance": "i",
                "data": erase,
                "message": {"message_id": 1, "date": 0, "chat": {"id": USER, "type": "private"}},
            }
        }
    )
    await served.inbound.drain()
    for table in ("sessions", "events", "inbox"):
        assert await served.count(f"{table} WHERE user_ref = '{ref}'") == 0, table
    assert await served.count(f"deliveries WHERE user_ref = '{ref}'") == 0
    assert await served.count(f"audit WHERE user_ref = '{ref}'") == 0
    assert await served.count("audit") == 1, "the staff action stays, linked to nobody"


def _buttons(message: dict[str, Any]) -> list[str]:
    markup = message.get("reply_markup") or {}
    if isinstance(markup, str):
        markup = json.loads(markup)
    return [b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row]


async def test_a_staff_update_redelivered_later_is_applied_once(served: Served) -> None:
    """Issue 12: one Telegram update delivered three times with the same update_id wrote
    three rows -- citizens' steps were applied once, staff actions were not. Redelivered
    after the in-memory window (or to another worker), it is recognised in the store."""
    from bot.officials import Scope

    desk = served.inbound.staff
    assert desk is not None
    code = await desk.staff.create_invite(
        "volunteer", Scope("communes", ("16279",)), created_by="cli", now=T0
    )
    await served.post(make_text_update(USER, f"/start {code}"))
    await served.post(make_text_update(USER, "/dagiup"))
    await served.inbound.drain()
    village = _buttons(served.api.sent(USER)[-1])[0]
    await served.post(_press(village))
    await served.inbound.drain()
    provider = _buttons(served.api.sent(USER)[-1])[0]
    update = {"update_id": 9001, **_press(provider)}
    for _ in range(3):
        assert await served.post(update) == 200
        await served.inbound.drain()
        served.clock.now += CUT_OFF + timedelta(seconds=1)
    assert await served.count("assisted") == 1
    assert await served.count("audit WHERE action = 'as'") == 2, "village, then provider"


def _press(data: str) -> dict[str, Any]:
    return {
        "callback_query": {
            "id": f"cb-{data}",
            "from": {"id": USER, "is_bot": False, "first_name": "U"},
            "chat_instance": "i",
            "data": data,
            "message": {"message_id": 1, "date": 0, "chat": {"id": USER, "type": "private"}},
        }
    }
