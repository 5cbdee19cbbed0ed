"""The engine's entry point: one input, one user's state -> a reply.

Every input passes the same gate, in this order: sensitive text (codes, ID or phone numbers:
warn, never keep), commands, then what the understanding component (:mod:`bot.understanding`)
reads the text as, in the context of the options the user saw last: one of them (by number,
words or meaning), a navigation (menu, help, stop, human help, back, delete...), "stuck on
this step", an FAQ answer, small talk, a question back ("Y ban la: ...") between close
candidates, or an honest "I can't answer that" with the human-help option; on pick screens a
typed name. Signs of a scam anywhere in a message bring the scam card first. Only the options
shown last count: after "stop", or after a question back, the older ones are stale. After a
detour the current screen is offered again, or -- after a long absence -- "continue or start
over?".
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from rapidfuzz import fuzz, process

from bot import communes
from bot.config import Config
from bot.content import Content, OptionSpec
from bot.engine import helping
from bot.engine.actions import ACTIONS, GLOBAL_PREFIX, global_option, reminders_off
from bot.engine.bubbles import joined
from bot.engine.guards import (
    REFERRAL,
    TYPED_CODE,
    hide_foreign_links,
    sensitive_kind,
    unreadable,
)
from bot.engine.navigation import Navigator
from bot.engine.rendering import Renderer, pick
from bot.engine.turn import Turn
from bot.model import (
    DEFAULT_MEDIUM,
    SENSITIVE_MEDIA,
    Blocked,
    Choice,
    HelpNews,
    Input,
    Media,
    Medium,
    Option,
    OutMessage,
    Reply,
    ScreenRef,
    Start,
    State,
    Text,
    Timeout,
    VolunteerCode,
)
from bot.textnorm import clean_input, fold
from bot.understanding import (
    Answer,
    Clarify,
    Context,
    Decision,
    Navigate,
    Number,
    Pick,
    Shown,
    Social,
    Stuck,
    Understanding,
    decision_for,
    shown_option,
)
from bot.vocabulary import (
    GLOBAL_ACTIONS,
    QUESTIONS,
    READY,
    Action,
    EventKind,
    PickSource,
    ScreenId,
    ScreenKind,
    Target,
)

#: The key of a question back ("Y ban la: ..."): its options are the candidates' reactions.
ASK = "ask"
#: The key, and the option id, of the "continue this step" button after an FAQ answer.
CONTINUE = "continue"
#: The last option of a question back: none of these, a person please.
NONE_OF_THESE = "nav:human"
#: Typed navigations that are not an action of the same name.
NAVIGATIONS: dict[str, str] = {
    "install": READY,
    "report": Target.REPORT,
    "questions": QUESTIONS,
}
#: Typed navigations run as another action: withdrawing consent is typed rarely and undone
#: never, so the words lead to the privacy screen, whose option does it.
NAV_ACTIONS: dict[str, Action] = {"scam_signs": Action.SCAM, "withdraw": Action.PRIVACY}


class Engine:
    """Runs the conversation described by ``content`` for the deployment in ``config``."""

    def __init__(
        self, content: Content, config: Config, understanding: Understanding | None = None
    ):
        self.content = content
        self.config = config
        #: Trained once per process for the same content (its classifier on first use).
        self.understanding = understanding or Understanding.from_content(content)
        self.renderer = Renderer(content, config)
        self.nav = Navigator(content, config, self.renderer)
        self._labels = content.labels
        # Longest first, so that "ma so" wins over "ma".
        self._referral_words = sorted((fold(w) for w in content.referral_words), key=len)[::-1]

    # --- public ---------------------------------------------------------------------------

    def advance(
        self, state: State, event: Input, now: datetime, *, medium: Medium = DEFAULT_MEDIUM
    ) -> Reply:
        """Apply one input to one user's state. ``medium``: the surface spoken on (buttons or
        typed numbers, whether the user's message can be deleted...), which chooses the
        wording."""
        turn = self.turn(state, now, medium)
        if isinstance(event, Blocked):
            turn.state = replace(state, stopped=True)
            turn.record(EventKind.BLOCKED, step=state.screen or None)
            reminders_off(turn)
            return self._finish(turn)
        if isinstance(event, Timeout):
            self._remind(turn)
            return self._finish(turn)
        if isinstance(event, HelpNews):  # help requests: bot/engine/helping.py
            turn.state = replace(state, last_at=now)
            helping.news(self, turn, event)
            return self._finish(turn)
        turn.idle = state.last_at is not None and now - state.last_at >= self.config.resume_after
        turn.state = replace(state, last_at=now, stopped=False)
        if helping.relay(self, turn, event):  # in a chat with a helper: for the person
            return self._finish(turn)
        if isinstance(event, Start):
            self._referral(turn, event.payload, event.area)
        if state.screen and not self.renderer.known(state.screen):
            # The content changed since this state was saved: land safely at the menu.
            turn.record(EventKind.UNKNOWN_STEP, detail=state.screen[:40])
            turn.state = replace(turn.state.at(ScreenRef("")), back_to=None)
            turn.say(turn.texts["unknown_step"])
            self.nav.go(turn, ScreenId.MENU)
            return self._finish(turn)
        if isinstance(event, Start):
            self.start(turn)
        elif isinstance(event, Choice):
            self._choice(turn, event)
        elif isinstance(event, Media):
            self._media(turn, event)
        elif isinstance(event, VolunteerCode):
            self._volunteer_code(turn, event)
        else:
            self._text(turn, event.text)
        return self._finish(turn)

    def typed_code(self, text: str) -> tuple[str, bool] | None:
        """The volunteer's code in "ma VK7M2QX" (after a referral word from content, any
        case, with or without accents) or typed alone ("VK7M2QX"), and whether it came after
        such a word (then it is meant as a code even if no volunteer has it)."""
        folded = fold(text)
        for word in self._referral_words:
            if folded.startswith(word + " "):
                code = folded[len(word) + 1 :].strip().upper()
                if TYPED_CODE.match(code):
                    return code, True
        alone = folded.strip().upper()
        return (alone, False) if TYPED_CODE.match(alone) else None

    def must_delete(self, event: Input) -> bool:
        """Whether the user's message must leave the chat whatever else happens (even when
        the flood limit means it is not read): media that may carry personal data, text
        that looks like a code or an ID, phone or card number."""
        if isinstance(event, Media):
            return event.kind in SENSITIVE_MEDIA
        if isinstance(event, Start):
            payload = event.payload or ""
            return not REFERRAL.match(payload) and sensitive_kind(payload) is not None
        return isinstance(event, Text) and sensitive_kind(event.text) is not None

    def notice(self, key: str, medium: Medium = DEFAULT_MEDIUM) -> OutMessage:
        """A stateless message (e.g. "please chat with me privately", "sorry, an error")."""
        return OutMessage(text=self.content.texts_for(medium.variants)[key])

    def render(self, state: State, medium: Medium = DEFAULT_MEDIUM) -> tuple[OutMessage, ...]:
        """The messages showing ``state``'s current screen (no state change)."""
        turn = self.turn(state, state.last_at or datetime.min, medium)
        self.renderer.render(turn)
        return tuple(turn.messages)

    def turn(self, state: State, now: datetime, medium: Medium) -> Turn:
        """A new turn for ``state`` on ``medium``."""
        return Turn(
            state=state, now=now, medium=medium, texts=self.content.texts_for(medium.variants)
        )

    def progress(self, state: State) -> tuple[int, int] | None:
        """(step number, total) if ``state`` is on an install step."""
        return self.renderer.progress(state)

    def resumable_steps(self) -> tuple[str, ...]:
        """The steps where a user may be "mid-way" (a reminder may make sense there; the
        reminder step itself decides)."""
        screens = [s for s, screen in self.content.screens.items() if screen.resumable]
        steps = dict.fromkeys(step.id for step in self.content.install)
        return (*steps, *screens, ScreenId.RESUME)

    # --- entry points ---------------------------------------------------------------------

    def _finish(self, turn: Turn) -> Reply:
        """The reply in as few messages as reads well (bot.engine.bubbles), with any link the
        deployment does not allow hidden, and the state knowing whose options the user sees
        last."""
        removed = turn.texts["link_removed"]
        turn.messages = [
            replace(m, text=hide_foreign_links(m.text, self.config, removed))
            for m in joined(turn.messages)
        ]
        # Options that work everywhere ("g:") are not numbered: they change nothing here.
        last = next(
            (
                m
                for m in reversed(turn.messages)
                if any(not o.id.startswith(GLOBAL_PREFIX) for o in m.options)
            ),
            None,
        )
        if last is not None:
            asked = turn.state.asked if last.screen == ASK else ()
            turn.state = replace(turn.state, shown=last.screen, asked=asked)
        return turn.reply()

    def _referral(self, turn: Turn, payload: str | None, area: str | None = None) -> None:
        if payload and not REFERRAL.match(payload):
            # Not a code the bot issues: never kept. Typed after /start it may be a phone or
            # ID number: warned about and removed, like any message that holds one.
            if kind := sensitive_kind(payload):
                turn.delete_input = True
                turn.record(EventKind.SENSITIVE, detail=kind)
                turn.say(turn.texts[f"sensitive_{kind}"])
            return
        if payload and turn.state.referral is None:
            # First touch wins: a later link never re-attributes the user.
            turn.state = replace(turn.state, referral=payload)
            if area and self.config.commune(area) is not None:
                # Counted for the volunteer's commune until the user reports their own.
                turn.state = turn.state.with_answers(area=area)
            turn.record(EventKind.REFERRAL, detail=payload)

    def start(self, turn: Turn) -> None:
        """/start: greet a new user, offer to resume to someone mid-way, else welcome back."""
        if not turn.state.screen:
            self.nav.greet(turn)
            self.renderer.render(turn)
        elif self.nav.waiting_at(turn.state) is not None:
            self.nav.offer_resume(turn)
        else:
            turn.say(turn.texts["welcome_back"])
            self.nav.go(turn, ScreenId.MENU)

    def _choice(self, turn: Turn, choice: Choice) -> None:
        if choice.option.startswith(GLOBAL_PREFIX):
            name = choice.option[len(GLOBAL_PREFIX) :]
            if name in GLOBAL_ACTIONS:
                self.nav.ensure_started(turn)
                self.run(turn, Action(name))
                return
        if choice.screen in (ASK, CONTINUE):
            self._choice_of_ours(turn, choice)
            return
        option = None
        if choice.screen == turn.state.here.key:
            option = next(
                (o for o in self.renderer.options(turn.state) if o.id == choice.option), None
            )
        if option is None:
            self._stale(turn, "stale_button")
            return
        self._apply(turn, option)

    def _choice_of_ours(self, turn: Turn, choice: Choice) -> None:
        """A button of a question back, or "continue" after an answer: valid only while it
        is the last one shown."""
        state = turn.state
        if choice.screen == ASK and state.shown == ASK and choice.option in self._asked(state):
            self._answered(turn, choice.option)
        elif choice.screen == CONTINUE == choice.option and state.shown == CONTINUE:
            self.renderer.render(turn)
        else:
            self._stale(turn, "stale_button")

    def _answered(self, turn: Turn, reaction: str) -> None:
        """The question back is answered: the screen's own options count again."""
        turn.state = replace(turn.state, shown=turn.state.here.key, asked=())
        self._carry_out(turn, decision_for(reaction))

    def _stale(self, turn: Turn, key: str) -> None:
        """Refuse an old choice; remind the user of the current screen, in short."""
        turn.record(EventKind.STALE, step=turn.state.screen or None)
        turn.say(turn.texts[key])
        self.nav.ensure_started(turn)
        self.renderer.render(turn, compact=True)

    def _volunteer_code(self, turn: Turn, typed: VolunteerCode) -> None:
        """A volunteer's code typed where no link carries it: a known one is confirmed in a
        line (and kept, if it is the first); an unknown one (a typo) is never kept -- the
        user is asked to check it, so that the right one still counts when it comes."""
        new = not turn.state.screen
        if new:
            self.nav.greet(turn)
        referral = turn.state.referral
        if typed.area is None:
            key = "code_unknown"
        elif referral is None or referral == typed.code:
            self._referral(turn, typed.code, typed.area)
            key = "code_known"
        else:
            key = "code_kept"
        shown = typed.code if key != "code_kept" else referral or ""
        turn.say(self.renderer.fill(turn, turn.texts[key], code=shown))
        if new:
            self.renderer.render(turn)
        else:
            self.nav.reoffer(turn)

    def _media(self, turn: Turn, media: Media) -> None:
        self.nav.ensure_started(turn)
        turn.record(EventKind.MEDIA, detail=media.kind)
        if media.kind in SENSITIVE_MEDIA:
            turn.delete_input = True
            if media.kind in ("contact", "location"):
                key = f"media_{media.kind}"
            else:
                key = "media_photo" if turn.medium.can_delete else "media_photo_kept"
        else:
            key = "media_edited" if media.kind == "edited" else "media_other"
        turn.say(turn.texts[key])
        self.nav.reoffer(turn)

    def _text(self, turn: Turn, raw: str) -> None:
        text = clean_input(raw).strip()
        if text.startswith("/"):
            self._command(turn, text)
            return
        new = not turn.state.screen
        if new:
            self.nav.greet(turn)
        greeting = len(turn.messages)
        if not text or unreadable(text):
            turn.say(turn.texts["too_long" if text else "not_understood"])
            self.nav.reoffer(turn)
            return
        if helping.typed_input(self, turn, text):  # a help request's landmark or phone
            return
        kind = sensitive_kind(text)
        if kind:
            # Never echoed, stored or logged: warn, and remove it from the chat if we can.
            turn.delete_input = True
            turn.record(EventKind.SENSITIVE, detail=kind)
            warning = turn.texts[f"sensitive_{kind}"]
            if not turn.medium.can_delete:
                warning += "\n" + turn.texts["sensitive_kept"]
            turn.say(warning)
            self.nav.reoffer(turn)
            return
        context = self.context(turn.state)
        reading = self.understanding.read(text, context)
        decision = reading.decision
        card = reading.scam and not self._shows_scam_signs(decision, context)
        # The card with the signs of a scam comes first -- unless the answer is itself the
        # first aid for one (a leaked OTP: call the bank now): then right after it.
        first_aid = isinstance(decision, Answer) and decision.topic in self.content.first_aid
        if card and not first_aid:
            self._scam_card(turn)
        # On a pick screen a typed name (a village, "khong nho" on another page) comes before
        # anything but an option shown or a navigation.
        chosen = isinstance(decision, Pick | Number | Navigate)
        if not chosen and self._pick_by_name(turn, text):
            return
        if not (new and decision == Social("greet")):  # just greeted: the menu is enough
            self._carry_out(turn, decision, context, new=new, card=card and first_aid)
        if new and first_aid:
            # First aid before the greeting: the answer (and the card) come first.
            told = 2 if card else 1
            messages = turn.messages
            turn.messages = [
                *messages[greeting : greeting + told],
                *messages[:greeting],
                *messages[greeting + told :],
            ]
        if new and not any(m.options for m in turn.messages):
            self.renderer.render(turn)  # a new user sees the menu once

    def context(self, state: State) -> Context:
        """What a message typed in ``state`` is read against: where the user is, and the
        options they saw last -- the current screen's, those of a question back or the
        "continue" button after an answer; none after "stop" or a stale screen."""
        options: tuple[Shown, ...] = ()
        if state.shown == ASK:
            options = self._asked_options(state)
        elif state.shown == CONTINUE:
            options = (self._continue_option(state),)
        elif state.shown is None or state.shown == state.here.key:
            options = tuple(
                shown_option(o, self.renderer.fmt(o.label, state), self.content.aliases)
                for o in self.renderer.options(state)
            )
        return Context(
            screen=state.screen,
            install_step=self.content.install_step(state.screen) is not None,
            view=state.view,
            options=options,
        )

    def _scam_card(self, turn: Turn) -> None:
        turn.record(EventKind.SCAM_OFFERED, step=turn.state.screen or None)
        card = global_option(Action.SCAM, self._labels["scam"])
        turn.say(turn.texts["scam_offer"], (card,), screen="global")

    def _carry_out(
        self,
        turn: Turn,
        decision: Decision,
        context: Context | None = None,
        new: bool = False,
        card: bool = False,
    ) -> None:
        """Do what a message (or a choice of a question back) was understood as; ``card``:
        the scam card right after an answer."""
        state = turn.state
        match decision:
            case Number(n, True) if context is not None:
                self._carry_out(turn, Pick(context.options[n - 1].id), context)
            case Number(_, False):
                self._out_of_range(turn, context)
            case Pick(option_id) if state.shown == ASK:
                self._answered(turn, option_id)
            case Pick(option_id) if state.shown == CONTINUE:
                self.renderer.render(turn)
            case Pick(option_id):
                option = next((o for o in self.renderer.options(state) if o.id == option_id), None)
                if option is None:
                    self._stale(turn, "stale_choice")
                else:
                    self._apply(turn, option)
            case Navigate(intent):
                self._navigate(turn, intent)
            case Stuck() if self.content.install_step(state.screen) is not None:
                self.nav.go(turn, Target.STUCK)
            case Answer(topic):
                self._answer_then_continue(turn, topic, card)
            case Social(act):
                self._social(turn, act)
            case Clarify(candidates):
                self._clarify(turn, candidates)
            case _:
                if new:
                    return  # just greeted: the menu, not "can't answer"
                turn.record(EventKind.FAQ_MISS, step=state.screen or None)
                human = global_option(Action.HUMAN, self._labels["human"])
                turn.say(turn.texts["no_answer"], (human,), screen="global")
                self.nav.reoffer(turn)

    def _shows_scam_signs(self, decision: Decision, context: Context) -> bool:
        if decision == Navigate("scam_signs"):
            return True
        if isinstance(decision, Pick):
            roles = next((o.roles for o in context.options if o.id == decision.option), ())
            return "action:scam" in roles
        return False

    def _navigate(self, turn: Turn, intent: str) -> None:
        if intent == "install" and self.content.install_step(turn.state.screen) is not None:
            self.renderer.render(turn)  # already installing: this step, not the start again
        elif intent in NAVIGATIONS:
            target = NAVIGATIONS[intent]
            if target == READY and READY not in self.content.screens:
                target = Target.INSTALL
            elif target == QUESTIONS and QUESTIONS not in self.content.screens:
                target = ScreenId.MENU
            self.nav.go(turn, target)
        elif intent in NAV_ACTIONS:
            self.run(turn, NAV_ACTIONS[intent])
        else:
            self.run(turn, Action(intent))

    def _social(self, turn: Turn, act: str) -> None:
        if act == "greet":
            self.start(turn)
        elif act in ("thanks", "later"):
            # The options shown before still count: nothing to show again.
            turn.say(turn.texts[f"social_{act}"])
        else:
            # A reply ("yes", "done"...) that no option on this screen takes.
            turn.say(turn.texts["not_understood"])
            self.nav.reoffer(turn)

    def _out_of_range(self, turn: Turn, context: Context | None) -> None:
        """A number that chooses nothing: the options again, with their range."""
        if context is None or not context.options:
            self._stale(turn, "stale_choice")
            return
        state = turn.state
        count = len(context.options)
        key = "number_range" if count > 1 else "number_one"
        text = self.renderer.fmt(turn.texts[key], state, count=str(count))
        # One message: the range and the same options (the screen's text is above already).
        options = tuple(Option(o.id, o.label) for o in context.options)
        shown = state.shown if state.shown in (ASK, CONTINUE) else state.here.key
        turn.say(text, options, screen=shown)

    def _clarify(self, turn: Turn, candidates: tuple[str, ...]) -> None:
        """Ask back: "did you mean" the candidates, or none of these (a person)."""
        state = turn.state
        asked = tuple(c for c in candidates if c != NONE_OF_THESE)
        turn.record(EventKind.CLARIFY, step=state.screen or None, detail=candidates[0])
        turn.state = replace(state, asked=asked)
        options = tuple(Option(o.id, o.label) for o in self._asked_options(turn.state))
        turn.say(turn.texts["clarify"], options, screen=ASK)

    def _asked(self, state: State) -> tuple[str, ...]:
        return (*state.asked, NONE_OF_THESE)

    def _asked_options(self, state: State) -> tuple[Shown, ...]:
        """The options of the question back: each candidate as the reaction it stands for
        (chosen by the words that choose it), then "none of these"."""
        screen = {
            o.id: shown_option(o, self.renderer.fmt(o.label, state), self.content.aliases)
            for o in self.renderer.options(state)
        }
        options: list[Shown] = []
        for reaction in state.asked:
            kind, _, name = reaction.partition(":")
            if kind == "option" and name in screen:
                original = screen[name]
                options.append(replace(original, id=reaction))
            elif kind == "faq" and name in self.content.faq:
                options.append(Shown(reaction, self.content.faq[name].title, roles=(reaction,)))
            elif kind == "nav" and name in self.content.intents:
                title = self.content.intents[name].title
                options.append(Shown(reaction, title, roles=(reaction,)))
            elif reaction == "stuck":
                words = self.content.aliases.get("stuck", ())
                options.append(Shown(reaction, self._labels["stuck"], words, ("alias:stuck",)))
        label = self._labels["clarify_none"]
        options.append(Shown(NONE_OF_THESE, label, roles=(NONE_OF_THESE, "alias:no")))
        return tuple(options)

    def _continue_option(self, state: State) -> Shown:
        label = self.renderer.fmt(self._labels["continue_step"], state)
        words = (*self.content.aliases.get("done", ()), self._labels["resume"])
        return Shown(CONTINUE, label, words, ("action:resume", "alias:done"))

    def _answer_then_continue(self, turn: Turn, topic: str, card: bool = False) -> None:
        """An FAQ answer (then the scam card if ``card``). Mid-step, one message: the
        answer, one short line and a button back to the step (not the step again);
        elsewhere the screen is offered again."""
        state = turn.state
        self._answer_faq(turn, topic)
        if card:
            self._scam_card(turn)
        if self.content.install_step(state.screen) is None or turn.idle:
            self.nav.reoffer(turn)
            return
        if card:
            # The step's line after the card: the button to go on comes last.
            turn.say(
                self.renderer.fmt(turn.texts["after_answer_step"], state),
                self._continue(state),
                CONTINUE,
            )
            return
        answer = turn.messages.pop()
        line = self.renderer.fmt(turn.texts["after_answer_step"], state)
        turn.say(answer.text + "\n\n" + line, self._continue(state), CONTINUE)

    def _continue(self, state: State) -> tuple[Option, ...]:
        button = self._continue_option(state)
        return (Option(button.id, button.label),)

    def _command(self, turn: Turn, text: str) -> None:
        head, _, rest = text[1:].partition(" ")
        name = head.split("@")[0].lower()
        if name == "start":
            self._referral(turn, rest.strip() or None)
            self.start(turn)
            return
        self.nav.ensure_started(turn)
        command = self.content.command(name)
        if command is None:
            turn.say(turn.texts["unknown_command"])
            self.nav.reoffer(turn)
        else:
            self.run(turn, command.action)

    def _remind(self, turn: Turn) -> None:
        state = turn.state
        waiting = self.nav.waiting_at(state)
        if state.stopped or waiting is None:
            return
        turn.record(EventKind.REMINDER, step=waiting)
        self.nav.offer_resume(turn)
        # One message (one notification on the phone): the reminder, then the resume screen.
        first = turn.messages[0]
        turn.messages[0] = replace(first, text=turn.texts["reminder"] + "\n\n" + first.text)

    # --- options and actions --------------------------------------------------------------

    def run(self, turn: Turn, action: Action) -> None:
        """Run one action of the vocabulary."""
        ACTIONS[action](self, turn)

    def _apply(self, turn: Turn, option: OptionSpec) -> None:
        if option.sets:
            turn.state = turn.state.with_answers(**option.sets)
        if option.faq:
            self._answer_faq(turn, option.faq)
            self.renderer.render(turn, compact=True)
            return
        if option.action:
            self.run(turn, option.action)
        if option.goto:
            self.nav.go(turn, option.goto)

    # --- free text ----------------------------------------------------------------------

    def _pick_by_name(self, turn: Turn, text: str) -> bool:
        """On a pick screen, accept a typed name ("dong hoa", with or without accents)."""
        state = turn.state
        screen = self.content.screens.get(state.screen)
        if screen is None or screen.kind is not ScreenKind.PICK:
            return False
        items = self.renderer.items(state)
        names = {item_id: fold(label) for item_id, label in items}
        found = process.extract(
            fold(text), names, scorer=fuzz.token_set_ratio, score_cutoff=85, limit=2
        )
        if found and (len(found) == 1 or found[0][1] - found[1][1] >= 5):
            item_id = found[0][2]
            self._apply(turn, pick(screen, item_id, dict(items)[item_id]))
            return True
        if screen.source is PickSource.COMMUNES:
            elsewhere = communes.search(text, limit=1)
            if elsewhere:
                served = ", ".join(c.name for c in self.config.communes)
                note = turn.texts["commune_not_served"]
                turn.say(self.renderer.fill(turn, note, name=elsewhere[0].name, commune=served))
                self.renderer.render(turn)
                return True
        return False

    def _answer_faq(self, turn: Turn, topic_id: str) -> None:
        topic = self.content.faq[topic_id]
        turn.record(EventKind.FAQ, step=turn.state.screen or None, detail=topic_id)
        turn.say(self.renderer.fill(turn, topic.answer))
