"""The one repository: load a session, and write a step's outcome in one transaction.

A step's new state, its analytics events, a completion it reports and the delivery id that
caused it are written together or not at all, before any reply is sent. A delivery id seen
before is not applied again (``DUPLICATE``); a session changed by someone else since it was
read -- another worker -- is reported as ``CONFLICT`` and nothing of that step is written, so
the caller decides again with :meth:`Repository.save_exclusively`, which reads the session
under a lock and so cannot lose.

Writes are *group-committed*: saves that arrive while a transaction is being written wait
and go together in the next one, each with the same all-or-nothing outcome as if alone. Under
load this turns many small transactions into a few larger ones; alone, a save is written at
once. Sessions are cached in memory after they are read or written; the version check on
every write makes a stale cache entry harmless (it ends in ``CONFLICT`` and a re-read).
"""

from __future__ import annotations

import asyncio
import enum
import functools
import json
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from bot.model import Event, Reply, State
from bot.vocabulary import EventKind
from storage import helpdesk
from storage.database import Database
from storage.models import Base
from storage.outbox import PURPOSE_KINDS, cancel_pending, forget_contact
from storage.writes import writes_for

_sessions = Base.metadata.tables["sessions"]
_events = Base.metadata.tables["events"]
_completions = Base.metadata.tables["completions"]
_deliveries = Base.metadata.tables["deliveries"]
_reached = Base.metadata.tables["reached"]
_contacts = Base.metadata.tables["contacts"]
_outbox = Base.metadata.tables["outbox"]
_inbox = Base.metadata.tables["inbox"]
_staff = Base.metadata.tables["staff"]
_audit = Base.metadata.tables["audit"]
#: What /xoadulieu deletes: every row linked to the user's reference.
ERASED = (_sessions, _events, _completions, _reached, _contacts, _outbox, _inbox, _deliveries)
#: A user's staff actions stay in the audit log, linked to nobody once they delete their data.
ERASED_REF = "erased"
#: Replies not marked sent this long after their step were cut off (by a crash): they are
#: sent on a redelivery, or by the sweeper. Sending takes a second or two; a 429 may hold
#: it back for up to Telegram's usual retry_after (tens of seconds at worst).
CUT_OFF = timedelta(seconds=30)
#: Replies marked sent are written together, at most this long after they went out.
SENT_FLUSH = 0.05

#: Sessions kept in memory (least recently used are dropped first): the people in the middle
#: of a conversation with this worker; anyone else costs one indexed read (~0.1 ms).
CACHE_SIZE = 2_000
#: Saves written in one transaction at most.
BATCH_LIMIT = 200
#: How long delivery ids are remembered (redeliveries come within minutes).
DELIVERY_MEMORY = timedelta(days=7)

_Key = tuple[str, str]
log = logging.getLogger(__name__)
#: A session read under a row lock (SQLite: the transaction already holds the write lock).
_LOCKED_SESSION = (
    select(_sessions.c.state, _sessions.c.version)
    .where(_sessions.c.channel == bindparam("channel"), _sessions.c.user_ref == bindparam("ref"))
    .with_for_update()
)


class Saved(enum.Enum):
    SAVED = "saved"
    DUPLICATE = "duplicate"  # this delivery was applied before: nothing written
    CONFLICT = "conflict"  # the session changed since it was read: nothing written


@dataclass(frozen=True, slots=True)
class StoredSession:
    state: State
    version: int


@dataclass(frozen=True, slots=True)
class Unsent:
    """Replies a step left unsent (sealed, bound to the channel and the user's reference)."""

    channel: str
    delivery_id: str
    user_ref: str
    outgoing: str


@dataclass(slots=True)
class _Save:
    channel: str
    user_ref: str
    reply: Reply
    version: int | None
    now: datetime
    delivery_id: str | None
    future: asyncio.Future[Saved] | None = field(default=None, repr=False)  # None: not awaited
    address: str | None = None  # sealed chat address, given when the user opts in to messages
    #: The inbox row this step comes from: deleted in the step's transaction.
    inbox_id: int | None = None
    #: The step's replies and where they go, sealed: kept with the delivery until sent.
    outgoing: str | None = None
    outcome: Saved = Saved.SAVED
    new_version: int = 0
    #: For a DUPLICATE: the replies of the step applied before, if never marked sent.
    unsent: str | None = None
    #: The citizen's chat address, sealed, given when the step makes a help request.
    help_address: str | None = None
    #: What they typed for their help request (a landmark, a phone number), sealed.
    private: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> _Key:
        return (self.channel, self.user_ref)


