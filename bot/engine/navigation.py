"""Moving between screens: going to a screen or step, resolving "@" targets, going back,
detours and the way back from them, resuming after an absence, recording a completion, and
the help request form's own targets (where the citizen is, when, and its opening)."""

from __future__ import annotations

from dataclasses import replace

from bot.config import Config
from bot.content import Content, Screen
from bot.engine.rendering import Renderer
from bot.engine.turn import Turn
from bot.model import ScreenRef, State
from bot.vocabulary import (
    ANNOUNCE_OFFER,
    NO_REMINDERS,
    REMIND_OFFER,
    EventKind,
    InstallRoute,
    ScreenId,
    ScreenKind,
    Target,
)

#: Screens that are detours: "continue" leads back to where the user was before them.
DETOURS = frozenset(
    {
        ScreenId.HUMAN,
        ScreenId.DELETE_CONFIRM,
        ScreenId.RESUME,
        ScreenId.PRIVACY,
        ScreenId.SCAM_SIGNS,
    }
)
#: What a completion report needs, and records.
REPORTED = ("commune", "village", "lives_here", "provider")


class Navigator:
    """Moves a turn's state through the flow of ``content``."""

    def __init__(self, content: Content, config: Config, renderer: Renderer):
        self.content = content
        self.config = config
        self.renderer = renderer

    def go(self, turn: Turn, target: str) -> None:
        """Go to a screen, an install step or an "@" target, and show it."""
        if target.startswith("@"):
            self._resolve(turn, Target(target))
            return
        screen = self.content.screens.get(target)
        if screen is not None and (given := self.given(turn.state, screen)) is not None:
            # Nothing to ask: the only choice there is, or the answer just given.
            turn.state = turn.state.with_answers(**{screen.answer or "": given})
            self.go(turn, screen.next or ScreenId.MENU)
            return
        previous = turn.state.screen
        turn.state = turn.state.at(ScreenRef(target))
        if screen is not None and screen.kind is ScreenKind.COMPLETE and not self._complete(turn):
            return
        if target != previous:
            turn.record(EventKind.STEP, step=target)
        self.renderer.render(turn)

    def _resolve(self, turn: Turn, target: Target) -> None:
        state = turn.state
        if target is Target.INSTALL:
            if self._offer_reminders(state):
                # Where the bot cannot write first, the same place says there are none.
                offer = REMIND_OFFER if turn.medium.push else NO_REMINDERS
                if offer in self.content.screens:
                    self.go(turn, offer)
                    return
            if self._offer_announcements(state):
                self.go(turn, ANNOUNCE_OFFER)
                return
            provider = self.config.provider(state.answers.get("provider", ""))
            steps = self.content.install_steps(InstallRoute(provider.kind)) if provider else ()
            self.go(turn, steps[0].id if steps else ScreenId.CHOOSE_PROVIDER)
        elif target is Target.REPORT:
            if "completed_at" in state.answers:
                self.go(turn, ScreenId.REPORT_AGAIN)
            elif "consent" in state.answers:
                self.go(turn, ScreenId.REPORT_COMMUNE)
            else:
                self.go(turn, ScreenId.REPORT_CONSENT)
        elif target is Target.RESUME:
            turn.state = replace(state.at(self._way_back(state)), back_to=None)
            self.renderer.render(turn)
        elif target in (Target.NEXT, Target.PREV):
            self._step_over(turn, forward=target is Target.NEXT)
        elif target in (Target.MAIN, Target.STUCK, Target.WHY):
            view = "" if target is Target.MAIN else target.removeprefix("@")
            turn.state = replace(state, view=view)
            if view:
                turn.record(EventKind(view), step=state.screen)
            # Back from the step's own view: its picture is just above in the chat.
            self.renderer.render(turn, picture=bool(view) or not state.view)
        elif target is Target.MORE:
            turn.state = replace(state, page=(state.page + 1) % self.renderer.pages(state))
            self.renderer.render(turn)
        elif target is Target.HELP_PLACE:
            self._help_place(turn)
        elif target is Target.HELP_WHEN:
            kind = state.answers.get("help_kind")
            self.go(turn, ScreenId.HELP_CONSENT if kind == "chat" else ScreenId.HELP_DAY)
        elif target is Target.HELP_READY:
            # A home visit's optional details are done (typed or skipped): it opens now.
            if state.answers.get("help") == "draft":
                turn.state = state.with_answers(help="waiting")
                turn.record(EventKind.HELP_READY)
            self.go(turn, ScreenId.HELP_SENT)

    def _help_place(self, turn: Turn) -> None:
        """The commune and village of a help request: from earlier answers (the report, a
        volunteer's link, a one-commune deployment), else asked."""
        answers = turn.state.answers
        single = self.config.communes[0].code if len(self.config.communes) == 1 else None
        commune = (
            answers.get("help_commune") or answers.get("commune") or answers.get("area") or single
        )
        if commune is None or self.config.commune(commune) is None:
            self.go(turn, ScreenId.HELP_COMMUNE)
            return
        village = answers.get("help_village")
        if village is None and answers.get("commune") == commune:
            village = answers.get("village")
        turn.state = turn.state.with_answers(help_commune=commune, help_village=village)
        if village is None:
            self.go(turn, ScreenId.HELP_VILLAGE)
        else:
            self.go(turn, Target.HELP_WHEN)

    def is_detour(self, screen: str) -> bool:
        """Whether ``screen`` is a detour ("continue" leads back to before it)."""
        found = self.content.screens.get(screen)
        return screen in DETOURS or (found is not None and found.detour)

    def _way_back(self, state: State) -> ScreenRef:
        """Where "continue" leads: where the user was before the detour; with nothing to go
        back to, where they are (or the menu, from a detour)."""
        if state.back_to is not None:
            place = state.back_to
        elif self.is_detour(state.screen) or not state.screen:
            place = ScreenRef(ScreenId.MENU)
        else:
            place = state.here
        if not self.renderer.known(place.screen) or place.screen == ScreenId.RESUME:
            return ScreenRef(ScreenId.MENU)
        return place

    def _step_over(self, turn: Turn, *, forward: bool) -> None:
        state = turn.state
        steps = self.content.install_steps(self.renderer.provider_kind(state))
        ids = [s.id for s in steps]
        if state.screen not in ids:
            self.go(turn, Target.INSTALL)
            return
        index = ids.index(state.screen)
        if forward:
            turn.record(EventKind.DONE, step=state.screen)
            nxt = ids[index + 1] if index + 1 < len(ids) else self.content.install_done
        else:
            nxt = ids[index - 1] if index > 0 else self.content.install_back
        self.go(turn, nxt)

    def back(self, turn: Turn) -> None:
        """ "Back": the previous step, a step's main view, or the screen's `back`."""
        state = turn.state
        if self.content.install_step(state.screen):
            self.go(turn, Target.MAIN if state.view else Target.PREV)
            return
        screen = self.content.screens.get(state.screen)
        target = screen.back if screen and screen.back else ScreenId.MENU
        # Not back onto a screen that is never asked (it would lead forward again).
        while (skipped := self.content.screens.get(target)) is not None and (
            self.given(state, skipped) is not None
        ):
            target = skipped.back or ScreenId.MENU
        self.go(turn, target)

    def given(self, state: State, screen: Screen) -> str | None:
        """The item a pick screen need not ask for, if any: the only one it lists (one
        commune), or -- ``skip_if_known``, on a first report -- the answer already given
        (the provider the user just installed)."""
        if screen.kind is not ScreenKind.PICK or not screen.answer:
            return None
        items = [item for item, _ in self.renderer.items(state.at(ScreenRef(screen.id)))]
        if len(items) == 1:
            return items[0]
        known = state.answers.get(screen.answer)
        first = "completed_at" not in state.answers
        return known if screen.skip_if_known and first and known in items else None

    def detour(self, turn: Turn, screen: str) -> None:
        """Go to a detour, remembering where to come back to."""
        turn.state = replace(turn.state, back_to=self.return_point(turn.state))
        self.go(turn, screen)

    def return_point(self, state: State) -> ScreenRef | None:
        """Where "continue" should lead: the current screen, unless it is itself a detour."""
        if (
            self.is_detour(state.screen)
            or not state.screen
            or not self.renderer.known(state.screen)
        ):
            return state.back_to
        return None if state.screen == ScreenId.MENU else state.here

    # --- coming back ----------------------------------------------------------------------

    def offer_resume(self, turn: Turn) -> None:
        self.detour(turn, ScreenId.RESUME)

    def reoffer(self, turn: Turn) -> None:
        """Show the current screen again -- or, after a long absence, offer to resume."""
        if turn.idle and self.mid_flow(turn.state):
            turn.idle = False
            self.offer_resume(turn)
            return
        self.ensure_started(turn)
        self.renderer.render(turn, compact=True)

    def ensure_started(self, turn: Turn) -> None:
        """Greet a user we have never seen (whatever their first message was)."""
        if not turn.state.screen:
            self.greet(turn)

    def greet(self, turn: Turn) -> None:
        turn.record(EventKind.STARTED)
        turn.say(self.renderer.fill(turn, turn.texts["greeting"]))
        turn.say(self.renderer.fill(turn, turn.texts["privacy_promise"]))
        turn.state = turn.state.at(ScreenRef(ScreenId.MENU))
        turn.record(EventKind.STEP, step=ScreenId.MENU)

    def waiting_at(self, state: State) -> str | None:
        """The step where a user stopped mid-way -- also behind a detour such as the
        "continue?" screen (where a reminder leaves them) -- if any."""
        screen = state.screen
        if self.is_detour(screen) and state.back_to is not None:
            screen = state.back_to.screen
        if not self.renderer.known(screen) or not self.mid_flow(state.at(ScreenRef(screen))):
            return None
        return screen

    def mid_flow(self, state: State) -> bool:
        if self.content.install_step(state.screen) is not None:
            return True
        screen = self.content.screens.get(state.screen)
        return bool(screen and screen.resumable)

    # --- the completion report ------------------------------------------------------------

    def _complete(self, turn: Turn) -> bool:
        """Record the completion when the user reaches the "complete" screen."""
        answers = turn.state.answers
        if "consent" not in answers:
            self.go(turn, ScreenId.REPORT_CONSENT)
            return False
        missing = [k for k in REPORTED if k not in answers]
        if missing or self.config.commune(answers["commune"]) is None:
            self.go(turn, ScreenId.REPORT_COMMUNE)
            return False
        turn.state = turn.state.with_answers(completed_at=turn.now.isoformat())
        data = {k: answers[k] for k in REPORTED}
        data["source"] = "self"
        if turn.state.referral:
            data["referral"] = turn.state.referral
        turn.record(EventKind.COMPLETED, data=data)
        return True

    def _offer_reminders(self, state: State) -> bool:
        return (
            "reminders" not in state.answers
            and bool(self.config.reminders.after)
            and REMIND_OFFER in self.content.screens
        )

    def _offer_announcements(self, state: State) -> bool:
        """Asked of those who just said yes to reminders, as a question of its own (a yes to
        one purpose is not a yes to another); who declined messages is not asked again."""
        return (
            state.answers.get("reminders") == "on"
            and "announcements" not in state.answers
            and ANNOUNCE_OFFER in self.content.screens
        )
