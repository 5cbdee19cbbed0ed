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

from bot import helprequests
from bot.model import HelpAsk, Option, State
from bot.vocabulary import Action, EventKind, ScreenId, Target

if TYPE_CHECKING:
    from bot.engine.engine import Engine
    from bot.engine.turn import Turn

#: Options chosen regardless of the screen they were shown on start with this prefix.
GLOBAL_PREFIX = "g:"
#: Answers that exist only with consent (withdrawing consent removes them).
CONSENTED_ANSWERS = ("consent", "consent_at", "commune", "village", "lives_here", "completed_at")
#: Answers kept when a user starts over (a live help request's among them).
KEPT_ON_RESTART = (
    "consent", "consent_at", "completed_at", "area", "reminders", "announcements", "help",
    "help_kind", "help_commune", "help_village", "help_day", "help_time", "helping",
)  # fmt: skip
#: The answers of the help request form, cleared when the request ends (but the village,
#: asked again next time only if the citizen changes it).
HELP_FORM = ("help_kind", "help_day", "help_time", "help_step", "help_problem")
#: A help request that is live, as the citizen's answers know it.
LIVE_HELP = ("waiting", "draft", "claimed")

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
    turn.say(engine.renderer.fill(turn, turn.texts["help"]))
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
    turn.say(turn.texts["stopped"], (resume,), screen="global")


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
    turn.say(turn.texts["erased"])


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
    version = turn.texts["consent_version"]
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
    turn.say(turn.texts["withdrawn"])
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


@implements(Action.ANNOUNCE_ON)
def _announce_on(engine: Engine, turn: Turn) -> None:
    # The host keeps the chat address, sealed, on this event too; announcements go only to
    # those who said yes here (storage/outbox.py), whatever they said to reminders.
    turn.state = turn.state.with_answers(announcements="on")
    turn.record(EventKind.ANNOUNCEMENTS, detail="on")


@implements(Action.ANNOUNCE_OFF)
def _announce_off(engine: Engine, turn: Turn) -> None:
    turn.state = turn.state.with_answers(announcements="off")
    turn.record(EventKind.ANNOUNCEMENTS, detail="off")


@implements(Action.HELP_REQUEST)
def _help_request(engine: Engine, turn: Turn) -> None:
    """ "A person, please": the request the citizen already has, or a new one's form --
    remembering where they asked from (the step they are stuck on, the no-smartphone
    screen), which the request shares."""
    state = turn.state
    status = state.answers.get("help")
    if status == "claimed":
        engine.nav.detour(turn, ScreenId.HELP_CHAT)
        return
    if status in LIVE_HELP:
        engine.nav.detour(turn, ScreenId.HELP_WAITING)
        return
    origin = state.here if not engine.nav.is_detour(state.screen) else state.back_to
    step = engine.content.install_step(origin.screen) if origin else None
    if origin is not None and origin.view == "stuck" and step is not None:
        problem = "stuck"
    elif origin is not None and origin.screen == "no_smartphone":
        problem = "no_smartphone"
    else:
        problem = "other"
    turn.state = state.with_answers(
        help_step=step.id if step else None, help_problem=problem, help_outcome=None
    )
    engine.nav.detour(turn, ScreenId.HELP_HOW)


@implements(Action.HELP_SEND)
def _help_send(engine: Engine, turn: Turn) -> None:
    """Consent given: the request is made (the store creates it with this step, its chat
    address sealed). A home visit first asks for its optional details, and opens after."""
    state = turn.state
    if state.answers.get("help") in LIVE_HELP:
        engine.nav.go(turn, ScreenId.HELP_WAITING)
        return
    fields = helprequests.fields_from_state(state, engine.config, turn.now)
    visit = fields.kind == "visit"
    turn.state = state.with_answers(help="draft" if visit else "waiting")
    turn.record(EventKind.HELP_REQUESTED, detail=fields.kind, data=fields.to_data())
    engine.nav.go(turn, ScreenId.HELP_LANDMARK if visit else ScreenId.HELP_SENT)


@implements(Action.HELP_CANCEL)
def _help_cancel(engine: Engine, turn: Turn) -> None:
    turn.help = HelpAsk("cancel")


@implements(Action.HELP_CLOSE)
def _help_close(engine: Engine, turn: Turn) -> None:
    turn.help = HelpAsk("close", detail=turn.state.answers.get("help_outcome", "not_yet"))


@implements(Action.HELP_REPORT)
def _help_report(engine: Engine, turn: Turn) -> None:
    turn.help = HelpAsk("report")


@implements(Action.HELP_COUNT)
def _help_count(engine: Engine, turn: Turn) -> None:
    # The store records the assisted completion of the citizen's last request on this event.
    turn.record(EventKind.HELP_COUNTED)


def reminders_off(turn: Turn) -> None:
    """After "dung" or a block: no reminder or announcement any more (the host deletes the
    address once both are off)."""
    for answer, kind in (
        ("reminders", EventKind.REMINDERS),
        ("announcements", EventKind.ANNOUNCEMENTS),
    ):
        if turn.state.answers.get(answer) == "on":
            turn.state = turn.state.with_answers(**{answer: "off"})
            turn.record(kind, detail="off")