class Repository:
    """All reads and writes of citizen conversations."""

    def __init__(
        self, db: Database, *, default_commune: str | None = None, cache_size: int = CACHE_SIZE
    ):
        self.db = db
        # Where a user's events count before they say their commune (a one-commune bot).
        self.default_commune = default_commune
        self._writes = writes_for(db.dialect)
        self._insert = postgresql.insert if db.dialect == "postgresql" else sqlite.insert
        self._cache: OrderedDict[_Key, StoredSession] = OrderedDict()
        self._cache_size = cache_size
        self._queue: list[_Save] = []
        self._writer: asyncio.Task[None] | None = None
        self._sent: list[dict[str, str]] = []
        self._sent_flush: asyncio.Task[None] | None = None

    # --- reads ----------------------------------------------------------------------------

    async def load(self, channel: str, user_ref: str) -> StoredSession | None:
        key = (channel, user_ref)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        query = select(_sessions.c.state, _sessions.c.version).where(
            _sessions.c.channel == channel, _sessions.c.user_ref == user_ref
        )
        row = await self.db.run(lambda conn: conn.execute(query).first())
        if row is None:
            return None
        stored = StoredSession(State.from_json(json.loads(row.state)), row.version)
        self._remember(key, stored)
        return stored

    def forget(self, channel: str, user_ref: str) -> None:
        """Drop a cached session (the next load reads the database)."""
        self._cache.pop((channel, user_ref), None)

    def _remember(self, key: _Key, stored: StoredSession) -> None:
        self._cache[key] = stored
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    # --- writes ---------------------------------------------------------------------------

    async def save(
        self,
        channel: str,
        user_ref: str,
        reply: Reply,
        *,
        version: int | None,
        now: datetime,
        delivery_id: str | None = None,
        address: str | None = None,
        inbox_id: int | None = None,
        outgoing: str | None = None,
        help_address: str | None = None,
        private: Mapping[str, str] | None = None,
    ) -> Saved:
        """Write ``reply`` for a session read at ``version`` (None: there was no session).
        ``address``: the sealed chat address, kept if the reply opts in to messages;
        ``inbox_id``: the inbox row to delete with the step; ``outgoing``: the sealed replies
        to keep with the delivery until :meth:`mark_sent`; ``help_address``, ``private``:
        the sealed chat address and typed details of a help request the step makes."""
        return (
            await self.save_item(
                channel,
                user_ref,
                reply,
                version=version,
                now=now,
                delivery_id=delivery_id,
                address=address,
                inbox_id=inbox_id,
                outgoing=outgoing,
                help_address=help_address,
                private=private,
            )
        ).outcome

    async def save_item(
        self,
        channel: str,
        user_ref: str,
        reply: Reply,
        *,
        version: int | None,
        now: datetime,
        delivery_id: str | None = None,
        address: str | None = None,
        inbox_id: int | None = None,
        outgoing: str | None = None,
        help_address: str | None = None,
        private: Mapping[str, str] | None = None,
    ) -> _Save:
        """:meth:`save`, telling also what a DUPLICATE left unsent."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Saved] = loop.create_future()
        item = _Save(
            channel,
            user_ref,
            reply,
            version,
            now,
            delivery_id,
            future,
            address=address,
            inbox_id=inbox_id,
            outgoing=outgoing,
            help_address=help_address,
            private=private or {},
        )
        self._queue.append(item)
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._write_queued())
        # A caller that gives up only stops waiting: the write, shared with others, goes on.
        await future
        return item

    async def _write_queued(self) -> None:
        while self._queue:
            batch = _take_batch(self._queue)
            write = self._write_erase if batch[0].reply.erase else self._write_batch
            # Replies marked sent meanwhile ride along: no transaction of their own.
            sent, self._sent = self._sent, []
            try:
                await self.db.run(
                    functools.partial(_with_sent, write=write, batch=batch, sent=sent)
                )
            except Exception as exc:
                if sent:
                    self._sent[:0] = sent  # marked with a later transaction
                    self._flush_later()
                for item in batch:
                    self.forget(item.channel, item.user_ref)
                    if item.future is not None and not item.future.done():
                        item.future.set_exception(exc)
                continue
            for item in batch:
                self._settle(item)

    async def save_exclusively(
        self,
        channel: str,
        user_ref: str,
        decide: Callable[[StoredSession | None], Reply],
        *,
        now: datetime,
        delivery_id: str | None = None,
        address: str | None = None,
        also: Callable[[Connection, Reply], None] | None = None,
        inbox_id: int | None = None,
        outgoing: Callable[[Reply], str | None] | None = None,
        help_address: str | None = None,
        private: Callable[[Reply], Mapping[str, str]] | None = None,
    ) -> tuple[_Save, Reply]:
        """Read the session *locked*, ``decide`` the step and write it, in one transaction:
        nobody can change the session in between, so this never ends in ``CONFLICT``. For a
        step that lost the optimistic race (a busy user on several workers): it always makes
        progress, where retrying optimistically could lose again and again. ``also`` runs in
        the same transaction once the step is written (the outbox claims its row there)."""

        def work(conn: Connection) -> tuple[_Save, Reply]:
            row = conn.execute(_LOCKED_SESSION, {"channel": channel, "ref": user_ref}).first()
            stored = (
                StoredSession(State.from_json(json.loads(row.state)), row.version) if row else None
            )
            reply = decide(stored)
            version = stored.version if stored else None
            item = _Save(
                channel,
                user_ref,
                reply,
                version,
                now,
                delivery_id,
                address=address,
                inbox_id=inbox_id,
                outgoing=outgoing(reply) if outgoing is not None else None,
                help_address=help_address,
                private=private(reply) if private is not None else {},
            )
            if reply.erase:
                self._write_erase(conn, [item])
            else:
                self._write_batch(conn, [item])
            if also is not None and item.outcome is Saved.SAVED:
                also(conn, reply)
            return item, reply

        self.forget(channel, user_ref)
        item, reply = await self.db.run(work)
        self._settle(item)
        return item, reply

    def step_locked(
        self,
        conn: Connection,
        channel: str,
        user_ref: str,
        decide: Callable[[StoredSession | None], Reply],
        now: datetime,
    ) -> Reply:
        """Inside a transaction another part of the store opened (the help desk's): read
        this session locked, ``decide`` its step and write it. The session is dropped from
        the cache (the next read is the database's).

        A session that does not exist yet cannot be locked: two transactions may both find
        none and both create it (a new helper taking two requests at once). The second's
        insert then waits for the first and does nothing (CONFLICT, nothing of its step
        written); it reads again -- the row is there now, locked this time -- and decides
        on it."""
        for _ in range(2):
            self.forget(channel, user_ref)
            row = conn.execute(_LOCKED_SESSION, {"channel": channel, "ref": user_ref}).first()
            stored = (
                StoredSession(State.from_json(json.loads(row.state)), row.version) if row else None
            )
            reply = decide(stored)
            item = _Save(channel, user_ref, reply, stored.version if stored else None, now, None)
            self._write_batch(conn, [item])
            if item.outcome is Saved.SAVED:
                return reply
            if stored is not None:
                break  # a locked row cannot conflict: something else is wrong
        raise RuntimeError(f"a locked step ended in {item.outcome}")

    def _settle(self, item: _Save) -> None:
        if item.outcome is Saved.SAVED and item.reply.persist and not item.reply.erase:
            self._remember(item.key, StoredSession(item.reply.state, item.new_version))
        elif item.outcome is Saved.CONFLICT or item.reply.erase:
            self.forget(*item.key)
        if item.future is not None and not item.future.done():
            item.future.set_result(item.outcome)

    # The _write_* functions run inside one transaction (Database.run), on the database's
    # own thread for SQLite: plain synchronous SQLAlchemy Core.

    def _write_erase(self, conn: Connection, batch: list[_Save]) -> None:
        (item,) = batch
        if item.delivery_id is not None and not self._claim_deliveries(conn, [item]):
            item.outcome = Saved.DUPLICATE
            self._after_duplicates(conn, [item])
            return
        for table in ERASED:
            conn.execute(
                delete(table).where(
                    table.c.channel == item.channel, table.c.user_ref == item.user_ref
                )
            )
        helpdesk.erase(conn, item.channel, item.user_ref, item.now, ERASED_REF)
        mine = (_staff.c.channel == item.channel) & (_staff.c.user_ref == item.user_ref)
        conn.execute(delete(_staff).where(mine))
        conn.execute(
            update(_audit)
            .where(_audit.c.channel == item.channel, _audit.c.user_ref == item.user_ref)
            .values(user_ref=ERASED_REF)
        )
        if item.delivery_id is not None:
            # This step's own delivery stays known (a redelivery must not erase twice), linked
            # to nobody and without its reply (it would be linked by its sealing).
            self._writes.claim(conn, [self._delivery_row(item, linked=False)])

    def _write_batch(self, conn: Connection, batch: list[_Save]) -> None:
        with_id = [i for i in batch if i.delivery_id is not None]
        claimed = self._claim_deliveries(conn, with_id) if with_id else set()
        for item in with_id:
            delivery = (item.channel, item.delivery_id)
            if delivery in claimed:
                claimed.discard(delivery)  # the first save with this id is the one applied
            else:
                item.outcome = Saved.DUPLICATE
        duplicates = [i for i in with_id if i.outcome is Saved.DUPLICATE]
        if duplicates:
            self._after_duplicates(conn, duplicates)
        live = [i for i in batch if i.outcome is Saved.SAVED and i.reply.persist]
        if live:
            self._write_sessions(conn, live)
        losers = [i for i in with_id if i.outcome is Saved.CONFLICT]
        if losers:
            # A step that did not happen must not use up its delivery id.
            self._writes.release(
                conn, [{"channel": i.channel, "delivery_id": i.delivery_id} for i in losers]
            )
        self._write_events(conn, [i for i in live if i.outcome is Saved.SAVED])
        done = [i.inbox_id for i in batch if i.inbox_id is not None and i.outcome is Saved.SAVED]
        if done:
            conn.execute(delete(_inbox).where(_inbox.c.id.in_(done)))

    def _after_duplicates(self, conn: Connection, items: list[_Save]) -> None:
        """A delivery applied before: its inbox row is done with; what its step left unsent
        is sent now (after a crash between the commit and the replies)."""
        done = [i.inbox_id for i in items if i.inbox_id is not None]
        if done:
            conn.execute(delete(_inbox).where(_inbox.c.id.in_(done)))
        for item in items:
            # Replies still being sent by whoever applied the step are not cut off.
            item.unsent = conn.execute(
                select(_deliveries.c.outgoing).where(
                    _deliveries.c.channel == item.channel,
                    _deliveries.c.delivery_id == item.delivery_id,
                    _deliveries.c.at < item.now - CUT_OFF,
                )
            ).scalar_one_or_none()

    def _claim_deliveries(self, conn: Connection, items: list[_Save]) -> set[tuple[str, str]]:
        """Record delivery ids; return those that were new (first use wins)."""
        first = {(i.channel, i.delivery_id): i for i in reversed(items)}
        return self._writes.claim(conn, [self._delivery_row(i) for i in first.values()])

    @staticmethod
    def _delivery_row(item: _Save, *, linked: bool = True) -> dict[str, Any]:
        return {
            "channel": item.channel,
            "delivery_id": item.delivery_id,
            "at": item.now,
            "user_ref": item.user_ref if linked else None,
            "outgoing": item.outgoing if linked else None,
        }

    # --- replies sent ---------------------------------------------------------------------

    def mark_sent(self, channel: str, delivery_id: str) -> None:
        """The replies kept with this delivery went out: forget them -- in the transaction
        of the next steps written, or after :data:`SENT_FLUSH` in one of their own if no
        step comes (bench/throughput.py: a transaction of their own every 50 ms was 0.35-0.42
        transactions per update more, each a round trip to the SQLite thread)."""
        self._sent.append({"channel": channel, "delivery_id": delivery_id})
        self._flush_later()

    def _flush_later(self) -> None:
        if self._sent_flush is None or self._sent_flush.done():
            self._sent_flush = asyncio.get_running_loop().create_task(self._flush_sent())

    async def _flush_sent(self) -> None:
        await asyncio.sleep(SENT_FLUSH)
        while (writer := self._writer) is not None and not writer.done():
            await asyncio.wait({writer})  # steps are being written: the rows go with them
        while self._sent:
            rows, self._sent = self._sent, []
            try:
                await self.db.run(functools.partial(_forget_replies, rows=rows))
            except Exception:
                # Not marked: the sweeper may send these replies once more (never lost).
                log.warning("could not mark %d replies sent", len(rows))

    async def close(self) -> None:
        """Write the replies marked sent that still wait for a transaction, before the store
        closes: a graceful stop left them to the sweeper, which sent them once more at the
        next start (bench/webchat.py: one reply per run)."""
        task = self._sent_flush
        if task is not None and not task.done():
            await asyncio.wait({task})  # at most SENT_FLUSH, then its write
        while (writer := self._writer) is not None and not writer.done():
            await asyncio.wait({writer})
        if self._sent:
            rows, self._sent = self._sent, []
            try:
                await self.db.run(functools.partial(_forget_replies, rows=rows))
            except Exception:
                log.warning("could not mark %d replies sent", len(rows))

    async def unsent(self, before: datetime, limit: int = 100) -> list[Unsent]:
        """Replies kept with deliveries older than ``before`` and never marked sent."""
        query = (
            select(_deliveries.c.channel, _deliveries.c.delivery_id, _deliveries.c.outgoing,
                   _deliveries.c.user_ref)
            .where(_deliveries.c.outgoing.is_not(None), _deliveries.c.at < before)
            .order_by(_deliveries.c.at)
            .limit(limit)
        )  # fmt: skip
        found = await self.db.run(lambda conn: list(conn.execute(query)))
        return [Unsent(r.channel, r.delivery_id, r.user_ref, r.outgoing) for r in found]

    def _write_sessions(self, conn: Connection, items: list[_Save]) -> None:
        current = self._writes.versions(conn, list(dict.fromkeys(i.key for i in items)))
        known = dict(current)
        final: dict[_Key, _Save] = {}
        for item in items:
            if known.get(item.key) != item.version:
                item.outcome = Saved.CONFLICT
                continue
            item.new_version = (item.version or 0) + 1
            known[item.key] = item.new_version
            final[item.key] = item
        inserts = [i for k, i in final.items() if k not in current]
        updates = [i for k, i in final.items() if k in current]
        if inserts:
            rows = [
                {**_state_values(i), "channel": i.channel, "user_ref": i.user_ref}
                | {"created_at": i.now}
                for i in inserts
            ]
            created = self._writes.create(conn, rows)
            for item in items:
                # Another worker created this session meanwhile: every step of it conflicts.
                if item.key not in created and item.key not in current:
                    item.outcome = Saved.CONFLICT
        if updates:
            # The rows are locked and their versions checked above: these cannot miss.
            rows = [
                {**_state_values(i), "k_channel": i.channel, "k_user_ref": i.user_ref}
                for i in updates
            ]
            self._writes.advance(conn, rows)

    def _write_events(self, conn: Connection, items: list[_Save]) -> None:
        rows = [
            {
                "at": i.now,
                "channel": i.channel,
                "user_ref": i.user_ref,
                "kind": e.kind,
                "step": e.step,
                "detail": e.detail,
                "data": json.dumps(dict(e.data), ensure_ascii=False) if e.data else None,
                "commune": self._commune_of(i),
            }
            for i in items
            for e in i.reply.events
        ]
        if rows:
            self._writes.add_events(conn, rows)
            stages = [
                {
                    "channel": i.channel,
                    "user_ref": i.user_ref,
                    "commune": self._commune_of(i),
                    "at": i.now,
                    "stage": stage,
                }
                for i in items
                for e in i.reply.events
                if (stage := funnel_stage(e.kind, e.step, e.detail)) is not None
            ]
            if stages:
                self._writes.reach(conn, stages)
        effects = _Effects()
        for item in items:
            for e in item.reply.events:
                effect = EFFECTS.get(e.kind)
                if effect is not None:
                    effect(effects, item, e)
        if effects.withdrawn:
            self._writes.withdraw(conn, sorted(effects.withdrawn))
        completions = effects.completions
        if completions:
            self._writes.complete(conn, list(completions.values()))
            # The report says which commune this user counts for: earlier steps too.
            self._writes.attribute(conn, list(completions.values()))
        for what, item, event in effects.help:
            _HELP_WRITES[what](conn, item, event)
        for item in items:
            if item.key in effects.contacts:
                self._write_contact(conn, item, effects.contacts[item.key])
            if item.key in completions:
                conn.execute(
                    update(_contacts)
                    .where(
                        _contacts.c.channel == item.channel, _contacts.c.user_ref == item.user_ref
                    )
                    .values(commune=completions[item.key]["commune"])
                )

    def _write_contact(self, conn: Connection, item: _Save, answers: dict[str, bool]) -> None:
        """Keep the sealed address of a citizen who said yes to reminders or announcements,
        with each purpose's answer; cancel what waits for a purpose turned off, and forget
        the address once both are off (no, "stop" (dung), a block)."""
        mine = (_contacts.c.channel == item.channel) & (_contacts.c.user_ref == item.user_ref)
        if any(answers.values()) and item.address is not None:
            values: dict[str, Any] = {
                "address": item.address,
                "commune": self._commune_of(item),
                "opted_in_at": item.now,
                **answers,
            }
            new = {"reminders": False, "announcements": False, **values}
            stmt = self._insert(_contacts).values(
                channel=item.channel, user_ref=item.user_ref, **new
            )
            conn.execute(
                stmt.on_conflict_do_update(index_elements=["channel", "user_ref"], set_=values)
            )
        elif answers:
            conn.execute(update(_contacts).where(mine).values(**answers))
        for purpose, on in answers.items():
            if not on:
                cancel_pending(conn, item.channel, item.user_ref, PURPOSE_KINDS[purpose], item.now)
        both_off = _contacts.c.reminders.is_(False) & _contacts.c.announcements.is_(False)
        if conn.execute(select(func.count()).where(mine, both_off)).scalar_one():
            forget_contact(conn, item.channel, item.user_ref, item.now)

    def _commune_of(self, item: _Save) -> str | None:
        answers = item.reply.state.answers
        return answers.get("commune") or answers.get("area") or self.default_commune

    # --- maintenance ----------------------------------------------------------------------

    async def retention(self, now: datetime, months: int, tz: ZoneInfo) -> dict[str, int]:
        """Apply the retention period: events older than ``months`` become daily totals
        linked to nobody; sessions idle that long are deleted; old delivery ids forgotten.
        Completions (kept with consent, deletable by their owner) stay."""
        cutoff = now - timedelta(days=round(months * 30.44))

        def work(conn: Connection) -> dict[str, int]:
            events = self._writes.fold_events(conn, cutoff, tz)
            sessions = conn.execute(delete(_sessions).where(_sessions.c.updated_at < cutoff))
            conn.execute(delete(_reached).where(_reached.c.at < cutoff))
            deliveries = conn.execute(
                delete(_deliveries).where(_deliveries.c.at < now - DELIVERY_MEMORY)
            )
            return {
                "events": events,
                "sessions": int(sessions.rowcount),
                "deliveries": int(deliveries.rowcount),
            }

        result = await self.db.run(work)
        self._cache.clear()
        return result


_SENT = (
    update(_deliveries)
    .where(
        _deliveries.c.channel == bindparam("k_channel"),
        _deliveries.c.delivery_id == bindparam("k_delivery_id"),
    )
    .values(outgoing=None)
)


def _forget_replies(conn: Connection, rows: list[dict[str, str]]) -> None:
    params = [{"k_channel": r["channel"], "k_delivery_id": r["delivery_id"]} for r in rows]
    conn.execute(_SENT, params)


def _with_sent(
    conn: Connection,
    write: Callable[[Connection, list[_Save]], None],
    batch: list[_Save],
    sent: list[dict[str, str]],
) -> None:
    """A group of steps, and the replies marked sent since the last group."""
    write(conn, batch)
    if sent:
        _forget_replies(conn, sent)


def funnel_stage(kind: str, step: str | None, detail: str | None) -> str | None:
    """The funnel stage an event marks (see the ``reached`` table), if any."""
    if kind in (EventKind.STARTED, EventKind.COMPLETED):
        return kind
    if kind == EventKind.STEP and step:
        return f"step:{step}"
    if kind == EventKind.REFERRAL and detail:
        return f"via:{detail}"
    return None


@dataclass(slots=True)
class _Effects:
    """What a batch's events ask of the store besides recording them, in their order."""

    completions: dict[_Key, dict[str, Any]] = field(default_factory=dict)
    withdrawn: set[_Key] = field(default_factory=set)
    #: Each user's last yes (True) or no to each purpose of messages they answered
    #: ("reminders", "announcements").
    contacts: dict[_Key, dict[str, bool]] = field(default_factory=dict)
    #: Help requests made, filled in, opened, counted: in their order.
    help: list[tuple[EventKind, _Save, Event]] = field(default_factory=list)


def _reported(effects: _Effects, item: _Save, event: Event) -> None:
    # A report adds or corrects the user's completion.
    if event.data:
        effects.completions[item.key] = _completion_values(item, event.data)
        effects.withdrawn.discard(item.key)


def _withdrawn(effects: _Effects, item: _Save, event: Event) -> None:
    # A withdrawn consent deletes the completion.
    effects.completions.pop(item.key, None)
    effects.withdrawn.add(item.key)


def _messages_answered(effects: _Effects, item: _Save, event: Event) -> None:
    # Yes: the sealed chat address is kept for that purpose; no to both, "stop" or a block:
    # it is forgotten.
    purpose = "announcements" if event.kind is EventKind.ANNOUNCEMENTS else "reminders"
    effects.contacts.setdefault(item.key, {})[purpose] = event.detail == "on"


def _help(effects: _Effects, item: _Save, event: Event) -> None:
    # Help requests (storage/helpdesk.py): written after the step's other effects.
    effects.help.append((event.kind, item, event))


def _help_requested(conn: Connection, item: _Save, event: Event) -> None:
    helpdesk.create(
        conn,
        item.channel,
        item.user_ref,
        event.data or {},
        item.help_address,
        item.private,
        item.now,
    )


def _help_detail(conn: Connection, item: _Save, _event: Event) -> None:
    helpdesk.add_detail(conn, item.channel, item.user_ref, item.private)


def _help_ready(conn: Connection, item: _Save, _event: Event) -> None:
    helpdesk.ready(conn, item.channel, item.user_ref, item.now)


def _help_counted(conn: Connection, item: _Save, _event: Event) -> None:
    helpdesk.count_assisted(conn, item.channel, item.user_ref, item.now)


#: What help-request events write (storage/helpdesk.py), in the step's transaction.
_HELP_WRITES: dict[EventKind, Callable[[Connection, _Save, Event], None]] = {
    EventKind.HELP_REQUESTED: _help_requested,
    EventKind.HELP_DETAIL: _help_detail,
    EventKind.HELP_READY: _help_ready,
    EventKind.HELP_COUNTED: _help_counted,
}

#: The store's side effects of events, one entry per kind that has any (every event is also
#: recorded, and some mark a funnel stage: ``funnel_stage``).
EFFECTS: dict[EventKind, Callable[[_Effects, _Save, Event], None]] = {
    EventKind.COMPLETED: _reported,
    EventKind.CONSENT_WITHDRAWN: _withdrawn,
    EventKind.REMINDERS: _messages_answered,
    EventKind.ANNOUNCEMENTS: _messages_answered,
    **dict.fromkeys(_HELP_WRITES, _help),
}


def _take_batch(queue: list[_Save]) -> list[_Save]:
    """The next saves to write together; an erase is always written on its own."""
    if queue[0].reply.erase:
        return [queue.pop(0)]
    size = 0
    while size < min(len(queue), BATCH_LIMIT) and not queue[size].reply.erase:
        size += 1
    batch = queue[:size]
    del queue[:size]
    return batch


def _state_values(item: _Save) -> dict[str, Any]:
    state = item.reply.state
    return {
        "step": state.screen,  # the column predates the rename: it holds the screen
        "state": json.dumps(state.to_json(), ensure_ascii=False, separators=(",", ":")),
        "stopped": state.stopped,
        "version": item.new_version,
        "updated_at": item.now,
    }


def _completion_values(item: _Save, data: Any) -> dict[str, Any]:
    return {
        "channel": item.channel,
        "user_ref": item.user_ref,
        "commune": str(data["commune"]),
        "village": str(data["village"]),
        "provider": str(data["provider"]),
        "lives_here": data["lives_here"] == "yes",
        "source": str(data.get("source", "self")),
        "referral": data.get("referral"),
        "completed_at": item.now,
        "updated_at": item.now,
    }
