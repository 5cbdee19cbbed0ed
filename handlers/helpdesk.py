"""The help desk: a person behind the bot (issue 11).

A citizen asks for a person ("🙋 Nho nguoi giup": the form is the engine's, bot/engine/
helping.py; the request is made in their step's own transaction, storage/helpdesk.py). From
then on this module moves the request along -- every transition one transaction, in the lock
order storage/helpdesk.py gives (the request, then the citizen's conversation, then the
helper's) -- and carries the messages:

- **Telling people.** The volunteers of the citizen's village first, the commune's other
  volunteers a few minutes later, its officials once it has waited half an hour of working
  time, and after a day the citizen is told nobody came and given the support point
  (bot/helprequests.py; config ``[helpdesk]``). A notice holds what the citizen agreed to
  share and nothing else, with "Nhan giup" (or ``/nhan 12`` where there are no buttons).
- **Claims.** The first claim wins: one conditional update of the request's row (open ->
  claimed) in a transaction that also tells the citizen's conversation (a chat begins) and
  the helper's (what they type now goes to the citizen); two helpers on two workers -- the
  second finds it taken. Officials can take one too.
- **Relay.** While a request is claimed, what one side types reaches the other through the
  bot, each message saying who speaks, neither seeing the other's account. The engine says
  when an input is for the other side (``Reply.help``); the citizen's codes, ID and phone
  numbers and photos never get that far (the engine's usual guard), and a helper's message
  that asks for an OTP, a PIN, a photo of the card or of the face is held back and the helper
  told why (bot/helpguard.py). A helper's picture (a screenshot of the right screen) is
  passed on by where their platform keeps it, its caption checked the same way -- never a
  citizen's. Links to sites the deployment does not allow are hidden both ways.
- **Ending.** The helper records the outcome (installed / not yet / needs a home visit /
  could not help); the citizen can end the chat (saying whether they installed), cancel, or
  report the helper (the officials are told). "Installed" is counted as an assisted
  completion for that helper and village only if the citizen agrees (their step, then).

**Nothing lost, nothing doubled.** A transition and every message it sends are committed
together -- the messages as sealed rows in ``help_messages`` -- before the delivery that
caused them is acknowledged (its inbox row deleted, its delivery id recorded: a redelivery
does nothing more). Right after the commit the worker that made them sends them, in order,
each claimed (``sending``) just before its request leaves and deleted once sent; rows a
crash left ``pending`` are sent by whichever worker holds the ``helpdesk`` lease (within
seconds), and rows a crash left ``sending`` are never sent again. So a kill -9 loses nothing
that was acknowledged and repeats nothing: the only message in doubt is one whose request
was leaving at that very moment -- no platform here can say whether it arrived (none takes
an idempotency key), it almost always did, and sending it again would show it twice. The
relay does not wait behind announcements: it has its own rows and sends at once, under the
platforms' per-chat limits (a 429 waits for that chat alone).

**Privacy.** A relayed message exists in the store only sealed and in transit (deleted once
sent); when a request ends, what is left of them is deleted with its sealed chat address,
landmark and phone number (the last two are deleted after 14 days in any case). /xoadulieu
ends the citizen's requests and empties them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from bot import helprequests, officials
from bot.config import Config
from bot.content import Content, load_staff_texts
from bot.engine import Engine
from bot.engine.guards import hide_foreign_links
from bot.helpguard import Guard
from bot.model import (
    HelpAsk,
    HelpNews,
    Input,
    Media,
    Option,
    OutMessage,
    Reply,
    State,
    Text,
    photo_reaches,
)
from bot.officials import Scope
from handlers.channel import Channel, Incoming
from handlers.conversation import Conversations, utcnow
from handlers.delivery import InDoubt, NotSent, OutsideWindow, Rejected, RetryLater, Unreachable
from storage import helpdesk as store
from storage.database import TROUBLE, Database
from storage.helpdesk import Member, Outgoing, Request
from storage.outbox import dump_messages, load_messages
from storage.repository import StoredSession
from storage.writes import writes_for

log = logging.getLogger(__name__)

#: Staff buttons' screen (the staff desk's: handlers/staff.py SCREEN).
STAFF_SCREEN = "st"
#: The outcomes a helper records, and what they type for each where there are no buttons.
OUTCOMES = {"installed": "cai", "not_yet": "chua", "visit": "nha", "could_not": "khong"}
TYPED_OUTCOMES = {typed: outcome for outcome, typed in OUTCOMES.items()}
#: A message refused with 429 is sent again after the delay the platform names, this often,
#: unless the delay is longer than REPLY_WAIT (then the row waits for the sweeper).
SEND_ATTEMPTS = 3
REPLY_WAIT = 60.0
#: A pending row this old was left by a crash (the worker that made it sends at once).
LEFT_BEHIND = timedelta(seconds=10)
#: A row claimed this long ago and still here: its sender died mid-send (a send takes a
#: second or two, a 429 wait at most REPLY_WAIT): in doubt, never sent again.
IN_DOUBT = timedelta(seconds=REPLY_WAIT * SEND_ATTEMPTS + 30)
#: The sweeper looks this often (due notifications, messages left behind).
TICK = 5.0
#: Requests advanced per round at most.
BATCH = 200
#: Longest message a helper's words are relayed in (a chat message, not a letter).
RELAY_LIMIT = 2000


@dataclass(slots=True)
class Done:
    """What a transition did: messages to send, and (for staff) what to answer."""

    ids: list[int] = field(default_factory=list)
    answer: tuple[OutMessage, ...] = ()
    #: The input is not the help desk's after all (the state was behind): decide it again.
    rerun: bool = False


class _Stop(Exception):
    """End a transition early: roll it back and answer this."""

    def __init__(self, answer: tuple[OutMessage, ...] = ()):
        super().__init__("stopped")
        self.answer = answer


class HelpDesk:
    """Moves help requests along and carries their messages."""

    def __init__(
        self,
        conversations: Conversations,
        db: Database,
        *,
        clock: Callable[[], datetime] = utcnow,
    ):
        self.conversations = conversations
        self.engine: Engine = conversations.engine
        self.config: Config = self.engine.config
        self.content: Content = self.engine.content
        self.repo = conversations.repo
        self.refs = conversations.refs
        self.db = db
        self.clock = clock
        self.texts = load_staff_texts(self.config.locale)
        self.guard = Guard.from_content(self.content)
        self.channels: dict[str, Channel] = {}
        self._writes = writes_for(db.dialect)
        self._kicked: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def attach(self, channels: Mapping[str, Channel]) -> None:
        """Every running channel, by name: a citizen on Telegram may be helped from Zalo."""
        self.channels = dict(channels)

    # --- what the engine handed over (the inbound path) -----------------------------------

    async def act(
        self,
        channel: Channel,
        incoming: Incoming,
        event: Input | None,
        ask: HelpAsk,
        inbox_id: int | None,
    ) -> bool:
        """Do what a conversation step handed to the help desk, in one transaction with
        the deletion of its inbox row and the record of its delivery id (a redelivery does
        nothing more). False if the conversation was behind -- the request ended meanwhile:
        nothing of this input was done, and it is to be decided again as a step."""
        name = channel.name
        ref = self.refs.ref(name, incoming.user)
        key = self.refs.delivery(name, incoming.delivery_id) if incoming.delivery_id else None
        now = self.clock()
        text = event.text if isinstance(event, Text) else ""

        def work(conn: Connection) -> Done:
            if key is not None:
                row = {"channel": name, "delivery_id": key, "at": now, "user_ref": ref}
                if not self._writes.claim(conn, [{**row, "outgoing": None}]):
                    _inbox_done(conn, inbox_id)
                    return Done()  # applied before: its messages are sent, or will be
            if ask.what != "relay":
                done = self._citizen_ends(conn, name, ref, incoming.chat, ask, now)
            elif ask.side == "volunteer":
                photo = event if isinstance(event, Media) else None
                done = self._relay_from_helper(conn, name, ref, text, photo, now)
            else:
                done = self._relay_from_citizen(conn, name, ref, text, now)
            if done.rerun:  # the delivery is left for the conversation's step
                if key is not None:
                    self._writes.release(conn, [{"channel": name, "delivery_id": key}])
            else:
                _inbox_done(conn, inbox_id)
                # They wrote: what waited for them (Zalo OA's window) can go now, first.
                done.ids[:0] = store.unhold(conn, name, ref)
            return done

        done = await self._transact(work)
        if done.rerun:
            return False
        await self.send(done.ids)
        return True

    def _relay_from_citizen(
        self, conn: Connection, channel: str, ref: str, text: str, now: datetime
    ) -> Done:
        request = store.live_of(conn, channel, ref)
        if request is None or request.status != "claimed":
            self._news(conn, channel, ref, HelpNews("closed", "gone"), now)
            return Done(rerun=True)
        helper = self._helper(conn, request)
        if helper is None:
            return self._gone(conn, request, now, helper_gone=True)
        words = self._scrubbed(text)
        village = helprequests.village_name(request.fields, self.content, self.config)
        message = self.texts["relay_from_citizen"].format(
            village=village, id=request.id, text=words
        )
        return Done(self._queue(conn, request.id, [(helper, (OutMessage(message),))], now))

    def _relay_from_helper(
        self,
        conn: Connection,
        channel: str,
        ref: str,
        text: str,
        photo: Media | None,
        now: datetime,
    ) -> Done:
        request = store.helping(conn, channel, ref)
        me = store.member(conn, channel, ref)
        if request is None or me is None:
            # Their request ended meanwhile (the citizen deleted their data...): they are
            # told, and what they type is theirs again.
            self._news(conn, channel, ref, HelpNews("released"), now)
            if me is None:
                return Done(rerun=True)
            gone = OutMessage(self.texts["relay_no_request"])
            return Done(self._queue(conn, 0, [(me, (gone,))], now))
        if photo is not None:
            # A screenshot of the right screen: passed on by where the helper's platform
            # keeps it (nothing of it is stored), if the citizen's platform can show it; its
            # caption is checked like any message.
            if not photo_reaches(photo.ref, request.channel):
                note = OutMessage(self.texts["relay_no_picture"])
                return Done(self._queue(conn, request.id, [(me, (note,))], now))
            text = photo.caption
        held = self.guard.held_back(text)
        if held is not None:
            what = self.texts[f"relay_what_{held}"]
            why = OutMessage(self.texts["relay_blocked"].format(what=what))
            store.audit(conn, channel, ref, "relay_blocked", f"{request.id} {held}", now)
            return Done(self._queue(conn, request.id, [(me, (why,))], now))
        citizen = self._citizen(request)
        if citizen is None:
            return self._gone(conn, request, now, helper_gone=False)
        t = self.content.templates
        village = helprequests.village_name(request.fields, self.content, self.config)
        helper = t["help_helper"].format(village=village)
        words = self._scrubbed(text[:RELAY_LIMIT])
        said = t["relay_from_helper"].format(helper=helper, text=words).strip()
        message = OutMessage(said, photo=photo.ref if photo is not None else "")
        return Done(self._queue(conn, request.id, [(citizen, (message,))], now))

    def _citizen_ends(
        self, conn: Connection, channel: str, ref: str, chat: str, ask: HelpAsk, now: datetime
    ) -> Done:
        """The citizen cancels, ends the chat (saying whether they installed), or reports
        their helper."""
        request = store.live_of(conn, channel, ref)
        outcome = {"cancel": "cancelled", "report": "reported"}.get(ask.what, ask.detail)
        if outcome not in ("cancelled", "reported", "installed", "not_yet"):
            outcome = "not_yet"
        if request is None:  # ended meanwhile: the conversation just catches up
            outcome = "gone" if ask.what != "cancel" else outcome
        me = (Member(channel, ref, self.refs.seal(channel, ref, chat), "citizen", None),)
        reply = self._news(conn, channel, ref, HelpNews("closed", outcome), now)
        if request is None:
            return Done(self._queue(conn, 0, [(me[0], reply.messages)], now))
        status = "cancelled" if outcome == "cancelled" else "closed"
        helper = self._helper(conn, request) if request.status == "claimed" else None
        store.end(conn, request.id, status, outcome, now)
        out: list[tuple[Member, Sequence[OutMessage]]] = [(me[0], reply.messages)]
        if helper is not None:
            self._release(conn, helper, now)
            if outcome == "cancelled":
                note = self.texts["help_cancelled_by_citizen"].format(id=request.id)
            elif outcome == "reported":
                note = self.texts["help_ended_by_report"].format(id=request.id)
            else:
                said = self.texts[f"help_citizen_outcome_{outcome}"]
                note = self.texts["help_closed_by_citizen"].format(id=request.id, outcome=said)
            out.append((helper, (OutMessage(note),)))
        if outcome == "reported":
            store.reported(conn, request.id)
            who = request.volunteer_code or self.texts["help_official"]
            report = OutMessage(self.texts["help_reported"].format(id=request.id, who=who))
            out += [(o, (report,)) for o in self._officials(conn, request.fields.commune)]
            store.audit(conn, channel, ref, "help_report", str(request.id), now)
        return Done(self._queue(conn, request.id, out, now))

    def _gone(
        self, conn: Connection, request: Request, now: datetime, *, helper_gone: bool
    ) -> Done:
        """One side can no longer be written to (deleted their data, blocked the bot): the
        request ends, and the other side is told."""
        out: list[tuple[Member, Sequence[OutMessage]]] = []
        citizen = self._citizen(request)
        helper = self._helper(conn, request)
        store.end(conn, request.id, "closed", "gone", now)
        if helper is not None:
            self._release(conn, helper, now)
            if not helper_gone:
                note = self.texts["relay_undelivered"].format(id=request.id)
                out.append((helper, (OutMessage(note),)))
        reply = self._news(
            conn, request.channel, request.user_ref, HelpNews("closed", "gone"), now
        )
        if citizen is not None and helper_gone:
            out.append((citizen, reply.messages))
        return Done(self._queue(conn, request.id, out, now))

    # --- staff: /hotro, /nhan, /xong, /thon and their buttons (handlers/staff.py) ----------

    async def claim(
        self, channel: str, ref: str, scope: Scope, argument: str
    ) -> tuple[OutMessage, ...]:
        """/nhan ID or "Nhan giup": take a request (the first claim wins)."""
        if not argument.strip().lstrip("#").isdecimal():
            return (OutMessage(self.texts["hotro_claim_typed"]),)
        request_id = int(argument.strip().lstrip("#"))
        now = self.clock()

        def work(conn: Connection) -> Done:
            request = store.lock(conn, request_id)
            if request is None or request.status not in ("open", "claimed"):
                raise _Stop(self._say("help_gone", id=request_id))
            if not officials.covers(self.config, scope, request.fields.commune):
                raise _Stop(self._say("help_not_yours", id=request_id))
            me = store.member(conn, channel, ref)
            if me is None:
                raise _Stop()
            if request.status == "claimed":
                if (request.volunteer_channel, request.volunteer_ref) != (channel, ref):
                    raise _Stop(self._say("help_taken", id=request_id))
                store.focus(conn, request.id, now)  # theirs already: its chat is theirs now
                return Done(answer=self._claimed(request, channel))
            if not store.claim(conn, request.id, me, now):
                raise _Stop(self._say("help_taken", id=request_id))
            citizen = self._citizen(request)
            reply = self._news(conn, request.channel, request.user_ref, HelpNews("claimed"), now)
            self._news(conn, channel, ref, HelpNews("helping"), now)
            out = [(citizen, reply.messages)] if citizen is not None else []
            return Done(self._queue(conn, request.id, out, now), self._claimed(request, channel))

        done = await self._transact(work)
        await self.send(done.ids)
        return done.answer

    async def close(self, channel: str, ref: str, argument: str) -> tuple[OutMessage, ...]:
        """/xong ID [outcome] or an outcome button: the helper ends the request."""
        head, _, rest = argument.strip().lstrip("#").partition(" ")
        number, _, typed = head.partition(":")
        if not number.isdecimal():
            return (OutMessage(self.texts["hotro_claim_typed"]),)
        request_id = int(number)
        choice = (typed or rest).strip().lower()
        outcome = TYPED_OUTCOMES.get(choice, choice)
        if outcome not in OUTCOMES:
            return self._close_ask(request_id, channel)
        now = self.clock()

        def work(conn: Connection) -> Done:
            request = store.lock(conn, request_id)
            mine = request is not None and (request.volunteer_channel, request.volunteer_ref) == (
                channel,
                ref,
            )
            if request is None or request.status != "claimed" or not mine:
                raise _Stop(self._say("help_not_open", id=request_id))
            citizen = self._citizen(request)
            helper = self._helper(conn, request)
            store.end(conn, request.id, "closed", outcome, now)
            reply = self._news(
                conn, request.channel, request.user_ref, HelpNews("closed", outcome), now
            )
            if helper is not None:
                self._release(conn, helper, now)
            out = [(citizen, reply.messages)] if citizen is not None else []
            said = self.texts[f"help_outcome_{outcome}"]
            answer = self._say("help_closed_by_you", id=request.id, outcome=said)
            return Done(self._queue(conn, request.id, out, now), answer)

        done = await self._transact(work)
        await self.send(done.ids)
        return done.answer

    async def listing(self, channel: str, ref: str, scope: Scope) -> tuple[OutMessage, ...]:
        """/hotro: the open requests of the member's scope (oldest first, with how long
        they have waited), and the ones they are helping with."""
        communes = [c.code for c in officials.communes_in(self.config, scope)]
        now = self.clock()

        def work(conn: Connection) -> tuple[list[Request], list[Request]]:
            return store.waiting(conn, communes), store.claimed_by(conn, channel, ref)

        waiting, mine = await self.db.run(work)
        scope_name = officials.scope_name(self.config, self.texts, scope)
        buttons = self._buttons(channel)
        lines: list[str] = []
        options: list[Option] = []
        if waiting:
            lines.append(self.texts["hotro_title"].format(scope=scope_name))
            for request in waiting[:10]:
                lines.append(self._line("hotro_line", request, request.opened_at, now))
                if buttons and len(options) < 4:
                    label = f"{self.texts['help_claim_label']} #{request.id}"
                    options.append(Option(f"hn:{request.id}", label))
        else:
            lines.append(self.texts["hotro_none"].format(scope=scope_name))
        if mine:
            lines += ["", self.texts["hotro_mine"]]
            lines += [self._line("hotro_mine_line", r, r.claimed_at, now) for r in mine]
        if not buttons or not options:
            lines += ["", self.texts["hotro_claim_typed"]]
        return (OutMessage("\n".join(lines), tuple(options), STAFF_SCREEN if options else ""),)

    async def set_village(
        self, channel: str, ref: str, commune: str, argument: str
    ) -> tuple[OutMessage, ...]:
        """/thon: a volunteer's own village (they hear first of requests from it)."""
        found = self.config.commune(commune)
        if found is None:
            return ()
        village = found.village(argument.strip())
        if village is None:
            options = tuple(Option(f"hv:{v.id}", v.name) for v in found.villages)
            return (OutMessage(self.texts["village_ask"], options, STAFF_SCREEN),)
        await self.db.run(lambda conn: store.set_village(conn, channel, ref, village.id))
        return self._say("village_set", village=village.name)

    def _close_ask(self, request_id: int, channel: str) -> tuple[OutMessage, ...]:
        if self._buttons(channel):
            options = tuple(
                Option(f"hx:{request_id}:{typed}", self.texts[f"help_outcome_{outcome}"])
                for outcome, typed in OUTCOMES.items()
            )
            text = self.texts["help_close_ask"].format(id=request_id)
            return (OutMessage(text, options, STAFF_SCREEN),)
        return self._say("help_close_typed", id=request_id)

    def _claimed(self, request: Request, channel: str) -> tuple[OutMessage, ...]:
        """What the helper is told on taking a request: the request, the sealed details
        (only to them, never stored again), and how to end it."""
        today = self.clock().astimezone(self.config.timezone).date()
        summary = helprequests.summary(request.fields, self.content, self.config, today)
        text = self.texts["help_claimed"].format(id=request.id, summary=summary)
        details = []
        for key in ("landmark", "phone"):
            sealed = getattr(request, key)
            value = self.refs.unseal(request.channel, request.user_ref, sealed) if sealed else None
            if value:
                details.append(self.texts[f"help_claimed_{key}"].format(**{key: value}))
        if details:
            text += "\n\n" + "\n".join([self.texts["help_claimed_details"], *details])
        return (OutMessage(text), *self._close_ask(request.id, channel))

    # --- figures: /stats and the command line ---------------------------------------------

    async def stats(self, scope: Scope) -> str:
        """The help requests' lines of /stats: how many, how fast they were taken (median),
        the share that ended installed, and by helper."""
        found = await figures(self.db, self.config, scope)
        median = waited(found.median_claim_s, self.texts)
        share = f"{found.resolved_share:.0%}" if found.resolved_share is not None else "-"
        lines = [
            self.texts["help_stats"].format(
                count=found.count,
                open=found.open,
                claimed=found.claimed,
                median=median,
                resolved=found.resolved,
                share=share,
            )
        ]
        if found.by_helper:
            lines.append(self.texts["help_stats_by"])
            lines += [
                self.texts["help_stats_line"].format(
                    who=code or self.texts["help_official"], claimed=claimed, installed=done
                )
                for code, claimed, done in found.by_helper
            ]
        return "\n".join(lines)

    async def requests(self, scope: Scope) -> list[dict[str, Any]]:
        """``python -m bot requests``: id, commune, village, kind, status, waited_s of every
        request of ``scope`` -- nothing personal."""
        communes = [c.code for c in officials.communes_in(self.config, scope)]
        statuses = ("draft", "open", "claimed", "closed", "cancelled", "expired")
        found = await self.db.run(lambda c: store.listing(c, communes, statuses))
        now = self.clock()
        return [
            {
                "id": r["id"],
                "commune": r["commune"],
                "village": r["village"],
                "kind": r["kind"],
                "status": r["status"],
                "waited_s": helprequests.waited_s(r, now),
            }
            for r in found
        ]

    # --- telling people: the notifications' stages ----------------------------------------

    def kick(self) -> None:
        """A request was just made or opened: tell its first people now (not at the next
        round of the sweeper)."""
        if self._kicked is None or self._kicked.done():
            self._kicked = asyncio.get_running_loop().create_task(self._advance_quietly())

    async def _advance_quietly(self) -> None:
        try:
            await self.advance()
            await self.send(await self.db.run(lambda conn: store.notices(conn, BATCH)))
        except TROUBLE as exc:
            log.warning("help desk: could not advance requests (%s)", type(exc).__name__)

    async def advance(self) -> int:
        """Move every request whose next stage is due: open drafts, tell the next people,
        give up after a day. Returns how many moved."""
        now = self.clock()
        moved = 0
        for request_id in await self.db.run(lambda conn: store.due(conn, now, BATCH)):
            done = await self._transact(functools.partial(self._stage, rid=request_id, now=now))
            await self.send(done.ids)
            moved += 1
        return moved

    def _stage(self, conn: Connection, rid: int, now: datetime) -> Done:
        request = store.lock(conn, rid)
        if request is None or request.status not in ("draft", "open"):
            return Done()
        if request.status == "draft":
            store.open_draft(conn, request.id, now)  # its optional details never came
            return Done()
        rules = self.config.helpdesk
        opened = request.opened_at or request.created_at
        give_up = opened + rules.give_up_after
        escalate = helprequests.after_working(
            opened, rules.escalate_after, rules, self.config.timezone
        )
        fields = request.fields
        out: list[tuple[Member, Sequence[OutMessage]]] = []
        if now >= give_up:
            citizen = self._citizen(request)
            store.end(conn, request.id, "expired", "expired", now)
            reply = self._news(
                conn, request.channel, request.user_ref, HelpNews("closed", "expired"), now
            )
            if citizen is not None:
                out.append((citizen, reply.messages))
            store.advance(conn, request.id, store.GIVEN_UP, None)
            return Done(self._queue(conn, request.id, out, now))
        if request.stage == store.NOBODY:
            village = store.members(conn, fields.commune, role="volunteer", village=fields.village)
            if village:
                out += [(m, self._notice(request, m, now)) for m in village]
                store.advance(
                    conn, request.id, store.VILLAGE, min(opened + rules.village_first, give_up)
                )
                return Done(self._queue(conn, request.id, out, now))
            request = _at(request, store.VILLAGE)
        if request.stage == store.VILLAGE:
            told = {
                (m.channel, m.user_ref)
                for m in store.members(
                    conn, fields.commune, role="volunteer", village=fields.village
                )
            }
            others = [
                m
                for m in store.members(conn, fields.commune, role="volunteer")
                if (m.channel, m.user_ref) not in told
            ]
            out += [(m, self._notice(request, m, now)) for m in others]
            store.advance(conn, request.id, store.COMMUNE, min(max(escalate, now), give_up))
            return Done(self._queue(conn, request.id, out, now))
        if request.stage == store.COMMUNE:
            if now < escalate:
                store.advance(conn, request.id, store.COMMUNE, min(escalate, give_up))
                return Done()
            out += [
                (m, self._notice(request, m, now, escalated=True))
                for m in self._officials(conn, fields.commune)
            ]
            store.advance(conn, request.id, store.OFFICIALS, give_up)
            return Done(self._queue(conn, request.id, out, now))
        store.advance(conn, request.id, store.OFFICIALS, give_up)
        return Done()

    def _notice(
        self, request: Request, member: Member, now: datetime, *, escalated: bool = False
    ) -> tuple[OutMessage, ...]:
        today = now.astimezone(self.config.timezone).date()
        summary = helprequests.summary(request.fields, self.content, self.config, today)
        if escalated:
            waited = self._waited(now - (request.opened_at or request.created_at))
            text = self.texts["help_notice_escalated"].format(
                id=request.id, waited=waited, summary=summary
            )
        else:
            text = self.texts["help_notice"].format(id=request.id, summary=summary)
        if self._buttons(member.channel):
            option = Option(f"hn:{request.id}", self.texts["help_claim_label"])
            return (OutMessage(text, (option,), STAFF_SCREEN),)
        typed = self.texts["help_notice_claim_typed"].format(id=request.id)
        return (OutMessage(text + "\n\n" + typed),)

    def _officials(self, conn: Connection, commune: str) -> list[Member]:
        """The officials to tell of a request of ``commune``: those of the commune itself,
        else of its province, else of the whole deployment."""
        by_kind: dict[str, list[Member]] = {"communes": [], "province": [], "all": []}
        for member, scope_json in store.officials_scopes(conn):
            scope = Scope.from_json(scope_json)
            if officials.covers(self.config, scope, commune):
                by_kind.setdefault(scope.kind, []).append(member)
        return by_kind["communes"] or by_kind["province"] or by_kind["all"]

    # --- the sweeper (one worker: the "helpdesk" lease) -----------------------------------

    async def sweep(self) -> None:
        """Forever: move due requests, send what a crash left, forget old details."""
        while True:
            try:
                await self.sweep_once()
            except TROUBLE as exc:
                log.warning("help desk: the store is in trouble (%s)", type(exc).__name__)
            await asyncio.sleep(TICK)

    async def sweep_once(self) -> int:
        now = self.clock()
        moved = await self.advance()
        doubt = await self.db.run(lambda conn: store.in_doubt(conn, now - IN_DOUBT))
        if doubt:
            log.warning(
                "help desk: %d messages were being sent when a worker died: not resent", doubt
            )
        left = await self.db.run(lambda conn: store.left_behind(conn, now - LEFT_BEHIND, BATCH))
        await self.send(left)
        forgotten = await self.db.run(lambda conn: store.forget_old_details(conn, now))
        if forgotten:
            log.info("help desk: details of %d requests forgotten after 14 days", forgotten)
        return moved + len(left)

    # --- sending --------------------------------------------------------------------------

    async def send(self, ids: Sequence[int]) -> None:
        """Send these messages, in order: each claimed just before its request leaves,
        deleted once sent."""
        for message_id in ids:
            try:
                await self._send_one(message_id)
            except TROUBLE as exc:
                log.warning("help desk: a message could not be sent (%s)", type(exc).__name__)
                return  # left pending: the sweeper sends it (and those after it) later

    async def _send_one(self, message_id: int) -> None:
        row = await self.db.run(lambda conn: store.take(conn, message_id, self.clock()))
        if row is None:
            return  # sent by someone else, or its request ended
        if row.payload == store.ERASED_NOTICE:
            await self._erased(row)
            return
        channel = self.channels.get(row.channel)
        opened = self.refs.unseal(row.channel, row.user_ref, row.payload)
        if channel is None or opened is None:
            # A channel that does not run here (another worker may run it), or a secret
            # that changed: back to pending for whoever can.
            await self.db.run(lambda conn: store.put_back(conn, message_id))
            return
        kept = json.loads(opened)
        to, messages = str(kept["to"]), load_messages(kept["messages"])
        for attempt in range(SEND_ATTEMPTS):
            try:
                await channel.deliver(to, messages)
            except RetryLater as exc:
                if attempt < SEND_ATTEMPTS - 1 and exc.seconds <= REPLY_WAIT:
                    await asyncio.sleep(exc.seconds)
                    continue
                await self.db.run(lambda conn: store.put_back(conn, message_id))
                return
            except NotSent:
                await self.db.run(lambda conn: store.put_back(conn, message_id))
                return
            except OutsideWindow:
                await self._held(row)
                return
            except Unreachable:
                await self.db.run(lambda conn: store.done(conn, [message_id]))
                await self._unreachable(row.request_id, row.channel, row.user_ref)
                return
            except (InDoubt, Rejected) as exc:
                log.warning("help desk: a message ended %s; not sent again", type(exc).__name__)
            break
        await self.db.run(lambda conn: store.done(conn, [message_id]))

    async def _erased(self, row: store.InTransit) -> None:
        """A citizen deleted their data during a chat (their step could not word or seal
        this): their helper is released and told, in one line."""
        now = self.clock()

        def work(conn: Connection) -> Done:
            store.done(conn, [row.id])
            helper = store.member(conn, row.channel, row.user_ref)
            if helper is None:
                return Done()
            self._release(conn, helper, now)
            note = OutMessage(self.texts["help_erased_by_citizen"].format(id=row.request_id))
            return Done(self._queue(conn, row.request_id, [(helper, (note,))], now))

        done = await self._transact(work)
        await self.send(done.ids)

    async def _held(self, row: store.InTransit) -> None:
        """Zalo OA takes nothing for this side until they write again (7 days without a
        word): the message waits for that, and the other side is told so once -- honestly,
        that it has not arrived and when it will."""
        now = self.clock()

        def work(conn: Connection) -> Done:
            request = store.lock(conn, row.request_id)
            if store.hold(conn, row.id) != 1 or request is None or request.status != "claimed":
                return Done()
            if (request.channel, request.user_ref) == (row.channel, row.user_ref):
                helper = self._helper(conn, request)
                if helper is None:
                    return Done()
                note = OutMessage(self.texts["relay_held_citizen"].format(id=request.id))
                return Done(self._queue(conn, request.id, [(helper, (note,))], now))
            citizen = self._citizen(request)
            if citizen is None:
                return Done()
            note = OutMessage(self.content.templates["relay_held_helper"])
            return Done(self._queue(conn, request.id, [(citizen, (note,))], now))

        done = await self._transact(work)
        await self.send(done.ids)

    async def _unreachable(self, request_id: int, channel: str, user_ref: str) -> None:
        """A side blocked the bot (or Zalo OA's 7-day window closed): the request ends."""
        now = self.clock()

        def work(conn: Connection) -> Done:
            request = store.lock(conn, request_id)
            if request is None or request.status not in ("open", "claimed"):
                return Done()
            citizen_gone = (request.channel, request.user_ref) == (channel, user_ref)
            return self._gone(conn, request, now, helper_gone=not citizen_gone)

        done = await self._transact(work)
        await self.send(done.ids)

    # --- the parts of a transition --------------------------------------------------------

    async def _transact(self, work: Callable[[Connection], Done]) -> Done:
        """Run a transition in one transaction; a :class:`_Stop` rolls it back."""
        try:
            return await self.db.run(work)
        except _Stop as stop:
            return Done(answer=stop.answer)

    def _news(
        self, conn: Connection, channel: str, ref: str, news: HelpNews, now: datetime
    ) -> Reply:
        """The conversation of (channel, ref) takes the news, in this transaction."""

        def decide(current: StoredSession | None) -> Reply:
            state = current.state if current else State()
            return self.engine.advance(state, news, now)

        return self.repo.step_locked(conn, channel, ref, decide, now)

    def _release(self, conn: Connection, helper: Member, now: datetime) -> None:
        """A helper with no claimed request left: what they type is theirs again."""
        if not store.claimed_by(conn, helper.channel, helper.user_ref):
            self._news(conn, helper.channel, helper.user_ref, HelpNews("released"), now)

    def _citizen(self, request: Request) -> Member | None:
        if request.address is None:
            return None
        return Member(request.channel, request.user_ref, request.address, "citizen", None)

    def _helper(self, conn: Connection, request: Request) -> Member | None:
        if request.volunteer_channel is None or request.volunteer_ref is None:
            return None
        return store.member(conn, request.volunteer_channel, request.volunteer_ref)

    def _queue(
        self,
        conn: Connection,
        request_id: int,
        out: Sequence[tuple[Member, Sequence[OutMessage]]],
        now: datetime,
    ) -> list[int]:
        """Seal each recipient's messages for them and queue them (in this transaction)."""
        rows = []
        for member, messages in out:
            if not messages:
                continue
            to = self.refs.unseal(member.channel, member.user_ref, member.address)
            if to is None:
                continue
            kept = json.dumps({"to": to, "messages": dump_messages(messages)})
            payload = self.refs.seal(member.channel, member.user_ref, kept)
            rows.append(Outgoing(request_id, member.channel, member.user_ref, payload))
        return store.queue(conn, rows, now) if rows else []

    def _scrubbed(self, text: str) -> str:
        return hide_foreign_links(text.strip(), self.config, self.content.texts["link_removed"])

    def _buttons(self, channel: str) -> bool:
        found = self.channels.get(channel)
        return found is None or found.capabilities.buttons

    def _say(self, key: str, **values: object) -> tuple[OutMessage, ...]:
        return (OutMessage(self.texts[key].format(**values)),)

    def _line(self, key: str, request: Request, since: datetime | None, now: datetime) -> str:
        t = self.content.templates
        kind = t[f"help_kind_{request.fields.kind}"].format(
            when=helprequests.when(
                request.fields,
                self.content,
                self.config,
                now.astimezone(self.config.timezone).date(),
            )
        )
        village = helprequests.village_name(request.fields, self.content, self.config)
        waited = self._waited(now - (since or request.created_at))
        return self.texts[key].format(id=request.id, village=village, kind=kind, waited=waited)

    def _waited(self, span: timedelta) -> str:
        return waited(span.total_seconds(), self.texts)

    async def drain(self) -> None:
        """Wait for what a kick started (tests, clean shutdown)."""
        if self._kicked is not None:
            with contextlib.suppress(Exception):
                await self._kicked


async def figures(db: Database, config: Config, scope: Scope) -> helprequests.HelpFigures:
    """The help requests' figures of ``scope``: what /stats says, ``stats --json`` prints
    and the dashboard's volunteers page shows -- one computation for the three."""
    communes = [c.code for c in officials.communes_in(config, scope)]
    return helprequests.figures(await db.run(lambda c: store.figures(c, communes)))


def waited(seconds: float | None, texts: Mapping[str, str]) -> str:
    """A wait in minutes, hours or days ("-": none)."""
    if seconds is None:
        return "-"
    minutes = max(0, int(seconds // 60))
    if minutes < 60:
        return texts["waited_minutes"].format(n=minutes)
    if minutes < 48 * 60:
        return texts["waited_hours"].format(n=minutes // 60)
    return texts["waited_days"].format(n=minutes // (24 * 60))


def _at(request: Request, stage: int) -> Request:
    return replace(request, stage=stage)


def _inbox_done(conn: Connection, inbox_id: int | None) -> None:
    if inbox_id is not None:
        store.inbox_done(conn, inbox_id)
