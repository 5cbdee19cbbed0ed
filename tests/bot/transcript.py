"""Golden conversation transcripts: inputs and the engine's replies, readable like a chat.

A transcript file is a list of turns. Each turn is one input line starting with ">>> "
followed by what the engine answered (messages, options, analytics events, the screen the
user is on now). Inputs:

    >>> some text          the user types text (commands too: /start, /menu...)
    >>> !start CODE        the user opens a referral link (/start CODE)
    >>> !tap OPTION        the user presses a button of the current screen
    >>> !tap-old SCREEN|OPTION   the user presses an old (or forged) button
    >>> !photo             the user sends a photo (also !document, !sticker, !voice,
                           !location, !contact, !edited)
    >>> !wait 8h           time passes (no reply); also "30m", "2d"
    >>> !timeout           the reminder scheduler fires
    >>> !blocked           the channel reports that the user blocked the bot
    >>> !news WHAT DETAIL  the help desk tells news of the user's help request
                           ("claimed", "closed installed"...: bot.model.HelpNews)

Lines starting with "#" before the first turn are a description. Run with UPDATE_GOLDEN=1 to
rewrite the expected replies after a deliberate content change, then review the diff.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from bot.engine import Engine, screen_key
from bot.model import (
    Blocked,
    Choice,
    HelpNews,
    Input,
    Media,
    MediaKind,
    Reply,
    Start,
    State,
    Text,
    Timeout,
)

PROMPT = ">>> "
INDENT = "     "
STEP = timedelta(minutes=1)
MEDIA: tuple[MediaKind, ...] = (
    "photo", "document", "video", "contact", "location", "sticker", "voice", "edited", "other",
)  # fmt: skip


def parse(text: str) -> tuple[list[str], list[str]]:
    """(description lines, input lines) of a transcript file."""
    header: list[str] = []
    inputs: list[str] = []
    for line in text.splitlines():
        if line.startswith(PROMPT):
            inputs.append(line[len(PROMPT) :])
        elif not inputs and line.startswith("#"):
            header.append(line)
    return header, inputs


def _duration(spec: str) -> timedelta:
    unit = {"m": "minutes", "h": "hours", "d": "days"}[spec[-1]]
    return timedelta(**{unit: float(spec[:-1])})


def to_input(line: str, state: State) -> Input | timedelta:
    if not line.startswith("!"):
        return Text(line)
    word, _, rest = line[1:].partition(" ")
    if word == "start":
        return Start(rest.strip() or None)
    if word == "tap":
        return Choice(option=rest.strip(), screen=screen_key(state))
    if word == "tap-old":
        screen, _, option = rest.strip().partition("|")
        return Choice(option=option, screen=screen)
    if word == "wait":
        return _duration(rest.strip())
    if word == "timeout":
        return Timeout()
    if word == "blocked":
        return Blocked()
    if word == "news":
        what, _, detail = rest.strip().partition(" ")
        return HelpNews(what, detail)
    if word in MEDIA:
        return Media(word)
    raise ValueError(f"unknown transcript input: {line!r}")


def render(reply: Reply) -> list[str]:
    out: list[str] = []
    for message in reply.messages:
        lines = message.text.splitlines() or [""]
        out.append("bot: " + lines[0])
        out.extend((INDENT + line).rstrip() for line in lines[1:])
        out.extend(f"{INDENT}[{o.id}] {o.label}" for o in message.options)
    if reply.delete_input:
        out.append("(the user's message is deleted)")
    if reply.erase:
        out.append("(all the user's data is erased)")
    if reply.help is not None:
        ask = reply.help
        said = " ".join(p for p in (ask.what, "from the", ask.side, ask.detail) if p)
        out.append(f"(to the help desk: {said})")
    if reply.private:
        out.append(f"(sealed into the request: {', '.join(sorted(reply.private))})")
    if reply.events:
        out.append(
            "events: " + "; ".join(_event(e.kind, e.step, e.detail, e.data) for e in reply.events)
        )
    out.append(
        f"now at: {screen_key(reply.state)}" + (" (stopped)" if reply.state.stopped else "")
    )
    return out


def _event(kind: str, step: str | None, detail: str | None, data: object) -> str:
    parts = [kind]
    if step:
        parts.append(step)
    if detail:
        parts.append(f"({detail})")
    if data:
        parts.append(str(dict(data)))  # type: ignore[call-overload]
    return " ".join(parts)


def run(engine: Engine, header: list[str], inputs: list[str], start: datetime) -> str:
    """Replay ``inputs`` from a new user's state and render the whole transcript."""
    state = State()
    now = start
    out = [*header, ""] if header else []
    for line in inputs:
        out.append(PROMPT + line)
        event = to_input(line, state)
        if isinstance(event, timedelta):
            now += event
            out.append("")
            continue
        now += STEP
        reply = engine.advance(state, event, now)
        state = reply.state if not reply.erase else replace(State())
        out.extend(render(reply))
        out.append("")
    return "\n".join(out).rstrip() + "\n"
