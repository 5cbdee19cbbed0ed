"""Rendering options on text-only channels (terminal, Zalo Bot): numbered lines.

The user answers with the number or the words. Options that work everywhere (those starting
with "g:", such as "human help") get a bullet instead of a number, so numbers always refer to
the current screen's options.
"""

from __future__ import annotations

from bot.engine import GLOBAL_PREFIX
from bot.model import OutMessage


def numbered(message: OutMessage) -> str:
    """The message text followed by its options as "1. label" lines."""
    if not message.options:
        return message.text
    lines: list[str] = []
    number = 0
    for option in message.options:
        if option.id.startswith(GLOBAL_PREFIX):
            lines.append(f"• {option.label}")
        else:
            number += 1
            lines.append(f"{number}. {option.label}")
    return message.text + "\n\n" + "\n".join(lines)
