"""The conversation as data: load and check ``content/<locale>/*.toml``.

- ``texts.toml``: single messages (greeting, help, errors...), option labels, alias words,
  the global words and commands, the consent version;
- ``flow.toml``: screens (info, pick and complete screens) and the install steps;
- ``faq.toml``: FAQ topics with answers and example phrasings;
- ``faq_negative.toml``: things people type that no FAQ topic answers;
- ``lexicon.toml``: word expansions (teencode, regional words) and filler words for matching.

Loading checks every reference (gotos, FAQ ids, text keys, placeholders) so that a content edit
that breaks the flow fails at start-up and in the tests, not in a citizen's chat.
"""

from __future__ import annotations

import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from bot.model import TOKEN_RE
from bot.vocabulary import (
    CONTENT_TARGETS,
    Action,
    InstallRoute,
    OptionCondition,
    PickSource,
    Placeholder,
    ScreenId,
    ScreenKind,
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
    "link_removed",
)  # fmt: skip
REQUIRED_LABELS = (
    "done", "stuck", "why", "back", "more", "stuck_done", "stuck_human", "stuck_back",
    "why_back", "human", "menu", "resume", "restart", "unknown", "scam",
)  # fmt: skip


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
    back: str | None = None
    resumable: bool = False
    # pick screens
    source: PickSource | None = None
    answer: str | None = None
    next: str | None = None
    unknown: bool = False


@dataclass(frozen=True, slots=True)
class InstallStep:
    id: str
    routes: tuple[InstallRoute, ...]
    title: str
    text: str
    why: str
    stuck: str
    text_vneid: str | None = None

    def text_for(self, route: str) -> str:
        return self.text_vneid if route == InstallRoute.VNEID and self.text_vneid else self.text


@dataclass(frozen=True, slots=True)
class FaqTopic:
    id: str
    title: str
    answer: str
    examples: tuple[str, ...]


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
    words: Mapping[Action, tuple[str, ...]]
    commands: tuple[Command, ...]
    screens: Mapping[str, Screen]
    install: tuple[InstallStep, ...]
    faq: Mapping[str, FaqTopic]
    lexicon: Mapping[str, str]
    stopwords: tuple[str, ...] = ()
    faq_negative: tuple[str, ...] = ()
    scam_triggers: tuple[str, ...] = ()
    referral_words: tuple[str, ...] = ()
    install_back: str = "choose_provider"
    install_done: str = "@report"

    def install_steps(self, route: str) -> tuple[InstallStep, ...]:
        """The install steps of ``route`` (an :class:`InstallRoute`), in order."""
        return tuple(s for s in self.install if route in s.routes)

    def install_step(self, step_id: str) -> InstallStep | None:
        return next((s for s in self.install if s.id == step_id), None)

    def command(self, name: str) -> Command | None:
        return next((c for c in self.commands if c.name == name), None)


def load_content(locale: str = "vi", root: Path = CONTENT_ROOT) -> Content:
    """Load and check the content for ``locale`` (a folder under ``content/``)."""
    folder = root / locale
    if not folder.is_dir():
        raise ContentError(f"no content folder for locale {locale!r}: {folder}")
    texts_raw = _read(folder / "texts.toml")
    flow_raw = _read(folder / "flow.toml")
    faq_raw = _read(folder / "faq.toml")
    lexicon_raw = _read(folder / "lexicon.toml")
    negative_raw = _read(folder / "faq_negative.toml")

    faq = {t.id: t for t in (_faq_topic(t) for t in faq_raw.get("topic", []))}
    content = Content(
        locale=locale,
        texts=_str_table(texts_raw, "texts"),
        labels=_str_table(texts_raw, "labels"),
        aliases=_words_table(texts_raw, "aliases"),
        words={
            _enum(Action, action, f"words.{action}"): words
            for action, words in _words_table(texts_raw, "words").items()
        },
        commands=tuple(_command(c) for c in texts_raw.get("commands", [])),
        screens={sid: _screen(sid, raw) for sid, raw in flow_raw.get("screens", {}).items()},
        install=tuple(_install_step(s) for s in flow_raw.get("install", [])),
        faq=faq,
        lexicon=_str_table(lexicon_raw, "expand"),
        stopwords=tuple(str(w) for w in lexicon_raw.get("stopwords", [])),
        scam_triggers=tuple(str(w) for w in lexicon_raw.get("scam_triggers", [])),
        referral_words=tuple(str(w) for w in texts_raw.get("referral", {}).get("words", [])),
        faq_negative=tuple(str(e) for e in negative_raw.get("examples", [])),
        install_back=str(flow_raw.get("install_back", "choose_provider")),
        install_done=str(flow_raw.get("install_done", "@report")),
    )
    check(content)
    return content


def check(content: Content) -> None:
    """Raise :class:`ContentError` on any broken reference or missing piece."""
    problems: list[str] = []
    problems += [f"texts.{k} is missing" for k in REQUIRED_TEXTS if k not in content.texts]
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
        for text in screen.texts:
            problems += _check_placeholders(text, where)
    for step in content.install:
        for text in (step.text, step.why, step.stuck, step.text_vneid or ""):
            problems += _check_placeholders(text, f"install step {step.id!r}")
    for key, text in content.texts.items():
        problems += _check_placeholders(text, f"texts.{key}")
    for topic in content.faq.values():
        problems += _check_placeholders(topic.answer, f"faq {topic.id!r}")
    if problems:
        raise ContentError("content/" + content.locale + ": " + "; ".join(problems))


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
        back=raw.get("back"),
        resumable=bool(raw.get("resumable", False)),
        source=source,
        answer=raw.get("answer"),
        next=raw.get("next"),
        unknown=bool(raw.get("unknown", False)),
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
    )


def _faq_topic(raw: dict[str, Any]) -> FaqTopic:
    return FaqTopic(
        id=str(raw["id"]),
        title=str(raw.get("title", "")),
        answer=str(raw.get("answer", "")).strip(),
        examples=tuple(str(e) for e in raw.get("examples", [])),
    )


def _command(raw: dict[str, Any]) -> Command:
    return Command(
        name=str(raw["name"]),
        action=_enum(Action, raw.get("action"), f"command {raw.get('name')!r}: action"),
        description=str(raw.get("description", "")),
        hidden=bool(raw.get("hidden", False)),
    )


def load_staff_texts(locale: str = "vi", root: Path = CONTENT_ROOT) -> dict[str, str]:
    """The officials' and volunteers' messages (``content/<locale>/staff.toml``)."""
    texts = _str_table(_read(root / locale / "staff.toml"), "texts")
    for key, text in texts.items():
        try:
            list(string.Formatter().parse(text))
        except ValueError as exc:
            raise ContentError(f"staff.toml: texts.{key}: broken braces ({exc})") from exc
    return texts
