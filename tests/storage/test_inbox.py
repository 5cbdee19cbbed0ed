"""The inbox: what a crash left behind of a user is found, and a user's only row costs no
query to ask."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from storage.database import Database
from storage.inbox import Inbox

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def _engine(db: Database) -> Engine:
    """The SQLAlchemy engine under ``db`` (to count its transactions)."""
    if db._async is not None:
        return db._async.sync_engine
    assert db._sync is not None
    return db._sync


async def _transactions(
    db: Database, inbox: Inbox, user: str, row: int, before: datetime
) -> tuple[int, list[int]]:
    """How many transactions ``inbox.older`` began, and the ids it found."""
    begun: list[Connection] = []

    def count(conn: Connection) -> None:
        begun.append(conn)

    event.listen(_engine(db), "begin", count)
    try:
        found = await inbox.older("telegram", user, row, before)
    finally:
        event.remove(_engine(db), "begin", count)
    return len(begun), [r.id for r in found]


async def test_older_rows_are_found_and_a_users_only_row_needs_no_query(db: Database) -> None:
    inbox = Inbox(db)
    left = await inbox.put("telegram", "u1", "sealed-1", T0 - timedelta(minutes=5))
    other = await inbox.put("telegram", "u2", "sealed-2", T0)
    later = await inbox.put("telegram", "u1", "sealed-3", T0)
    # u1's second row was written while the first was there: it is looked for.
    assert await _transactions(db, inbox, "u1", later, T0) == (1, [left])
    # u2's row was the only one of its user: nothing can be older, no transaction.
    assert await _transactions(db, inbox, "u2", other, T0 + timedelta(hours=1)) == (0, [])
