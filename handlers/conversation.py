"""Channel-neutral glue: load a user's session, run the engine, persist, return the reply.

Every adapter calls :meth:`Conversations.handle`. The new state and its events are committed
in one transaction before the adapter sends anything, so a crash after this point loses no
progress, and a redelivered update (same delivery id) is not applied twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy.engine import Connection

from bot.engine import Engine
from bot.identity import UserRefs
from bot.model import Blocked, Input, OutMessage, Reply, Start, State, Text, Timeout
from bot.vocabulary import EventKind
from handlers.limits import RateLimiter, Verdict
from storage.repository import Repository, Saved, StoredSession


def utcnow() -> datetime:
    return datetime.now(UTC)


def _opts_in(reply: Reply) -> bool:
    return any(e.kind is EventKind.REMINDERS and e.detail == "on" for e in reply.events)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the adapter should do: send ``messages``; delete the user's message if asked."""

    messages: tuple[OutMessage, ...] = ()
    delete_input: bool = False
    duplicate: bool = False


class Conversations:
    """Runs one input for one user through engine and store."""

    def __init__(
        self,
        engine: Engine,
        repo: Repository,
        refs: UserRefs,
        clock: Callable[[], datetime] = utcnow,
        area_of: Callable[[str], Awaitable[str | None]] | None = None,
    ):
        self.engine = engine
        self.repo = repo
        self.refs = refs
        self.clock = clock
        # Which commune a referral code belongs to (a volunteer's), if any.
        self.area_of = area_of
        self.limiter = RateLimiter(engine.config.messages_per_minute)

    async def handle(
        self,
        channel: str,
        user_id: str | int,
        event: Input,
        *,
        delivery_id: str | None = None,
        can_delete: bool = True,
    ) -> Outcome:
        ref = self.refs.ref(channel, user_id)
        if not isinstance(event, Blocked | Timeout):
            verdict = self.limiter.check(ref, self.clock())
            if verdict is not Verdict.OK:
                # Not read -- but a photo or a typed code still leaves the chat.
                delete = self.engine.must_delete(event)
                if verdict is Verdict.WARN:
                    return Outcome((self.engine.notice("slow_down"),), delete)
                return Outcome(delete_input=delete)
        if isinstance(event, Text) and (code := self.engine.typed_referral(event.text)):
            event = Start(code)  # typed where no link can carry it: the same as the link
        if isinstance(event, Start) and event.payload and self.area_of and event.area is None:
            event = replace(event, area=await self.area_of(event.payload))
        stored = await self.repo.load(channel, ref)
        now = self.clock()
        state = stored.state if stored else State()
        reply = self.engine.advance(state, event, now, can_delete=can_delete)
        version = stored.version if stored else None
        # The chat address is kept (sealed) only when the user says yes to messages.
        address = self.refs.seal(channel, ref, user_id) if _opts_in(reply) else None
        saved = await self.repo.save(
            channel, ref, reply, version=version, now=now, delivery_id=delivery_id, address=address
        )
        if saved is Saved.CONFLICT:
            # Another worker moved this session on meanwhile: decide again on what it wrote,
            # this time with the session locked, so that this step cannot lose a second time.
            def decide(current: StoredSession | None) -> Reply:
                state = current.state if current else State()
                return self.engine.advance(state, event, now, can_delete=can_delete)

            address = self.refs.seal(channel, ref, user_id)  # used only if it opts in
            saved, reply = await self.repo.save_exclusively(
                channel, ref, decide, now=now, delivery_id=delivery_id, address=address
            )
        if saved is Saved.DUPLICATE:
            return Outcome(duplicate=True)
        if saved is not Saved.SAVED:
            raise RuntimeError(f"a locked step ended in {saved}")
        return Outcome(reply.messages, reply.delete_input)

    async def remind(
        self, channel: str, address: str, claim: Callable[[Connection, Reply], None]
    ) -> tuple[OutMessage, ...]:
        """Run the reminder step for the user at ``address``; ``claim`` takes the outbox row
        in the same transaction (so the step happens once, whatever crashes). Returns the
        messages to send (none: the user is not mid-way any more)."""
        ref = self.refs.ref(channel, address)
        now = self.clock()

        def decide(current: StoredSession | None) -> Reply:
            if current is None:  # their data was deleted: nothing to remind, nothing to keep
                return Reply(State(), persist=False)
            return self.engine.advance(current.state, Timeout(), now)

        _, reply = await self.repo.save_exclusively(channel, ref, decide, now=now, also=claim)
        return reply.messages

    def notice(self, key: str) -> OutMessage:
        """A message that needs no session (group chats, errors)."""
        return self.engine.notice(key)
