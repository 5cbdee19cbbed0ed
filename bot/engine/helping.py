"""The engine's part in help requests: what the help desk's news does to a conversation,
which inputs go to a person instead of the engine, and the typed answers of the form.

- **News** (:class:`~bot.model.HelpNews`, from handlers/helpdesk.py): a citizen's request
  taken ("claimed": the chat with the helper begins), ended ("closed", with its outcome),
  and a volunteer's "helping" / "released" (whether they are in a chat now).
- **Relay**: in a chat with a helper, what the citizen types goes to the helper -- except
  commands, the words that end the chat or report the helper, an option's number, and
  anything the sensitive-data guard stops (a code, an ID or phone number: warned about, never
  passed on); photos are never passed on (deleted and warned about, as always). What a
  volunteer in a chat types -- or a picture they send -- goes to the citizen (the help
  desk's guard then checks it, a picture's caption too).
  The engine only says so (``Reply.help``): the help desk does it.
- **Typed answers** of a home visit's "input" screens: a landmark and a phone number, both
  optional, handed to the host in ``Reply.private`` (sealed into the request, never kept in
  the state or an event).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from bot.engine.actions import HELP_FORM
from bot.engine.guards import sensitive_kind, unreadable
from bot.helprequests import LANDMARK_LIMIT, phone_digits
from bot.model import HelpAsk, HelpNews, Input, Media, Text
from bot.textnorm import clean_input, fold
from bot.vocabulary import EventKind, ScreenId, ScreenKind

if TYPE_CHECKING:
    from bot.engine.engine import Engine
    from bot.engine.turn import Turn


def news(engine: Engine, turn: Turn, event: HelpNews) -> None:
    """What the help desk tells changes in this user's conversation."""
    state = turn.state
    if event.what == "helping":
        turn.state = state.with_answers(helping="on")
    elif event.what == "released":
        turn.state = state.with_answers(helping=None)
    elif event.what == "claimed":
        turn.state = state.with_answers(help="claimed")
        turn.record(EventKind.HELP_CLAIMED)
        engine.nav.detour(turn, ScreenId.HELP_CHAT)
    elif event.what == "closed":
        outcome = event.detail or "gone"
        cleared: dict[str, str | None] = dict.fromkeys(HELP_FORM)
        turn.state = state.with_answers(**cleared, help=None, help_outcome=outcome)
        turn.record(EventKind.HELP_CLOSED, detail=outcome)
        screen = ScreenId.HELP_COUNT if outcome == "installed" else ScreenId.HELP_CLOSED
        engine.nav.detour(turn, screen)


def relay(engine: Engine, turn: Turn, event: Input) -> bool:
    """Whether ``event`` is for the person on the other side of a chat (``turn.help`` says
    so), or -- typed in a chat -- leads to ending it or reporting the helper."""
    answers = turn.state.answers
    if answers.get("helping") == "on":
        if isinstance(event, Text) and not clean_input(event.text).strip().startswith("/"):
            turn.help = HelpAsk("relay", "volunteer")
            return True
        if isinstance(event, Media) and event.kind == "photo":
            turn.help = HelpAsk("relay", "volunteer", detail="photo")
            return True
        return False
    if answers.get("help") != "claimed" or not isinstance(event, Text):
        return False
    text = clean_input(event.text).strip()
    if not text or text.startswith("/") or unreadable(text) or sensitive_kind(text):
        return False  # a command, or what the engine answers as always (never passed on)
    folded = fold(text)
    for word, screen in (("end", "help_end"), ("report", "help_report")):
        if folded in _folded(tuple(engine.content.relay_words.get(word, ()))):
            engine.nav.go(turn, screen)
            return True
    options = engine.renderer.options(turn.state)
    if folded.isdecimal() and 1 <= int(folded) <= len(options):
        return False  # an option of the chat screen, by its number
    turn.help = HelpAsk("relay", "citizen")
    return True


@functools.lru_cache(maxsize=16)
def _folded(words: tuple[str, ...]) -> frozenset[str]:
    """Content's words, folded once (folding costs about 0.1 ms a word)."""
    return frozenset(fold(w) for w in words)


def typed_input(engine: Engine, turn: Turn, text: str) -> bool:
    """On a help request's "input" screen, take what was typed (a landmark, a phone
    number) -- unless it is one of the screen's options, or a secret the usual guard
    answers (False: the engine goes on as always)."""
    state = turn.state
    screen = engine.content.screens.get(state.screen)
    if screen is None or screen.kind is not ScreenKind.INPUT or screen.next is None:
        return False
    folded = fold(text)
    options = engine.renderer.options(state)
    if folded.isdecimal() and 1 <= int(folded) <= len(options):
        return False
    if any(folded == fold(engine.renderer.fmt(o.label, state)) for o in options):
        return False
    kind = sensitive_kind(text)
    texts = engine.content.texts
    if screen.input == "phone":
        if kind is None:
            turn.say(texts["help_input_not_phone"])
            engine.renderer.render(turn, compact=True)
            return True
        if kind != "phone":
            return False
        turn.private["phone"] = phone_digits(text)
    else:
        if kind is not None:
            return False
        if len(text) > LANDMARK_LIMIT:
            turn.say(texts["help_input_too_long"])
            engine.renderer.render(turn, compact=True)
            return True
        turn.private["landmark"] = text
    turn.record(EventKind.HELP_DETAIL, step=state.screen, detail=screen.input)
    turn.say(texts["help_input_kept"])
    engine.nav.go(turn, screen.next)
    return True
