"""The conversation engine: (state, input) -> (new state, messages, analytics events).

Pure and channel-neutral: no I/O, no clock (the host passes ``now``), no channel types. The
flow itself is data (:mod:`bot.content`); this module only knows a few kinds of screen:

- *info* screens: texts and options that go somewhere, set an answer, run an action or show
  an FAQ answer;
- *pick* screens: a list from the deployment config (providers, communes, villages), paged
  three at a time, also answerable by typing a name;
- *complete*: entering it records the completion;
- *install steps*: one screen per step, with "stuck" and "why" sub-views and a progress
  line ("step n of N").

Every input passes the same gate, in this order: sensitive text (codes, ID or phone numbers:
warn, never keep), commands and global words (menu, help, stop, human help, back, delete),
the current screen's options (by button, number or words), a typed name on pick screens, an
FAQ question, and finally an honest "I can't answer that" with the human-help option. After
any detour the current screen is offered again, or -- after a long absence -- "continue or
start over?".

Analytics event kinds: started, referral, step, done, stuck, why, faq, faq_miss, human,
stopped, blocked, reminder, consent, consent_declined, completed, media, sensitive, stale,
unknown_step.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from babel.dates import format_date
from rapidfuzz import fuzz, process

from bot import communes, links
from bot.config import Commune, Config
from bot.content import Content, InstallStep, OptionSpec, Screen
from bot.faq import FaqMatcher
from bot.model import (
    SENSITIVE_MEDIA,
    Blocked,
    Choice,
    Event,
    Input,
    Media,
    Option,
    OutMessage,
    Reply,
    Start,
    State,
    Text,
    Timeout,
)
from bot.textnorm import clean_input, fold

#: Longer messages are not read (a question fits in far less).
MAX_TEXT = 600
#: Pick lists show this many items per page, plus one "more" or "back" option.
PAGE_SIZE = 3
#: Options chosen regardless of the screen they were shown on start with this prefix.
GLOBAL_PREFIX = "g:"
#: What such options may do: nothing that changes data without its own confirmation.
GLOBAL_ACTIONS = frozenset(
    {"start", "menu", "help", "human", "resume", "delete", "stop", "privacy", "scam"}
)
#: Screens that are detours: "continue" leads back to where the user was before them.
DETOURS = ("human", "delete_confirm", "resume", "privacy", "scam_signs")
#: Answers that exist only with consent (withdrawing consent removes them).
CONSENTED_ANSWERS = ("consent", "consent_at", "commune", "village", "lives_here", "completed_at")
#: Screens the engine routes to by name (content.check makes sure they exist).
REPORT_CONSENT, REPORT_FIRST, REPORT_AGAIN = "report_consent", "report_commune", "report_again"
#: Answers kept when a user starts over.
KEPT_ON_RESTART = ("consent", "consent_at", "completed_at", "area", "reminders")
#: Asked once, before the first install step, if the content has it and reminders are set up.
REMIND_OFFER = "remind_offer"

_REFERRAL_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TYPED_CODE = re.compile(r"^V[A-Z0-9]{6}$")
_DIGIT_RUN = re.compile(r"\+?\d(?:[\s.\-]?\d)+")
_YEAR = re.compile(r"^(19|20)\d\d$")


def sensitive_kind(text: str) -> str | None:
    """What kind of secret or identifier ``text`` seems to contain, if any.

    12 (or the old 9) digits: an ID number; 10-11 digits from 0 or +84: a phone number;
    13-19 digits: a bank card; 4-8 digits (not a year): a one-time code or PIN.
    """
    for run in _DIGIT_RUN.findall(text):
        digits = re.sub(r"\D", "", run)
        n = len(digits)
        if n in (9, 12):
            return "id"
        if n in (10, 11) and (digits.startswith(("0", "84"))):
            return "phone"
        if 13 <= n <= 19:
            return "card"
        if 4 <= n <= 8 and not _YEAR.match(digits):
            return "code"
    return None


def screen_key(state: State) -> str:
    """Identifies the screen a state shows: button presses carry it to detect stale ones."""
    parts = [state.step or "menu"]
    if state.view:
        parts.append(state.view)
    if state.page:
        parts.append(f"p{state.page}")
    return ".".join(parts)


def _parse_key(key: str) -> tuple[str, str, int]:
    step, *rest = key.split(".")
    view, page = "", 0
    for part in rest:
        if part.startswith("p") and part[1:].isdigit():
            page = int(part[1:])
        else:
            view = part
    return step, view, page


@dataclass
class _Turn:
    """The reply being built for one input."""

    state: State
    now: datetime
    can_delete: bool
    idle: bool = False
    messages: list[OutMessage] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    delete_input: bool = False
    erase: bool = False

    def say(self, text: str, options: tuple[Option, ...] = (), screen: str = "") -> None:
        self.messages.append(OutMessage(text=text, options=options, screen=screen))

    def record(
        self,
        kind: str,
        step: str | None = None,
        detail: str | None = None,
        data: Mapping[str, str] | None = None,
    ) -> None:
        self.events.append(Event(kind=kind, step=step, detail=detail, data=data))

    def reply(self) -> Reply:
        return Reply(
            state=self.state,
            messages=tuple(self.messages),
            events=tuple(self.events),
            delete_input=self.delete_input,
            erase=self.erase,
        )


class Engine:
    """Runs the conversation described by ``content`` for the deployment in ``config``."""

    def __init__(self, content: Content, config: Config, faq: FaqMatcher | None = None):
        self.content = content
        self.config = config
        self.faq = faq or FaqMatcher.from_content(content)
        self._texts = content.texts
        self._labels = content.labels
        self._words = {fold(w): action for action, ws in content.words.items() for w in ws}
        self._aliases = {group: {fold(w) for w in ws} for group, ws in content.aliases.items()}
        self._scam_triggers = tuple(fold(t) for t in content.scam_triggers)
        # Longest first, so that "ma so" wins over "ma".
        self._referral_words = sorted((fold(w) for w in content.referral_words), key=len)[::-1]
        self._links = config.links

    # --- public ---------------------------------------------------------------------------

    def advance(
        self, state: State, event: Input, now: datetime, *, can_delete: bool = True
    ) -> Reply:
        """Apply one input to one user's state. ``can_delete``: the channel can remove the
        user's message from the chat (Telegram can; Zalo cannot)."""
        turn = _Turn(state=state, now=now, can_delete=can_delete)
        if isinstance(event, Blocked):
            turn.state = replace(state, stopped=True)
            turn.record("blocked", step=state.step or None)
            self._reminders_off(turn)
            return self._finish(turn)
        if isinstance(event, Timeout):
            self._remind(turn)
            return self._finish(turn)
        turn.idle = state.last_at is not None and now - state.last_at >= self.config.resume_after
        turn.state = replace(state, last_at=now, stopped=False)
        if isinstance(event, Start):
            self._referral(turn, event.payload, event.area)
        if state.step and not self._known(state.step):
            # The content changed since this state was saved: land safely at the menu.
            turn.record("unknown_step", detail=state.step[:40])
            turn.state = replace(turn.state, step="", view="", page=0, ret="")
            turn.say(self._texts["unknown_step"])
            self._go(turn, "menu")
            return self._finish(turn)
        if isinstance(event, Start):
            self._start(turn)
        elif isinstance(event, Choice):
            self._choice(turn, event)
        elif isinstance(event, Media):
            self._media(turn, event)
        else:
            self._text(turn, event.text)
        return self._finish(turn)

    def _finish(self, turn: _Turn) -> Reply:
        """The reply, with any link the deployment does not allow hidden (a safety net: the
        content and config are checked, but a bad edit must never send citizens elsewhere)."""
        turn.messages = [replace(m, text=self._guard_links(m.text)) for m in turn.messages]
        return turn.reply()

    def _guard_links(self, text: str) -> str:
        return links.scrub(text, self._links, self._texts["link_removed"])

    def typed_referral(self, text: str) -> str | None:
        """The volunteer code in "ma VK7M2QX" (a referral word from content; any case, with
        or without accents), if any."""
        folded = fold(text)
        for word in self._referral_words:
            if folded.startswith(word + " "):
                code = folded[len(word) + 1 :].strip().upper()
                if _TYPED_CODE.match(code):
                    return code
        return None

    def must_delete(self, event: Input) -> bool:
        """Whether the user's message must leave the chat whatever else happens (even when
        the flood limit means it is not read): media that may carry personal data, text
        that looks like a code or an ID, phone or card number."""
        if isinstance(event, Media):
            return event.kind in SENSITIVE_MEDIA
        return isinstance(event, Text) and sensitive_kind(event.text) is not None

    def notice(self, key: str) -> OutMessage:
        """A stateless message (e.g. "please chat with me privately", "sorry, an error")."""
        return OutMessage(text=self._texts[key])

    def render(self, state: State) -> tuple[OutMessage, ...]:
        """The messages showing ``state``'s current screen (no state change)."""
        turn = _Turn(state=state, now=state.last_at or datetime.min, can_delete=False)
        self._render(turn)
        return tuple(turn.messages)

    def progress(self, state: State) -> tuple[int, int] | None:
        """(step number, total) if ``state`` is on an install step."""
        step = self.content.install_step(state.step)
        if step is None:
            return None
        steps = self.content.install_steps(self._route(state))
        return (steps.index(step) + 1, len(steps)) if step in steps else None

    # --- entry points ---------------------------------------------------------------------

    def _referral(self, turn: _Turn, payload: str | None, area: str | None = None) -> None:
        if payload and _REFERRAL_RE.match(payload) and turn.state.referral is None:
            # First touch wins: a later link never re-attributes the user.
            turn.state = replace(turn.state, referral=payload)
            if area and self.config.commune(area) is not None:
                # Counted for the volunteer's commune until the user reports their own.
                turn.state = turn.state.with_answers(area=area)
            turn.record("referral", detail=payload)

    def _start(self, turn: _Turn) -> None:
        if not turn.state.step:
            self._greet(turn)
            self._render(turn)
        elif self._waiting_at(turn.state) is not None:
            self._offer_resume(turn)
        else:
            turn.say(self._texts["welcome_back"])
            self._go(turn, "menu")

    def _greet(self, turn: _Turn) -> None:
        turn.record("started")
        turn.say(self._fmt(self._texts["greeting"], turn.state))
        turn.say(self._fmt(self._texts["privacy_promise"], turn.state))
        turn.state = replace(turn.state, step="menu", view="", page=0)
        turn.record("step", step="menu")

    def _choice(self, turn: _Turn, choice: Choice) -> None:
        if choice.option.startswith(GLOBAL_PREFIX):
            action = choice.option[len(GLOBAL_PREFIX) :]
            if action in GLOBAL_ACTIONS:
                self._ensure_started(turn)
                self._action(turn, action)
                return
        option = None
        if choice.screen == screen_key(turn.state):
            option = next((o for o in self._options(turn.state) if o.id == choice.option), None)
        if option is None:
            turn.record("stale", step=turn.state.step or None)
            turn.say(self._texts["stale_button"])
            self._ensure_started(turn)
            self._render(turn)
            return
        self._apply(turn, option)

    def _media(self, turn: _Turn, media: Media) -> None:
        self._ensure_started(turn)
        turn.record("media", detail=media.kind)
        if media.kind in SENSITIVE_MEDIA:
            turn.delete_input = True
            if media.kind in ("contact", "location"):
                key = f"media_{media.kind}"
            else:
                key = "media_photo" if turn.can_delete else "media_photo_kept"
        else:
            key = "media_edited" if media.kind == "edited" else "media_other"
        turn.say(self._texts[key])
        self._reoffer(turn)

    def _text(self, turn: _Turn, raw: str) -> None:
        text = clean_input(raw).strip()
        if text.startswith("/"):
            self._command(turn, text)
            return
        new = not turn.state.step
        if new:
            self._greet(turn)
        if not text or len(text) > MAX_TEXT:
            turn.say(self._texts["too_long" if text else "not_understood"])
            self._reoffer(turn)
            return
        kind = sensitive_kind(text)
        if kind:
            # Never echoed, stored or logged: warn, and remove it from the chat if we can.
            turn.delete_input = True
            turn.record("sensitive", detail=kind)
            turn.say(self._texts[f"sensitive_{kind}"])
            self._reoffer(turn)
            return
        folded = fold(text)
        action = self._words.get(folded)
        if action:
            if new and action in ("start", "menu"):
                self._render(turn)  # a greeting: just greeted, show the menu once
            else:
                self._action(turn, action)
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
            turn.record("faq_miss", step=turn.state.step or None)
            human = Option(GLOBAL_PREFIX + "human", self._labels["human"])
            turn.say(self._texts["no_answer"], (human,), screen="global")
        if self._sounds_like_scam(folded):
            turn.record("scam_offered", step=turn.state.step or None)
            card = Option(GLOBAL_PREFIX + "scam", self._labels["scam"])
            turn.say(self._texts["scam_offer"], (card,), screen="global")
        self._reoffer(turn)

    def _sounds_like_scam(self, folded: str) -> bool:
        padded = f" {folded} "
        return any(f" {trigger} " in padded for trigger in self._scam_triggers)

    def _command(self, turn: _Turn, text: str) -> None:
        head, _, rest = text[1:].partition(" ")
        name = head.split("@")[0].lower()
        if name == "start":
            self._referral(turn, rest.strip() or None)
            self._start(turn)
            return
        self._ensure_started(turn)
        command = self.content.command(name)
        if command is None:
            turn.say(self._texts["unknown_command"])
            self._reoffer(turn)
        else:
            self._action(turn, command.action)

    def _remind(self, turn: _Turn) -> None:
        state = turn.state
        waiting = self._waiting_at(state)
        if state.stopped or waiting is None:
            return
        turn.record("reminder", step=waiting)
        self._offer_resume(turn)
        # One message (one notification on the phone): the reminder, then the resume screen.
        first = turn.messages[0]
        turn.messages[0] = replace(first, text=self._texts["reminder"] + "\n\n" + first.text)

    # --- options and actions --------------------------------------------------------------

    def _apply(self, turn: _Turn, option: OptionSpec) -> None:
        if option.sets:
            turn.state = turn.state.with_answers(**option.sets)
        if option.faq:
            self._answer_faq(turn, option.faq)
            self._render(turn, compact=True)
            return
        if option.action:
            self._action(turn, option.action)
        if option.goto:
            self._go(turn, option.goto)

    def _action(self, turn: _Turn, action: str) -> None:
        state = turn.state
        if action == "start":
            self._start(turn)
        elif action == "menu":
            self._go(turn, "menu")
        elif action == "help":
            turn.say(self._fmt(self._texts["help"], state))
            self._reoffer(turn)
        elif action == "stop":
            turn.state = replace(state, stopped=True, ret=self._ret(state))
            turn.record("stopped", step=state.step or None)
            self._reminders_off(turn)
            resume = Option(GLOBAL_PREFIX + "resume", self._labels["resume"])
            turn.say(self._texts["stopped"], (resume,), screen="global")
        elif action in ("human", "delete", "privacy", "scam"):
            targets = {"delete": "delete_confirm", "scam": "scam_signs"}
            if action in ("human", "scam", "privacy"):
                turn.record(action, step=state.step or None)
            turn.state = replace(state, ret=self._ret(state))
            self._go(turn, targets.get(action, action))
        elif action == "back":
            self._back(turn)
        elif action == "erase":
            turn.erase = True
            turn.state = State()
            turn.say(self._texts["erased"])
        elif action == "resume":
            self._go(turn, "@resume")
        elif action == "restart":
            kept = {k: v for k, v in state.answers.items() if k in KEPT_ON_RESTART}
            turn.state = replace(state, answers=kept, ret="")
            self._go(turn, "menu")
        elif action == "consent":
            version = self._texts["consent_version"]
            turn.state = state.with_answers(consent=version, consent_at=turn.now.isoformat())
            turn.record("consent", detail=version)
        elif action == "decline":
            turn.state = state.with_answers(consent=None, consent_at=None)
            turn.record("consent_declined")
        elif action == "remind_on":
            # The host keeps the chat address, sealed, on this event (the only time it does).
            turn.state = state.with_answers(reminders="on")
            turn.record("reminders", detail="on")
        elif action == "remind_off":
            turn.state = state.with_answers(reminders="off")
            turn.record("reminders", detail="off")
        elif action == "withdraw":
            # The store deletes the completion on this event, in the same transaction.
            turn.state = state.with_answers(**dict.fromkeys(CONSENTED_ANSWERS))
            turn.record("consent_withdrawn")
            turn.say(self._texts["withdrawn"])
            self._go(turn, "menu")

    def _reminders_off(self, turn: _Turn) -> None:
        """After "dừng" or a block: no reminder or announcement any more (the host deletes
        the address on this event)."""
        if turn.state.answers.get("reminders") == "on":
            turn.state = turn.state.with_answers(reminders="off")
            turn.record("reminders", detail="off")

    def _ret(self, state: State) -> str:
        """Where "continue" should lead: the current screen, unless it is itself a detour."""
        if state.step in (*DETOURS, "") or not self._known(state.step):
            return state.ret
        return "" if state.step == "menu" else screen_key(state)

    def _back(self, turn: _Turn) -> None:
        state = turn.state
        if self.content.install_step(state.step):
            self._go(turn, "@main" if state.view else "@prev")
            return
        screen = self.content.screens.get(state.step)
        self._go(turn, screen.back if screen and screen.back else "menu")

    # --- moving between screens -----------------------------------------------------------

    def _go(self, turn: _Turn, target: str) -> None:
        if target.startswith("@"):
            self._route_to(turn, target)
            return
        previous = turn.state.step
        turn.state = replace(turn.state, step=target, view="", page=0)
        screen = self.content.screens.get(target)
        if screen is not None and screen.kind == "complete" and not self._complete(turn):
            return
        if target != previous:
            turn.record("step", step=target)
        self._render(turn)

    def _route_to(self, turn: _Turn, target: str) -> None:
        state = turn.state
        if target == "@install":
            if self._offer_reminders(state):
                self._go(turn, REMIND_OFFER)
                return
            provider = self.config.provider(state.answers.get("provider", ""))
            steps = self.content.install_steps(provider.kind) if provider else ()
            self._go(turn, steps[0].id if steps else "choose_provider")
        elif target == "@report":
            if "completed_at" in state.answers:
                self._go(turn, REPORT_AGAIN)
            elif "consent" in state.answers:
                self._go(turn, REPORT_FIRST)
            else:
                self._go(turn, REPORT_CONSENT)
        elif target == "@resume":
            if state.ret:
                step, view, page = _parse_key(state.ret)
            elif state.step in (*DETOURS, ""):
                step, view, page = "menu", "", 0
            else:  # nothing to go back to: just show where the user is
                step, view, page = state.step, state.view, state.page
            if not self._known(step) or step == "resume":
                step, view, page = "menu", "", 0
            turn.state = replace(state, step=step, view=view, page=page, ret="")
            self._render(turn)
        elif target in ("@next", "@prev"):
            self._step_over(turn, forward=target == "@next")
        elif target in ("@main", "@stuck", "@why"):
            view = target[1:] if target != "@main" else ""
            turn.state = replace(state, view=view)
            if view:
                turn.record(view, step=state.step)
            self._render(turn)
        elif target == "@more":
            pages = max(1, -(-len(self._items(state)) // PAGE_SIZE))
            turn.state = replace(state, page=(state.page + 1) % pages)
            self._render(turn)

    def _step_over(self, turn: _Turn, *, forward: bool) -> None:
        state = turn.state
        steps = self.content.install_steps(self._route(state))
        ids = [s.id for s in steps]
        if state.step not in ids:
            self._go(turn, "@install")
            return
        index = ids.index(state.step)
        if forward:
            turn.record("done", step=state.step)
            nxt = ids[index + 1] if index + 1 < len(ids) else self.content.install_done
        else:
            nxt = ids[index - 1] if index > 0 else self.content.install_back
        self._go(turn, nxt)

    def _complete(self, turn: _Turn) -> bool:
        """Record the completion when the user reaches the "complete" screen."""
        answers = turn.state.answers
        if "consent" not in answers:
            self._go(turn, REPORT_CONSENT)
            return False
        missing = [k for k in ("commune", "village", "lives_here", "provider") if k not in answers]
        if missing or self.config.commune(answers["commune"]) is None:
            self._go(turn, REPORT_FIRST)
            return False
        turn.state = turn.state.with_answers(completed_at=turn.now.isoformat())
        data = {k: answers[k] for k in ("commune", "village", "lives_here", "provider")}
        data["source"] = "self"
        if turn.state.referral:
            data["referral"] = turn.state.referral
        turn.record("completed", data=data)
        return True

    def _offer_resume(self, turn: _Turn) -> None:
        turn.state = replace(turn.state, ret=self._ret(turn.state))
        self._go(turn, "resume")

    def _reoffer(self, turn: _Turn) -> None:
        """Show the current screen again -- or, after a long absence, offer to resume."""
        if turn.idle and self._mid_flow(turn.state):
            turn.idle = False
            self._offer_resume(turn)
            return
        self._ensure_started(turn)
        self._render(turn, compact=True)

    def _ensure_started(self, turn: _Turn) -> None:
        """Greet a user we have never seen (whatever their first message was)."""
        if not turn.state.step:
            self._greet(turn)

    # --- rendering ------------------------------------------------------------------------

    def _render(self, turn: _Turn, *, compact: bool = False) -> None:
        """Show the current screen. ``compact``: it was just shown, so only remind the user
        where they are (the step's title, or the screen's last message) with its options."""
        state = turn.state
        key = screen_key(state)
        options = tuple(Option(o.id, self._fmt(o.label, state)) for o in self._options(state))
        step = self.content.install_step(state.step)
        if step is not None:
            if compact and not state.view:
                turn.say(self._fmt(self._texts["reoffer_step"], state), options, key)
            else:
                turn.say(self._install_text(state, step), options, key)
            return
        screen = self.content.screens[state.step or "menu"]
        texts = [self._fmt(t, state) for t in screen.texts]
        if compact:
            texts = texts[-1:]
        if screen.id == "resume":
            texts = [self._resume_text(state)]
        if not texts:
            texts = [""]
        if screen.kind == "pick" and len(self._items(state)) > PAGE_SIZE + 1:
            texts[-1] += "\n\n" + self._texts["pick_hint"]
        for text in texts[:-1]:
            turn.say(text)
        turn.say(texts[-1], options, key)

    def _install_text(self, state: State, step: InstallStep) -> str:
        if state.view == "stuck":
            body = step.stuck
        elif state.view == "why":
            body = step.why
        else:
            body = step.text_for(self._route(state))
        header = self._texts["step_header"]
        return self._fmt(header, state) + "\n\n" + self._fmt(body, state)

    def _resume_text(self, state: State) -> str:
        step, _, _ = _parse_key(state.ret) if state.ret else ("menu", "", 0)
        probe = replace(state, step=step, view="", page=0)
        if self.content.install_step(step) is not None:
            return self._fmt(self._texts["resume_install"], probe)
        screen = self.content.screens.get(step)
        return self._fmt(self._texts["resume_other"], probe, title=screen.title if screen else "")

    def _options(self, state: State) -> list[OptionSpec]:
        if self.content.install_step(state.step) is not None:
            return self._install_options(state.view)
        screen = self.content.screens.get(state.step or "menu")
        if screen is None:
            return []
        if screen.kind == "pick":
            return self._pick_options(state, screen)
        return [o for o in screen.options if self._shown(o, state)]

    def _shown(self, option: OptionSpec, state: State) -> bool:
        if option.when == "has_ret":
            return bool(state.ret)
        if option.when == "completed":
            return "completed_at" in state.answers
        if option.when == "not_completed":
            return "completed_at" not in state.answers
        if option.when == "consented":
            return "consent" in state.answers
        if option.when == "reminders_on":
            return state.answers.get("reminders") == "on"
        return True

    def _install_options(self, view: str) -> list[OptionSpec]:
        layouts: dict[str, list[tuple[str, str | None, str | None]]] = {
            "": [("done", "@next", None), ("stuck", "@stuck", None), ("why", "@why", None),
                 ("back", None, "back")],
            "stuck": [("stuck_done", "@next", None), ("stuck_human", None, "human"),
                      ("stuck_back", "@main", None)],
            "why": [("why_back", "@main", None), ("human", None, "human")],
        }  # fmt: skip
        return [
            OptionSpec(
                id=key,
                label=self._labels[key],
                goto=goto,
                action=action,
                aliases=(f"@{key}",) if key in self._aliases else (),
            )
            for key, goto, action in layouts.get(view, layouts[""])
        ]

    def _items(self, state: State) -> list[tuple[str, str]]:
        """(id, label) of the items of the current pick screen."""
        screen = self.content.screens.get(state.step)
        if screen is None or screen.kind != "pick":
            return []
        items: list[tuple[str, str]]
        if screen.source == "providers":
            items = [(p.id, p.name) for p in self.config.providers]
        elif screen.source == "communes":
            many_provinces = len({c.province for c in self.config.communes}) > 1
            items = [
                (c.code, f"{c.name}, {c.province}" if many_provinces else c.name)
                for c in self.config.communes
            ]
        else:
            commune = self.config.commune(state.answers.get("commune", ""))
            items = [(v.id, v.name) for v in commune.villages] if commune else []
        if screen.unknown:
            items.append(("unknown", self._labels["unknown"]))
        return items

    def _pick_options(self, state: State, screen: Screen) -> list[OptionSpec]:
        items = self._items(state)
        if len(items) <= PAGE_SIZE + 1:
            options = [_pick(screen, i, label) for i, label in items]
            if len(options) <= PAGE_SIZE:
                options.append(OptionSpec(id="back", label=self._labels["back"], action="back"))
            return options
        start = (state.page * PAGE_SIZE) % len(items)
        page = items[start : start + PAGE_SIZE]
        more = OptionSpec(id="more", label=self._labels["more"], goto="@more")
        return [*(_pick(screen, i, label) for i, label in page), more]

    # --- matching free text ---------------------------------------------------------------

    def _match_option(self, state: State, folded: str) -> OptionSpec | None:
        options = self._options(state)
        if folded.isdigit():
            index = int(folded) - 1
            return options[index] if 0 <= index < len(options) else None
        for option in options:
            if folded == fold(self._fmt(option.label, state)) or folded in self._alias_words(
                option
            ):
                return option
        if len(folded) >= 4:
            labels = {o.id: fold(self._fmt(o.label, state)) for o in options}
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

    def _pick_by_name(self, turn: _Turn, text: str) -> bool:
        """On a pick screen, accept a typed name ("dong hoa", with or without accents)."""
        state = turn.state
        screen = self.content.screens.get(state.step)
        if screen is None or screen.kind != "pick":
            return False
        items = self._items(state)
        names = {item_id: fold(label) for item_id, label in items}
        found = process.extract(
            fold(text), names, scorer=fuzz.token_set_ratio, score_cutoff=85, limit=2
        )
        if found and (len(found) == 1 or found[0][1] - found[1][1] >= 5):
            item_id = found[0][2]
            self._apply(turn, _pick(screen, item_id, dict(items)[item_id]))
            return True
        if screen.source == "communes":
            elsewhere = communes.search(text, limit=1)
            if elsewhere:
                served = ", ".join(c.name for c in self.config.communes)
                note = self._texts["commune_not_served"]
                turn.say(self._fmt(note, state, name=elsewhere[0].name, commune=served))
                self._render(turn)
                return True
        return False

    def _answer_faq(self, turn: _Turn, topic_id: str) -> None:
        topic = self.content.faq[topic_id]
        turn.record("faq", step=turn.state.step or None, detail=topic_id)
        turn.say(self._fmt(topic.answer, turn.state))

    # --- helpers --------------------------------------------------------------------------

    def _known(self, step: str) -> bool:
        return step in self.content.screens or self.content.install_step(step) is not None

    def _offer_reminders(self, state: State) -> bool:
        return (
            "reminders" not in state.answers
            and bool(self.config.reminders.after)
            and REMIND_OFFER in self.content.screens
        )

    def resumable_steps(self) -> tuple[str, ...]:
        """The steps where a user may be "mid-way" (a reminder may make sense there; the
        reminder step itself decides)."""
        screens = [s for s, screen in self.content.screens.items() if screen.resumable]
        return (*dict.fromkeys(step.id for step in self.content.install), *screens, "resume")

    def _waiting_at(self, state: State) -> str | None:
        """The step where a user stopped mid-way -- also behind a detour such as the
        "continue?" screen (where a reminder leaves them) -- if any."""
        step = state.step
        if step in DETOURS and state.ret:
            step = _parse_key(state.ret)[0]
        if not self._known(step) or not self._mid_flow(replace(state, step=step)):
            return None
        return step

    def _mid_flow(self, state: State) -> bool:
        if self.content.install_step(state.step) is not None:
            return True
        screen = self.content.screens.get(state.step)
        return bool(screen and screen.resumable)

    def _route(self, state: State) -> str:
        provider = self.config.provider(state.answers.get("provider", ""))
        return provider.kind if provider else "app"

    def _commune(self, state: State) -> Commune:
        return self.config.commune(state.answers.get("commune", "")) or self.config.communes[0]

    def _vars(self, state: State) -> dict[str, str]:
        provider = self.config.provider(state.answers.get("provider", ""))
        commune = self._commune(state)
        village = commune.village(state.answers.get("village", ""))
        phone = state.answers.get("phone", "")
        store = self._texts.get(f"store_{phone}") or self._texts.get("store_unknown", "")
        completed = state.answers.get("completed_at")
        progress = self.progress(state)
        step = self.content.install_step(state.step)
        values = {
            "app": provider.app if provider else "",
            "provider": provider.name if provider else "",
            "publisher": provider.publisher if provider else "",
            "site": provider.site if provider else "",
            "hotline": (provider.hotline if provider else "") or self._texts["hotline_unknown"],
            "store": store,
            "providers": ", ".join(p.name for p in self.config.providers),
            "commune": commune.name,
            "province": commune.province,
            "village": village.name if village else "",
            "support_name": commune.support.name,
            "support_address": commune.support.address,
            "support_hours": commune.support.hours,
            "support_phone": commune.support.phone,
            "share_url": self.config.share_url,
            "step": str(progress[0]) if progress else "",
            "total": str(progress[1]) if progress else "",
            "title": "",
            "date": self._date(completed) if completed else "",
            "delete_command": self._texts["delete_command"],
            "consent_version": self._texts["consent_version"],
            "name": "",
            "retention_months": str(self.config.retention_months),
        }
        if step is not None:
            values["title"] = step.title.format_map(values)
        return values

    def _fmt(self, text: str, state: State, **extra: str) -> str:
        if "{" not in text:
            return text
        return text.format_map({**self._vars(state), **extra})

    def _date(self, iso: str) -> str:
        pattern = self._texts.get("date_format", "dd/MM/yyyy")
        local = datetime.fromisoformat(iso).astimezone(self.config.timezone)
        return format_date(local.date(), pattern, locale=self.content.locale)


def _pick(screen: Screen, item_id: str, label: str) -> OptionSpec:
    """The option choosing one item of a pick screen."""
    return OptionSpec(
        id=f"i:{item_id}",
        label=label,
        goto=screen.next or "menu",
        sets={screen.answer or "": item_id},
    )
