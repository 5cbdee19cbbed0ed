"""Showing a screen: its texts with placeholders filled, and the options on offer.

The renderer knows the kinds of screen the content describes -- info, pick (a list from the
config, three at a time), complete -- and the install steps with their sub-views ("stuck",
"why") and progress line ("step 4 of 9"). It reads state; it never changes it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from babel.dates import format_date

from bot import helprequests
from bot.config import Commune, Config
from bot.content import Content, InstallStep, OptionSpec, Screen
from bot.engine.bubbles import PROMPT_WORDS, words
from bot.engine.turn import Turn
from bot.model import DEFAULT_MEDIUM, Medium, Option, ScreenRef, State
from bot.vocabulary import (
    Action,
    InstallRoute,
    OptionCondition,
    PickSource,
    Placeholder,
    ScreenId,
    ScreenKind,
    Target,
)

#: Pick lists show this many items per page, plus one "more" or "back" option.
PAGE_SIZE = 3
#: A help request's placeholders: empty for a user who never asked for one.
_HELP_PLACEHOLDERS = (
    Placeholder.HELP_SUMMARY,
    Placeholder.HELP_HELPER,
    Placeholder.HELP_WHEN,
    Placeholder.HELP_NOTE,
    Placeholder.HELP_OUTCOME,
)

#: When an option is shown: one predicate per condition of the vocabulary.
CONDITIONS: dict[OptionCondition, Callable[[State], bool]] = {
    OptionCondition.HAS_RETURN: lambda state: state.back_to is not None,
    OptionCondition.COMPLETED: lambda state: "completed_at" in state.answers,
    OptionCondition.NOT_COMPLETED: lambda state: "completed_at" not in state.answers,
    OptionCondition.CONSENTED: lambda state: "consent" in state.answers,
    OptionCondition.REMINDERS_ON: lambda state: state.answers.get("reminders") == "on",
    OptionCondition.HELP_CLAIMED: lambda state: state.answers.get("help") == "claimed",
}

#: The options of an install step's views: (label key, goto, action).
_STEP_OPTIONS: dict[str, list[tuple[str, Target | None, Action | None]]] = {
    "": [
        ("done", Target.NEXT, None),
        ("stuck", Target.STUCK, None),
        ("why", Target.WHY, None),
        ("back", None, Action.BACK),
    ],
    "stuck": [
        ("stuck_done", Target.NEXT, None),
        ("help_request", None, Action.HELP_REQUEST),
        ("stuck_human", None, Action.HUMAN),
        ("stuck_back", Target.MAIN, None),
    ],
    "why": [("why_back", Target.MAIN, None), ("human", None, Action.HUMAN)],
}


class Renderer:
    """Renders the screens of ``content`` for the deployment in ``config``."""

    def __init__(self, content: Content, config: Config):
        self.content = content
        self.config = config
        self._texts = content.texts
        self._labels = content.labels

    # --- where things are -----------------------------------------------------------------

    def known(self, screen: str) -> bool:
        """Whether ``screen`` names a screen or an install step of the content."""
        return screen in self.content.screens or self.content.install_step(screen) is not None

    def provider_kind(self, state: State) -> InstallRoute:
        """How the chosen provider is installed (its own app unless it is the VNeID route)."""
        provider = self.config.provider(state.answers.get("provider", ""))
        return InstallRoute(provider.kind) if provider else InstallRoute.APP

    def progress(self, state: State) -> tuple[int, int] | None:
        """(step number, total) if ``state`` is on an install step."""
        step = self.content.install_step(state.screen)
        if step is None:
            return None
        steps = self.content.install_steps(self.provider_kind(state))
        return (steps.index(step) + 1, len(steps)) if step in steps else None

    # --- showing a screen -----------------------------------------------------------------

    def render(self, turn: Turn, *, compact: bool = False, picture: bool = True) -> None:
        """Show the current screen. ``compact``: it was just shown, so only remind the user
        where they are (a line with the step's or the screen's title, or the screen's short
        last question) with its options.
        ``picture``: an install step's main view brings its picture (not when the user
        comes back to it from its own "stuck" or "why" view: it is just above)."""
        state = turn.state
        key = state.here.key
        options = tuple(Option(o.id, self.fmt(o.label, state)) for o in self.options(state))
        step = self.content.install_step(state.screen)
        if step is not None:
            if compact and not state.view:
                turn.say(self.fill(turn, turn.texts["reoffer_step"]), options, key)
            else:
                # The step's picture comes before its main view shown in full, not before
                # the reminders of where the user is, nor the "stuck" and "why" views.
                if step.picture and picture and not state.view:
                    turn.show(step.picture)
                turn.say(self._install_text(turn, step), options, key)
            return
        screen = self.content.screens[state.screen or ScreenId.MENU]
        texts = [self.fill(turn, t) for t in screen.texts_for(turn.medium.variants)]
        if compact:
            # Just shown: never the whole screen again, only what to do (its last message if
            # that is a short question, else a line naming it).
            last = texts[-1:]
            if not last or words(last[0]) > PROMPT_WORDS:
                last = [self.fill(turn, turn.texts["reoffer_screen"], title=screen.title)]
            texts = last
        if screen.id == ScreenId.RESUME:
            texts = [self._resume_text(turn)]
        if not texts:
            texts = [""]
        if screen.kind is ScreenKind.PICK and len(self.items(state)) > PAGE_SIZE + 1:
            texts[-1] += "\n\n" + turn.texts["pick_hint"]
        for text in texts[:-1]:
            turn.say(text)
        turn.say(texts[-1], options, key)

    def _install_text(self, turn: Turn, step: InstallStep) -> str:
        state = turn.state
        if state.view == "stuck":
            body = step.stuck
        elif state.view == "why":
            body = step.why
        else:
            body = step.text_for(self.provider_kind(state))
            note = step.notes.get(state.answers.get("provider", ""))
            if note:
                body += "\n\n" + note
        return self.fill(turn, turn.texts["step_header"]) + "\n\n" + self.fill(turn, body)

    def _resume_text(self, turn: Turn) -> str:
        state = turn.state
        place = state.back_to or ScreenRef(ScreenId.MENU)
        probe = state.at(ScreenRef(place.screen))
        if self.content.install_step(place.screen) is not None:
            return self.fmt(turn.texts["resume_install"], probe)
        screen = self.content.screens.get(place.screen)
        title = screen.title if screen else ""
        return self.fmt(turn.texts["resume_other"], probe, title=title)

    # --- options --------------------------------------------------------------------------

    def options(self, state: State) -> list[OptionSpec]:
        """The options the current screen offers, in order."""
        if self.content.install_step(state.screen) is not None:
            return self._install_options(state.view)
        screen = self.content.screens.get(state.screen or ScreenId.MENU)
        if screen is None:
            return []
        if screen.kind is ScreenKind.PICK:
            return self._pick_options(state, screen)
        return [o for o in screen.options if o.when is None or CONDITIONS[o.when](state)]

    def _install_options(self, view: str) -> list[OptionSpec]:
        return [
            OptionSpec(
                id=key,
                label=self._labels[key],
                goto=goto,
                action=action,
                aliases=(f"@{key}",) if key in self.content.aliases else (),
            )
            for key, goto, action in _STEP_OPTIONS.get(view, _STEP_OPTIONS[""])
        ]

    def items(self, state: State) -> list[tuple[str, str]]:
        """(id, label) of the items of the current pick screen."""
        screen = self.content.screens.get(state.screen)
        if screen is None or screen.kind is not ScreenKind.PICK:
            return []
        items: list[tuple[str, str]]
        if screen.source is PickSource.PROVIDERS:
            items = [(p.id, p.name) for p in self.config.providers]
        elif screen.source is PickSource.COMMUNES:
            many_provinces = len({c.province for c in self.config.communes}) > 1
            items = [
                (c.code, f"{c.name}, {c.province}" if many_provinces else c.name)
                for c in self.config.communes
            ]
        else:
            commune = self.config.commune(state.answers.get(screen.commune, ""))
            items = [(v.id, v.name) for v in commune.villages] if commune else []
        if screen.unknown:
            items.append(("unknown", self._labels["unknown"]))
        return items

    def _pick_options(self, state: State, screen: Screen) -> list[OptionSpec]:
        items = self.items(state)
        if len(items) <= PAGE_SIZE + 1:
            options = [pick(screen, i, label) for i, label in items]
            if len(options) <= PAGE_SIZE:
                options.append(
                    OptionSpec(id="back", label=self._labels["back"], action=Action.BACK)
                )
            return options
        start = (state.page * PAGE_SIZE) % len(items)
        page = items[start : start + PAGE_SIZE]
        more = OptionSpec(id="more", label=self._labels["more"], goto=Target.MORE)
        return [*(pick(screen, i, label) for i, label in page), more]

    def pages(self, state: State) -> int:
        return max(1, -(-len(self.items(state)) // PAGE_SIZE))

    # --- text -----------------------------------------------------------------------------

    def fill(self, turn: Turn, text: str, **extra: str) -> str:
        """``text`` with its placeholders filled for the turn's state and medium."""
        return self.fmt(text, turn.state, medium=turn.medium, **extra)

    def fmt(self, text: str, state: State, medium: Medium = DEFAULT_MEDIUM, **extra: str) -> str:
        """``text`` with its placeholders filled for ``state`` (on ``medium``)."""
        if "{" not in text:
            return text
        return text.format_map({**self.values(state, medium), **extra})

    def way_in(self, medium: Medium) -> str:
        """How people reach the bot on ``medium``'s channel, to tell their family."""
        return self.config.way_in(medium.channel) or self._texts["way_in_unknown"]

    def values(self, state: State, medium: Medium = DEFAULT_MEDIUM) -> dict[str, str]:
        """Every placeholder of the vocabulary, filled for ``state`` on ``medium``."""
        provider = self.config.provider(state.answers.get("provider", ""))
        commune = self.commune(state)
        village = commune.village(state.answers.get("village", ""))
        phone = state.answers.get("phone", "")
        store = self._texts.get(f"store_{phone}") or self._texts.get("store_unknown", "")
        completed = state.answers.get("completed_at")
        progress = self.progress(state)
        step = self.content.install_step(state.screen)
        values: dict[Placeholder, str] = {
            Placeholder.APP: provider.app if provider else "",
            Placeholder.PROVIDER: provider.name if provider else "",
            Placeholder.PUBLISHER: provider.publisher if provider else "",
            Placeholder.SITE: provider.site if provider else "",
            Placeholder.HOTLINE: (provider.hotline if provider else "")
            or self._texts["hotline_unknown"],
            Placeholder.STORE: store,
            # The providers themselves: VNeID is where one registers, not a provider.
            Placeholder.PROVIDERS: ", ".join(
                p.name for p in self.config.providers if p.kind == InstallRoute.APP
            ),
            Placeholder.COMMUNE: commune.name,
            Placeholder.PROVINCE: commune.province,
            Placeholder.VILLAGE: village.name if village else "",
            Placeholder.SUPPORT_NAME: commune.support.name,
            Placeholder.SUPPORT_ADDRESS: commune.support.address,
            Placeholder.SUPPORT_HOURS: commune.support.hours,
            Placeholder.SUPPORT_PHONE: commune.support.phone,
            Placeholder.SHARE_URL: self.config.share_url,
            Placeholder.WAY_IN: self.way_in(medium),
            Placeholder.STEP: str(progress[0]) if progress else "",
            Placeholder.TOTAL: str(progress[1]) if progress else "",
            Placeholder.TITLE: "",
            Placeholder.DATE: self.date(completed) if completed else "",
            Placeholder.DELETE_COMMAND: self._texts["delete_command"],
            Placeholder.CONSENT_VERSION: self._texts["consent_version"],
            Placeholder.NAME: "",
            Placeholder.CODE: state.referral or "",
            Placeholder.COUNT: "",
            Placeholder.RETENTION_MONTHS: str(self.config.retention_months),
        }
        filled = {str(k): v for k, v in values.items()}
        if step is not None:
            filled[Placeholder.TITLE] = step.title.format_map(filled)
        filled.update(self._help_values(state, filled))
        return filled

    def _help_values(self, state: State, filled: dict[str, str]) -> dict[str, str]:
        """The help request's placeholders (what it shares, who took it, when, how it
        ended), from the citizen's answers."""
        answers = state.answers
        if not any(key.startswith("help_") for key in answers):
            return dict.fromkeys(_HELP_PLACEHOLDERS, "")
        now = state.last_at or datetime.min.replace(tzinfo=UTC)
        fields = helprequests.fields_from_state(state, self.config, now)
        today = now.astimezone(self.config.timezone).date()
        t = self.content.templates
        village = helprequests.village_name(fields, self.content, self.config)
        values = {
            Placeholder.HELP_SUMMARY: helprequests.summary(
                fields, self.content, self.config, today
            ),
            Placeholder.HELP_HELPER: t["help_helper"].format(village=village),
            Placeholder.HELP_WHEN: helprequests.when(fields, self.content, self.config, today),
        }
        done = {**filled, **{str(k): v for k, v in values.items()}}
        note = self._texts.get(f"{state.screen}_{fields.kind}", "")
        outcome = self._texts.get(f"help_outcome_{answers.get('help_outcome', '')}", "")
        values[Placeholder.HELP_NOTE] = note.format_map(done) if note else ""
        values[Placeholder.HELP_OUTCOME] = outcome.format_map(done) if outcome else ""
        return {str(k): v for k, v in values.items()}

    def commune(self, state: State) -> Commune:
        return self.config.commune(state.answers.get("commune", "")) or self.config.communes[0]

    def date(self, iso: str) -> str:
        pattern = self._texts.get("date_format", "dd/MM/yyyy")
        local = datetime.fromisoformat(iso).astimezone(self.config.timezone)
        return format_date(local.date(), pattern, locale=self.content.locale)


def pick(screen: Screen, item_id: str, label: str) -> OptionSpec:
    """The option choosing one item of a pick screen."""
    return OptionSpec(
        id=f"i:{item_id}",
        label=label,
        goto=screen.next or ScreenId.MENU,
        sets={screen.answer or "": item_id},
    )
