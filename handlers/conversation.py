"""Channel-neutral glue: load a user's session, run the engine, persist, return the reply.

Every adapter calls :meth:`Conversations.handle`. The new state and its events are committed
in one transaction before the adapter sends anything, so a crash after this point loses no
progress, and a redelivered update (same delivery id) is not applied twice.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy.engine import Connection

from bot.engine import Engine
from bot.identity import UserRefs
from bot.model import (
    Blocked,
    HelpAsk,
    HelpNews,
    Input,
    Medium,
    OutMessage,
    Reply,
    Start,
    State,
    Text,
    Timeout,
    VolunteerCode,
)
from bot.vocabulary import EventKind
from handlers.limits import RateLimiter, Verdict
from storage.outbox import dump_messages, load_messages
from storage.repository import Repository, Saved, StoredSession


def utcnow() -> datetime:
    return datetime.now(UTC)


def _opts_in(reply: Reply) -> bool:
    """Whether the user said yes to reminders or to announcements in this reply."""
    kinds = (EventKind.REMINDERS, EventKind.ANNOUNCEMENTS)
    return any(e.kind in kinds and e.detail == "on" for e in reply.events)


#: Events after which the help desk has a request to tell volunteers of.
HELP_OPENED = frozenset({EventKind.HELP_REQUESTED, EventKind.HELP_READY})


def _asks_for_help(reply: Reply) -> bool:
    return any(e.kind is EventKind.HELP_REQUESTED for e in reply.events)


class _ForTheHelpDesk(Exception):
    """Deciding again under the lock, the step turned out to be the help desk's."""

    def __init__(self, ask: HelpAsk):
        super().__init__(ask.what)
        self.ask = ask


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the adapter should do: send ``messages``; delete the user's message if asked.

    ``receipt``: the delivery the replies are kept with until they are marked sent
    (Repository.mark_sent); ``duplicate``: the delivery was applied before (its ``messages``
    are what that step left unsent, if anything); ``committed``: a step was written (not so
    for a message over the flood limit, which is not read); ``help``: nothing was written --
    the help desk must do this (a relayed message, a request ended); ``help_opened``: the
    step made (or opened) a help request: volunteers can be told now; ``help_erased``: the
    user deleted their data -- a helper in a chat with them is told now."""

    messages: tuple[OutMessage, ...] = ()
    delete_input: bool = False
    duplicate: bool = False
    receipt: tuple[str, str] | None = None
    committed: bool = True
    help: HelpAsk | None = None
    help_opened: bool = False
    help_erased: bool = False


class Conversations:
    """Runs one input for one user through engine and store."""

    def __init__(
        self,
        engine: Engine,
        repo: Repository,
        refs: UserRefs,
        clock: Callable[[], datetime] = utcnow,
        area_of: Callable[[str], Awaitable[str | None]] | None = None,
        own_code: Callable[[str, str], Awaitable[str | None]] | None = None,
    ):
        self.engine = engine
        self.repo = repo
        self.refs = refs
        self.clock = clock
        # Which commune a referral code belongs to (a volunteer's), if any.
        self.area_of = area_of
        # The referral code of the user (channel, reference) if they are a volunteer: their
        # own link never counts for them (issue 12: a volunteer who opened it and reported
        # counted as "started via your link").
        self.own_code = own_code
        self.limiter = RateLimiter(engine.config.messages_per_minute)

    async def handle(
        self,
        channel: str,
        user_id: str | int,
        event: Input,
        *,
        delivery_id: str | None = None,
        medium: Medium | None = None,
        reply_to: str | None = None,
        inbox_id: int | None = None,
    ) -> Outcome:
        """Run one input for one user and commit its step. ``delivery_id``: the platform's
        id of the delivery (applied once); ``medium``: what the channel can do (buttons,
        deleting a message...: chooses the wording; by default a chat with buttons);
        ``reply_to``: where the replies go, kept with the
        step (sealed) until they are marked sent; ``inbox_id``: the inbox row it came from,
        deleted with the step."""
        ref = self.refs.ref(channel, user_id)
        medium = medium or Medium(channel)
        if not isinstance(event, Blocked | Timeout | HelpNews):
            verdict = self.limiter.check(ref, self.clock())
            if verdict is not Verdict.OK:
                # Not read -- but a photo or a typed code still leaves the chat.
                delete = self.engine.must_delete(event)
                if verdict is Verdict.WARN:
                    notice = self.engine.notice("slow_down", medium)
                    return Outcome((notice,), delete, committed=False)
                return Outcome(delete_input=delete, committed=False)
        event = await self._checked_code(event)
        code = event.payload if isinstance(event, Start) else None
        code = event.code if isinstance(event, VolunteerCode) else code
        if (
            code
            and self.own_code is not None
            and (await self.own_code(channel, ref) or "").upper() == code.upper()
        ):
            event = Start(None)  # a volunteer's own link or code counts nothing for them
        key = self.refs.delivery(channel, delivery_id) if delivery_id is not None else None

        def keeps(reply: Reply) -> bool:
            return key is not None and reply_to is not None and bool(reply.messages)

        def outgoing(reply: Reply) -> str | None:
            if not keeps(reply) or reply.erase:
                return None
            kept = json.dumps({"to": reply_to, "messages": dump_messages(reply.messages)})
            return self.refs.seal(channel, ref, kept)

        def private(reply: Reply) -> dict[str, str]:
            return {k: self.refs.seal(channel, ref, v) for k, v in reply.private.items()}

        stored = await self.repo.load(channel, ref)
        now = self.clock()
        state = stored.state if stored else State()
        reply = self.engine.advance(state, event, now, medium=medium)
        if reply.help is not None:  # for the help desk: nothing of it is written here
            return Outcome(committed=False, help=reply.help)
        version = stored.version if stored else None
        # The chat address is kept (sealed) only when the user says yes to messages, or
        # asks for a person (in their help request, until it ends).
        address = self.refs.seal(channel, ref, user_id) if _opts_in(reply) else None
        chat = reply_to if reply_to is not None else user_id
        help_address = self.refs.seal(channel, ref, chat) if _asks_for_help(reply) else None
        item = await self.repo.save_item(
            channel,
            ref,
            reply,
            version=version,
            now=now,
            delivery_id=key,
            address=address,
            inbox_id=inbox_id,
            outgoing=outgoing(reply),
            help_address=help_address,
            private=private(reply),
        )
        if item.outcome is Saved.CONFLICT:
            # Another worker moved this session on meanwhile: decide again on what it wrote,
            # this time with the session locked, so that this step cannot lose a second time.
            def decide(current: StoredSession | None) -> Reply:
                state = current.state if current else State()
                decided = self.engine.advance(state, event, now, medium=medium)
                if decided.help is not None:
                    raise _ForTheHelpDesk(decided.help)  # rolls back: nothing written
                return decided

            address = self.refs.seal(channel, ref, user_id)  # used only if it opts in
            try:
                item, reply = await self.repo.save_exclusively(
                    channel,
                    ref,
                    decide,
                    now=now,
                    delivery_id=key,
                    address=address,
                    inbox_id=inbox_id,
                    outgoing=outgoing,
                    help_address=self.refs.seal(channel, ref, chat),  # used only if it asks
                    private=private,
                )
            except _ForTheHelpDesk as diverted:
                return Outcome(committed=False, help=diverted.ask)
        receipt = (channel, key) if key is not None else None
        if item.outcome is Saved.DUPLICATE:
            unsent = self.unseal_replies(channel, ref, item.unsent) if item.unsent else None
            if unsent is None:
                return Outcome(duplicate=True)
            return Outcome(unsent[1], duplicate=True, receipt=receipt)
        if item.outcome is not Saved.SAVED:
            raise RuntimeError(f"a locked step ended in {item.outcome}")
        kept = receipt if keeps(reply) and not reply.erase else None
        opened = any(e.kind in HELP_OPENED for e in reply.events)
        return Outcome(
            reply.messages,
            reply.delete_input,
            receipt=kept,
            help_opened=opened,
            help_erased=reply.erase,
        )

    async def _checked_code(self, event: Input) -> Input:
        """A volunteer's code, checked against the enrolled volunteers: typed ("ma VK7M2QX",
        or a known code alone) it becomes a VolunteerCode the engine confirms (or, unknown,
        asks to check); in a link (/start CODE) an unknown one is dropped, never kept (a
        later right one must still count: the first code kept wins)."""
        if isinstance(event, Text) and (typed := self.engine.typed_code(event.text)):
            code, meant = typed
            area = await self.area_of(code) if self.area_of else None
            if area is not None or meant:
                return VolunteerCode(code, area)
        if isinstance(event, Start) and event.payload and self.area_of and event.area is None:
            area = await self.area_of(event.payload)
            return replace(event, area=area, payload=event.payload if area else None)
        return event

    def unseal_replies(
        self, channel: str, user_ref: str, sealed: str
    ) -> tuple[str, tuple[OutMessage, ...]] | None:
        """(where to, the messages) of replies kept with a delivery, if they open."""
        opened = self.refs.unseal(channel, user_ref, sealed)
        if opened is None:
            return None
        kept = json.loads(opened)
        return str(kept["to"]), load_messages(kept["messages"])

    async def remind(
        self,
        channel: str,
        address: str,
        claim: Callable[[Connection, Reply], None],
        medium: Medium | None = None,
    ) -> tuple[OutMessage, ...]:
        """Run the reminder step for the user at ``address``; ``claim`` takes the outbox row
        in the same transaction (so the step happens once, whatever crashes). Returns the
        messages to send (none: the user is not mid-way any more)."""
        ref = self.refs.ref(channel, address)
        medium = medium or Medium(channel)
        now = self.clock()

        def decide(current: StoredSession | None) -> Reply:
            if current is None:  # their data was deleted: nothing to remind, nothing to keep
                return Reply(State(), persist=False)
            return self.engine.advance(current.state, Timeout(), now, medium=medium)

        _, reply = await self.repo.save_exclusively(channel, ref, decide, now=now, also=claim)
        return reply.messages

    def notice(self, key: str, medium: Medium | None = None) -> OutMessage:
        """A message that needs no session (group chats, errors)."""
        return self.engine.notice(key, medium or Medium())
