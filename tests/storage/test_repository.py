"""The repository on SQLite and PostgreSQL: one transaction per step, no loss, no doubles."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.model import Event, Reply, State
from bot.vocabulary import EventKind
from storage import repository
from storage.database import Database
from storage.repository import Repository, Saved
from tests.conftest import T0, rows

COMPLETION = Event(
    kind=EventKind.COMPLETED,
    data={
        "commune": "16279",
        "village": "kp-1",
        "lives_here": "yes",
        "provider": "vnpt",
        "source": "self",
    },
)


async def count(db: Database, table: str) -> int:
    return int((await rows(db, f"SELECT count(*) FROM {table}"))[0][0])


async def test_new_session_is_saved_with_its_events(db: Database) -> None:
    repo = Repository(db)
    state = State(screen="store", answers={"provider": "vnpt"}, last_at=T0)
    reply = Reply(
        state=state,
        events=(Event(EventKind.STEP, step="store"), Event(EventKind.DONE, step="x")),
    )
    assert await repo.save("telegram", "u1", reply, version=None, now=T0) is Saved.SAVED
    stored = await repo.load("telegram", "u1")
    assert stored is not None
    assert stored.state == state
    assert stored.version == 1
    assert await count(db, "events") == 2


async def test_missing_session_loads_as_none(db: Database) -> None:
    assert await Repository(db).load("telegram", "nobody") is None


async def test_version_conflict_writes_nothing(db: Database) -> None:
    repo = Repository(db)
    await repo.save("telegram", "u1", Reply(State(screen="menu")), version=None, now=T0)
    ok = await repo.save("telegram", "u1", Reply(State(screen="ready")), version=1, now=T0)
    assert ok is Saved.SAVED
    stale = Reply(State(screen="away"), events=(Event(EventKind.STEP, step="away"),))
    assert await repo.save("telegram", "u1", stale, version=1, now=T0) is Saved.CONFLICT
    stored = await repo.load("telegram", "u1")
    assert stored is not None
    assert (stored.state.screen, stored.version) == ("ready", 2)
    assert await count(db, "events") == 0


async def test_second_insert_of_a_new_session_conflicts(db: Database) -> None:
    repo = Repository(db)
    await repo.save("telegram", "u1", Reply(State(screen="menu")), version=None, now=T0)
    again = await repo.save("telegram", "u1", Reply(State(screen="x")), version=None, now=T0)
    assert again is Saved.CONFLICT


async def test_duplicate_delivery_is_applied_once(db: Database) -> None:
    repo = Repository(db)
    reply = Reply(State(screen="complete"), events=(COMPLETION,))
    first = await repo.save("telegram", "u1", reply, version=None, now=T0, delivery_id="77")
    second = await repo.save("telegram", "u1", reply, version=1, now=T0, delivery_id="77")
    assert (first, second) == (Saved.SAVED, Saved.DUPLICATE)
    assert await count(db, "events") == 1
    assert await count(db, "completions") == 1
    stored = await repo.load("telegram", "u1")
    assert stored is not None
    assert stored.version == 1


async def test_conflict_does_not_consume_the_delivery_id(db: Database) -> None:
    repo = Repository(db)
    await repo.save("telegram", "u1", Reply(State(screen="menu")), version=None, now=T0)
    conflict = await repo.save(
        "telegram", "u1", Reply(State(screen="x")), version=7, now=T0, delivery_id="5"
    )
    assert conflict is Saved.CONFLICT
    retry = await repo.save(
        "telegram", "u1", Reply(State(screen="x")), version=1, now=T0, delivery_id="5"
    )
    assert retry is Saved.SAVED


async def test_reporting_again_updates_the_one_completion(db: Database) -> None:
    repo = Repository(db)
    await repo.save("telegram", "u1", Reply(State(), events=(COMPLETION,)), version=None, now=T0)
    edited = Event(EventKind.COMPLETED, data={**dict(COMPLETION.data or {}), "village": "kp-2"})
    later = T0 + timedelta(days=1)
    await repo.save("telegram", "u1", Reply(State(), events=(edited,)), version=1, now=later)
    found = await rows(db, "SELECT village, completed_at FROM completions")
    assert len(found) == 1
    assert found[0].village == "kp-2"
    assert await count(db, "completions") == 1


async def test_same_user_on_two_channels_is_two_sessions(db: Database) -> None:
    repo = Repository(db)
    await repo.save("telegram", "u1", Reply(State(screen="a")), version=None, now=T0)
    await repo.save("terminal", "u1", Reply(State(screen="b")), version=None, now=T0)
    assert await count(db, "sessions") == 2


async def test_erase_removes_everything_of_that_user_only(db: Database) -> None:
    repo = Repository(db)
    for user in ("u1", "u2"):
        reply = Reply(
            State(screen="complete"), events=(Event(EventKind.STEP, step="x"), COMPLETION)
        )
        await repo.save("telegram", user, reply, version=None, now=T0)
    await repo.save("telegram", "u1", Reply(State(), erase=True), version=1, now=T0)
    assert await repo.load("telegram", "u1") is None
    assert await repo.load("telegram", "u2") is not None
    for table in ("sessions", "events", "completions"):
        users = await rows(db, f"SELECT DISTINCT user_ref FROM {table}")
        assert [u[0] for u in users] == ["u2"], table


async def test_reply_that_must_not_persist_writes_nothing(db: Database) -> None:
    repo = Repository(db)
    reply = Reply(State(screen="menu"), events=(Event(EventKind.STALE),), persist=False)
    assert await repo.save("telegram", "u1", reply, version=None, now=T0) is Saved.SAVED
    assert await count(db, "sessions") == 0
    assert await count(db, "events") == 0


async def test_retention_forgets_delivery_ids_after_a_week(db: Database) -> None:
    repo = Repository(db)
    await repo.save("telegram", "u1", Reply(State()), version=None, now=T0, delivery_id="1")
    tz = ZoneInfo("Asia/Ho_Chi_Minh")
    assert (await repo.retention(T0 + timedelta(days=6), 12, tz))["deliveries"] == 0
    assert (await repo.retention(T0 + timedelta(days=8), 12, tz))["deliveries"] == 1
    assert await count(db, "deliveries") == 0


async def test_concurrent_writers_never_lose_an_update(db: Database) -> None:
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


async def test_saves_written_together_keep_their_own_outcomes(db: Database) -> None:
    """Saves queued at once go in one transaction, each with its own all-or-nothing result."""
    repo = Repository(db)
    await repo.save("telegram", "old", Reply(State(screen="a")), version=None, now=T0)
    await repo.save("telegram", "x", Reply(State()), version=None, now=T0, delivery_id="seen")
    step = Reply(State(screen="b"), events=(Event(EventKind.STEP, step="b"),))
    results = await asyncio.gather(
        repo.save("telegram", "old", step, version=1, now=T0, delivery_id="1"),
        repo.save("telegram", "old", step, version=1, now=T0, delivery_id="2"),  # stale
        repo.save("telegram", "new", step, version=None, now=T0, delivery_id="3"),
        repo.save("telegram", "new2", step, version=None, now=T0, delivery_id="3"),  # repeat
        repo.save("telegram", "x", step, version=1, now=T0, delivery_id="seen"),  # repeat
    )
    assert list(results) == [
        Saved.SAVED,
        Saved.CONFLICT,
        Saved.SAVED,
        Saved.DUPLICATE,
        Saved.DUPLICATE,
    ]
    assert await count(db, "events") == 2
    found = await rows(db, "SELECT delivery_id FROM deliveries ORDER BY delivery_id")
    assert [r[0] for r in found] == ["1", "3", "seen"]
    stored = await repo.load("telegram", "old")
    assert stored is not None
    assert stored.version == 2


async def test_a_stale_cache_ends_in_a_conflict_not_a_lost_update(db: Database) -> None:
    """Another worker (another Repository on the same database) wrote meanwhile."""
    mine, theirs = Repository(db), Repository(db)
    await mine.save("telegram", "u", Reply(State(screen="a")), version=None, now=T0)
    cached = await mine.load("telegram", "u")
    assert cached is not None
    stored = await theirs.load("telegram", "u")
    assert stored is not None
    await theirs.save(
        "telegram", "u", Reply(State(screen="theirs")), version=stored.version, now=T0
    )
    late = await mine.save(
        "telegram", "u", Reply(State(screen="mine")), version=cached.version, now=T0
    )
    assert late is Saved.CONFLICT
    fresh = await mine.load("telegram", "u")
    assert fresh is not None
    assert (fresh.state.screen, fresh.version) == ("theirs", 2)


async def test_retention_folds_old_events_into_daily_totals(db: Database) -> None:

    repo = Repository(db)
    old = T0 - timedelta(days=400)  # 08:00 in Vietnam
    late = old.replace(hour=18)  # 01:00 the next day in Vietnam
    for user, at in (("a", old), ("b", old), ("c", late)):
        reply = Reply(
            State(screen="store"), events=(Event(EventKind.STEP, step="store"), COMPLETION)
        )
        await repo.save("telegram", user, reply, version=None, now=at)
    await repo.save("telegram", "d", Reply(State(), events=(Event(EventKind.FAQ, detail="cost"),)),
                    version=None, now=T0)  # fmt: skip
    counts = await repo.retention(T0, 12, ZoneInfo("Asia/Ho_Chi_Minh"))
    assert counts["events"] == 6
    assert counts["sessions"] == 3
    totals = await rows(
        db, "SELECT day, kind, step, detail, count FROM daily_events ORDER BY 1, 2"
    )
    day = old.date().isoformat()
    next_day = (old + timedelta(days=1)).date().isoformat()
    assert [tuple(t) for t in totals] == [
        (day, "completed", "", "", 2),
        (day, "step", "store", "", 2),
        (next_day, "completed", "", "", 1),
        (next_day, "step", "store", "", 1),
    ]
    assert not any(r[0] == "a" for r in await rows(db, "SELECT user_ref FROM events"))
    assert await count(db, "events") == 1, "recent events stay"
    assert await count(db, "completions") == 3, "completions are kept (with consent)"
    again = await repo.retention(T0, 12, ZoneInfo("Asia/Ho_Chi_Minh"))
    assert again["events"] == 0


async def test_replies_marked_sent_ride_with_the_next_steps(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No transaction of their own while steps are being written (bench/throughput.py):
    # the timer's flush is put out of reach, so only the next step can have written them.
    monkeypatch.setattr(repository, "SENT_FLUSH", 3600.0)
    repo = Repository(db)
    reply = Reply(State(screen="menu"))
    await repo.save("telegram", "u1", reply, version=None, now=T0, delivery_id="d1", outgoing="x")
    kept = "SELECT count(*) FROM deliveries WHERE outgoing IS NOT NULL"
    assert (await rows(db, kept))[0][0] == 1
    repo.mark_sent("telegram", "d1")
    await repo.save("telegram", "u2", reply, version=None, now=T0, delivery_id="d2", outgoing="y")
    assert (await rows(db, kept))[0][0] == 1  # d2's replies are kept, d1's forgotten
    assert (await rows(db, "SELECT delivery_id FROM deliveries WHERE outgoing IS NULL")) == [
        ("d1",)
    ]


async def test_replies_marked_sent_with_no_step_after_are_written_alone(db: Database) -> None:
    repo = Repository(db)
    reply = Reply(State(screen="menu"))
    await repo.save("telegram", "u1", reply, version=None, now=T0, delivery_id="d1", outgoing="x")
    repo.mark_sent("telegram", "d1")
    for _ in range(100):
        await asyncio.sleep(repository.SENT_FLUSH)
        if not (await rows(db, "SELECT count(*) FROM deliveries WHERE outgoing IS NOT NULL"))[0][
            0
        ]:
            break
    else:
        raise AssertionError("never marked sent")


async def test_replies_marked_sent_just_before_a_stop_are_written_at_close(db: Database) -> None:
    """A graceful stop within SENT_FLUSH of the last replies left them unmarked: the
    sweeper sent them once more at the next start (bench/webchat.py, one per run)."""
    repo = Repository(db)
    reply = Reply(State(screen="menu"))
    await repo.save("telegram", "u1", reply, version=None, now=T0, delivery_id="d1", outgoing="x")
    repo.mark_sent("telegram", "d1")
    await repo.close()
    assert await repo.unsent(T0 + timedelta(days=1)) == []
