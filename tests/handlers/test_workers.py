"""Several workers sharing only the database, on SQLite and PostgreSQL.

Each worker here is what a worker process has: its own database connection, its own session
cache, its own conversation service. Users' messages go to one worker or the other at random;
the end state must be exactly what one worker (and the pure engine) produce.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import pytest

from app.runtime import Job, with_lease
from bot.engine import Engine
from bot.identity import UserRefs
from bot.model import Input, State, Text
from handlers.conversation import Conversations
from handlers.limits import RateLimiter
from storage.database import Database, migrate
from storage.leases import Leases
from storage.repository import Repository
from tests.bot.transcript import checked, parse, to_input
from tests.conftest import ROOT, T0, TEST_SECRET, rows

TRANSCRIPTS = sorted((ROOT / "tests" / "bot" / "transcripts").glob("*.txt"))
COPIES = 3


@dataclass
class Script:
    user: int
    inputs: list[Input]
    final: State | None  # None: the user erased their data
    events: Counter[tuple[str, str | None, str | None]]


def scripts(engine: Engine) -> list[Script]:
    """Every golden transcript as the inputs one user sends (time standing still), with the
    state and the events the pure engine -- one step after the other -- ends with."""
    result = []
    for copy in range(COPIES):
        for n, path in enumerate(TRANSCRIPTS):
            _, lines = parse(path.read_text(encoding="utf-8"))
            state: State | None = State()
            inputs: list[Input] = []
            events: Counter[tuple[str, str | None, str | None]] = Counter()
            for line in lines:
                event = to_input(line, state or State())
                if isinstance(event, timedelta):
                    continue
                inputs.append(event)
                # As the host does, with no volunteer enrolled: a code typed after "mã" is
                # never kept (area_of is not given to these workers).
                reply = engine.advance(state or State(), checked(engine, event, {}), T0)
                if reply.erase:
                    state, events = None, Counter()
                elif reply.persist:
                    state = reply.state
                    events.update((e.kind, e.step, e.detail) for e in reply.events)
            result.append(Script(10_000 * (copy + 1) + n, inputs, state, events))
    return result


class Worker:
    """One worker process's share: a connection, a cache, a service."""

    def __init__(self, engine: Engine, url: str):
        self.db = Database(url)
        self.conversations = Conversations(
            engine, Repository(self.db), UserRefs(TEST_SECRET), clock=lambda: T0
        )
        # Time stands still in these tests: no user may hit the flood limit.
        self.conversations.limiter = RateLimiter(1_000_000)
        self.handled = 0

    async def handle(self, user: int, event: Input, delivery: str) -> bool:
        self.handled += 1
        outcome = await self.conversations.handle("telegram", user, event, delivery_id=delivery)
        return not outcome.duplicate


@pytest.fixture
async def workers(engine: Engine, database_url: str, db: Database) -> AsyncIterator[list[Worker]]:
    # `db`: the database migrated and empty (a copy of the session's migrated file, or
    # PostgreSQL's emptied), without migrating it again for each test.
    pool = [Worker(engine, database_url) for _ in range(3)]
    try:
        yield pool
    finally:
        for worker in pool:
            await worker.db.dispose()


async def play(script: Script, pick: list[Worker], seed: int) -> None:
    """One user's messages, each sent when the previous one was answered, to a random
    worker."""
    chance = random.Random(seed)
    for i, event in enumerate(script.inputs):
        worker = chance.choice(pick)
        await worker.handle(script.user, event, delivery=f"{script.user}-{i}")


async def test_two_workers_end_where_one_worker_does(
    workers: list[Worker], engine: Engine
) -> None:
    """Many users at once, each user's messages going to one worker or another at random:
    every session, event and completion is what one worker applying them in order makes."""
    _, a, b = workers
    plays = scripts(engine)
    await asyncio.gather(*(play(s, [a, b], seed=s.user) for s in plays))
    assert min(a.handled, b.handled) > 100
    refs = UserRefs(TEST_SECRET)
    sessions = {r[0]: r[1] for r in await rows(a.db, "SELECT user_ref, state FROM sessions")}
    events = Counter(
        tuple(r) for r in await rows(a.db, "SELECT user_ref, kind, step, detail FROM events")
    )
    completed = {r[0] for r in await rows(a.db, "SELECT user_ref FROM completions")}
    for s in plays:
        ref = refs.ref("telegram", s.user)
        if s.final is None:
            assert ref not in sessions, f"user {s.user}: erased data came back"
        else:
            stored = State.from_json(json.loads(sessions[ref]))
            assert stored == replace(s.final, last_at=stored.last_at), s.user
            assert (ref in completed) == ("completed_at" in s.final.answers), s.user
        mine = Counter({k[1:]: n for k, n in events.items() if k[0] == ref})
        assert mine == s.events, s.user
    assert len(sessions) == sum(s.final is not None for s in plays)


