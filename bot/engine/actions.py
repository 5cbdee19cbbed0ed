"""What each action of the vocabulary does: one implementation per action, registered once.

Options, commands and global words name actions (bot/vocabulary.py ``Action``); here each is
implemented, and ``ACTIONS`` maps every action to its implementation (tests check that none
is missing). An implementation changes the turn's state, says something, records events,
and usually moves on through the navigator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from bot.model import Option, State
from bot.vocabulary import Action, EventKind, ScreenId, Target

if TYPE_CHECKING:
    from bot.engine.engine import Engine
    from bot.engine.turn import Turn

#: Options chosen regardless of the screen they were shown on start with this prefix.
GLOBAL_PREFIX = "g:"
#: Answers that exist only with consent (withdrawing consent removes them).
CONSENTED_ANSWERS = ("consent", "consent_at", "commune", "village", "lives_here", "completed_at")
#: Answers kept when a user starts over.
KEPT_ON_RESTART = ("consent", "consent_at", "completed_at", "area", "reminders")

Implementation = Callable[["Engine", "Turn"], None]
ACTIONS: dict[Action, Implementation] = {}


def implements(action: Action) -> Callable[[Implementation], Implementation]:
    def register(run: Implementation) -> Implementation:
        if action in ACTIONS:
            raise RuntimeError(f"action {action} is implemented twice")
        ACTIONS[action] = run
        return run

    return register


def global_option(action: Action, label: str) -> Option:
    """A button that works from any screen (rendered as a bullet on text channels)."""
    return Option(GLOBAL_PREFIX + action, label)


@implements(Action.START)
def _start(engine: Engine, turn: Turn) -> None:
    engine.start(turn)


@implements(Action.MENU)
def _menu(engine: Engine, turn: Turn) -> None:
    engine.nav.go(turn, ScreenId.MENU)


@implements(Action.HELP)
def _help(engine: Engine, turn: Turn) -> None:
    turn.say(engine.renderer.fmt(engine.content.texts["help"], turn.state))
    engine.nav.reoffer(turn)


@implements(Action.STOP)
def _stop(engine: Engine, turn: Turn) -> None:
    state = turn.state
    # shown="": the options shown before "stop" no longer count ("1" must not choose one).
    turn.state = replace(
        state, stopped=True, back_to=engine.nav.return_point(state), shown="", asked=()
    )
    turn.record(EventKind.STOPPED, step=state.screen or None)
    reminders_off(turn)
    resume = global_option(Action.RESUME, engine.content.labels["resume"])
    turn.say(engine.content.texts["stopped"], (resume,), screen="global")


@implements(Action.HUMAN)
def _human(engine: Engine, turn: Turn) -> None:
    turn.record(EventKind.HUMAN, step=turn.state.screen or None)
    engine.nav.detour(turn, ScreenId.HUMAN)


@implements(Action.PRIVACY)
def _privacy(engine: Engine, turn: Turn) -> None:
    turn.record(EventKind.PRIVACY, step=turn.state.screen or None)
    engine.nav.detour(turn, ScreenId.PRIVACY)


@implements(Action.SCAM)
def _scam(engine: Engine, turn: Turn) -> None:
    turn.record(EventKind.SCAM, step=turn.state.screen or None)
    engine.nav.detour(turn, ScreenId.SCAM_SIGNS)


@implements(Action.DELETE)
def _delete(engine: Engine, turn: Turn) -> None:
    engine.nav.detour(turn, ScreenId.DELETE_CONFIRM)


@implements(Action.BACK)
def _back(engine: Engine, turn: Turn) -> None:
    engine.nav.back(turn)


@implements(Action.ERASE)
def _erase(engine: Engine, turn: Turn) -> None:
    # The host deletes everything it holds for this user, in the same transaction.
    turn.erase = True
    turn.state = State()
    turn.say(engine.content.texts["erased"])


@implements(Action.RESUME)
def _resume(engine: Engine, turn: Turn) -> None:
    engine.nav.go(turn, Target.RESUME)


@implements(Action.RESTART)
def _restart(engine: Engine, turn: Turn) -> None:
    state = turn.state
    kept = {k: v for k, v in state.answers.items() if k in KEPT_ON_RESTART}
    turn.state = replace(state, answers=kept, back_to=None)
    engine.nav.go(turn, ScreenId.MENU)


@implements(Action.CONSENT)
def _consent(engine: Engine, turn: Turn) -> None:
    version = engine.content.texts["consent_version"]
    turn.state = turn.state.with_answers(consent=version, consent_at=turn.now.isoformat())
    turn.record(EventKind.CONSENT, detail=version)


@implements(Action.DECLINE)
def _decline(engine: Engine, turn: Turn) -> None:
    turn.state = turn.state.with_answers(consent=None, consent_at=None)
    turn.record(EventKind.CONSENT_DECLINED)


@implements(Action.WITHDRAW)
def _withdraw(engine: Engine, turn: Turn) -> None:
    # The store deletes the completion on this event, in the same transaction.
    turn.state = turn.state.with_answers(**dict.fromkeys(CONSENTED_ANSWERS))
    turn.record(EventKind.CONSENT_WITHDRAWN)
    turn.say(engine.content.texts["withdrawn"])
    engine.nav.go(turn, ScreenId.MENU)


@implements(Action.REMIND_ON)
def _remind_on(engine: Engine, turn: Turn) -> None:
    # The host keeps the chat address, sealed, on this event (the only time it does).
    turn.state = turn.state.with_answers(reminders="on")
    turn.record(EventKind.REMINDERS, detail="on")


@implements(Action.REMIND_OFF)
def _remind_off(engine: Engine, turn: Turn) -> None:
    turn.state = turn.state.with_answers(reminders="off")
    turn.record(EventKind.REMINDERS, detail="off")


def reminders_off(turn: Turn) -> None:
    """After "dừng" or a block: no reminder or announcement any more (the host deletes the
    address on this event)."""
    if turn.state.answers.get("reminders") == "on":
        turn.state = turn.state.with_answers(reminders="off")
        turn.record(EventKind.REMINDERS, detail="off")
