"""The few write operations a step needs, for each kind of database.

The repository decides *what* to write (which saves win, conflict or repeat); these classes
only *do* the writes, inside the transaction :meth:`storage.database.Database.run` opened:

- :class:`CoreWrites` -- SQLAlchemy Core statements, built once (compiled once); used on
  PostgreSQL.
- :class:`SqliteWrites` -- the same operations as plain SQL on the driver's connection. On
  SQLite every statement is cheap and SQLAlchemy's per-statement work was most of a step's
  cost (bench/throughput.py); the SQL below is what Core renders for SQLite, written out.

Both are exercised by the same tests (tests/storage) on both databases.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import DateTime, bindparam, func, insert, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from storage.models import Base

_sessions = Base.metadata.tables["sessions"]
_events = Base.metadata.tables["events"]
_completions = Base.metadata.tables["completions"]
_deliveries = Base.metadata.tables["deliveries"]
_daily = Base.metadata.tables["daily_events"]
_reached = Base.metadata.tables["reached"]

Key = tuple[str, str]
Row = dict[str, Any]
#: Columns a second completion report corrects.
CORRECTED = ("commune", "village", "provider", "lives_here", "source", "referral", "updated_at")


class CoreWrites:
    """Write operations as SQLAlchemy Core statements."""

    def __init__(self, dialect: str):
        insert_ = postgresql.insert if dialect == "postgresql" else sqlite.insert
        self._claim = (
            insert_(_deliveries)
            .on_conflict_do_nothing()
            .returning(_deliveries.c.channel, _deliveries.c.delivery_id)
        )
        self._versions = (
            select(_sessions.c.channel, _sessions.c.user_ref, _sessions.c.version)
            .where(
                tuple_(_sessions.c.channel, _sessions.c.user_ref).in_(
                    bindparam("keys", expanding=True)
                )
            )
            .with_for_update()
        )
        self._create = (
            insert_(_sessions)
            .on_conflict_do_nothing()
            .returning(_sessions.c.channel, _sessions.c.user_ref)
        )
        self._advance = update(_sessions).where(
            _sessions.c.channel == bindparam("k_channel"),
            _sessions.c.user_ref == bindparam("k_user_ref"),
        )
        self._release = _deliveries.delete().where(
            _deliveries.c.channel == bindparam("channel"),
            _deliveries.c.delivery_id == bindparam("delivery_id"),
        )
        self._event = insert(_events)
        self._reach = insert_(_reached).on_conflict_do_nothing()
        upsert = insert_(_completions)
        # Reporting again corrects the one completion; it never adds a second.
        self._complete = upsert.on_conflict_do_update(
            index_elements=["channel", "user_ref"],
            set_={c: getattr(upsert.excluded, c) for c in CORRECTED},
        )

    def claim(self, conn: Connection, rows: list[Row]) -> set[tuple[str, str]]:
        """Insert delivery rows; return (channel, delivery_id) of those that were new."""
        return {(r.channel, r.delivery_id) for r in conn.execute(self._claim, rows)}

    def versions(self, conn: Connection, keys: list[Key]) -> dict[Key, int]:
        """Current versions of these sessions, locked until the transaction ends."""
        result = conn.execute(self._versions, {"keys": keys})
        return {(r.channel, r.user_ref): r.version for r in result}

    def create(self, conn: Connection, rows: list[Row]) -> set[Key]:
        """Insert new sessions; return the keys actually created (not raced by another)."""
        return {(r.channel, r.user_ref) for r in conn.execute(self._create, rows)}

    def advance(self, conn: Connection, rows: list[Row]) -> None:
        """Update locked sessions (rows carry k_channel and k_user_ref)."""
        conn.execute(self._advance, rows)

    def release(self, conn: Connection, rows: list[Row]) -> None:
        """Forget delivery ids (of steps that did not happen)."""
        conn.execute(self._release, rows)

    def add_events(self, conn: Connection, rows: list[Row]) -> None:
        conn.execute(self._event, rows)

    def reach(self, conn: Connection, rows: list[Row]) -> None:
        """Record stages users reached for the first time (later repeats are ignored)."""
        conn.execute(self._reach, rows)

    def attribute(self, conn: Connection, rows: list[Row]) -> None:
        """Count a user's events and stages for the commune they reported (rows: channel,
        user_ref, commune)."""
        params = [
            {"k_channel": r["channel"], "k_user_ref": r["user_ref"], "k_commune": r["commune"]}
            for r in rows
        ]
        for table in (_events, _reached):
            conn.execute(
                table.update()
                .where(
                    table.c.channel == bindparam("k_channel"),
                    table.c.user_ref == bindparam("k_user_ref"),
                )
                .values(commune=bindparam("k_commune")),
                params,
            )

    def complete(self, conn: Connection, rows: list[Row]) -> None:
        conn.execute(self._complete, rows)

    def withdraw(self, conn: Connection, keys: list[Key]) -> None:
        """Delete the completions of users who withdrew their consent."""
        conn.execute(
            _completions.delete().where(
                tuple_(_completions.c.channel, _completions.c.user_ref).in_(keys)
            )
        )

    def local_day(self, column: Any, tz: ZoneInfo) -> Any:
        """SQL for the deployment's local calendar day of a timestamp, as YYYY-MM-DD."""
        return func.to_char(func.timezone(tz.key, column), "YYYY-MM-DD")

    def fold_events(self, conn: Connection, before: datetime, tz: ZoneInfo) -> int:
        """Add events older than ``before`` to the daily totals and delete them."""
        day = self.local_day(_events.c.at, tz)
        step, detail = func.coalesce(_events.c.step, ""), func.coalesce(_events.c.detail, "")
        commune = func.coalesce(_events.c.commune, "")
        keys = (day, _events.c.channel, commune, _events.c.kind, step, detail)
        totals = select(*keys, func.count()).where(_events.c.at < before).group_by(*keys)
        insert_ = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        columns = ["day", "channel", "commune", "kind", "step", "detail"]
        fold = insert_(_daily).from_select([*columns, "count"], totals)
        conn.execute(
            fold.on_conflict_do_update(
                index_elements=columns, set_={"count": _daily.c.count + fold.excluded.count}
            )
        )
        return int(conn.execute(_events.delete().where(_events.c.at < before)).rowcount)


