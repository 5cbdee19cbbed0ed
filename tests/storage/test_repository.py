"""The repository on SQLite and PostgreSQL: one transaction per step, no loss, no doubles."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.model import Event, Reply, State
from storage.repository import Repository, Saved
from tests.conftest import T0

COMPLETION = Event(
    kind="completed",
    data={
        "commune": "16279",
        "village": "kp-1",
        "lives_here": "yes",
        "provider": "vnpt",
        "source": "self",
    },
)


async def count(db: AsyncEngine, table: str) -> int:
    async with db.connect() as conn:
        return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


async def test_new_session_is_saved_with_its_events(db: AsyncEngine) -> None:
    repo = Repository(db)
    state = State(step="store", answers={"provider": "vnpt"}, last_at=T0)
    reply = Reply(state=state, events=(Event("step", step="store"), Event("done", step="x")))
    assert await repo.save("telegram", "u1", reply, version=None, now=T0) is Saved.SAVED
    stored = await repo.load("telegram", "u1")
    assert stored is not None
    assert stored.state == state
    assert stored.version == 1
    assert await count(db, "events") == 2


async def test_missing_session_loads_as_none(db: AsyncEngine) -> None:
    assert await Repository(db).load("telegram", "nobody") is None


async def test_version_conflict_writes_nothing(db: AsyncEngine) -> None:
    repo = Repository(db)
    await repo.save("telegram", "u1", Reply(State(step="menu")), version=None, now=T0)
    ok = await repo.save("telegram", "u1", Reply(State(step="ready")), version=1, now=T0)
    assert ok is Saved.SAVED
    stale = Reply(State(step="away"), events=(Event("step", step="away"),))
    assert await repo.save("telegram", "u1", stale, version=1, now=T0) is Saved.CONFLICT
    stored = await repo.load("telegram", "u1")
    assert stored is not None
    assert (stored.state.step, stored.version) == ("ready", 2)
    assert await count(db, "events") == 0


async def test_second_insert_of_a_new_session_conflicts(db: AsyncEngine) -> None:
    repo = Repository(db)
    await repo.save("telegram", "u1", Reply(State(step="menu")), version=None, now=T0)
    again = await repo.save("telegram", "u1", Reply(State(step="x")), version=None, now=T0)
    assert again is Saved.CONFLICT


async def test_duplicate_delivery_is_applied_once(db: AsyncEngine) -> None:
    repo = Repository(db)
    reply = Reply(State(step="complete"), events=(COMPLETION,))
    first = await repo.save("telegram", "u1", reply, version=None, now=T0, delivery_id="77")
    second = await repo.save("telegram", "u1", reply, version=1, now=T0, delivery_id="77")
    assert (first, second) == (Saved.SAVED, Saved.DUPLICATE)
    assert await count(db, "events") == 1
    assert await count(db, "completions") == 1
    stored = await repo.load("telegram", "u1")
    assert stored is not None
    assert stored.version == 1


async def test_conflict_does_not_consume_the_delivery_id(db: AsyncEngine) -> None:
    repo = Repository(db)
    await repo.save("telegram", "u1", Reply(State(step="menu")), version=None, now=T0)
    conflict = await repo.save(
        "telegram", "u1", Reply(State(step="x")), version=7, now=T0, delivery_id="5"
    )
    assert conflict is Saved.CONFLICT
    retry = await repo.save(
        "telegram", "u1", Reply(State(step="x")), version=1, now=T0, delivery_id="5"
    )
    assert retry is Saved.SAVED


async def test_reporting_again_updates_the_one_completion(db: AsyncEngine) -> None:
    repo = Repository(db)
    await repo.save("telegram", "u1", Reply(State(), events=(COMPLETION,)), version=None, now=T0)
    edited = Event("completed", data={**dict(COMPLETION.data or {}), "village": "kp-2"})
    later = T0 + timedelta(days=1)
    await repo.save("telegram", "u1", Reply(State(), events=(edited,)), version=1, now=later)
    async with db.connect() as conn:
        rows = (await conn.execute(text("SELECT village, completed_at FROM completions"))).all()
    assert len(rows) == 1
    assert rows[0].village == "kp-2"
    assert await repo.count_completions() == 1


async def test_same_user_on_two_channels_is_two_sessions(db: AsyncEngine) -> None:
    repo = Repository(db)
    await repo.save("telegram", "u1", Reply(State(step="a")), version=None, now=T0)
    await repo.save("terminal", "u1", Reply(State(step="b")), version=None, now=T0)
    assert await count(db, "sessions") == 2


async def test_erase_removes_everything_of_that_user_only(db: AsyncEngine) -> None:
    repo = Repository(db)
    for user in ("u1", "u2"):
        reply = Reply(State(step="complete"), events=(Event("step", step="x"), COMPLETION))
        await repo.save("telegram", user, reply, version=None, now=T0)
    await repo.save("telegram", "u1", Reply(State(), erase=True), version=1, now=T0)
    assert await repo.load("telegram", "u1") is None
    assert await repo.load("telegram", "u2") is not None
    async with db.connect() as conn:
        for table in ("sessions", "events", "completions"):
            users = (await conn.execute(text(f"SELECT DISTINCT user_ref FROM {table}"))).all()
            assert [u[0] for u in users] == ["u2"], table


async def test_reply_that_must_not_persist_writes_nothing(db: AsyncEngine) -> None:
    repo = Repository(db)
    reply = Reply(State(step="menu"), events=(Event("x"),), persist=False)
    assert await repo.save("telegram", "u1", reply, version=None, now=T0) is Saved.SAVED
    assert await count(db, "sessions") == 0
    assert await count(db, "events") == 0


async def test_prune_forgets_old_delivery_ids(db: AsyncEngine) -> None:
    repo = Repository(db)
    await repo.save("telegram", "u1", Reply(State()), version=None, now=T0, delivery_id="1")
    assert await repo.prune_deliveries(T0 + timedelta(days=8)) == 1
    assert await count(db, "deliveries") == 0


async def test_concurrent_writers_never_lose_an_update(db: AsyncEngine) -> None:
    """Twenty writers race on one session; each retries on conflict until it lands."""
    repo = Repository(db)
    await repo.save("telegram", "u1", Reply(State(answers={})), version=None, now=T0)

    async def add(n: int) -> None:
        while True:
            stored = await repo.load("telegram", "u1")
            assert stored is not None
            new = stored.state.with_answers(**{f"k{n}": "1"})
            saved = await repo.save(
                "telegram", "u1", Reply(new), version=stored.version, now=T0, delivery_id=f"d{n}"
            )
            if saved is Saved.SAVED:
                return
            await asyncio.sleep(0)

    await asyncio.gather(*(add(n) for n in range(20)))
    stored = await repo.load("telegram", "u1")
    assert stored is not None
    assert sorted(stored.state.answers) == sorted(f"k{n}" for n in range(20))
    assert stored.version == 21
