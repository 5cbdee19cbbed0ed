"""The outbox: reminders and announcements as rows, each sent once.

A row's life: ``pending`` (due at ``due_at``) -> ``sending`` (claimed by the one worker that
holds the outbox lease, with the messages decided at that moment in ``payload``) -> ``sent``.
Also: ``skipped`` (nothing to say any more: the citizen moved on), ``cancelled`` (they said
"dung" or deleted their data), ``failed`` (they blocked the bot), and ``unknown``: a row
found ``sending`` after its worker died. It may or may not have reached the citizen, and it
is never sent again -- a repeat would be worse than a lost nudge, and nothing in the Bot API
can tell which it was. The claim commits just before the request leaves, so such a row was
almost always delivered.

Reminders are *planned* by one statement per reminder number: every opted-in contact whose
session sits on a step where they are mid-way, untouched for the configured delay, gets row
``r<n>:<channel>:<user_ref>``. The key is unique, so planning twice (or after a crash)
inserts nothing new, and a citizen can never get a third reminder.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    DateTime,
    Integer,
    String,
    and_,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from bot.model import Option, OutMessage
from storage.database import Database
from storage.models import Base

_outbox = Base.metadata.tables["outbox"]
_contacts = Base.metadata.tables["contacts"]
_sessions = Base.metadata.tables["sessions"]
_broadcasts = Base.metadata.tables["broadcasts"]

#: Rows a planning statement inserts at most (the rest go in the next round).
PLAN_BATCH = 5_000
DONE = ("sent", "unknown")


@dataclass(frozen=True, slots=True)
class Due:
    """A row to send now."""

    id: int
    key: str
    kind: str
    channel: str
    user_ref: str
    broadcast_id: int | None
    payload: str | None  # set when a claimed row is tried again


class LostClaim(Exception):
    """Someone else claimed the row first (or it was cancelled): roll back, send nothing."""


def dump_messages(messages: Sequence[OutMessage]) -> str:
    return json.dumps(
        [
            {
                "text": m.text,
                "screen": m.screen,
                "options": [[o.id, o.label] for o in m.options],
                **({"picture": m.picture} if m.picture else {}),
                **({"photo": m.photo} if m.photo else {}),
            }
            for m in messages
        ],
        ensure_ascii=False,
    )


def load_messages(payload: str) -> tuple[OutMessage, ...]:
    return tuple(
        OutMessage(
            text=str(m["text"]),
            screen=str(m.get("screen", "")),
            options=tuple(Option(str(i), str(label)) for i, label in m.get("options", [])),
            picture=str(m.get("picture", "")),
            photo=str(m.get("photo", "")),
        )
        for m in json.loads(payload)
    )


def claim(
    conn: Connection, row_id: int, holder: str, messages: Sequence[OutMessage], now: datetime
) -> None:
    """Inside a transaction: take a pending row to send ``messages`` (or mark it skipped if
    there is nothing to send). Raises :class:`LostClaim` if it is no longer pending."""
    values: dict[str, Any] = (
        {"status": "sending", "payload": dump_messages(messages), "claimed_by": holder}
        if messages
        else {"status": "skipped", "done_at": now}
    )
    stmt = (
        update(_outbox)
        .where(_outbox.c.id == row_id, _outbox.c.status == "pending")
        .values(attempts=_outbox.c.attempts + 1, **values)
    )
    if conn.execute(stmt).rowcount != 1:
        raise LostClaim(row_id)


class OutboxStore:
    def __init__(self, db: Database):
        self.db = db
        self._insert = postgresql.insert if db.dialect == "postgresql" else sqlite.insert

    # --- planning -------------------------------------------------------------------------

    async def plan_reminders(
        self,
        now: datetime,
        after: Sequence[timedelta],
        steps: Sequence[str],
        due_at: datetime,
    ) -> int:
        """Add the reminders that have become due (at most ``PLAN_BATCH`` per number and
        call); returns how many rows were added."""
        added = 0
        for number, delay in enumerate(after, start=1):
            stmt = self._plan_statement(number, now - delay, steps, due_at)

            def work(conn: Connection, stmt: Any = stmt) -> int:
                return int(conn.execute(stmt).rowcount)

            added += await self.db.run(work)
        return added

    def _plan_statement(
        self, number: int, idle_since: datetime, steps: Sequence[str], due_at: datetime
    ) -> Any:
        c, s, o = _contacts, _sessions, _outbox

        def key(n: int) -> Any:
            return literal(f"r{n}:", String) + c.c.channel + literal(":", String) + c.c.user_ref

        query = (
            select(
                key(number),
                literal("reminder", String),
                c.c.channel,
                c.c.user_ref,
                literal(due_at, DateTime(timezone=True)),
                literal("pending", String),
                literal(0, Integer),
            )
            .select_from(c.join(s, and_(s.c.channel == c.c.channel, s.c.user_ref == c.c.user_ref)))
            .where(
                c.c.reminders.is_(True),
                s.c.stopped.is_(False),
                s.c.step.in_(list(steps)),
                s.c.updated_at <= idle_since,
                ~exists().where(o.c.key == key(number)),
            )
            .limit(PLAN_BATCH)
        )
        if number > 1:
            earlier = o.c.key == key(number - 1)
            query = query.where(exists().where(earlier, o.c.status.in_(DONE)))
        columns = ["key", "kind", "channel", "user_ref", "due_at", "status", "attempts"]
        return (
            self._insert(o)
            .from_select(columns, query)
            .on_conflict_do_nothing(index_elements=["key"])
        )

    # --- sending --------------------------------------------------------------------------

    async def due(self, now: datetime, limit: int, exclude: Sequence[int] = ()) -> list[Due]:
        """Pending rows due by ``now``, oldest first."""
        o = _outbox
        query = (
            select(
                o.c.id, o.c.key, o.c.kind, o.c.channel, o.c.user_ref, o.c.broadcast_id, o.c.payload
            )
            .where(o.c.status == "pending", o.c.due_at <= now)
            .order_by(o.c.due_at, o.c.id)
            .limit(limit)
        )
        if exclude:
            query = query.where(o.c.id.not_in(list(exclude)))
        found = await self.db.run(lambda conn: conn.execute(query).all())
        return [Due(*row) for row in found]

    async def claim_again(self, row_id: int, holder: str) -> bool:
        """Take a row that already has its messages (a retry) for sending."""
        stmt = (
            update(_outbox)
            .where(_outbox.c.id == row_id, _outbox.c.status == "pending")
            .values(status="sending", claimed_by=holder, attempts=_outbox.c.attempts + 1)
        )
        return await self.db.run(lambda conn: conn.execute(stmt).rowcount == 1)

    async def claim_broadcast(self, row: Due, holder: str, now: datetime) -> str | None:
        """Claim an announcement row; its text, or None if it went elsewhere meanwhile."""
        b = _broadcasts

        def work(conn: Connection) -> str | None:
            text = conn.execute(select(b.c.text).where(b.c.id == row.broadcast_id)).scalar()
            try:
                claim(conn, row.id, holder, (OutMessage(str(text)),) if text else (), now)
            except LostClaim:
                return None
            return str(text) if text else None

        return await self.db.run(work)

    async def address(self, channel: str, user_ref: str) -> str | None:
        """The sealed chat address of an opted-in citizen (None: they are not, any more)."""
        query = select(_contacts.c.address).where(
            _contacts.c.channel == channel, _contacts.c.user_ref == user_ref
        )
        return await self.db.run(lambda conn: conn.execute(query).scalar())

    async def attempts(self, row_id: int) -> int:
        query = select(_outbox.c.attempts).where(_outbox.c.id == row_id)
        return await self.db.run(lambda conn: int(conn.execute(query).scalar() or 0))

    async def finish(self, row_id: int, status: str, now: datetime, holder: str) -> None:
        """Record how a claimed row ended (only if it is still ours)."""
        stmt = (
            update(_outbox)
            .where(
                _outbox.c.id == row_id,
                _outbox.c.status == "sending",
                _outbox.c.claimed_by == holder,
            )
            .values(status=status, done_at=now)
        )
        await self.db.run(lambda conn: conn.execute(stmt))

    async def finish_unclaimed(self, row_id: int, status: str, now: datetime) -> None:
        """End a pending row without sending it (no contact any more)."""
        stmt = (
            update(_outbox)
            .where(_outbox.c.id == row_id, _outbox.c.status == "pending")
            .values(status=status, done_at=now)
        )
        await self.db.run(lambda conn: conn.execute(stmt))

    async def retry(self, row_id: int, due_at: datetime, holder: str) -> None:
        """A claimed row that certainly did not go out (a 429, no connection): pending again,
        with its messages kept."""
        stmt = (
            update(_outbox)
            .where(
                _outbox.c.id == row_id,
                _outbox.c.status == "sending",
                _outbox.c.claimed_by == holder,
            )
            .values(status="pending", due_at=due_at, claimed_by=None)
        )
        await self.db.run(lambda conn: conn.execute(stmt))

    async def sweep_in_doubt(self, holder: str, now: datetime) -> int:
        """Rows left ``sending`` by an earlier holder of the lease (it died mid-send): they
        become ``unknown`` and are never sent again."""
        stmt = (
            update(_outbox)
            .where(_outbox.c.status == "sending", _outbox.c.claimed_by != holder)
            .values(status="unknown", done_at=now)
        )
        return await self.db.run(lambda conn: int(conn.execute(stmt).rowcount))

    async def unreachable(self, channel: str, user_ref: str, now: datetime) -> None:
        """The citizen blocked the bot (or is gone): forget their address, send nothing more."""

        def work(conn: Connection) -> None:
            forget_contact(conn, channel, user_ref, now)

        await self.db.run(work)

    # --- announcements --------------------------------------------------------------------

    async def recipients(self, communes: Sequence[str] | None) -> int:
        """How many citizens who said yes to announcements an announcement to ``communes``
        (None: all) reaches."""
        query = select(func.count()).select_from(_contacts).where(_contacts.c.announcements)
        if communes is not None:
            query = query.where(_contacts.c.commune.in_(list(communes)))
        return await self.db.run(lambda conn: int(conn.execute(query).scalar_one()))

    async def draft_broadcast(
        self, *, scope: str, text: str, created_by: str, now: datetime
    ) -> int:
        """Keep an announcement as a draft until its author confirms it; returns its id."""
        new = insert(_broadcasts).values(
            scope=scope, text=text, created_by=created_by, created_at=now, status="draft",
            recipients=0,
        )  # fmt: skip
        stmt = new.returning(_broadcasts.c.id)
        return await self.db.run(lambda conn: int(conn.execute(stmt).scalar_one()))

    async def queue_broadcast(
        self, broadcast_id: int, created_by: str, communes: Sequence[str] | None, due_at: datetime
    ) -> int | None:
        """Confirm a draft: one outbox row per citizen in ``communes`` (None: all) who said
        yes to announcements (a yes to reminders is not one), in one transaction; returns
        how many, or None if it is not this author's draft."""
        b, c, o = _broadcasts, _contacts, _outbox

        def work(conn: Connection) -> int | None:
            mine = (b.c.id == broadcast_id) & (b.c.created_by == created_by)
            taken = conn.execute(
                update(b).where(mine, b.c.status == "draft").values(status="queued")
            )
            if taken.rowcount != 1:
                return None
            key = literal(f"b{broadcast_id}:", String) + c.c.channel + ":" + c.c.user_ref
            query = select(
                key,
                literal("broadcast", String),
                c.c.channel,
                c.c.user_ref,
                literal(broadcast_id, Integer),
                literal(due_at, DateTime(timezone=True)),
                literal("pending", String),
                literal(0, Integer),
            ).where(
                c.c.announcements.is_(True),
                c.c.commune.in_(list(communes)) if communes is not None else literal(True),
            )
            columns = [
                "key", "kind", "channel", "user_ref", "broadcast_id", "due_at", "status",
                "attempts",
            ]  # fmt: skip
            added = int(conn.execute(insert(o).from_select(columns, query)).rowcount)
            conn.execute(update(b).where(b.c.id == broadcast_id).values(recipients=added))
            return added

        return await self.db.run(work)

    async def cancel_broadcast(self, broadcast_id: int, created_by: str) -> bool:
        """Cancel this author's draft (its Send button is spent then); False if it is not a
        draft of theirs any more (sent, or cancelled already)."""
        b = _broadcasts
        stmt = (
            update(b)
            .where(b.c.id == broadcast_id, b.c.created_by == created_by, b.c.status == "draft")
            .values(status="cancelled")
        )
        return await self.db.run(lambda conn: conn.execute(stmt).rowcount == 1)

    async def broadcast_status(self, broadcast_id: int, created_by: str) -> str | None:
        """The state of this author's announcement ("draft", "queued" or "cancelled"); None
        if it is not theirs."""
        b = _broadcasts
        query = select(b.c.status).where(b.c.id == broadcast_id, b.c.created_by == created_by)
        return await self.db.run(lambda conn: conn.execute(query).scalar())

    async def broadcasts_since(self, created_by: str, since: datetime) -> int:
        """Announcements this author has sent since ``since``."""
        b = _broadcasts
        query = select(func.count()).where(
            b.c.created_by == created_by, b.c.status == "queued", b.c.created_at >= since
        )
        return await self.db.run(lambda conn: int(conn.execute(query).scalar_one()))

    async def last_broadcast(self, created_by: str) -> tuple[int, int] | None:
        """(id, recipients) of this author's latest sent announcement."""
        b = _broadcasts
        query = (
            select(b.c.id, b.c.recipients)
            .where(b.c.created_by == created_by, b.c.status == "queued")
            .order_by(b.c.id.desc())
            .limit(1)
        )
        found = await self.db.run(lambda conn: conn.execute(query).first())
        return (int(found[0]), int(found[1])) if found else None

    async def progress(self, broadcast_id: int) -> dict[str, int]:
        """How many rows of an announcement are in each state."""
        query = (
            select(_outbox.c.status, func.count())
            .where(_outbox.c.broadcast_id == broadcast_id)
            .group_by(_outbox.c.status)
        )
        return await self.db.run(lambda conn: {s: int(n) for s, n in conn.execute(query).all()})

    async def counts(self) -> dict[str, int]:
        """Rows per state (for the outbox's own log line and for tests)."""
        query = select(_outbox.c.status, func.count()).group_by(_outbox.c.status)
        return await self.db.run(lambda conn: {s: int(n) for s, n in conn.execute(query).all()})


#: Each purpose a citizen says yes or no to -> the kind of the outbox rows it sends.
PURPOSE_KINDS = {"reminders": "reminder", "announcements": "broadcast"}


def forget_contact(conn: Connection, channel: str, user_ref: str, now: datetime) -> None:
    """Inside a transaction: delete a citizen's address and cancel what was waiting for them."""
    conn.execute(
        delete(_contacts).where(_contacts.c.channel == channel, _contacts.c.user_ref == user_ref)
    )
    cancel_pending(conn, channel, user_ref, None, now)


def cancel_pending(
    conn: Connection, channel: str, user_ref: str, kind: str | None, now: datetime
) -> None:
    """Inside a transaction: cancel what waits for a citizen (of ``kind``; None: all)."""
    mine = (_outbox.c.channel == channel) & (_outbox.c.user_ref == user_ref)
    if kind is not None:
        mine = mine & (_outbox.c.kind == kind)
    conn.execute(
        update(_outbox)
        .where(mine, _outbox.c.status == "pending")
        .values(status="cancelled", done_at=now)
    )
