"""Leases: one holder at a time, renewable by it, taken over once expired."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from datetime import timedelta

from storage.database import Database
from storage.leases import Leases
from tests.conftest import T0

TTL = timedelta(seconds=30)


async def test_one_holder_at_a_time_until_it_expires(db: Database) -> None:
    mine, theirs = Leases(db, "mine"), Leases(db, "theirs")
    assert await mine.acquire("outbox", T0, TTL)
    assert not await theirs.acquire("outbox", T0 + timedelta(seconds=29), TTL)
    assert await mine.acquire("outbox", T0 + timedelta(seconds=20), TTL)  # renewed to 50 s
    assert not await theirs.acquire("outbox", T0 + timedelta(seconds=45), TTL)
    assert await theirs.acquire("outbox", T0 + timedelta(seconds=51), TTL)
    assert not await mine.acquire("outbox", T0 + timedelta(seconds=52), TTL)


async def test_leases_are_independent_and_release_frees_at_once(db: Database) -> None:
    mine, theirs = Leases(db, "mine"), Leases(db, "theirs")
    assert await mine.acquire("outbox", T0, TTL)
    assert await theirs.acquire("retention", T0, TTL)
    await mine.release("outbox")
    await mine.release("retention")  # not held: nothing happens
    assert await theirs.acquire("outbox", T0, TTL)
    assert not await mine.acquire("retention", T0, TTL)


async def test_many_workers_racing_for_it_one_wins(db: Database) -> None:
    others = [Database(db.url) for _ in range(5)]  # each worker has its own connection
    try:
        contenders = [Leases(d, f"w{i}") for i, d in enumerate([db, *others])]
        won = await asyncio.gather(*(c.acquire("x", T0, TTL) for c in contenders))
        assert sum(won) == 1
    finally:
        for other in others:
            await other.dispose()


async def test_a_dead_holder_on_this_machine_is_not_waited_for(db: Database) -> None:
    dead = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await dead.wait()
    ghost = Leases(db, f"{socket.gethostname()[:40]}:{dead.pid}:0000")
    assert await ghost.acquire("outbox", T0, TTL)
    assert await Leases(db).acquire("outbox", T0 + timedelta(seconds=1), TTL)
    # A live holder (this very process) is waited for.
    alive = Leases(db, f"{socket.gethostname()[:40]}:{os.getpid()}:0001")
    assert await alive.acquire("retention", T0, TTL)
    assert not await Leases(db).acquire("retention", T0 + timedelta(seconds=1), TTL)
