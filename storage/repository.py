"""The one repository: load a session, and write a step's outcome in one transaction.

A step's new state, its analytics events, a completion it reports and the delivery id that
caused it are written together or not at all, before any reply is sent. A delivery id seen
before is not applied again; a session changed by someone else since it was read (another
worker) is reported as a conflict so the caller can re-read and retry.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.model import Event, Reply, State
from storage.models import Base

_sessions = Base.metadata.tables["sessions"]
_events = Base.metadata.tables["events"]
_completions = Base.metadata.tables["completions"]
_deliveries = Base.metadata.tables["deliveries"]


class Saved(enum.Enum):
    SAVED = "saved"
    DUPLICATE = "duplicate"  # this delivery was applied before: nothing written
    CONFLICT = "conflict"  # the session changed since it was read: nothing written


@dataclass(frozen=True, slots=True)
class StoredSession:
    state: State
    version: int


class _Conflict(Exception):
    """Raised inside a transaction to roll it back."""


class Repository:
    """All reads and writes of citizen conversations."""

    def __init__(self, engine: AsyncEngine):
        self.engine = engine
        dialect = engine.dialect.name
        self._insert = postgresql.insert if dialect == "postgresql" else sqlite.insert

    async def load(self, channel: str, user_ref: str) -> StoredSession | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(_sessions.c.state, _sessions.c.version).where(
                        _sessions.c.channel == channel, _sessions.c.user_ref == user_ref
                    )
                )
            ).first()
        if row is None:
            return None
        return StoredSession(State.from_json(json.loads(row.state)), row.version)

    async def save(
        self,
        channel: str,
        user_ref: str,
        reply: Reply,
        *,
        version: int | None,
        now: datetime,
        delivery_id: str | None = None,
    ) -> Saved:
        """Write ``reply`` for a session read at ``version`` (None: there was no session)."""
        try:
            async with self.engine.begin() as conn:
                if delivery_id is not None and not await self._first_delivery(
                    conn, channel, delivery_id, now
                ):
                    return Saved.DUPLICATE
                if reply.erase:
                    await self._erase(conn, channel, user_ref)
                    return Saved.SAVED
                if reply.persist:
                    await self._write_session(conn, channel, user_ref, reply.state, version, now)
                    await self._write_events(conn, channel, user_ref, reply.events, now)
        except _Conflict:
            return Saved.CONFLICT
        return Saved.SAVED

    async def _first_delivery(
        self, conn: AsyncConnection, channel: str, delivery_id: str, now: datetime
    ) -> bool:
        stmt = (
            self._insert(_deliveries)
            .values(channel=channel, delivery_id=delivery_id, at=now)
            .on_conflict_do_nothing()
        )
        return (await conn.execute(stmt)).rowcount == 1

    async def _write_session(
        self,
        conn: AsyncConnection,
        channel: str,
        user_ref: str,
        state: State,
        version: int | None,
        now: datetime,
    ) -> None:
        values = {
            "step": state.step,
            "state": json.dumps(state.to_json(), ensure_ascii=False, separators=(",", ":")),
            "stopped": state.stopped,
            "updated_at": now,
        }
        if version is None:
            stmt: Any = (
                self._insert(_sessions)
                .values(channel=channel, user_ref=user_ref, version=1, created_at=now, **values)
                .on_conflict_do_nothing()
            )
        else:
            stmt = (
                update(_sessions)
                .where(
                    _sessions.c.channel == channel,
                    _sessions.c.user_ref == user_ref,
                    _sessions.c.version == version,
                )
                .values(version=version + 1, **values)
            )
        if (await conn.execute(stmt)).rowcount != 1:
            raise _Conflict

    async def _write_events(
        self,
        conn: AsyncConnection,
        channel: str,
        user_ref: str,
        events: tuple[Event, ...],
        now: datetime,
    ) -> None:
        if not events:
            return
        rows = [
            {
                "at": now,
                "channel": channel,
                "user_ref": user_ref,
                "kind": e.kind,
                "step": e.step,
                "detail": e.detail,
                "data": json.dumps(dict(e.data), ensure_ascii=False) if e.data else None,
            }
            for e in events
        ]
        await conn.execute(insert(_events), rows)
        for e in events:
            if e.kind == "completed" and e.data:
                await self._write_completion(conn, channel, user_ref, e.data, now)

    async def _write_completion(
        self, conn: AsyncConnection, channel: str, user_ref: str, data: Any, now: datetime
    ) -> None:
        values = {
            "commune": str(data["commune"]),
            "village": str(data["village"]),
            "provider": str(data["provider"]),
            "lives_here": data["lives_here"] == "yes",
            "source": str(data.get("source", "self")),
            "referral": data.get("referral"),
            "updated_at": now,
        }
        stmt = (
            self._insert(_completions)
            .values(channel=channel, user_ref=user_ref, completed_at=now, **values)
            .on_conflict_do_update(index_elements=["channel", "user_ref"], set_=values)
        )
        # Reporting again corrects the one completion; it never adds a second.
        await conn.execute(stmt)

    async def _erase(self, conn: AsyncConnection, channel: str, user_ref: str) -> None:
        for table in (_sessions, _events, _completions):
            await conn.execute(
                delete(table).where(table.c.channel == channel, table.c.user_ref == user_ref)
            )

    async def prune_deliveries(self, before: datetime) -> int:
        """Forget delivery ids older than ``before`` (redeliveries come within minutes)."""
        async with self.engine.begin() as conn:
            result = await conn.execute(delete(_deliveries).where(_deliveries.c.at < before))
        return int(result.rowcount)

    async def count_completions(self) -> int:
        async with self.engine.connect() as conn:
            return int(
                (await conn.execute(select(func.count()).select_from(_completions))).scalar_one()
            )
