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

Lines starting with "#" before the first turn are a description; one of them may name the
channel the conversation happens on ("# channel: zalo_bot"; Telegram by default): the engine
then speaks as on that channel (handlers/<channel>.py CAPABILITIES), and where it has no
buttons the options are shown as the user sees them, numbered. "# volunteers: VK7M2QX@16279"
names the enrolled volunteers' codes (and communes): a code typed as text is then checked
against them, as the host does (handlers/conversation.py). Run with UPDATE_GOLDEN=1 to
rewrite the expected replies after a deliberate content change, then review the diff.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from bot.engine import Engine, screen_key
from bot.model import (
    DEFAULT_MEDIUM,
    Blocked,
    Choice,
    HelpNews,
    Input,
    Media,
    MediaKind,
    Medium,
    Reply,
    Start,
    State,
    Text,
    Timeout,
    VolunteerCode,
)
from handlers import telegram, terminal, web, zalo_bot, zalo_oa
from handlers.channel import Capabilities
from handlers.render import numbered

PROMPT = ">>> "
CHANNEL = "# channel: "
VOLUNTEERS = "# volunteers: "
CAPABILITIES: dict[str, Capabilities] = {
    telegram.CHANNEL: telegram.CAPABILITIES,
    zalo_bot.CHANNEL: zalo_bot.CAPABILITIES,
    zalo_oa.CHANNEL: zalo_oa.CAPABILITIES,
    terminal.CHANNEL: terminal.CAPABILITIES,
    web.CHANNEL: web.CAPABILITIES,
}
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


def medium(header: list[str]) -> Medium:
    """The medium a transcript's description names (Telegram's by default)."""
    named = [line[len(CHANNEL) :].strip() for line in header if line.startswith(CHANNEL)]
    name = named[0] if named else telegram.CHANNEL
    return CAPABILITIES[name].medium(name)


def volunteers(header: list[str]) -> dict[str, str]:
    """The enrolled volunteers a transcript's description names: code -> commune."""
    found: dict[str, str] = {}
    for line in header:
        if line.startswith(VOLUNTEERS):
            for entry in line[len(VOLUNTEERS) :].split():
                code, _, area = entry.partition("@")
                found[code] = area
    return found


def checked(engine: Engine, event: Input, known: dict[str, str]) -> Input:
    """A typed volunteer's code checked against ``known``, as the host checks it."""
    if isinstance(event, Text) and (typed := engine.typed_code(event.text)):
        code, meant = typed
        if code in known or meant:
            return VolunteerCode(code, known.get(code))
    return event


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


def render(reply: Reply, medium: Medium = DEFAULT_MEDIUM) -> list[str]:
    out: list[str] = []
    for message in reply.messages:
        if message.picture:
            out.append(f"bot: [picture {message.picture}]")
            continue
        text = message.text if medium.buttons else numbered(message)
        lines = text.splitlines() or [""]
        out.append("bot: " + lines[0])
        out.extend((INDENT + line).rstrip() for line in lines[1:])
        if medium.buttons:
            out.extend(f"{INDENT}[{o.id}] {o.label}" for o in message.options)
    if reply.delete_input and medium.can_delete:
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
    spoken_on = medium(header)
    known = volunteers(header)
    out = [*header, ""] if header else []
    for line in inputs:
        out.append(PROMPT + line)
        event = to_input(line, state)
        if isinstance(event, timedelta):
            now += event
            out.append("")
            continue
        now += STEP
        reply = engine.advance(state, checked(engine, event, known), now, medium=spoken_on)
        state = reply.state if not reply.erase else replace(State())
        out.extend(render(reply, spoken_on))
        out.append("")
    return "\n".join(out).rstrip() + "\n"