async def in_turn(worker: Worker, user: int, event: Input, deliveries: list[str]) -> list[bool]:
    """What one worker does with one user's messages: one after the other."""
    return [await worker.handle(user, event, d) for d in deliveries]


async def test_a_delivery_seen_by_two_workers_is_applied_once(workers: list[Worker]) -> None:
    _, a, b = workers
    await a.handle(42, Text("/start"), delivery="u-0")
    question = Text("có mất tiền không?")
    same = [f"u-{n}" for n in range(1, 11)]
    applied = await asyncio.gather(in_turn(a, 42, question, same), in_turn(b, 42, question, same))
    assert [x or y for x, y in zip(*applied, strict=True)] == [True] * 10
    assert [x and y for x, y in zip(*applied, strict=True)] == [False] * 10
    assert (await rows(a.db, "SELECT count(*) FROM events WHERE kind = 'faq'"))[0][0] == 10
    assert (await rows(a.db, "SELECT count(*) FROM deliveries"))[0][0] == 11


async def test_messages_racing_on_two_workers_are_all_applied(workers: list[Worker]) -> None:
    """The same user's messages arriving at two workers at the same moments: none lost."""
    _, a, b = workers
    await a.handle(7, Text("/start"), delivery="r-0")
    question = Text("có mất tiền không?")
    await asyncio.gather(
        in_turn(a, 7, question, [f"a-{n}" for n in range(10)]),
        in_turn(b, 7, question, [f"b-{n}" for n in range(10)]),
    )
    assert (await rows(a.db, "SELECT count(*) FROM events WHERE kind = 'faq'"))[0][0] == 20
    assert (await rows(a.db, "SELECT version FROM sessions"))[0][0] == 21


async def test_leased_work_runs_in_one_worker_and_moves_when_it_stops(
    workers: list[Worker],
) -> None:
    """Two workers both want to run the outbox; one does; when it goes, the other takes it."""
    _, a, b = workers
    running: list[str] = []
    started = {"a": asyncio.Event(), "b": asyncio.Event()}

    def job(name: str) -> Job:
        async def loop() -> None:
            running.append(name)
            started[name].set()
            try:
                await asyncio.Event().wait()
            finally:
                running.remove(name)

        return loop

    ttl = timedelta(seconds=0.6)
    first = asyncio.create_task(with_lease(Leases(a.db), "outbox", job("a"), ttl))
    await asyncio.wait_for(started["a"].wait(), 10)
    second = asyncio.create_task(with_lease(Leases(b.db), "outbox", job("b"), ttl))
    await asyncio.sleep(0.5)  # b asks at once and every 0.2 s: it does not get it
    assert running == ["a"]
    first.cancel()  # a worker stopping cleanly gives its lease up
    await asyncio.gather(first, return_exceptions=True)
    await asyncio.wait_for(started["b"].wait(), 0.5)  # at b's next try, within 0.2 s
    assert running == ["b"]
    second.cancel()
    await asyncio.gather(second, return_exceptions=True)
    assert running == []


async def test_a_lease_that_cannot_be_renewed_is_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Another process holds SQLite's write lock: the lease is renewed every third of its
    life and fails each time; that is one warning (it was a traceback each time)."""
    db = Database(f"sqlite:///{tmp_path / 'leases.db'}", lock_wait=0.02)
    await migrate(db)
    holder = sqlite3.connect(tmp_path / "leases.db", timeout=0)
    holder.execute("BEGIN IMMEDIATE")

    async def job() -> None:
        await asyncio.Event().wait()

    caplog.set_level(logging.INFO, logger="app.runtime")
    running = asyncio.create_task(with_lease(Leases(db), "outbox", job, timedelta(seconds=0.3)))
    try:
        await asyncio.sleep(1.2)  # ten tries or more
        holder.rollback()
        await asyncio.sleep(0.4)
    finally:
        holder.close()
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await db.dispose()
    said = [(r.levelname, r.exc_info is None) for r in caplog.records if r.name == "app.runtime"]
    assert said == [("WARNING", True), ("INFO", True)], caplog.text
