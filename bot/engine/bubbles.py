"""Fewer bubbles: the messages of one reply joined where a person reads them as one.

Each message is a notification on the phone, and on Zalo each one counts against a monthly
quota (3,000 on the Bot Platform's free tier). A reply often says something, then shows a
screen (the greeting, the promise, the menu; an FAQ answer, then "continue with step 4");
those are sent as one message when together they stay short -- at most ``MAX_WORDS``, the
length a screen is split at -- or when the second only says what to do next (a prompt of at
most ``PROMPT_WORDS``). A message with options of its own screen ends a bubble: its options
must stay under its own text. Options that work from any screen (``g:``, such as "human
help") travel with the message they are merged into -- unless that would show more than
``MAX_OPTIONS`` buttons: then the two stay apart.
"""

from __future__ import annotations

from collections.abc import Iterable

from bot.content import MAX_OPTIONS, MAX_WORDS
from bot.engine.actions import GLOBAL_PREFIX
from bot.model import OutMessage

#: A message this short only says what to do next: it rides with the message before it.
PROMPT_WORDS = 25


def words(text: str) -> int:
    """Words a person reads (bullets are not words)."""
    return sum(1 for word in text.split() if word != "•")


def joined(messages: Iterable[OutMessage]) -> list[OutMessage]:
    """``messages`` with each one that may be joined to the next joined to it."""
    out: list[OutMessage] = []
    for message in messages:
        if out and _joins(out[-1], message):
            out[-1] = _join(out[-1], message)
        else:
            out.append(message)
    return out


def _joins(first: OutMessage, then: OutMessage) -> bool:
    if first.attachment is not None or then.attachment is not None:
        return False
    if not first.text or not then.text:
        return False
    if any(not o.id.startswith(GLOBAL_PREFIX) for o in first.options):
        return False  # its options belong under its own text
    ids = {o.id for o in then.options}
    if len(then.options) + sum(1 for o in first.options if o.id not in ids) > MAX_OPTIONS:
        return False
    together = words(first.text) + words(then.text)
    return together <= MAX_WORDS or words(then.text) <= PROMPT_WORDS


def _join(first: OutMessage, then: OutMessage) -> OutMessage:
    ids = {o.id for o in then.options}
    carried = tuple(o for o in first.options if o.id not in ids)
    return OutMessage(
        text=first.text + "\n\n" + then.text,
        options=then.options + carried,
        screen=then.screen if then.options else first.screen,
    )
