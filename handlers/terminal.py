"""Terminal chat: a channel like the others, for previewing the conversation in a terminal.

The same engine, store and inbound path as the bots. Type text as a citizen would, or the
number of an option. A few commands simulate what a phone can send: /photo, /document,
/sticker, /voice, /location, /contact. /quit (or Ctrl-D) leaves; progress is kept, so the next
run offers to continue where you stopped. A picture is printed as what it shows (its alt text).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence

from bot.model import Input, Media, MediaKind, OutMessage, Start, Text
from handlers.channel import Capabilities, ChannelSpec, Incoming, Route, Services
from handlers.inbound import Inbound
from handlers.pictures import FRAME, Gallery
from handlers.render import numbered

CHANNEL = "terminal"
CAPABILITIES = Capabilities(
    buttons=False,
    can_delete=False,
    max_text=100_000,
    deep_links=True,  # "/start CODE" can be typed
    files=False,
    ack_within=60.0,
)
_SIMULATED: dict[str, MediaKind] = {
    "/photo": "photo",
    "/document": "document",
    "/sticker": "sticker",
    "/voice": "voice",
    "/location": "location",
    "/contact": "contact",
}
_QUIT = ("/quit", "/exit")

Read = Callable[[], Awaitable[str | None]]
Write = Callable[[str], None]


def to_input(line: str) -> Input:
    """A typed line as an engine input."""
    word = line.strip().lower()
    if word in _SIMULATED:
        return Media(_SIMULATED[word])
    if word == "/start" or word.startswith("/start "):
        payload = line.strip()[len("/start") :].strip()
        return Start(payload or None)
    return Text(line)


async def _read_line() -> str | None:
    try:
        return await asyncio.to_thread(input, "> ")
    except EOFError:
        return None


def render(messages: Sequence[OutMessage], gallery: Gallery | None = None) -> str:
    """One turn's messages as the terminal shows them (a picture: what it shows)."""
    return "\n\n".join(f"🤖 {_shown(m, gallery)}" for m in messages)


def _shown(message: OutMessage, gallery: Gallery | None) -> str:
    if not message.picture:
        return numbered(message)
    picture = gallery.get(message.picture) if gallery is not None else None
    return Gallery.in_words(picture) if picture else f"{FRAME} [{message.picture}]"


class TerminalChannel:
    """One local user typing in a terminal."""

    name = CHANNEL
    capabilities = CAPABILITIES

    def __init__(
        self,
        inbound: Inbound,
        *,
        user: str = "local",
        read: Read = _read_line,
        write: Write = print,
        on_quit: Callable[[], None] = lambda: None,
        gallery: Gallery | None = None,
    ):
        self.inbound = inbound
        self.gallery = gallery
        self.user = user
        self._read = read
        self._write = write
        self._on_quit = on_quit
        self._turn: list[OutMessage] = []
        self._task: asyncio.Task[None] | None = None

    def routes(self) -> Sequence[Route]:
        return ()

    async def start(self) -> None:
        self._task = asyncio.create_task(self.run())

    async def run(self) -> None:
        """Chat until end of input or /quit, then ask the process to stop."""
        try:
            event: Input = Start()
            number = 0
            while True:
                number += 1
                incoming = Incoming(self.user, self.user, event, delivery_id=None)
                self.inbound.submit(self, incoming)
                await self.inbound.drain()  # the step, then its replies
                turn = self.take_turn()
                if self.gallery is not None and any(m.picture for m in turn):
                    await self.gallery.picture("")  # rendered (once) without blocking
                self._write(render(turn, self.gallery) + "\n")
                line = await self._read()
                if line is None or line.strip().lower() in _QUIT:
                    return
                event = to_input(line)
        finally:
            self._on_quit()

    def take_turn(self) -> list[OutMessage]:
        """The messages delivered since the last call."""
        turn, self._turn = self._turn, []
        return turn

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.inbound.drain()

    async def deliver(self, chat: str, messages: Sequence[OutMessage]) -> None:
        self._turn.extend(messages)

    async def discard(self, incoming: Incoming) -> None:
        """Nothing to delete in a terminal."""

    async def acknowledge(self, incoming: Incoming) -> None:
        """No buttons."""


def build(env: Mapping[str, str], services: Services) -> TerminalChannel | None:
    """The terminal chat, in interactive mode (``python -m bot chat``, or ``run`` with no
    other channel configured)."""
    if services.mode != "interactive":
        return None
    return TerminalChannel(
        services.inbound, on_quit=services.request_stop, gallery=services.gallery
    )


SPEC = ChannelSpec(CHANNEL, build)
