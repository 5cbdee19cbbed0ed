"""The outbox worker: plans reminders, then sends reminders and announcements, paced.

It runs in one worker at a time (the ``outbox`` lease). Each round it adds the reminders
that have become due, then sends due rows, oldest first:

- never in quiet hours (deployment time);
- at most ``[outbox] messages_per_second`` overall and one message per chat every
  ``seconds_per_chat`` (Telegram allows about 30/s and 1/s); the channel's own limiter
  (PTB's AIORateLimiter) is a second guard;
- a row is claimed -- for a reminder, together with the reminder step of the conversation, in
  one transaction -- immediately before its request leaves, so a crash leaves at most the
  rows in flight in doubt (``unknown``, never sent again) and repeats nothing;
- a 429 pauses everything for its ``retry_after`` and puts the row back; a blocked user's
  address is forgotten and their session marked stopped; a request that certainly did not
  leave (no connection) is tried again later;
- while the store refuses writes (locked, read-only, full) nothing is claimed: the worker
  waits :data:`TROUBLE_PAUSE` between tries and logs one warning per :data:`TROUBLE_LOG_EVERY`
  (bench/faults.py saw an ERROR with a traceback for every row, every round).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.engine import Connection

from bot.model import Blocked, Medium, OutMessage, Reply
from bot.schedule import in_quiet_hours, next_allowed
from handlers.conversation import Conversations, utcnow
from handlers.delivery import Deliverer, InDoubt, NotSent, Rejected, RetryLater, Unreachable
from storage.database import TROUBLE
from storage.outbox import Due, LostClaim, OutboxStore, claim, load_messages

#: How often reminders are planned.
PLAN_EVERY = 60.0
#: Rows fetched per round.
BATCH = 200
#: A request that certainly did not leave is tried again after this (doubling), this often.
RETRY_AFTER = timedelta(seconds=30)
MAX_ATTEMPTS = 8
#: While the store is in trouble: due rows are tried again this long after a failure...
TROUBLE_PAUSE = 5.0
#: ... and it is said once this often, with how many tries failed meanwhile.
TROUBLE_LOG_EVERY = 60.0

log = logging.getLogger(__name__)


class _Trouble:
    """The store refusing writes, logged once per :data:`TROUBLE_LOG_EVERY`, not per try."""

    def __init__(self) -> None:
        self._said_at: float | None = None
        self._unsaid = 0
        self.until = 0.0

    def __call__(self, doing: str, exc: BaseException) -> None:
        now = time.monotonic()
        self.until = now + TROUBLE_PAUSE
        if self._said_at is not None and now - self._said_at < TROUBLE_LOG_EVERY:
            self._unsaid += 1
            return
        more = f"; {self._unsaid} more failures since the last warning" if self._unsaid else ""
        log.warning(
            "outbox: the store refuses writes (%s) while %s; trying again%s",
            type(exc).__name__,
            doing,
            more,
        )
        self._said_at, self._unsaid = now, 0

    @property
    def pausing(self) -> bool:
        return time.monotonic() < self.until


class Pacer:
    """Hands out send slots: at most ``rate`` per second, one per chat every ``per_chat``.

    Telegram counts messages as they arrive. A slot is handed out before its row is claimed
    (a database transaction); anything that holds the event loop past several slots (a long
    transaction, planning reminders) would wake their holders together, and a handful of
    messages leaving at once is enough for a 429. So the waiters are let out one interval
    apart again, and a flood-control pause holds back those already waiting too."""

    def __init__(
        self,
        rate: float,
        per_chat: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        self.interval = 1.0 / rate
        self.per_chat = per_chat
        self.clock = clock
        self.sleep = sleep
        self._next = 0.0  # the next free slot
        self._released = -self.interval  # when the last waiter was let out
        self._resume = 0.0  # no one is let out before this (flood control)
        self._chats: dict[str, float] = {}

    async def wait(self, chat: str) -> float:
        """Wait for a slot; returns the time (``clock``) the caller was let out."""
        now = self.clock()
        last = self._chats.get(chat)
        slot = max(now, self._next, now if last is None else last + self.per_chat)
        self._next = slot + self.interval
        self._chats[chat] = slot
        if len(self._chats) > 50_000:  # forget chats whose second has long passed
            self._chats = {c: t for c, t in self._chats.items() if t > now - self.per_chat}
        if slot > now:
            await self.sleep(slot - now)
        while True:
            now = self.clock()
            at = max(now, slot, self._released + self.interval, self._resume)
            self._released = self._chats[chat] = at
            if at > now:
                await self.sleep(at - now)
            if self._resume <= at:  # no 429 came meanwhile that asks for a longer wait
                return at

    def pause(self, seconds: float) -> None:
        """Flood control said wait: no one is let out before then."""
        self._resume = max(self._resume, self.clock() + seconds)
        self._next = max(self._next, self._resume)


@dataclass
class OutboxStats:
    sent: int = 0
    retried: int = 0
    flood_waits: int = 0
    unreachable: int = 0
    in_doubt: int = 0
    skipped: int = 0


class OutboxWorker:
    def __init__(
        self,
        store: OutboxStore,
        conversations: Conversations,
        deliverers: Mapping[str, Deliverer],
        holder: str,
        *,
        mediums: Mapping[str, Medium] | None = None,
        clock: Callable[[], datetime] = utcnow,
        plan_every: float = PLAN_EVERY,
        idle_wait: float = 1.0,
    ):
        self.store = store
        self.conversations = conversations
        self.engine = conversations.engine
        self.config = conversations.engine.config
        self.deliverers = deliverers
        # What each channel can do (the reminder's wording follows it).
        self.mediums = mediums or {}
        self.holder = holder
        self.clock = clock
        self.plan_every = plan_every
        self.idle_wait = idle_wait
        pace = self.config.outbox
        self.pacer = Pacer(pace.messages_per_second, pace.seconds_per_chat)
        # Enough requests in flight to keep the pace even when each takes a second.
        self._slots = asyncio.Semaphore(max(4, int(pace.messages_per_second * 2)))
        self._in_flight: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.stats = OutboxStats()
        self._trouble = _Trouble()

    # --- the loop -------------------------------------------------------------------------

    async def run(self) -> None:
        """Plan and send until cancelled."""
        while True:
            try:
                swept = await self.store.sweep_in_doubt(self.holder, self.clock())
                break
            except TROUBLE as exc:
                self._trouble("sweeping the rows a dead worker left", exc)
                await asyncio.sleep(TROUBLE_PAUSE)
        if swept:
            log.warning("outbox: %d messages were in flight when a worker died: not resent", swept)
        next_plan = 0.0
        try:
            while True:
                if time.monotonic() >= next_plan:
                    await self._plan_quietly()
                    next_plan = time.monotonic() + self.plan_every
                try:
                    started = await self.send_due()
                except TROUBLE as exc:
                    self._trouble("fetching due rows", exc)
                    started = 0
                if not started:
                    await asyncio.sleep(self._pause())
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _plan_quietly(self) -> None:
        try:
            added = await self.plan()
            if added:
                log.info("outbox: %d reminders planned", added)
        except TROUBLE as exc:
            self._trouble("planning reminders", exc)
        except Exception:
            log.exception("outbox: planning reminders failed; will try again")

    def _pause(self) -> float:
        if self._trouble.pausing:
            return max(self.idle_wait, self._trouble.until - time.monotonic())
        now = self.clock()
        quiet = self._quiet_until(now)
        if quiet is not None:
            return min(60.0, max(1.0, (quiet - now).total_seconds()))
        return self.idle_wait

    def _quiet_until(self, now: datetime) -> datetime | None:
        r = self.config.reminders
        if in_quiet_hours(now, self.config.timezone, r.quiet_from, r.quiet_until):
            return next_allowed(now, self.config.timezone, r.quiet_from, r.quiet_until)
        return None

    async def plan(self) -> int:
        """Add the reminders that have become due (to be sent once quiet hours are over)."""
        now = self.clock()
        r = self.config.reminders
        if not r.after:
            return 0
        due_at = next_allowed(now, self.config.timezone, r.quiet_from, r.quiet_until)
        steps = self.engine.resumable_steps()
        total = 0
        while added := await self.store.plan_reminders(now, r.after, steps, due_at):
            total += added
        return total

    async def send_due(self) -> int:
        """Start sending the rows due now (paced); returns how many were started."""
        now = self.clock()
        if self._quiet_until(now) is not None or self._trouble.pausing:
            return 0
        rows = await self.store.due(now, BATCH, exclude=tuple(self._in_flight))
        for row in rows:
            if self._quiet_until(self.clock()) is not None or self._trouble.pausing:
                break
            await self._slots.acquire()
            self._in_flight.add(row.id)
            task = asyncio.create_task(self._one(row))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(rows)

    async def drain(self) -> None:
        """Wait for the sends in flight (tests, clean shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # --- one row --------------------------------------------------------------------------

    async def _one(self, row: Due) -> None:
        try:
            await self._send(row)
        except TROUBLE as exc:
            self._trouble("sending due rows", exc)  # not claimed: it stays due
        except Exception:
            log.exception("outbox: row %d failed", row.id)
        finally:
            self._in_flight.discard(row.id)
            self._slots.release()

    async def _send(self, row: Due) -> None:
        deliverer = self.deliverers.get(row.channel)
        if deliverer is None:
            return  # that channel is not running here: the row waits
        sealed = await self.store.address(row.channel, row.user_ref)
        address = (
            self.conversations.refs.unseal(row.channel, row.user_ref, sealed) if sealed else None
        )
        if address is None:
            # They said "dung", blocked the bot or deleted their data (or the secret changed).
            await self.store.finish_unclaimed(row.id, "cancelled", self.clock())
            return
        await self.pacer.wait(f"{row.channel}:{address}")
        messages = await self._claim(row, address)
        if not messages:
            self.stats.skipped += 1
            return
        try:
            await deliverer.deliver(address, messages)
        except RetryLater as exc:
            self.stats.flood_waits += 1
            self.pacer.pause(exc.seconds)
            later = self.clock() + timedelta(seconds=exc.seconds)
            await self.store.retry(row.id, later, self.holder)
        except NotSent:
            self.stats.retried += 1
            await self._retry(row)
        except Unreachable:
            self.stats.unreachable += 1
            await self.store.finish(row.id, "failed", self.clock(), self.holder)
            await self.store.unreachable(row.channel, row.user_ref, self.clock())
            await self.conversations.handle(row.channel, address, Blocked())
        except Rejected:
            log.warning("outbox: %s refused row %d; not tried again", row.channel, row.id)
            await self.store.finish(row.id, "failed", self.clock(), self.holder)
        except InDoubt:
            self.stats.in_doubt += 1
            await self.store.finish(row.id, "unknown", self.clock(), self.holder)
        else:
            self.stats.sent += 1
            await self.store.finish(row.id, "sent", self.clock(), self.holder)

    async def _claim(self, row: Due, address: str) -> tuple[OutMessage, ...]:
        """Take the row; the messages to send (none: nothing to send any more)."""
        now = self.clock()
        if row.payload is not None:  # tried before: the same messages again
            taken = await self.store.claim_again(row.id, self.holder)
            return load_messages(row.payload) if taken else ()
        if row.kind == "broadcast":
            text = await self.store.claim_broadcast(row, self.holder, now)
            return (OutMessage(text),) if text else ()

        def take(conn: Connection, reply: Reply) -> None:
            claim(conn, row.id, self.holder, reply.messages, now)

        with contextlib.suppress(LostClaim):
            medium = self.mediums.get(row.channel)
            return await self.conversations.remind(row.channel, address, take, medium)
        return ()

    async def _retry(self, row: Due) -> None:
        attempts = await self.store.attempts(row.id)
        if attempts >= MAX_ATTEMPTS:
            await self.store.finish(row.id, "failed", self.clock(), self.holder)
            return
        later = self.clock() + RETRY_AFTER * 2 ** max(0, attempts - 1)
        await self.store.retry(row.id, later, self.holder)
