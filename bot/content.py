"""The conversation as data: load and check ``content/<locale>/*.toml``.

- ``texts.toml``: single messages (greeting, help, errors...), option labels, alias words,
  the commands, the consent version; ``key@typed`` is the wording of ``key`` where there
  are no buttons (a :class:`~bot.vocabulary.Variant`), as is ``"text@typed"`` for a screen
  of ``flow.toml``;
- ``flow.toml``: screens (info, pick and complete screens) and the install steps (a step
  may name the ``picture`` shown with it);
- ``images.toml``: the pictures (only their ids are read here; :mod:`bot.pictures` renders
  them);
- ``faq.toml``: FAQ topics with answers and example phrasings;
- ``faq_negative.toml``: things people type that no FAQ topic answers;
- ``lexicon.toml``: word expansions (teencode, regional words), emoji words and
  scam phrases for matching;
- ``intents.toml``: navigation intents and short replies with example phrasings, the intents
  that choose each kind of option, and the FAQ topics that belong to each install step (what
  :mod:`bot.understanding` learns from, besides the FAQ examples);
- ``typed/*.toml``: messages typed as people type, labelled where they were typed
  (:mod:`bot.typed`), which the understanding learns from too;
- ``thresholds.toml`` (optional): the understanding's decision thresholds, written by
  ``bench/understanding.py --calibrate``;
- ``helpdesk.toml``: help requests -- its screens, texts and labels join those of
  ``flow.toml`` and ``texts.toml`` (a key defined in both is an error), its ``[templates]``
  are texts with fields of their own, ``[relay]`` the words that end a chat with a helper;
  its ``[guard]`` lists are what bot/helpguard.py bars in a helper's words, and its
  ``[staff]`` table is read by the staff desk.

Loading checks every reference (gotos, FAQ ids, text keys, placeholders) so that a content edit
that breaks the flow fails at start-up and in the tests, not in a citizen's chat.
"""

from __future__ import annotations

import hashlib
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from bot.model import TOKEN_RE
from bot.normalise import Normaliser, contains
from bot.textnorm import plain
from bot.typed import Typed, parse_typed
from bot.vocabulary import (
    CONTENT_TARGETS,
    Action,
    InstallRoute,
    OptionCondition,
    PickSource,
    Placeholder,
    ScreenId,
    ScreenKind,
    Variant,
)

CONTENT_ROOT = Path(__file__).resolve().parent.parent / "content"

ROUTES = tuple(InstallRoute)
#: Targets the content may name that the engine resolves at run time.
ROUTERS = tuple(sorted(CONTENT_TARGETS))
REQUIRED_SCREENS = tuple(ScreenId)
#: At most four options per screen: more do not fit a phone screen, nor an elderly reader.
MAX_OPTIONS = 4
PLACEHOLDERS = frozenset(Placeholder)
#: Texts the engine itself needs (everything else is referenced from the flow).
REQUIRED_TEXTS = (
    "greeting", "privacy_promise", "welcome_back", "help", "stopped", "stale_button",
    "unknown_step", "unknown_command", "not_understood", "no_answer", "too_long",
    "media_photo", "media_photo_kept", "media_contact", "media_location", "media_other",
    "media_edited", "sensitive_id", "sensitive_phone", "sensitive_card", "sensitive_code",
    "resume_install", "resume_other", "reminder", "step_header", "group_chat", "error",
    "erased", "commune_not_served", "pick_hint", "hotline_unknown", "delete_command",
    "consent_version", "store_unknown", "reoffer_step", "withdrawn", "scam_offer", "slow_down",
    "link_removed", "way_in_unknown", "sensitive_kept", "reoffer_screen", "code_known",
    "code_unknown", "code_kept", "clarify", "number_range", "number_one", "stale_choice",
    "after_answer_step", "social_thanks", "social_later",
    "help_input_kept", "help_input_too_long", "help_input_not_phone",
)  # fmt: skip
#: Texts that fill placeholders (``values`` in bot/engine/rendering.py): the same on every
#: medium, so they may have no variant.
DATA_TEXTS = (
    "hotline_unknown", "delete_command", "consent_version", "date_format", "store_",
    "way_in_unknown",
)  # fmt: skip
#: A message longer than this is split in two (a phone screen; an elderly reader).
MAX_WORDS = 120
REQUIRED_LABELS = (
    "done", "stuck", "why", "back", "more", "stuck_done", "stuck_human", "stuck_back",
    "why_back", "human", "menu", "resume", "restart", "unknown", "scam", "clarify_none",
    "continue_step", "help_request",
)  # fmt: skip
#: What an "input" screen may take (typed for a help request, sealed, never in the state).
INPUTS = ("landmark", "phone")
#: Help-request outcomes the citizen may be told of (texts "help_outcome_<outcome>").
HELP_OUTCOMES = (
    "installed", "not_yet", "visit", "could_not", "cancelled", "reported", "expired", "gone",
)  # fmt: skip


