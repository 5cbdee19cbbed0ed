"""What every channel adapter does with an inbound message, whatever the channel.

A message is queued per user (in order for that user, concurrently across users); its step is
committed by the conversation service; only then is the delivery acknowledged to the platform
(webhooks get their HTTP 200 after the commit, typically a few milliseconds); the replies are
sent afterwards. So a crash before the commit means the platform delivers again, and a crash
after it loses at most the replies, never the user's progress.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from bot.model import Input, OutMessage
from handlers.conversation import Conversations, Outcome
from handlers.ordering import KeyedRunner
from handlers.render import numbered

log = logging.getLogger(__name__)

#: A webhook waits this long for the commit before acknowledging anyway (Zalo wants 2 s).
ACK_WITHIN = 1.5

Send = Callable[[Outcome], Awaitable[None]]


class Inbound:
    """Per-user ordered processing with commit-before-acknowledge."""

    def __init__(self, conversations: Conversations, channel: str, concurrency: int = 8):
        self.conversations = conversations
        self.channel = channel
        self.runner = KeyedRunner(concurrency)

    def submit(
        self,
        user_id: str,
        event: Input,
        send: Send,
        *,
        delivery_id: str | None = None,
        can_delete: bool = False,
    ) -> asyncio.Future[None]:
        """Queue one message; the returned future completes once its step is committed."""
        committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def job() -> None:
            try:
                outcome = await self.conversations.handle(
                    self.channel, user_id, event, delivery_id=delivery_id, can_delete=can_delete
                )
            except Exception as exc:
                log.exception("%s: a message failed: %s", self.channel, type(exc).__name__)
                _settle(committed)
                await _quietly(send(Outcome((self.conversations.notice("error"),))))
                return
            _settle(committed)
            await _quietly(send(outcome))

        self.runner.submit(user_id, job)
        return committed

    async def acknowledge_after_commit(self, committed: asyncio.Future[None]) -> None:
        """Wait for the commit, but never longer than the platform's patience."""
        try:
            async with asyncio.timeout(ACK_WITHIN):
                await asyncio.shield(committed)
        except TimeoutError:
            log.warning("%s: acknowledged before the step was committed", self.channel)

    async def drain(self) -> None:
        await self.runner.drain()


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _quietly(call: Awaitable[None]) -> None:
    try:
        await call
    except Exception as exc:
        log.warning("sending failed: %s", type(exc).__name__)


def split_text(text: str, limit: int) -> list[str]:
    """``text`` in pieces of at most ``limit`` characters, cut at paragraph, line or word
    boundaries where possible."""
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = max(
            rest.rfind("\n\n", 0, limit), rest.rfind("\n", 0, limit), rest.rfind(" ", 0, limit)
        )
        if cut <= 0:
            cut = limit
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest or not pieces:
        pieces.append(rest)
    return pieces


def as_text(messages: tuple[OutMessage, ...]) -> list[str]:
    """Messages for text-only channels: options as numbered lines."""
    return [numbered(m) for m in messages]
