"""The one inbound path: what happens to a delivery from any channel, and to the replies.

An adapter hands over an :class:`~handlers.channel.Incoming`; from there every channel is
treated alike:

1. a webhook delivery is made durable first -- a sealed row in the inbox -- and only then
   acknowledged (:meth:`Inbound.receive`; if the store cannot take it, the platform is told
   so with a 503 and delivers again). A polled delivery is confirmed only once its step is
   committed (:meth:`Inbound.submit` and :meth:`Inbound.committed`);
2. deliveries are queued per user (in order for that user, concurrently across users), and a
   delivery id seen moments ago is dropped (the store also refuses to apply one twice);
3. a group chat gets a notice, and nothing is stored;
4. staff first: an official's or volunteer's command goes to the staff desk; anything else,
   and anyone else, goes to the citizen conversation, whose step is committed together with
   the deletion of its inbox row and the replies it owes (sealed) -- unless the engine says
   it is the help desk's (handlers/helpdesk.py): a message in a chat between a citizen and
   their helper goes to the other side (cross-channel: the help desk has every running
   channel by name), a request ended; that is committed, in the same way, by the help desk;
5. then the user's sensitive message is deleted where the channel can, and the replies are
   sent and marked sent: a flood-control answer is waited out for that chat alone, and a
   user who blocked the bot is marked stopped.

A step that cannot be committed because the store is in trouble is not acknowledged (a
webhook's inbox row stays, a polled update is not confirmed) and is tried again; the sweeper
(:meth:`Inbound.sweep`, in one worker at a time) takes up inbox rows a crash left behind and
sends replies a crash cut off. A step that fails for any other reason (a bug: retrying would
fail again) is answered with an apology and not tried again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime

from bot.model import (
    Blocked,
    Input,
    Medium,
    OutMessage,
    Start,
    Text,
    input_from_json,
    input_to_json,
)
from handlers.channel import Channel, Incoming
from handlers.conversation import Conversations, Outcome, utcnow
from handlers.delivery import RetryLater, Unreachable
from handlers.helpdesk import HelpDesk
from handlers.ordering import KeyedRunner
from handlers.staff import StaffDesk
from storage.database import TROUBLE
from storage.inbox import Inbox
from storage.repository import CUT_OFF

log = logging.getLogger(__name__)

#: A reply refused with 429 is sent again after the delay the platform names, this many
#: tries in all.
REPLY_ATTEMPTS = 3
#: ... unless the delay is longer than this: a reply is not held back (nor this user's next
#: messages with it) for a quota that comes back in a quarter of an hour (Zalo Bot's 429).
REPLY_WAIT = 60.0
#: Delivery ids remembered in memory (the store remembers them all, durably).
RECENT = 10_000
#: An inbox row or a kept reply this old was left behind (a step takes milliseconds).
LEFT_BEHIND = CUT_OFF
#: The sweeper looks this often.
SWEEP_EVERY = 10.0
#: An inbox row whose step failed this often for store trouble is given up (and logged).
MAX_ATTEMPTS = 20
#: What "the store is in trouble" looks like: the step may succeed later.
STORE_TROUBLE = TROUBLE


class StepFailed(Exception):
    """A step could not be committed because of the store: it is tried again later."""


class Inbound:
    """Per-user ordered processing with commit-before-acknowledge, for every channel."""

    def __init__(
        self,
        conversations: Conversations,
        staff: StaffDesk | None = None,
        *,
        inbox: Inbox | None = None,
        helpdesk: HelpDesk | None = None,
        concurrency: int = 8,
        clock: Callable[[], datetime] = utcnow,
    ):
        self.conversations = conversations
        self.staff = staff
        self.inbox = inbox
        self.helpdesk = helpdesk
        self.clock = clock
        self.runner = KeyedRunner(concurrency)
        self._recent: OrderedDict[tuple[str, str], datetime] = OrderedDict()
        #: Rows a crash left behind are the inbox rows received before this moment (or
        #: older than LEFT_BEHIND): see _left_behind.
        self._started = clock()
        #: Inbox rows queued in this process, with their turn's future (the sweeper leaves
        #: them alone); and turns to skip, their row taken up before its user's next one.
        self._turns: dict[int, asyncio.Future[None]] = {}
        self._skip: set[asyncio.Future[None]] = set()

    # --- receiving ------------------------------------------------------------------------

    async def receive(self, channel: Channel, incoming: Incoming) -> bool:
        """A webhook delivery: True once it is durable (the webhook may answer 200), False if
        the store cannot take it now (answer 503: the platform delivers again)."""
        if self._seen(channel, incoming):
            return True
        if self.inbox is None:  # no inbox (tests, tools): wait for the step itself
            return await self.committed(channel, [self._queue(channel, incoming, None)]) == 1
        refs = self.conversations.refs
        ref = refs.ref(channel.name, incoming.user)
        payload = refs.seal(channel.name, ref, json.dumps(_to_json(incoming)))
        try:
            row = await self.inbox.put(channel.name, ref, payload, self.clock())
        except STORE_TROUBLE as exc:
            log.warning("%s: the store cannot take a delivery (%s)", channel.name, _kind(exc))
            self._recent.pop((channel.name, incoming.delivery_id or ""), None)
            return False
        self._queue(channel, incoming, row)
        return True

    def submit(self, channel: Channel, incoming: Incoming) -> asyncio.Future[None] | None:
        """A polled delivery (or a typed line): queue it; the returned future completes once
        its step is committed, or fails with :class:`StepFailed` (None: a repeat of a delivery
        just seen, nothing to wait for)."""
        if self._seen(channel, incoming):
            return None
        return self._queue(channel, incoming, None)

    async def committed(
        self, channel: Channel, pending: Sequence[asyncio.Future[None] | None]
    ) -> int:
        """Wait until the steps in ``pending`` are committed -- no longer than the platform's
        patience -- and return how many, from the first, may be confirmed: all but those
        from the first that failed (they must be delivered again)."""
        waiting = [asyncio.shield(f) for f in pending if f is not None]
        if waiting:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(channel.capabilities.ack_within):
                    await asyncio.wait(waiting)
        for number, future in enumerate(pending):
            if future is None or not future.done():
                continue
            if future.exception() is not None:
                return number
        if any(f is not None and not f.done() for f in pending):
            log.warning("%s: confirmed before every step was committed", channel.name)
        return len(pending)

    def _seen(self, channel: Channel, incoming: Incoming) -> bool:
        """A delivery this process took moments ago (a platform's quick retry): dropped.
        Later repeats go on to the store, which applies each once -- and sends what a crash
        left unsent."""
        if incoming.delivery_id is None:
            return False
        key = (channel.name, incoming.delivery_id)
        now = self.clock()
        seen = self._recent.get(key)
        if seen is not None and now - seen < CUT_OFF:
            return True
        self._recent[key] = now
        self._recent.move_to_end(key)
        while len(self._recent) > RECENT:
            self._recent.popitem(last=False)
        return False

    def _queue(
        self,
        channel: Channel,
        incoming: Incoming,
        inbox_id: int | None,
        ended: list[asyncio.Future[None]] | None = None,
    ) -> asyncio.Future[None]:
        """Queue a delivery in its user's lane; the future completes once its step is
        committed. ``ended``: gets a future that completes once it is all done (answered)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        done.add_done_callback(_retrieve)
        if inbox_id is not None:
            self._turns[inbox_id] = done
        end: asyncio.Future[None] = loop.create_future()
        if ended is not None:
            ended.append(end)

        async def job() -> None:
            try:
                await self._process(channel, incoming, inbox_id, done)
            finally:
                end.set_result(None)

        self.runner.submit((channel.name, incoming.user), job)
        return done

    async def drain(self) -> None:
        """Wait until every queued delivery has been processed and answered."""
        await self.runner.drain()
        if self.helpdesk is not None:
            await self.helpdesk.drain()

    async def settled(self, channel: Channel, user: str) -> None:
        """Wait until every delivery queued so far for this one user has been processed and
        answered (a web page answers its own request with the replies)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def mark() -> None:
            _settle(done)

        self.runner.submit((channel.name, user), mark)
        await done

    # --- one delivery ---------------------------------------------------------------------

    async def _process(
        self,
        channel: Channel,
        incoming: Incoming,
        inbox_id: int | None,
        done: asyncio.Future[None],
        *,
        first_the_older: bool = True,
    ) -> None:
        try:
            if done in self._skip:
                _settle(done)  # taken up already, before a later message of its user
                return
            if inbox_id is not None and first_the_older:
                await self._left_behind(channel, incoming, inbox_id)
            await self._step(channel, incoming, inbox_id, done)
        finally:
            self._skip.discard(done)
            if inbox_id is not None and self._turns.get(inbox_id) is done:
                del self._turns[inbox_id]

    async def _left_behind(self, channel: Channel, incoming: Incoming, inbox_id: int) -> None:
        """Apply first, in order, what a crash left in the inbox of this user: else their
        next message overtakes it (it would wait for the sweeper: 30 s at least, minutes
        with a backlog). Left behind: received before this process started, or longer ago
        than the sweeper waits. (With several workers, a row another live worker received
        before this one started may be in its queue still: it is applied once all the same,
        the delivery ids see to that.)"""
        if self.inbox is None:
            return
        refs = self.conversations.refs
        ref = refs.ref(channel.name, incoming.user)
        before = max(self._started, self.clock() - LEFT_BEHIND)
        try:
            rows = await self.inbox.older(channel.name, ref, inbox_id, before)
        except STORE_TROUBLE:
            return  # the sweeper takes them up later
        for row in rows:
            opened = refs.unseal(row.channel, row.user_ref, row.payload)
            if opened is None or row.attempts >= MAX_ATTEMPTS:
                continue  # for the sweeper to give up
            # A row the sweeper queued after this delivery waits behind it in this lane:
            # taken up now all the same, and its own turn skipped if this one succeeds.
            queued = self._turns.get(row.id)
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.add_done_callback(_retrieve)
            if queued is None:
                self._turns[row.id] = done
            left = _from_json(json.loads(opened))
            await self._process(channel, left, row.id, done, first_the_older=False)
            if queued is not None and done.done() and done.exception() is None:
                self._skip.add(queued)

    async def _step(
        self,
        channel: Channel,
        incoming: Incoming,
        inbox_id: int | None,
        done: asyncio.Future[None],
    ) -> None:
        try:
            if incoming.callback_id is not None:
                await _quietly(channel.acknowledge(incoming))
            event = _normalised(incoming.event)
            if event is None:
                await self._finished(inbox_id, done)
                notice = self.conversations.notice("group_chat", _medium(channel))
                await self.send(channel, incoming, (notice,))
                return
            if self.staff is not None:
                staff = await self.staff.handle(
                    channel.name,
                    incoming.user,
                    event,
                    files=channel.capabilities.files,
                    delivery_id=incoming.delivery_id,
                    chat=incoming.chat,
                )
                if staff is not None:
                    await self._finished(inbox_id, done)
                    await self.send(channel, incoming, staff.messages)
                    return
            outcome = await self._conversation_step(channel, incoming, event, inbox_id)
            if outcome.help is not None and self.helpdesk is not None:
                if await self.helpdesk.act(channel, incoming, event, outcome.help, inbox_id):
                    _settle(done)  # committed by the help desk, with its inbox row
                    return
                # The conversation was behind (the request ended meanwhile): a step after all.
                outcome = await self._conversation_step(channel, incoming, event, inbox_id)
            if (outcome.help_opened or outcome.help_erased) and self.helpdesk is not None:
                self.helpdesk.kick()  # its first volunteers (or the erased chat's helper) told now
            if outcome.committed:
                _settle(done)  # the step is committed: the delivery may be confirmed now
            else:
                await self._finished(inbox_id, done)  # not read (the flood limit)
            if outcome.delete_input and channel.capabilities.can_delete:
                await _quietly(channel.discard(incoming))
                log.info("%s: deleted a sensitive message from a private chat", channel.name)
            if await self.send(channel, incoming, outcome.messages) and outcome.receipt:
                self.conversations.repo.mark_sent(*outcome.receipt)
        except STORE_TROUBLE as exc:
            # Not committed, not confirmed: delivered again (by the platform, or the sweeper
            # for an inbox row). Nothing said: the answer will come then.
            log.warning("%s: a step could not be committed (%s)", channel.name, _kind(exc))
            if not done.done():
                done.set_exception(StepFailed(_kind(exc)))
        except Exception as exc:
            # A bug: trying again would fail again. Never the message text: only what failed.
            log.exception("%s: a delivery failed: %s", channel.name, type(exc).__name__)
            with contextlib.suppress(Exception):
                await self._finished(inbox_id, done)
            _settle(done)
            with contextlib.suppress(Exception):
                notice = self.conversations.notice("error", _medium(channel))
                await channel.deliver(incoming.chat, (notice,))

    async def _conversation_step(
        self, channel: Channel, incoming: Incoming, event: Input, inbox_id: int | None
    ) -> Outcome:
        return await self.conversations.handle(
            channel.name,
            incoming.user,
            event,
            delivery_id=incoming.delivery_id,
            medium=_medium(channel),
            reply_to=incoming.chat,
            inbox_id=inbox_id,
        )

    async def _finished(self, inbox_id: int | None, done: asyncio.Future[None]) -> None:
        """No step to commit (a notice, a staff command, a message not read): the inbox row
        is done with."""
        if inbox_id is not None and self.inbox is not None:
            await self.inbox.drop(inbox_id)
        _settle(done)

    async def send(
        self, channel: Channel, incoming: Incoming, messages: Sequence[OutMessage]
    ) -> bool:
        """Send replies in order; after a 429 only this chat waits, then it is sent again.
        True if every message went out."""
        for message in messages:
            for attempt in range(REPLY_ATTEMPTS):
                try:
                    await channel.deliver(incoming.chat, (message,))
                    break
                except RetryLater as exc:
                    if attempt == REPLY_ATTEMPTS - 1 or exc.seconds > REPLY_WAIT:
                        log.warning("%s: a reply was refused %d times", channel.name, attempt + 1)
                        return False
                    await asyncio.sleep(exc.seconds)
                except Unreachable:
                    # The user blocked the bot: remember it, send nothing more.
                    if incoming.user:
                        await self.conversations.handle(channel.name, incoming.user, Blocked())
                    return True
                except Exception as exc:
                    log.warning("%s: a reply failed: %s", channel.name, type(exc).__name__)
                    return False
        return True

    # --- what a crash left behind ---------------------------------------------------------

    async def sweep(self, channels: Mapping[str, Channel]) -> None:
        """Forever (in one worker at a time): take up inbox rows whose step never committed,
        and send replies a crash cut off."""
        while True:
            try:
                await self.sweep_once(channels)
            except STORE_TROUBLE as exc:
                log.warning("sweeping: the store is in trouble (%s)", _kind(exc))
            await asyncio.sleep(SWEEP_EVERY)

    async def sweep_once(self, channels: Mapping[str, Channel]) -> int:
        """One round of :meth:`sweep`; returns how many rows it took up."""
        before = self.clock() - LEFT_BEHIND
        taken = 0
        ended: list[asyncio.Future[None]] = []
        if self.inbox is not None:
            # Rows received before this process started are left behind at once: after a
            # restart, what the killed process had acknowledged waited 30 s more. A live
            # worker may still have one queued: applied twice, the delivery id keeps the
            # first (a reply still being sent is another matter: those wait, below).
            for row in await self.inbox.left_behind(max(before, self._started)):
                channel = channels.get(row.channel)
                opened = self.conversations.refs.unseal(row.channel, row.user_ref, row.payload)
                if channel is None or row.id in self._turns:
                    continue  # that channel does not run here, or it is queued here already
                if opened is None or row.attempts >= MAX_ATTEMPTS:
                    log.error("inbox row %d given up after %d attempts", row.id, row.attempts)
                    await self.inbox.drop(row.id)
                    continue
                await self.inbox.attempted(row.id)
                self._queue(channel, _from_json(json.loads(opened)), row.id, ended)
                taken += 1
        conversations = self.conversations
        for kept in await conversations.repo.unsent(before):
            channel = channels.get(kept.channel)
            if channel is None:
                continue
            replies = conversations.unseal_replies(kept.channel, kept.user_ref, kept.outgoing)
            if replies is not None:
                to, messages = replies
                receiver = Incoming(user="", chat=to, event=None)  # no user id is kept
                if not await self.send(channel, receiver, messages):
                    continue
            conversations.repo.mark_sent(kept.channel, kept.delivery_id)
            taken += 1
        # Its own rows only: under steady load the queue as a whole is never empty, and the
        # next round (replies a crash cut off) would wait until the load ends.
        if ended:
            await asyncio.wait(ended)
        return taken


def _medium(channel: Channel) -> Medium:
    return channel.capabilities.medium(channel.name)


def _to_json(incoming: Incoming) -> dict[str, object]:
    return {
        "user": incoming.user,
        "chat": incoming.chat,
        "event": input_to_json(incoming.event) if incoming.event is not None else None,
        "delivery": incoming.delivery_id,
        "message": incoming.message_id,
        "callback": incoming.callback_id,
    }


def _from_json(data: dict[str, object]) -> Incoming:
    event = data.get("event")
    return Incoming(
        user=str(data["user"]),
        chat=str(data["chat"]),
        event=input_from_json(event) if isinstance(event, dict) else None,
        delivery_id=str(data["delivery"]) if data.get("delivery") is not None else None,
        message_id=str(data["message"]) if data.get("message") is not None else None,
        callback_id=None,  # a button press is answered once, at once
    )


def _normalised(event: Input | None) -> Input | None:
    """ "/start CODE" typed as text (where no link can carry it) is the same as the link."""
    if isinstance(event, Text):
        head, _, payload = event.text.strip().partition(" ")
        if head.split("@")[0].lower() == "/start":
            return Start(payload.strip() or None)
    return event


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _retrieve(future: asyncio.Future[None]) -> None:
    # A failure nobody waits for (a webhook already answered) is logged where it happened.
    if not future.cancelled():
        future.exception()


def _kind(exc: BaseException) -> str:
    return type(exc).__name__


async def _quietly(call: Awaitable[None]) -> None:
    try:
        await call
    except Exception as exc:
        log.warning("a platform call failed: %s", type(exc).__name__)


def split_text(text: str, limit: int) -> list[str]:
    """``text`` in pieces of at most ``limit`` characters, cut at paragraph, line or word
    boundaries where possible."""
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        # A paragraph break in the second half of the piece, else a line break there, else
        # the last space: a piece never ends mid-paragraph when a paragraph can be kept whole.
        cut = -1
        for boundary in ("\n\n", "\n", " "):
            cut = rest.rfind(boundary, 0, limit + 1)
            if cut >= limit // 2:
                break
        if cut <= 0:
            cut = limit
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest or not pieces:
        pieces.append(rest)
    return pieces
