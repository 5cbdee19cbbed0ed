"""Terminal chat: the same engine and store as the bots, for previewing the conversation.

Type text as a citizen would, or the number of an option. A few commands simulate what a
phone can send: /photo, /document, /sticker, /voice, /location, /contact. /quit (or Ctrl-D)
leaves; progress is kept, so the next run offers to continue where you stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from bot.model import Input, Media, MediaKind, Start, Text
from handlers.conversation import Conversations, Outcome
from handlers.render import numbered

CHANNEL = "terminal"
_SIMULATED: dict[str, MediaKind] = {
    "/photo": "photo",
    "/document": "document",
    "/sticker": "sticker",
    "/voice": "voice",
    "/location": "location",
    "/contact": "contact",
}
_QUIT = ("/quit", "/exit")


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


def render(outcome: Outcome) -> str:
    blocks = [numbered(m) for m in outcome.messages]
    return "\n\n".join(f"🤖 {block}" for block in blocks)


async def chat(
    conversations: Conversations,
    *,
    user_id: str = "local",
    read: Callable[[], Awaitable[str | None]] = _read_line,
    write: Callable[[str], None] = print,
) -> None:
    """Run an interactive chat until end of input or /quit."""
    event: Input = Start()
    while True:
        outcome = await conversations.handle(CHANNEL, user_id, event, can_delete=False)
        write(render(outcome) + "\n")
        line = await read()
        if line is None or line.strip().lower() in _QUIT:
            return
        event = to_input(line)