#: Kinds of intent: going somewhere (nav) or a short reply to the screen shown (reply).
INTENT_KINDS = ("nav", "reply")
#: Where an option's roles come from (see bot.understanding.option_roles).
ROLE_SOURCES = ("id", "alias", "faq", "action", "goto", "set")

_E = TypeVar("_E", bound=StrEnum)


class ContentError(ValueError):
    """The content files are inconsistent (a broken reference, a missing text...)."""


@dataclass(frozen=True, slots=True)
class OptionSpec:
    id: str
    label: str
    goto: str | None = None
    action: Action | None = None
    faq: str | None = None
    sets: Mapping[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    when: OptionCondition | None = None


@dataclass(frozen=True, slots=True)
class Screen:
    id: str
    kind: ScreenKind
    title: str
    texts: tuple[str, ...]
    options: tuple[OptionSpec, ...] = ()
    #: Its texts' wording for a variant of the medium ("text@typed").
    variants: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    back: str | None = None
    resumable: bool = False
    # pick screens
    source: PickSource | None = None
    answer: str | None = None
    next: str | None = None
    unknown: bool = False
    #: Not asked when its answer is already known (the provider just installed), except
    #: when an earlier report is being corrected.
    skip_if_known: bool = False
    #: A pick of villages: the answer that names their commune.
    commune: str = "commune"
    #: "continue" from here leads back to where the user was before (like human help).
    detour: bool = False
    #: An "input" screen: what it takes (one of INPUTS).
    input: str | None = None

    def texts_for(self, variants: tuple[str, ...]) -> tuple[str, ...]:
        """Its texts as worded for a medium with these variants."""
        return next((self.variants[v] for v in variants if v in self.variants), self.texts)


@dataclass(frozen=True, slots=True)
class InstallStep:
    id: str
    routes: tuple[InstallRoute, ...]
    title: str
    text: str
    why: str
    stuck: str
    text_vneid: str | None = None
    #: Provider id (config.toml) -> what people installing with it must know on this step
    #: (MISA eSign: order and pay first), after the step's text.
    notes: Mapping[str, str] = field(default_factory=dict)
    #: The picture shown with the step's main view (an id of ``images.toml``), if any.
    picture: str = ""

    def text_for(self, route: str) -> str:
        return self.text_vneid if route == InstallRoute.VNEID and self.text_vneid else self.text


@dataclass(frozen=True, slots=True)
class FaqTopic:
    id: str
    title: str
    answer: str
    examples: tuple[str, ...]
    #: A wrong answer would harm (hang up, delete, revoke...): it needs more confidence.
    harm: bool = False


@dataclass(frozen=True, slots=True)
class Intent:
    """A navigation intent ("nav") or a short reply ("reply") and how people type it."""

    id: str
    kind: str
    examples: tuple[str, ...]
    title: str = ""
    harm: bool = False
    #: Small talk (greetings, thanks): answered politely when no option takes it.
    social: bool = False

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.id}"


@dataclass(frozen=True, slots=True)
class StepTopics:
    """The FAQ topics that, typed on an install step, complain about it or ask why."""

    stuck: tuple[str, ...] = ()
    why: tuple[str, ...] = ()
    #: Words of the step's own subject ("mat khau" on the VNeID log-in): a message that has
    #: one and would otherwise be out of scope is a complaint about this step.
    words: tuple[str, ...] = ()
    #: A step where the person types a code into the official app (the OTP when
    #: registering): "nhap ma roi" there says the step is done, not that a code was given away.
    code: bool = False


@dataclass(frozen=True, slots=True)
class Guard:
    """Words that a reaction needs, or that bar it, whatever the classifier says: an answer
    whose misuse harms ("you can do it from anywhere") is never given to a message without
    its own cue words, nor to one with the cue words of another answer ("my son does it FOR
    me"). ``first``: groups of phrases; a message with a phrase of every group gets this
    answer before anything else (first aid: an OTP already given)."""

    needs: tuple[str, ...] = ()
    bars: tuple[str, ...] = ()
    first: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    action: Action
    description: str
    hidden: bool = False