class SqliteWrites(CoreWrites):
    """The same operations as plain SQL on the SQLite driver connection."""

    def __init__(self) -> None:
        super().__init__("sqlite")
        # Timestamps are stored exactly as SQLAlchemy stores them, so its reads agree.
        processor = DateTime(timezone=True).bind_processor(sqlite.dialect())
        self._time: Callable[[datetime], Any] = processor or (lambda value: value)

    @staticmethod
    def _cursor(conn: Connection) -> Any:
        return conn.connection.driver_connection.cursor()  # type: ignore[union-attr]

    def claim(self, conn: Connection, rows: list[Row]) -> set[tuple[str, str]]:
        cur = self._cursor(conn)
        new = set()
        for r in rows:
            cur.execute(
                "INSERT INTO deliveries (channel, delivery_id, at, user_ref, outgoing) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (
                    r["channel"], r["delivery_id"], self._time(r["at"]), r["user_ref"],
                    r["outgoing"],
                ),
            )  # fmt: skip
            if cur.rowcount == 1:
                new.add((r["channel"], r["delivery_id"]))
        return new

    def versions(self, conn: Connection, keys: list[Key]) -> dict[Key, int]:
        # The transaction began IMMEDIATE: it already holds SQLite's write lock.
        cur = self._cursor(conn)
        found = {}
        for key in keys:
            cur.execute("SELECT version FROM sessions WHERE channel = ? AND user_ref = ?", key)
            row = cur.fetchone()
            if row is not None:
                found[key] = int(row[0])
        return found

    def create(self, conn: Connection, rows: list[Row]) -> set[Key]:
        cur = self._cursor(conn)
        created = set()
        for r in rows:
            cur.execute(
                "INSERT INTO sessions (channel, user_ref, step, state, stopped, version, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (
                    r["channel"], r["user_ref"], r["step"], r["state"], r["stopped"],
                    r["version"], self._time(r["created_at"]), self._time(r["updated_at"]),
                ),
            )  # fmt: skip
            if cur.rowcount == 1:
                created.add((r["channel"], r["user_ref"]))
        return created

    def advance(self, conn: Connection, rows: list[Row]) -> None:
        self._cursor(conn).executemany(
            "UPDATE sessions SET step = ?, state = ?, stopped = ?, version = ?, updated_at = ? "
            "WHERE channel = ? AND user_ref = ?",
            [
                (
                    r["step"], r["state"], r["stopped"], r["version"], self._time(r["updated_at"]),
                    r["k_channel"], r["k_user_ref"],
                )
                for r in rows
            ],
        )  # fmt: skip

    def reach(self, conn: Connection, rows: list[Row]) -> None:
        self._cursor(conn).executemany(
            "INSERT INTO reached (channel, user_ref, stage, commune, at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            [
                (r["channel"], r["user_ref"], r["stage"], r["commune"], self._time(r["at"]))
                for r in rows
            ],
        )

    def release(self, conn: Connection, rows: list[Row]) -> None:
        self._cursor(conn).executemany(
            "DELETE FROM deliveries WHERE channel = ? AND delivery_id = ?",
            [(r["channel"], r["delivery_id"]) for r in rows],
        )

    def add_events(self, conn: Connection, rows: list[Row]) -> None:
        self._cursor(conn).executemany(
            "INSERT INTO events (at, channel, user_ref, kind, step, detail, data, commune) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    self._time(r["at"]), r["channel"], r["user_ref"], r["kind"], r["step"],
                    r["detail"], r["data"], r["commune"],
                )
                for r in rows
            ],
        )  # fmt: skip

    def complete(self, conn: Connection, rows: list[Row]) -> None:
        columns = (
            "channel", "user_ref", "commune", "village", "provider", "lives_here", "source",
            "referral", "completed_at", "updated_at",
        )  # fmt: skip
        corrected = ", ".join(f"{c} = excluded.{c}" for c in CORRECTED)
        self._cursor(conn).executemany(
            f"INSERT INTO completions ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' for _ in columns)}) "
            f"ON CONFLICT (channel, user_ref) DO UPDATE SET {corrected}",
            [tuple(self._value(r[c]) for c in columns) for r in rows],
        )

    def _value(self, value: Any) -> Any:
        return self._time(value) if isinstance(value, datetime) else value

    def local_day(self, column: Any, tz: ZoneInfo) -> Any:
        # SQLite has no time zones: shift by the zone's offset (Vietnam keeps no summer time).
        offset = tz.utcoffset(datetime(2026, 1, 1))
        minutes = int(offset.total_seconds() // 60) if offset else 0
        return func.date(column, f"{minutes:+d} minutes")


def writes_for(dialect: str) -> CoreWrites:
    return SqliteWrites() if dialect == "sqlite" else CoreWrites(dialect)
