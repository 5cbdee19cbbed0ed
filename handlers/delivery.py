"""How a channel tells the outbox what became of a message it was asked to deliver.

The outbox decides what to do next from which of these a channel's ``deliver`` raises:
retry a message that certainly did not leave, wait out flood control, never repeat one that
may have arrived, and stop writing to someone who blocked the bot.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from bot.model import OutMessage


class Unreachable(Exception):
    """The user blocked the bot, or can no longer be written to: forget their address."""


class OutsideWindow(Unreachable):
    """The platform takes no message for this user until they write again (Zalo OA: no
    interaction for 7 days). Where nothing can wait, the same as :class:`Unreachable`; a
    help chat holds its messages until then."""


class Rejected(Exception):
    """The platform refused this message (not the user): it is not tried again."""


class RetryLater(Exception):
    """Flood control (HTTP 429): nothing was delivered; wait ``seconds``."""

    def __init__(self, seconds: float):
        super().__init__(f"retry after {seconds} s")
        self.seconds = seconds


class NotSent(Exception):
    """The request certainly did not reach the platform (no connection): try again later."""


class InDoubt(Exception):
    """The request may or may not have been delivered (a timeout): never send it again."""


class Deliverer(Protocol):
    """What a channel offers the outbox."""

    async def deliver(self, chat: str, messages: Sequence[OutMessage]) -> None:
        """Send ``messages`` to ``chat`` (the address the channel gave for this user), or
        raise one of the exceptions above."""
