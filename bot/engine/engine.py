"""The engine's entry point: one input, one user's state -> a reply.

Every input passes the same gate, in this order: sensitive text (codes, ID or phone numbers:
warn, never keep), commands and global words (menu, help, stop, human help, back, delete),
the current screen's options (by button, number or words), a typed name on pick screens, an
FAQ question, and finally an honest "I can't answer that" with the human-help option. After
any detour the current screen is offered again, or -- after a long absence -- "continue or
start over?".
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
from bot.faq import FaqMatcher
from bot.model import (
    SENSITIVE_MEDIA,
    Blocked,
    Choice,
    HelpNews,
    Input,
    Media,
    OutMessage,
    Reply,
    ScreenRef,
    Start,
    State,
    Text,
    Timeout,
)
from bot.textnorm import clean_input, fold
from bot.vocabulary import GLOBAL_ACTIONS, Action, EventKind, PickSource, ScreenId, ScreenKind


class Engine:
    """Runs the conversation described by ``content`` for the deployment in ``config``."""

    def __init__(self, content: Content, config: Config, faq: FaqMatcher | None = None):
        self.content = content
        self.config = config
        self.faq = faq or FaqMatcher.from_content(content)
        self.renderer = Renderer(content, config)
        self.nav = Navigator(content, config, self.renderer)
        self._texts = content.texts
        self._labels = content.labels
        self._words = {fold(w): action for action, ws in content.words.items() for w in ws}
        self._aliases = {group: {fold(w) for w in ws} for group, ws in content.aliases.items()}
        self._scam_triggers = tuple(fold(t) for t in content.scam_triggers)
        # Longest first, so that "ma so" wins over "ma".
        self._referral_words = sorted((fold(w) for w in content.referral_words), key=len)[::-1]

    # --- public ---------------------------------------------------------------------------

    def advance(
        self, state: State, event: Input, now: datetime, *, can_delete: bool = True
    ) -> Reply:
        """Apply one input to one user's state. ``can_delete``: the channel can remove the
        user's message from the chat (Telegram can; Zalo cannot)."""
        turn = Turn(state=state, now=now, can_delete=can_delete)
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
            turn.say(self._texts["unknown_step"])
            self.nav.go(turn, ScreenId.MENU)
            return self._finish(turn)
        if isinstance(event, Start):
            self.start(turn)
        elif isinstance(event, Choice):
            self._choice(turn, event)
        elif isinstance(event, Media):
            self._media(turn, event)
        else:
            self._text(turn, event.text)
        return self._finish(turn)

    def typed_referral(self, text: str) -> str | None:
        """The volunteer code in "ma VK7M2QX" (a referral word from content; any case, with
        or without accents), if any."""
        folded = fold(text)
        for word in self._referral_words:
            if folded.startswith(word + " "):
                code = folded[len(word) + 1 :].strip().upper()
                if TYPED_CODE.match(code):
                    return code
        return None

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

    def notice(self, key: str) -> OutMessage:
        """A stateless message (e.g. "please chat with me privately", "sorry, an error")."""
        return OutMessage(text=self._texts[key])

    def render(self, state: State) -> tuple[OutMessage, ...]:
        """The messages showing ``state``'s current screen (no state change)."""
        turn = Turn(state=state, now=state.last_at or datetime.min, can_delete=False)
        self.renderer.render(turn)
        return tuple(turn.messages)

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
        """The reply, with any link the deployment does not allow hidden."""
        removed = self._texts["link_removed"]
        turn.messages = [
            replace(m, text=hide_foreign_links(m.text, self.config, removed))
            for m in turn.messages
        ]
        return turn.reply()

    def _referral(self, turn: Turn, payload: str | None, area: str | None = None) -> None:
        if payload and not REFERRAL.match(payload):
            # Not a code the bot issues: never kept. Typed after /start it may be a phone or
            # ID number: warned about and removed, like any message that holds one.
            if kind := sensitive_kind(payload):
                turn.delete_input = True
                turn.record(EventKind.SENSITIVE, detail=kind)
                turn.say(self._texts[f"sensitive_{kind}"])
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
            turn.say(self._texts["welcome_back"])
            self.nav.go(turn, ScreenId.MENU)

    def _choice(self, turn: Turn, choice: Choice) -> None:
        if choice.option.startswith(GLOBAL_PREFIX):
            name = choice.option[len(GLOBAL_PREFIX) :]
            if name in GLOBAL_ACTIONS:
                self.nav.ensure_started(turn)
                self.run(turn, Action(name))
                return
        option = None
        if choice.screen == turn.state.here.key:
            option = next(
                (o for o in self.renderer.options(turn.state) if o.id == choice.option), None
            )
        if option is None:
            turn.record(EventKind.STALE, step=turn.state.screen or None)
            turn.say(self._texts["stale_button"])
            self.nav.ensure_started(turn)
            self.renderer.render(turn)
            return
        self._apply(turn, option)

    def _media(self, turn: Turn, media: Media) -> None:
        self.nav.ensure_started(turn)
        turn.record(EventKind.MEDIA, detail=media.kind)
        if media.kind in SENSITIVE_MEDIA:
            turn.delete_input = True
            if media.kind in ("contact", "location"):
                key = f"media_{media.kind}"
            else:
                key = "media_photo" if turn.can_delete else "media_photo_kept"
        else:
            key = "media_edited" if media.kind == "edited" else "media_other"
        turn.say(self._texts[key])
        self.nav.reoffer(turn)

    def _text(self, turn: Turn, raw: str) -> None:
        text = clean_input(raw).strip()
        if text.startswith("/"):
            self._command(turn, text)
            return
        new = not turn.state.screen
        if new:
            self.nav.greet(turn)
        if not text or unreadable(text):
            turn.say(self._texts["too_long" if text else "not_understood"])
            self.nav.reoffer(turn)
            return
        if helping.typed_input(self, turn, text):  # a help request's landmark or phone
            return
        kind = sensitive_kind(text)
        if kind:
            # Never echoed, stored or logged: warn, and remove it from the chat if we can.
            turn.delete_input = True
            turn.record(EventKind.SENSITIVE, detail=kind)
            turn.say(self._texts[f"sensitive_{kind}"])
            self.nav.reoffer(turn)
            return
        folded = fold(text)
        action = self._words.get(folded)
        if action:
            if new and action in (Action.START, Action.MENU):
                self.renderer.render(turn)  # a greeting: just greeted, show the menu once
            else:
                self.run(turn, action)
            return
        option = self._match_option(turn.state, folded)
        if option:
            self._apply(turn, option)
            return
        if self._pick_by_name(turn, text):
            return
        match = self.faq.match(text)
        if match.topic:
            self._answer_faq(turn, match.topic)
        elif not new:
            turn.record(EventKind.FAQ_MISS, step=turn.state.screen or None)
            human = global_option(Action.HUMAN, self._labels["human"])
            turn.say(self._texts["no_answer"], (human,), screen="global")
        if self._sounds_like_scam(folded):
            turn.record(EventKind.SCAM_OFFERED, step=turn.state.screen or None)
            card = global_option(Action.SCAM, self._labels["scam"])
            turn.say(self._texts["scam_offer"], (card,), screen="global")
        self.nav.reoffer(turn)

    def _sounds_like_scam(self, folded: str) -> bool:
        padded = f" {folded} "
        return any(f" {trigger} " in padded for trigger in self._scam_triggers)

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
            turn.say(self._texts["unknown_command"])
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
        turn.messages[0] = replace(first, text=self._texts["reminder"] + "\n\n" + first.text)

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

    # --- matching free text ---------------------------------------------------------------

    def _match_option(self, state: State, folded: str) -> OptionSpec | None:
        options = self.renderer.options(state)
        if folded.isdecimal():  # not isdigit: "¹" is a digit that int() refuses
            index = int(folded) - 1
            return options[index] if 0 <= index < len(options) else None
        for option in options:
            label = fold(self.renderer.fmt(option.label, state))
            if folded == label or folded in self._alias_words(option):
                return option
        if len(folded) >= 4:
            labels = {o.id: fold(self.renderer.fmt(o.label, state)) for o in options}
            found = process.extractOne(folded, labels, scorer=fuzz.ratio, score_cutoff=88)
            if found:
                return next(o for o in options if o.id == found[2])
        return None

    def _alias_words(self, option: OptionSpec) -> set[str]:
        words: set[str] = set()
        for alias in option.aliases:
            if alias.startswith("@"):
                words |= self._aliases.get(alias[1:], set())
            else:
                words.add(fold(alias))
        return words

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
                note = self._texts["commune_not_served"]
                turn.say(self.renderer.fmt(note, state, name=elsewhere[0].name, commune=served))
                self.renderer.render(turn)
                return True
        return False

    def _answer_faq(self, turn: Turn, topic_id: str) -> None:
        topic = self.content.faq[topic_id]
        turn.record(EventKind.FAQ, step=turn.state.screen or None, detail=topic_id)
        turn.say(self.renderer.fmt(topic.answer, turn.state))
