"""The inbox: webhook deliveries made durable before they are acknowledged.

A platform that wants its answer within seconds (Zalo: about 2) gets it once the delivery is
*stored*, not once its step is done: under a burst the step may take longer, and a crash
after an early answer would lose a message the platform will never send again. Each row is
sealed (who wrote what), written in group-committed batches, and deleted in the very
transaction that commits its step (storage/repository.py); rows left behind by a crash or a
failed step are taken up again by the sweeper (handlers/inbound.py), oldest first.
"""

from __future__ import annotations

import asyncio
import functools
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.engine import Connection

from storage.database import Database
from storage.models import Base

_inbox = Base.metadata.tables["inbox"]
#: Rows written in one transaction at most.
BATCH_LIMIT = 500
#: Rows of this process remembered as the only one of their user when they were written.
ALONE_KEPT = 10_000
#: One row, returning its id (built once: building it per row was a fifth of a web chat
#: message's CPU in SQLAlchemy's expression code).
_INSERT = insert(_inbox).returning(_inbox.c.id)
#: Whether a user has a row in the inbox (built once: it runs for every delivery).
_ANY_OF_USER = (
    select(_inbox.c.id)
    .where(_inbox.c.channel == bindparam("channel"), _inbox.c.user_ref == bindparam("user_ref"))
    .limit(1)
)


@dataclass(frozen=True, slots=True)
class Stored:
    """An inbox row: its id, whose it is, the sealed delivery."""

    id: int
    channel: str
    user_ref: str
    payload: str
    attempts: int


@dataclass(slots=True)
class _Put:
    channel: str
    user_ref: str
    payload: str
    at: datetime
    future: asyncio.Future[int] = field(repr=False)


class Inbox:
    def __init__(self, db: Database):
        self.db = db
        self._queue: list[_Put] = []
        self._writer: asyncio.Task[None] | None = None
        #: Rows that were their user's only row when written: nothing can be older than
        #: them, so :meth:`older` needs no query (a transaction per delivery, for nothing
        #: nearly always: ~0.5 ms of CPU of a web chat message's ~4).
        self._alone: OrderedDict[int, None] = OrderedDict()

    async def put(self, channel: str, user_ref: str, payload: str, now: datetime) -> int:
        """Store one sealed delivery; returns its id once it is committed."""
        loop = asyncio.get_running_loop()
        item = _Put(channel, user_ref, payload, now, loop.create_future())
        self._queue.append(item)
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._write_queued())
        return await item.future

    async def _write_queued(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[:BATCH_LIMIT], self._queue[BATCH_LIMIT:]
            try:
                ids = await self.db.run(functools.partial(_insert, batch=batch))
            except Exception as exc:
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(exc)
                continue
            for item, (row_id, alone) in zip(batch, ids, strict=True):
                if alone:
                    self._alone[row_id] = None
                    if len(self._alone) > ALONE_KEPT:
                        self._alone.popitem(last=False)
                if not item.future.done():
                    item.future.set_result(row_id)

    async def left_behind(self, before: datetime, limit: int = 200) -> list[Stored]:
        """Rows received before ``before`` and still here (their step never committed)."""
        query = (
            select(_inbox).where(_inbox.c.received_at < before).order_by(_inbox.c.id).limit(limit)
        )
        found = await self.db.run(lambda conn: list(conn.execute(query)))
        return [Stored(r.id, r.channel, r.user_ref, r.payload, r.attempts) for r in found]

    async def older(
        self, channel: str, user_ref: str, row_id: int, before: datetime, limit: int = 50
    ) -> list[Stored]:
        """One user's rows stored before row ``row_id`` and received before ``before``,
        oldest first (what a crash left behind of theirs)."""
        if row_id in self._alone:
            # Written when no other row of theirs was here: a row with a smaller id is one
            # written since by another transaction, which a crash has not left behind.
            del self._alone[row_id]
            return []
        query = (
            select(_inbox)
            .where(
                _inbox.c.channel == channel,
                _inbox.c.user_ref == user_ref,
                _inbox.c.id < row_id,
                _inbox.c.received_at < before,
            )
            .order_by(_inbox.c.id)
            .limit(limit)
        )
        found = await self.db.run(lambda conn: list(conn.execute(query)))
        return [Stored(r.id, r.channel, r.user_ref, r.payload, r.attempts) for r in found]

    async def attempted(self, row_id: int) -> None:
        statement = (
            update(_inbox).where(_inbox.c.id == row_id).values(attempts=_inbox.c.attempts + 1)
        )
        await self.db.run(lambda conn: conn.execute(statement))

    async def drop(self, row_id: int) -> None:
        """Give up on a row (its step keeps failing for a reason no retry mends)."""
        statement = delete(_inbox).where(_inbox.c.id == row_id)
        await self.db.run(lambda conn: conn.execute(statement))


def _insert(conn: Connection, batch: list[_Put]) -> list[tuple[int, bool]]:
    """Each row's id, and whether it was its user's only row then."""
    ids = []
    for item in batch:
        found = conn.execute(_ANY_OF_USER, {"channel": item.channel, "user_ref": item.user_ref})
        alone = found.first() is None
        # One statement per row: the ids come back in order on SQLite and PostgreSQL alike.
        row = {
            "channel": item.channel,
            "user_ref": item.user_ref,
            "payload": item.payload,
            "received_at": item.at,
            "attempts": 0,
        }
        result = conn.execute(_INSERT, row)
        ids.append((int(result.scalar_one()), alone))
    return ids