@dataclass(frozen=True, slots=True)
class Content:
    locale: str
    texts: Mapping[str, str]
    labels: Mapping[str, str]
    aliases: Mapping[str, tuple[str, ...]]
    commands: tuple[Command, ...]
    screens: Mapping[str, Screen]
    install: tuple[InstallStep, ...]
    faq: Mapping[str, FaqTopic]
    lexicon: Mapping[str, str]
    faq_negative: tuple[str, ...] = ()
    scam_triggers: tuple[str, ...] = ()
    referral_words: tuple[str, ...] = ()
    install_back: str = "choose_provider"
    install_done: str = "@report"
    emoji: Mapping[str, str] = field(default_factory=dict)
    #: Units typed right after a number ("17t", "5p"): unit -> its words (lexicon.toml).
    units: Mapping[str, str] = field(default_factory=dict)
    intents: Mapping[str, Intent] = field(default_factory=dict)
    #: Messages typed as people type, labelled in context: given, or None to parse
    #: ``typed_sources`` when first asked (:meth:`typed_messages`).
    typed: tuple[Typed, ...] | None = None
    #: The ``typed/*.toml`` files as read at load: (name, bytes), parsed only when needed.
    typed_sources: tuple[tuple[str, bytes], ...] = ()
    #: Option role ("goto:ready", "alias:yes"...) -> the labels that choose it.
    roles: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    harm_roles: tuple[str, ...] = ()
    #: A label -> labels understood as the same reaction (they lead to the same place).
    same: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    step_topics: Mapping[str, StepTopics] = field(default_factory=dict)
    thresholds: Mapping[str, float] = field(default_factory=dict)
    #: Texts with fields of their own (helpdesk.toml ``[templates]``).
    templates: Mapping[str, str] = field(default_factory=dict)
    #: Words that, typed in a chat with a helper, do this instead ("end", "report").
    relay_words: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: What a helper may not ask a citizen for: list name -> phrases (bot/helpguard.py).
    help_guard: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: A label -> the words it needs and the words that bar it.
    guards: Mapping[str, Guard] = field(default_factory=dict)
    #: FAQ topics whose answer is itself the first aid after a scam: the scam card follows.
    first_aid: tuple[str, ...] = ()
    #: The ids of the pictures ``images.toml`` lists (an install step may name one).
    picture_ids: frozenset[str] = frozenset()
    #: Variant -> the texts worded otherwise for it ("not_understood@typed").
    text_variants: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    #: The texts for each combination of variants asked for (built once).
    _views: dict[tuple[str, ...], Mapping[str, str]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _typed_read: list[tuple[Typed, ...]] = field(
        default_factory=list, init=False, repr=False, compare=False
    )

    def typed_messages(self) -> tuple[Typed, ...]:
        """The typed messages, parsed the first time (11,000 messages take 0.5 s to parse:
        a process that never trains the classifier never parses them)."""
        if self.typed is not None:
            return self.typed
        if not self._typed_read:
            parsed = (parse_typed(data.decode("utf-8")) for _, data in self.typed_sources)
            self._typed_read.append(tuple(m for messages in parsed for m in messages))
        return self._typed_read[0]

    def texts_for(self, variants: tuple[str, ...]) -> Mapping[str, str]:
        """The texts as worded for a medium with these variants (the first found wins)."""
        view = self._views.get(variants)
        if view is None:
            merged = dict(self.texts)
            for variant in reversed(variants):
                merged.update(self.text_variants.get(variant, {}))
            view = self._views.setdefault(variants, merged)
        return view

    def install_steps(self, route: str) -> tuple[InstallStep, ...]:
        """The install steps of ``route`` (an :class:`InstallRoute`), in order."""
        return tuple(s for s in self.install if route in s.routes)

    def install_step(self, step_id: str) -> InstallStep | None:
        return next((s for s in self.install if s.id == step_id), None)

    def command(self, name: str) -> Command | None:
        return next((c for c in self.commands if c.name == name), None)


#: The content this process loaded, by folder: the digest of its files and what they gave.
#: Loading unchanged files again returns the same (frozen) object: each command the tests run
#: inside their own process loaded and checked it again, 0.2 s each (48 commands). By the
#: files' bytes, not their times: a file rewritten within one tick of the clock keeps its time.
_loaded: dict[Path, tuple[bytes, Content]] = {}


def load_content(locale: str = "vi", root: Path = CONTENT_ROOT) -> Content:
    """Load and check the content for ``locale`` (a folder under ``content/``)."""
    folder = root / locale
    if not folder.is_dir():
        raise ContentError(f"no content folder for locale {locale!r}: {folder}")
    digest = _digest(folder)
    known = _loaded.get(folder)
    if known is not None and known[0] == digest:
        return known[1]
    content = _load(folder, locale)
    _loaded[folder] = (digest, content)
    return content


def _digest(folder: Path) -> bytes:
    """A digest of every file under ``folder`` and its name (about 3 ms for 2.5 MB)."""
    hasher = hashlib.blake2b(digest_size=16)
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        hasher.update(str(path.relative_to(folder)).encode() + b"\0")
        hasher.update(path.read_bytes())
        hasher.update(b"\0")
    return hasher.digest()


def _load(folder: Path, locale: str) -> Content:
    texts_raw = _read(folder / "texts.toml")
    flow_raw = _read(folder / "flow.toml")
    faq_raw = _read(folder / "faq.toml")
    lexicon_raw = _read(folder / "lexicon.toml")
    negative_raw = _read(folder / "faq_negative.toml")
    intents_raw = _read(folder / "intents.toml")
    thresholds_path = folder / "thresholds.toml"
    thresholds_raw = _read(thresholds_path) if thresholds_path.exists() else {}
    images_path = folder / "images.toml"
    images_raw = _read(images_path) if images_path.exists() else {}
    help_raw = _read(folder / "helpdesk.toml")

    faq = {t.id: t for t in (_faq_topic(t) for t in faq_raw.get("topic", []))}
    texts, text_variants = _variants(_joined(texts_raw, help_raw, "texts"))
    content = Content(
        locale=locale,
        texts=texts,
        text_variants=text_variants,
        labels=_joined(texts_raw, help_raw, "labels"),
        aliases=_words_table(texts_raw, "aliases"),
        commands=tuple(_command(c) for c in texts_raw.get("commands", [])),
        screens={
            sid: _screen(sid, raw)
            for sid, raw in _joined_tables(flow_raw, help_raw, "screens").items()
        },
        install=tuple(_install_step(s) for s in flow_raw.get("install", [])),
        faq=faq,
        lexicon=_str_table(lexicon_raw, "expand"),
        scam_triggers=tuple(str(w) for w in lexicon_raw.get("scam_triggers", [])),
        referral_words=tuple(str(w) for w in texts_raw.get("referral", {}).get("words", [])),
        faq_negative=tuple(str(e) for e in negative_raw.get("examples", [])),
        install_back=str(flow_raw.get("install_back", "choose_provider")),
        install_done=str(flow_raw.get("install_done", "@report")),
        emoji=_str_table(lexicon_raw, "emoji"),
        units=_str_table(lexicon_raw, "units"),
        intents={i.id: i for i in (_intent(raw) for raw in intents_raw.get("intent", []))},
        typed_sources=tuple(
            (path.name, path.read_bytes()) for path in sorted((folder / "typed").glob("*.toml"))
        ),
        roles=_words_table(intents_raw, "roles"),
        harm_roles=tuple(str(r) for r in intents_raw.get("harm", {}).get("roles", [])),
        same=_words_table(intents_raw, "same"),
        step_topics={
            str(step): StepTopics(
                stuck=tuple(str(t) for t in raw.get("stuck", [])),
                why=tuple(str(t) for t in raw.get("why", [])),
                words=tuple(str(w) for w in raw.get("words", [])),
                code=bool(raw.get("code", False)),
            )
            for step, raw in intents_raw.get("steps", {}).items()
        },
        thresholds=_thresholds(thresholds_raw),
        picture_ids=frozenset(str(p.get("id", "")) for p in images_raw.get("picture", [])),
        templates=_str_table(help_raw, "templates"),
        relay_words=_words_table(help_raw, "relay"),
        help_guard=_words_table(help_raw, "guard"),
        guards={
            str(label): Guard(
                needs=tuple(str(w) for w in raw.get("needs", [])),
                bars=tuple(str(w) for w in raw.get("bars", [])),
                first=tuple(tuple(str(w) for w in group) for group in raw.get("first", [])),
            )
            for label, raw in intents_raw.get("guard", {}).items()
        },
        first_aid=tuple(str(t) for t in intents_raw.get("scam", {}).get("first_aid", [])),
    )
    check(content)
    return content


def _joined(first: dict[str, Any], second: dict[str, Any], key: str) -> dict[str, str]:
    """The string table ``key`` of two files, as one (a key in both is an error)."""
    return {str(k): str(v).strip() for k, v in _joined_tables(first, second, key).items()}


def _joined_tables(first: dict[str, Any], second: dict[str, Any], key: str) -> dict[str, Any]:
    one, two = first.get(key, {}), second.get(key, {})
    both = sorted(set(one) & set(two))
    if both:
        raise ContentError(f"[{key}] {', '.join(both)} defined twice (helpdesk.toml and another)")
    return {**one, **two}


def check(content: Content) -> None:
    """Raise :class:`ContentError` on any broken reference or missing piece."""
    problems: list[str] = []
    problems += [f"texts.{k} is missing" for k in REQUIRED_TEXTS if k not in content.texts]
    problems += _check_variants(content)
    problems += [f"labels.{k} is missing" for k in REQUIRED_LABELS if k not in content.labels]
    for name in REQUIRED_SCREENS:
        if name not in content.screens:
            problems.append(f"screen {name!r} is missing")
    if not content.install:
        problems.append("no [[install]] steps")
    install_ids = {s.id for s in content.install}
    targets = set(content.screens) | install_ids | set(ROUTERS)
    for ref in (content.install_back, content.install_done):
        if ref not in targets:
            problems.append(f"flow: unknown install target {ref!r}")
    for screen in content.screens.values():
        where = f"screen {screen.id!r}"
        for target in (screen.back, screen.next):
            if target is not None and target not in targets:
                problems.append(f"{where}: unknown target {target!r}")
        if len(screen.options) > MAX_OPTIONS:
            problems.append(f"{where}: {len(screen.options)} options (at most {MAX_OPTIONS})")
        for opt in screen.options:
            problems += _check_option(opt, where, targets, content)
        if screen.kind is ScreenKind.PICK and not screen.answer:
            problems.append(f"{where}: a pick screen needs `answer`")
        if screen.kind is ScreenKind.PICK and screen.next is None:
            problems.append(f"{where}: a pick screen needs `next`")
        if screen.kind is ScreenKind.INPUT and (screen.input not in INPUTS or not screen.next):
            problems.append(f"{where}: an input screen needs `next` and `input` in {INPUTS}")
        for text in (*screen.texts, *(t for ts in screen.variants.values() for t in ts)):
            problems += _check_placeholders(text, where)
    for step in content.install:
        for text in (step.text, step.why, step.stuck, step.text_vneid or "", *step.notes.values()):
            problems += _check_placeholders(text, f"install step {step.id!r}")
        if step.picture and step.picture not in content.picture_ids:
            problems.append(f"install step {step.id!r}: no picture {step.picture!r} (images.toml)")
    for key, text in content.texts.items():
        problems += _check_placeholders(text, f"texts.{key}")
    for variant, texts in content.text_variants.items():
        for key, text in texts.items():
            problems += _check_placeholders(text, f"texts.{key}@{variant}")
    for topic in content.faq.values():
        problems += _check_placeholders(topic.answer, f"faq {topic.id!r}")
    for outcome in HELP_OUTCOMES:
        if f"help_outcome_{outcome}" not in content.texts:
            problems.append(f"texts.help_outcome_{outcome} is missing")
    for key, text in content.templates.items():
        try:
            list(string.Formatter().parse(text))
        except ValueError as exc:
            problems.append(f"templates.{key}: broken braces ({exc})")
    problems += _check_understanding(content)
    if problems:
        raise ContentError("content/" + content.locale + ": " + "; ".join(problems))


def _check_variants(content: Content) -> list[str]:
    """Every variant is one of the vocabulary, of a text or screen that exists, and not of a
    text that fills a placeholder (those are the same everywhere)."""
    known = {str(v) for v in Variant}
    problems: list[str] = []
    for variant, texts in content.text_variants.items():
        if variant not in known:
            problems.append(f"texts.*@{variant}: unknown variant (known: {sorted(known)})")
        for key in texts:
            if key not in content.texts:
                problems.append(f"texts.{key}@{variant}: there is no texts.{key}")
            if key.startswith(DATA_TEXTS):
                problems.append(f"texts.{key}@{variant}: fills a placeholder, has no variant")
    for screen in content.screens.values():
        for variant, worded in screen.variants.items():
            if variant not in known:
                problems.append(f"screen {screen.id!r}: text@{variant}: unknown variant")
            if len(worded) != len(screen.texts):
                problems.append(
                    f"screen {screen.id!r}: text@{variant} has {len(worded)} messages, "
                    f"text has {len(screen.texts)}"
                )
    return problems


def _variants(table: dict[str, str]) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """(the texts, variant -> texts) of a table whose keys may be ``key@variant``."""
    texts: dict[str, str] = {}
    variants: dict[str, dict[str, str]] = {}
    for key, text in table.items():
        base, at, variant = key.partition("@")
        if at:
            variants.setdefault(variant, {})[base] = text
        else:
            texts[key] = text
    return texts, variants


def labels(content: Content) -> set[str]:
    """Everything a message can be understood as: ``faq:<topic>``, ``nav:<intent>``,
    ``reply:<intent>``."""
    return {f"faq:{t}" for t in content.faq} | {i.label for i in content.intents.values()}


def _check_understanding(content: Content) -> list[str]:
    """The intents, option roles and step topics: known kinds, labels, steps and topics, and
    no phrasing taught as two different things."""
    problems: list[str] = []
    known = labels(content)
    for intent in content.intents.values():
        where = f"intent {intent.id!r}"
        if intent.kind not in INTENT_KINDS:
            problems.append(f"{where}: kind must be one of {INTENT_KINDS}")
        if not intent.examples:
            problems.append(f"{where}: no examples")
        if intent.kind == "nav" and not intent.title:
            problems.append(f"{where}: a nav intent needs a title (shown when asking back)")
    if len({i.id for i in content.intents.values()}) != len(content.intents):
        problems.append("intents: duplicate ids")
    for role, targets in content.roles.items():
        source, _, name = role.partition(":")
        if source not in ROLE_SOURCES or not name:
            problems.append(f"roles: {role!r} must be <{'|'.join(ROLE_SOURCES)}>:<name>")
        problems += [f"roles.{role}: unknown label {t!r}" for t in targets if t not in known]
    for role in content.harm_roles:
        if role.partition(":")[0] not in ROLE_SOURCES:
            problems.append(f"harm.roles: {role!r} is not a role")
    for label, others in content.same.items():
        problems += [f"same: unknown label {x!r}" for x in (label, *others) if x not in known]
    install_ids = {s.id for s in content.install}
    for step, topics in content.step_topics.items():
        if step not in install_ids:
            problems.append(f"steps.{step}: not an install step")
        for label in (*topics.stuck, *topics.why):
            if label not in known:
                problems.append(f"steps.{step}: unknown label {label!r}")
    problems += _check_guards(content, known)
    problems += [
        f"scam.first_aid: unknown topic {t!r}" for t in content.first_aid if t not in content.faq
    ]
    # Diacritics kept: the words for "stop" and "right" differ only in them (both fold to "dung").
    emoji = {k: f" {v} " for k, v in content.emoji.items()}
    seen: dict[str, str] = {}
    taught = [(f"faq:{t.id}", e) for t in content.faq.values() for e in (t.title, *t.examples)]
    taught += [(i.label, e) for i in content.intents.values() for e in i.examples]
    taught += [("oos", e) for e in content.faq_negative]
    for label, example in taught:
        key = plain("".join(emoji.get(ch, ch) for ch in example))
        if seen.setdefault(key, label) != label:
            problems.append(f"{example!r} is taught as both {seen[key]} and {label}")
    return problems


def check_typed(content: Content) -> list[str]:
    """Problems of the typed messages: screens, topics and intents the content does not have
    (a screen renamed in the flow would leave its messages teaching nothing, unnoticed).
    Not part of :func:`check`, which every start runs: ``python -m bot check`` and the tests
    call it."""
    problems: list[str] = []
    screens = set(content.screens) | {s.id for s in content.install}
    navs = {i.id for i in content.intents.values() if i.kind == "nav"}
    for message in content.typed_messages():
        kind, _, name = message.expect.partition(":")
        where = f"typed {message.text!r}"
        if message.screen and message.screen not in screens:
            problems.append(f"{where}: unknown screen {message.screen!r}")
        if (
            (kind == "faq" and name not in content.faq)
            or (kind == "nav" and name not in navs)
            or (kind not in ("faq", "nav", "option") and message.expect not in ("stuck", "oos"))
        ):
            problems.append(f"{where}: unknown reaction {message.expect!r}")
    return problems


def _check_guards(content: Content, known: set[str]) -> list[str]:
    """Guards name known labels, and every phrasing taught for a guarded label passes its
    guard (else the guard would turn away what the content itself teaches)."""
    problems: list[str] = []
    normaliser = Normaliser(content.lexicon, content.emoji, content.units)
    taught: dict[str, list[str]] = {}
    for topic in content.faq.values():
        taught.setdefault(f"faq:{topic.id}", []).extend((topic.title, *topic.examples))
    for intent in content.intents.values():
        taught.setdefault(intent.label, []).extend(intent.examples)
    for label, guard in content.guards.items():
        if label not in known:
            problems.append(f"guard: unknown label {label!r}")
            continue
        needs = [normaliser.words(w) for w in guard.needs]
        bars = [normaliser.words(w) for w in guard.bars]
        for example in taught.get(label, ()):
            words = normaliser.words(example)
            if needs and not any(contains(words, n) for n in needs):
                problems.append(f"guard {label}: {example!r} has none of its `needs`")
            barred = [b for b, n in zip(guard.bars, bars, strict=True) if contains(words, n)]
            if barred:
                problems.append(f"guard {label}: {example!r} is barred by {barred}")
    return problems


def _check_option(opt: OptionSpec, where: str, targets: set[str], content: Content) -> list[str]:
    problems = []
    if not TOKEN_RE.match(opt.id):
        problems.append(f"{where}: option id {opt.id!r} is not a short token")
    if opt.goto is not None and opt.goto not in targets:
        problems.append(f"{where}: option {opt.id!r} goes to unknown {opt.goto!r}")
    if opt.faq is not None and opt.faq not in content.faq:
        problems.append(f"{where}: option {opt.id!r} names unknown FAQ topic {opt.faq!r}")
    if opt.goto is None and opt.action is None and opt.faq is None:
        problems.append(f"{where}: option {opt.id!r} leads nowhere")
    for alias in opt.aliases:
        if alias.startswith("@") and alias[1:] not in content.aliases:
            problems.append(f"{where}: option {opt.id!r} names unknown alias group {alias!r}")
    return problems


def _check_placeholders(text: str, where: str) -> list[str]:
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError as exc:
        return [f"{where}: broken braces ({exc})"]
    unknown = names - PLACEHOLDERS
    return [f"{where}: unknown placeholder(s) {sorted(unknown)}"] if unknown else []


def read_texts(path: Path) -> dict[str, str]:
    """The ``[texts]`` table of a page's own TOML file (the dashboard's, the web chat's):
    strings only; a missing or broken file is a :class:`ContentError`."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ContentError(f"{path}: {exc}") from exc
    texts = raw.get("texts")
    if not isinstance(texts, dict) or not all(isinstance(v, str) for v in texts.values()):
        raise ContentError(f"{path}: [texts] must hold only strings")
    return texts


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ContentError(f"missing content file {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ContentError(f"{path}: not valid TOML: {exc}") from exc


def _str_table(raw: dict[str, Any], key: str) -> dict[str, str]:
    table = raw.get(key, {})
    return {str(k): str(v).strip() for k, v in table.items()}


def _words_table(raw: dict[str, Any], key: str) -> dict[str, tuple[str, ...]]:
    return {str(k): tuple(str(w) for w in _as_list(v)) for k, v in raw.get(key, {}).items()}


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _texts(value: Any) -> tuple[str, ...]:
    return tuple(str(t).strip() for t in _as_list(value) if str(t).strip())


def _enum(kind: type[_E], value: Any, where: str) -> _E:
    """``value`` as a member of the vocabulary ``kind``, or a clear ContentError."""
    try:
        return kind(str(value))
    except ValueError:
        names = ", ".join(member.value for member in kind)
        raise ContentError(f"{where}: {value!r} is not one of {names}") from None


def _maybe(kind: type[_E], value: Any, where: str) -> _E | None:
    return None if value is None else _enum(kind, value, where)


def _screen(sid: str, raw: dict[str, Any]) -> Screen:
    where = f"screen {sid!r}"
    kind = _enum(ScreenKind, raw.get("kind", "info"), f"{where}: kind")
    source = _maybe(PickSource, raw.get("source"), f"{where}: source")
    if kind is ScreenKind.PICK and source is None:
        raise ContentError(f"{where}: a pick screen needs a source")
    return Screen(
        id=sid,
        kind=kind,
        title=str(raw.get("title", "")),
        texts=_texts(raw.get("text", [])),
        options=tuple(_option(o, sid) for o in raw.get("options", [])),
        variants={
            key.partition("@")[2]: _texts(value)
            for key, value in raw.items()
            if key.startswith("text@")
        },
        back=raw.get("back"),
        resumable=bool(raw.get("resumable", False)),
        source=source,
        answer=raw.get("answer"),
        next=raw.get("next"),
        unknown=bool(raw.get("unknown", False)),
        skip_if_known=bool(raw.get("skip_if_known", False)),
        commune=str(raw.get("commune", "commune")),
        detour=bool(raw.get("detour", False)),
        input=raw.get("input"),
    )


def _option(raw: dict[str, Any], sid: str) -> OptionSpec:
    if "id" not in raw or "label" not in raw:
        raise ContentError(f"screen {sid!r}: every option needs an id and a label")
    where = f"screen {sid!r}: option {raw['id']!r}"
    return OptionSpec(
        id=str(raw["id"]),
        label=str(raw["label"]),
        goto=raw.get("goto"),
        action=_maybe(Action, raw.get("action"), f"{where}: action"),
        faq=raw.get("faq"),
        sets={str(k): str(v) for k, v in raw.get("set", {}).items()},
        aliases=tuple(str(a) for a in _as_list(raw.get("aliases", []))),
        when=_maybe(OptionCondition, raw.get("when"), f"{where}: when"),
    )


def _install_step(raw: dict[str, Any]) -> InstallStep:
    sid = str(raw.get("id", ""))
    missing = [k for k in ("id", "title", "text", "why", "stuck") if not raw.get(k)]
    if missing:
        raise ContentError(f"install step {sid!r}: missing {missing}")
    return InstallStep(
        id=sid,
        routes=tuple(
            _enum(InstallRoute, r, f"install step {sid!r}: routes")
            for r in raw.get("routes", ROUTES)
        ),
        title=str(raw["title"]).strip(),
        text=str(raw["text"]).strip(),
        text_vneid=str(raw["text_vneid"]).strip() if raw.get("text_vneid") else None,
        why=str(raw["why"]).strip(),
        stuck=str(raw["stuck"]).strip(),
        notes={str(k): str(v).strip() for k, v in raw.get("notes", {}).items()},
        picture=str(raw.get("picture", "")).strip(),
    )


def _faq_topic(raw: dict[str, Any]) -> FaqTopic:
    return FaqTopic(
        id=str(raw["id"]),
        title=str(raw.get("title", "")),
        answer=str(raw.get("answer", "")).strip(),
        examples=tuple(str(e) for e in raw.get("examples", [])),
        harm=bool(raw.get("harm", False)),
    )


def _intent(raw: dict[str, Any]) -> Intent:
    if "id" not in raw or "kind" not in raw:
        raise ContentError(f"intents.toml: every [[intent]] needs an id and a kind: {raw!r}")
    return Intent(
        id=str(raw["id"]),
        kind=str(raw["kind"]),
        title=str(raw.get("title", "")),
        examples=tuple(str(e) for e in raw.get("examples", [])),
        harm=bool(raw.get("harm", False)),
        social=bool(raw.get("social", False)),
    )


def _thresholds(raw: dict[str, Any]) -> dict[str, float]:
    table = raw.get("thresholds", {})
    try:
        return {str(k): float(v) for k, v in table.items()}
    except (TypeError, ValueError) as exc:
        raise ContentError(f"thresholds.toml: every threshold must be a number ({exc})") from exc


def _command(raw: dict[str, Any]) -> Command:
    return Command(
        name=str(raw["name"]),
        action=_enum(Action, raw.get("action"), f"command {raw.get('name')!r}: action"),
        description=str(raw.get("description", "")),
        hidden=bool(raw.get("hidden", False)),
    )


def load_staff_texts(locale: str = "vi", root: Path = CONTENT_ROOT) -> dict[str, str]:
    """The officials' and volunteers' messages (``content/<locale>/staff.toml``, and the
    ``[staff]`` table of ``helpdesk.toml``): a copy of those read last time while neither
    file has changed. Every staff desk and help desk reads them (30 ms of TOML each)."""
    files = (root / locale / "staff.toml", root / locale / "helpdesk.toml")
    try:
        stamp = tuple((f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    except OSError:
        stamp = None  # missing: _read_staff_texts says which
    key = (locale, root)
    kept = _STAFF_TEXTS.get(key)
    if stamp is None or kept is None or kept[0] != stamp:
        kept = (stamp, _read_staff_texts(locale, root))
        _STAFF_TEXTS[key] = kept
    return dict(kept[1])


_STAFF_TEXTS: dict[tuple[str, Path], tuple[object, dict[str, str]]] = {}


def _read_staff_texts(locale: str, root: Path) -> dict[str, str]:
    staff = _read(root / locale / "staff.toml")
    help_raw = {"texts": _read(root / locale / "helpdesk.toml").get("staff", {})}
    texts = _joined(staff, help_raw, "texts")
    for key, text in texts.items():
        try:
            list(string.Formatter().parse(text))
        except ValueError as exc:
            raise ContentError(f"staff.toml: texts.{key}: broken braces ({exc})") from exc
    return texts
