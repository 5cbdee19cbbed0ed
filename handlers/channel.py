"""The contract between the conversation and a messaging platform: every adapter is a Channel.

An adapter *translates*, it does not decide. Inbound, it checks the platform's secret or
signature, turns each delivery into an :class:`Incoming` (one shape for every channel) and
hands it to the one inbound path (:mod:`handlers.inbound`), which orders, deduplicates,
dispatches to the staff desk or the citizen conversation, commits, and only then lets the
delivery be acknowledged. Outbound, :meth:`Channel.deliver` turns the engine's messages into
the platform's API calls, and says how a failure ended (:mod:`handlers.delivery`).

What differs between platforms is data, in :class:`Capabilities` (buttons or numbered lines,
whether a user's message can be deleted, the longest text, ...), not code paths. Channels
are built from one registry (:mod:`handlers.registry`): adding one is a module and a line.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Literal, Protocol

from aiohttp import web

from bot.model import Input, Medium, OutMessage

if TYPE_CHECKING:
    from bot.content import Content
    from handlers.inbound import Inbound
    from handlers.pictures import Gallery
    from storage.database import Database

#: How the process runs: behind a webhook server (``serve``), fetching updates itself
#: (``run``), or as an interactive terminal (``chat``).
Mode = Literal["webhook", "polling", "interactive"]


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a platform can do; the inbound path and the rendering follow these."""

    #: Options are tappable buttons (else numbered lines the user answers by typing).
    buttons: bool
    #: The bot can remove a user's message from the chat (a photo of an ID card...).
    can_delete: bool
    #: The longest text the platform accepts in one message (longer is split).
    max_text: int
    #: A link can carry a referral code (``/start CODE``); else people type the code.
    deep_links: bool
    #: Files (a chart, a spreadsheet, a QR code) can be sent.
    files: bool
    #: How long the platform waits for a webhook's answer before it gives up on it.
    ack_within: float
    #: The bot can write first (reminders, announcements); a web page cannot.
    push: bool = True

    def medium(self, channel: str) -> Medium:
        """What the engine must know of this platform to choose its words."""
        return Medium(
            channel=channel,
            buttons=self.buttons,
            can_delete=self.can_delete,
            deep_links=self.deep_links,
            push=self.push,
        )


@dataclass(frozen=True, slots=True)
class Incoming:
    """One delivery from a platform, translated. Every adapter produces this shape.

    ``user`` is the platform's id of the person (never stored: the store keeps a keyed hash);
    ``chat`` is where replies go. ``event`` is None for a group chat, which gets a notice and
    is never stored. ``message_id``: the user's message, to delete where the channel can;
    ``callback_id``: a button press to acknowledge (Telegram)."""

    user: str
    chat: str
    event: Input | None
    delivery_id: str | None = None
    message_id: str | None = None
    callback_id: str | None = None
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Route:
    """A webhook route the server mounts for a channel."""

    method: str
    path: str
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]]


class Channel(Protocol):
    """A messaging platform, as the rest of the bot sees it."""

    @property
    def name(self) -> str:
        """The channel's name, stored with each user ("telegram", "zalo_bot"...)."""
        ...

    @property
    def capabilities(self) -> Capabilities: ...

    def routes(self) -> Sequence[Route]:
        """Webhook routes to mount (none for a channel that fetches its own updates)."""
        ...

    async def start(self) -> None:
        """Connect; in polling or interactive mode, start fetching updates."""
        ...

    async def stop(self) -> None:
        """Stop fetching, finish what was received, disconnect."""
        ...

    async def deliver(self, chat: str, messages: Sequence[OutMessage]) -> None:
        """Send ``messages`` to ``chat`` in order, or raise one of handlers.delivery's
        exceptions saying how the failure ended."""
        ...

    async def discard(self, incoming: Incoming) -> None:
        """Remove the user's message from the chat (where the platform allows it)."""
        ...

    async def acknowledge(self, incoming: Incoming) -> None:
        """Tell the platform a button press was received (where it needs telling)."""
        ...


@dataclass(frozen=True, slots=True)
class Services:
    """What the composition root gives a channel to build itself with."""

    inbound: Inbound
    content: Content
    db: Database
    mode: Mode
    #: 0 in a single process; with ``serve --workers N``, this worker's index.
    worker_index: int = 0
    #: A channel whose user can end the process (the terminal's /quit) calls this.
    request_stop: Callable[[], None] = field(default=lambda: None)
    #: The install-step pictures, and the server's public address (PUBLIC_URL) they are
    #: served under (None: no pictures).
    gallery: Gallery | None = None


#: Builds a channel from the environment's variables, or None when it is not configured
#: there (no token) or cannot run in this mode; raises ConfigError when half-configured.
Builder = Callable[[Mapping[str, str], Services], "Channel | None"]


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    name: str
    build: Builder
