"""The one inbound path: what happens to a delivery from any channel, and to the replies.

An adapter hands over an :class:`~handlers.channel.Incoming`; from there every channel is
treated alike:

1. deliveries are queued per user (in order for that user, concurrently across users), and a
   delivery id seen moments ago is dropped (the store also refuses to apply one twice);
2. a group chat gets a notice, and nothing is stored;
3. staff first: an official's or volunteer's command goes to the staff desk; anything else,
   and anyone else, goes to the citizen conversation;
4. the step is committed (:class:`~handlers.conversation.Conversations`) -- only then does the
   returned future complete, so a webhook is acknowledged, or a polling batch confirmed, only
   once its step is durable. A crash before the commit means the platform delivers again;
5. then the user's sensitive message is deleted where the channel can, and the replies are
   sent: a flood-control answer is waited out for that chat alone, and a user who blocked the
   bot is marked stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Sequence

from bot.model import Blocked, Input, OutMessage, Start, Text
from handlers.channel import Channel, Incoming
from handlers.conversation import Conversations
from handlers.delivery import RetryLater, Unreachable
from handlers.ordering import KeyedRunner
from handlers.staff import StaffDesk

log = logging.getLogger(__name__)

#: A reply refused with 429 is sent again after the delay the platform names, this many
#: tries in all.
REPLY_ATTEMPTS = 3
#: ... unless the delay is longer than this: a reply is not held back (nor this user's next
#: messages with it) for a quota that comes back in a quarter of an hour (Zalo Bot's 429).
REPLY_WAIT = 60.0
#: Delivery ids remembered in memory (the store remembers them all, durably).
RECENT = 10_000


class Inbound:
    """Per-user ordered processing with commit-before-acknowledge, for every channel."""

    def __init__(
        self,
        conversations: Conversations,
        staff: StaffDesk | None = None,
        *,
        concurrency: int = 8,
    ):
        self.conversations = conversations
        self.staff = staff
        self.runner = KeyedRunner(concurrency)
        self._recent: OrderedDict[tuple[str, str], None] = OrderedDict()

    def submit(self, channel: Channel, incoming: Incoming) -> asyncio.Future[None] | None:
        """Queue one delivery; the returned future completes once its step is committed
        (None: a repeat of a delivery just seen, nothing to wait for)."""
        if incoming.delivery_id is not None:
            key = (channel.name, incoming.delivery_id)
            if key in self._recent:
                return None
            self._recent[key] = None
            while len(self._recent) > RECENT:
                self._recent.popitem(last=False)
        committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.runner.submit(
            (channel.name, incoming.user), lambda: self._process(channel, incoming, committed)
        )
        return committed

    async def acknowledge_after_commit(
        self, channel: Channel, pending: Sequence[asyncio.Future[None] | None]
    ) -> None:
        """Wait until every step in ``pending`` is committed -- but no longer than the
        platform waits for an answer (then it would give up and deliver again anyway)."""
        waiting = [asyncio.shield(f) for f in pending if f is not None]
        if not waiting:
            return
        try:
            async with asyncio.timeout(channel.capabilities.ack_within):
                await asyncio.gather(*waiting)
        except TimeoutError:
            log.warning("%s: acknowledged before the step was committed", channel.name)

    async def drain(self) -> None:
        """Wait until every queued delivery has been processed and answered."""
        await self.runner.drain()

    async def _process(
        self, channel: Channel, incoming: Incoming, committed: asyncio.Future[None]
    ) -> None:
        try:
            if incoming.callback_id is not None:
                await _quietly(channel.acknowledge(incoming))
            event = _normalised(incoming.event)
            if event is None:
                _settle(committed)
                await self.send(channel, incoming, (self.conversations.notice("group_chat"),))
                return
            if self.staff is not None:
                staff = await self.staff.handle(
                    channel.name, incoming.user, event, files=channel.capabilities.files
                )
                if staff is not None:
                    _settle(committed)
                    await self.send(channel, incoming, staff.messages)
                    return
            outcome = await self.conversations.handle(
                channel.name,
                incoming.user,
                event,
                delivery_id=incoming.delivery_id,
                can_delete=channel.capabilities.can_delete,
            )
            _settle(committed)  # the step is committed: the delivery may be acknowledged now
            if outcome.delete_input and channel.capabilities.can_delete:
                await _quietly(channel.discard(incoming))
                log.info("%s: deleted a sensitive message from a private chat", channel.name)
            await self.send(channel, incoming, outcome.messages)
        except Exception as exc:
            _settle(committed)
            # Never the message text: only what failed.
            log.exception(
                "%s: delivery %s failed: %s",
                channel.name,
                incoming.delivery_id,
                type(exc).__name__,
            )
            with contextlib.suppress(Exception):
                await channel.deliver(incoming.chat, (self.conversations.notice("error"),))

    async def send(
        self, channel: Channel, incoming: Incoming, messages: Sequence[OutMessage]
    ) -> None:
        """Send replies in order; after a 429 only this chat waits, then it is sent again."""
        for message in messages:
            for attempt in range(REPLY_ATTEMPTS):
                try:
                    await channel.deliver(incoming.chat, (message,))
                    break
                except RetryLater as exc:
                    if attempt == REPLY_ATTEMPTS - 1 or exc.seconds > REPLY_WAIT:
                        log.warning("%s: a reply was refused %d times", channel.name, attempt + 1)
                        return
                    await asyncio.sleep(exc.seconds)
                except Unreachable:
                    # The user blocked the bot: remember it, send nothing more.
                    await self.conversations.handle(channel.name, incoming.user, Blocked())
                    return
                except Exception as exc:
                    log.warning("%s: a reply failed: %s", channel.name, type(exc).__name__)
                    return


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
