"""Understand what a citizen typed, given where they are: one typed decision, explained.

Input: the text and a :class:`Context` (the screen or install step, its sub-view, the options
shown). Output: a :class:`Reading` -- the decision (a closed set of small frozen dataclasses:
:class:`Pick`, :class:`Number`, :class:`Navigate`, :class:`Stuck`, :class:`Answer`,
:class:`Social`, :class:`Clarify`, :class:`Unsure`), the top candidates with their scores,
whether the message shows signs of a scam (the engine then offers the scam card first), and a
short note on how the decision was reached.

How a message is read, in order:

1. a bare number chooses the n-th option shown (or is out of range: never an FAQ answer);
2. an option's label or one of its words, typed exactly (with or without diacritics);
3. a phrasing taught in the content, typed exactly (diacritics kept: "stop" and "right"
   both fold to "dung" but differ when typed with their marks);
4. otherwise the classifier (:mod:`bot.classifier`, trained when first needed from the FAQ
   examples, the intents and the out-of-scope examples of ``content/<locale>/``, and from the
   messages typed blind by other writers, ``typed/``: :func:`training_set`) scores the
   message. A long story is read whole: a linear model adds up the evidence of every
   sentence, and on the development set that found the question in 30 of 33 stories and
   voice messages, where reading each sentence apart and keeping the most confident one
   found 25 (bench/understanding.py). Scam signs are looked for in the whole message.
   A story that would be asked back is read again by its question sentence, which may settle
   it among the candidates; asked back with "stuck" first, a message speaking of the step's
   own words is a complaint about the step.

Every label (``faq:cost``, ``nav:human``, ``reply:done``...) then becomes a *reaction* in this
context: an option on screen that the label chooses (``content/<locale>/intents.toml`` maps
option roles to labels), a complaint about the current install step (:class:`Stuck`), a
navigation, an FAQ answer, small talk, or nothing (out of scope). Reactions available on the
current screen are multiplied by a prior: the current step is a strong hint.

The best reaction is decided only if it is confident enough and clearly ahead of the next;
reactions whose misuse harms (``harm = true`` in the content: the scam "hang up" answer,
deleting data, revoking...) need more confidence and never come from a short acknowledgement
("ok", "roi"). Between close candidates the decision is :class:`Clarify` (the engine asks back
with them); below a floor, or for a message like nothing taught, :class:`Unsure`. The numbers
live in ``content/<locale>/thresholds.toml``, written by ``bench/understanding.py --calibrate``
(each typed file read by a classifier that did not learn it, and the development set).

Pure and deterministic: no I/O after construction, the same reading for the same input.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, TypeAlias

from rapidfuzz import fuzz, process

from bot.content import Content, ContentError, OptionSpec
from bot.normalise import Normaliser, contains
from bot.textnorm import fold, plain

if TYPE_CHECKING:
    from bot.classifier import Classifier, Fitted, Recipe

#: The label of examples no topic or intent answers.
OOS = "oos"
#: The label of a complaint about the current step.
STUCK = "reply:stuck"
#: A bare number, as typed to choose an option ("2", "2.", "-1").
_NUMBER = re.compile(r"[+-]?\d{1,3}[.)]?")
#: A message of at most this many (normalised) words is short: see ``short_temperature``.
SHORT_WORDS = 2
#: A typed option label this similar (rapidfuzz ratio, 0..100) to a shown one chooses it.
LABEL_SIMILARITY = 88
#: Typed words that stand, in a row, in one option's label choose it if there are this many.
PART_WORDS = 2
#: On a step where a code is typed into the app, a reply of at most this many (normalised)
#: words that says it was entered is the step done ("co otp r ad, nhap r": 8, "otp" being
#: three); telling of a code given away takes more ("co nguoi goi xin ma, toi doc cho ho
#: roi": 10) and gets the first aid.
CODE_REPLY_WORDS = 8
#: How many candidates a reading keeps (for explanations and for asking back).
KEEP = 5
#: Ask back with at most this many candidates.
CLARIFY_MAX = 3
#: Options whose normalised names are kept (a few hundred exist; pick lists add more).
MEMO = 4096
#: A message that needs the classifier waits at most this long (s) for a training elsewhere
#: (a child process at start-up: 3-7 s), then trains it itself.
ELSEWHERE_WAIT = 30.0
#: Readings are kept only for messages this short (replies such as "2", "xong", "quay lai"
#: come back all day; a longer message rarely does, and may tell something personal).
MEMO_CHARS = 32
#: An option's name (a brand) chooses it inside a message of at most this many words...
NAME_WORDS = 6
#: ...if the name has at least this many letters.
NAME_LETTERS = 4


# --- context --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Shown:
    """One option on the current screen, in display order.

    ``words``: other words that choose it (typed exactly); ``roles``: what kind of option it
    is (``id:back``, ``alias:yes``, ``faq:cost``, ``action:human``, ``goto:ready``,
    ``set:lives_here=no``...), mapped
    to labels by the content's ``[roles]`` table. :func:`shown_option` builds it from an
    option of the flow.
    """

    id: str
    label: str
    words: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    #: Names (a phone brand: "samsung", "oppo") that choose it even inside a short message
    #: ("may toi la oppo"): its own words typed in Latin letters, one word of 4 or more.
    names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Context:
    """Where the user is. ``screen``: a screen id or install step id ("" for a new user);
    ``view``: an install step's sub-view ("", "stuck" or "why")."""

    screen: str = ""
    install_step: bool = False
    view: str = ""
    options: tuple[Shown, ...] = ()


def option_roles(spec: OptionSpec) -> tuple[str, ...]:
    """The roles of an option of the flow: its id, alias groups, FAQ topic, action, target
    and the answers it sets."""
    roles = [f"id:{spec.id}"]
    roles += [f"alias:{a[1:]}" for a in spec.aliases if a.startswith("@")]
    if spec.faq:
        roles.append(f"faq:{spec.faq}")
    if spec.action:
        roles.append(f"action:{spec.action}")
    if spec.goto:
        roles.append(f"goto:{spec.goto}")
    roles += [f"set:{key}={value}" for key, value in spec.sets.items()]
    return tuple(roles)


def shown_option(spec: OptionSpec, label: str, aliases: Mapping[str, Sequence[str]] = {}) -> Shown:
    """The :class:`Shown` for an option of the flow, with its label as displayed and the
    words of its alias groups (``content.aliases``)."""
    words: list[str] = []
    for alias in spec.aliases:
        words.extend(aliases.get(alias[1:], ()) if alias.startswith("@") else (alias,))
    names = tuple(
        a.lower() for a in spec.aliases if a.isascii() and a.isalpha() and len(a) >= NAME_LETTERS
    )
    return Shown(
        id=spec.id, label=label, words=tuple(words), roles=option_roles(spec), names=names
    )


# --- decisions ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pick:
    """Choose the option with this id on the current screen."""

    option: str


@dataclass(frozen=True, slots=True)
class Number:
    """A bare number: the n-th option if ``in_range``, else "choose from 1 to N"."""

    n: int
    in_range: bool


@dataclass(frozen=True, slots=True)
class Navigate:
    """Go somewhere: an intent id of ``intents.toml`` with kind "nav" (menu, human...)."""

    intent: str


@dataclass(frozen=True, slots=True)
class Stuck:
    """A complaint about the current install step: show its fixes."""


@dataclass(frozen=True, slots=True)
class Answer:
    """Answer this FAQ topic."""

    topic: str


@dataclass(frozen=True, slots=True)
class Social:
    """Small talk or a reply that no option takes (greet, thanks, later, yes...)."""

    act: str


@dataclass(frozen=True, slots=True)
class Clarify:
    """Ask back "did you mean" with these reactions (``faq:cost``, ``option:done``,
    ``nav:human``, ``stuck``), best first."""

    candidates: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Unsure:
    """Not understood well enough: say so, and offer a human."""


Decision: TypeAlias = Pick | Number | Navigate | Stuck | Answer | Social | Clarify | Unsure


@dataclass(frozen=True, slots=True)
class Candidate:
    reaction: str
    score: float


@dataclass(frozen=True, slots=True)
class Reading:
    """What a message was understood as, and why."""

    decision: Decision
    score: float
    candidates: tuple[Candidate, ...] = ()
    #: Signs of a scam anywhere in the message: offer the scam card first.
    scam: bool = False
    #: How the decision was reached ("number", "option words", "example", "classifier",
    #: "question": a story's question sentence settled what the whole would have asked back).
    how: str = ""
    #: The taught example nearest to the message (normalised).
    nearest: str = ""


def reaction_of(decision: Decision) -> str:
    """The reaction a decision stands for (``faq:cost``, ``option:done``...)."""
    match decision:
        case Pick(option):
            return f"option:{option}"
        case Navigate(intent):
            return f"nav:{intent}"
        case Answer(topic):
            return f"faq:{topic}"
        case Stuck():
            return "stuck"
        case Social(act):
            return f"social:{act}"
        case Number(n, in_range):
            return f"number:{n}" if in_range else "number:out"
        case Clarify():
            return "clarify"
    return OOS


def decision_for(reaction: str) -> Decision:
    """The decision that carries out a reaction."""
    kind, _, name = reaction.partition(":")
    if kind == "option":
        return Pick(name)
    if kind == "nav":
        return Navigate(name)
    if kind == "faq":
        return Answer(name)
    if kind == "social":
        return Social(name)
    if reaction == "stuck":
        return Stuck()
    return Unsure()


# --- thresholds -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The numbers of a decision (calibrated: ``bench/understanding.py --calibrate``)."""

    #: Softmax temperature turning the classifier's margins into probabilities.
    temperature: float = 0.15
    #: ...for a message of one or two words ("can cuoc", "ma pin"): a word alone may belong
    #: to several topics, so its probabilities are flatter (more often asked back).
    short_temperature: float = 0.15
    #: A reaction is decided at this score or more...
    accept: float = 0.5
    #: ...or this much if its misuse harms.
    harm_accept: float = 0.75
    #: ...and only this far ahead of the next reaction.
    margin: float = 0.15
    #: Below this score for the best reaction: not understood (no asking back).
    clarify_floor: float = 0.2
    #: A reaction is offered when asking back if it scores at least this.
    clarify_min: float = 0.1
    #: Reactions on the current screen count this many times more.
    prior: float = 2.0
    #: Weight of an option's resemblance to the message (its label or words), against the
    #: probabilities of the classes that choose it.
    label_weight: float = 1.0
    #: ...counting only what rises above this similarity.
    label_floor: float = 0.2
    #: A message less similar than this to every taught example is out of scope.
    similarity: float = 0.15
    #: Harmful reactions need at least this many words.
    harm_words: float = 3
    #: Options' resemblance (``label_weight``) counts for messages of at most this many
    #: (normalised) words.
    evidence_words: float = 1000
    #: A story read whole as out of scope with at least this probability is read again by
    #: its question alone (:func:`question_of`; 1: never).
    question_oos: float = 1.0

    @classmethod
    def from_mapping(cls, values: Mapping[str, float]) -> Thresholds:
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ContentError(f"thresholds.toml: unknown thresholds {sorted(unknown)}")
        return cls(**{k: float(v) for k, v in values.items()})

    def as_dict(self) -> dict[str, float]:
        return {f.name: float(getattr(self, f.name)) for f in fields(self)}


# --- the component --------------------------------------------------------------------------


def training_set(content: Content, normaliser: Normaliser) -> tuple[list[str], list[str]]:
    """(normalised texts, labels) of everything the content teaches: the examples of its
    topics, intents and out-of-scope phrasings, then the typed messages (:func:`typed_pairs`)."""
    pairs = [(e, f"faq:{t.id}") for t in content.faq.values() for e in (t.title, *t.examples)]
    pairs += [(e, i.label) for i in content.intents.values() for e in i.examples]
    pairs += [(e, OOS) for e in content.faq_negative]
    texts, labels = [], []
    for example, label in pairs:
        text = normaliser.text(example)
        if text:
            texts.append(text)
            labels.append(label)
    for text, label in typed_pairs(content, normaliser, set(texts), set(labels)):
        texts.append(text)
        labels.append(label)
    return texts, labels


def typed_pairs(
    content: Content, normaliser: Normaliser, taught: set[str], known: set[str]
) -> list[tuple[str, str]]:
    """(normalised text, label) of the content's typed messages that teach something without
    their screen: a message whose label holds only where it was typed (an out-of-scope "ok"
    on a screen with no "ok" to choose) or that the content already teaches is left out, and
    so is a text labelled two ways (the same words mean "yes" on one screen, "done" on
    another)."""
    seen: dict[str, set[str]] = defaultdict(set)
    order: list[str] = []
    for message in content.typed_messages():
        label = typed_label(content, message.screen, message.expect, known)
        text = normaliser.text(message.text)
        if label is None or not text or text in taught:
            continue
        # Why 3 words: out of scope is a property of a screen for shorter replies ("ok",
        # "roi" mean something wherever an option takes them), not of the words.
        if label == OOS and len(text.split()) < 3:
            continue
        if text not in seen:
            order.append(text)
        seen[text].add(label)
    return [(t, next(iter(seen[t]))) for t in order if len(seen[t]) == 1]


def typed_label(content: Content, screen: str, expect: str, known: set[str]) -> str | None:
    """The classifier's label for a reaction expected on ``screen``: ``faq:``, ``nav:`` and
    out of scope as they are; ``stuck`` as the step's complaint; an option as the first
    label its roles are chosen by (content ``[roles]``: the menu's install option is
    ``nav:install``, a step's "Xong" is ``reply:done``). None: nothing to learn."""
    if expect == "stuck":
        return STUCK
    if expect.startswith("option:"):
        spec = _option_spec(content, screen, expect.removeprefix("option:"))
        roles = option_roles(spec) if spec is not None else ()
        label = next((lab for r in roles for lab in content.roles.get(r, ())), None)
        if label is None:
            label = next((r for r in roles if r.startswith("faq:")), None)
        return label if label in known else None
    return expect if expect in known else None


def _option_spec(content: Content, screen: str, option: str) -> OptionSpec | None:
    if content.install_step(screen) is not None:
        # An install step's options are built by the engine from their ids and alias groups.
        alias = (f"@{option}",) if option in content.aliases else ()
        return OptionSpec(id=option, label="", aliases=alias)
    found = content.screens.get(screen)
    return next((o for o in found.options if o.id == option), None) if found else None


class Understanding:
    """Reads messages in context. Build once per process (:meth:`from_content` caches).

    The classifier is trained on first use, or by :meth:`warm` (the application calls it in
    the background at start-up): importing scikit-learn and training take 1.5-3 s, and a
    process that only ever sees buttons and numbers never needs them.
    """

    def __init__(
        self, content: Content, thresholds: Thresholds | None = None, recipe: Recipe | None = None
    ):
        #: Readings of messages seen lately, per context: the same few words ("2", "xong",
        #: "quay lai") come back all day, and a reading depends on nothing else.
        self._readings: dict[tuple[str, Context], Reading] = {}
        self._thresholds = thresholds or Thresholds.from_mapping(content.thresholds)
        self._normaliser = Normaliser(content.lexicon, content.emoji, content.units)
        self._content = content
        self._training: tuple[list[str], list[str]] | None = None
        self._model: Classifier | None = None
        #: How the classifier is trained (None: :class:`bot.classifier.Recipe`'s defaults).
        self._recipe = recipe
        self._training_lock = threading.Lock()
        #: Set when a training elsewhere (:meth:`expect`) has ended, well or not.
        self._elsewhere: threading.Event | None = None
        self._exact = self._exact_phrasings(content, plain)
        self._folded = self._exact_phrasings(content, fold)
        self._harm = {f"faq:{t.id}" for t in content.faq.values() if t.harm}
        self._harm |= {i.label for i in content.intents.values() if i.harm}
        self._harm_roles = frozenset(content.harm_roles)
        self._roles = content.roles
        self._same = {other: label for label, others in content.same.items() for other in others}
        self._groups = {
            x: frozenset((label, *others))
            for label, others in content.same.items()
            for x in (label, *others)
        }
        self._steps = content.step_topics
        #: Each step's own words, normalised (see :meth:`_on_subject`).
        self._step_words = {
            step: self._phrases_of(topics.words) for step, topics in content.step_topics.items()
        }
        self._code_steps = frozenset(s for s, topics in content.step_topics.items() if topics.code)
        #: Scam phrases by their first word (a message is looked through word by word).
        self._scam: dict[str, list[tuple[str, ...]]] = defaultdict(list)
        for trigger in content.scam_triggers:
            phrase = tuple(self._normaliser.words(trigger))
            if phrase:
                self._scam[phrase[0]].append(phrase)
        self._guards = {
            label: _Guard(
                needs=self._phrases(guard.needs),
                bars=self._phrases(guard.bars),
                first=tuple(self._phrases(group) for group in guard.first),
            )
            for label, guard in content.guards.items()
        }
        phrases = [p for g in self._guards.values() for p in (*g.needs, *g.bars)]
        phrases += [p for g in self._guards.values() for group in g.first for p in group]
        self._longest = max((len(p) for p in phrases), default=1)
        #: Normalised label and words of the options seen (they come back on every message).
        self._names: dict[Shown, _Names] = {}
        self._mappings: dict[Context, dict[str, tuple[str, bool]]] = {}

    #: The parts of the content a component learns from (a copy of the content that shares
    #: them -- a test changing a text -- shares the trained component).
    LEARNT = (
        "faq", "intents", "faq_negative", "lexicon", "emoji", "units", "thresholds", "roles",
        "harm_roles", "same", "step_topics", "scam_triggers", "guards",
    )  # fmt: skip
    _cache: dict[tuple[int, ...], tuple[tuple[object, ...], Understanding]] = {}  # noqa: RUF012

    @classmethod
    def from_content(cls, content: Content) -> Understanding:
        """The component for ``content``, built once per process for the same teaching."""
        parts = tuple(getattr(content, name) for name in cls.LEARNT)
        key = tuple(id(part) for part in parts)
        cached = cls._cache.get(key)
        if cached is None or any(a is not b for a, b in zip(cached[0], parts, strict=True)):
            cached = (parts, cls(content))  # the parts are kept: their ids stay theirs
            cls._cache[key] = cached
        return cached[1]

    @property
    def thresholds(self) -> Thresholds:
        return self._thresholds

    @thresholds.setter
    def thresholds(self, thresholds: Thresholds) -> None:
        self._thresholds = thresholds
        self.forget()

    def forget(self) -> None:
        """Forget the readings kept (new thresholds; a benchmark timing fresh messages)."""
        self._readings.clear()

    def warm(self) -> None:
        """Train the classifier now, in this process (idempotent; safe from another thread).
        The application trains it in a child process instead (:meth:`install`)."""
        self._classifier  # noqa: B018 (trains it)

    @property
    def training(self) -> tuple[list[str], list[str]]:
        """What the classifier learns from: (normalised texts, labels), gathered when first
        asked (about 1 s for 9,400 examples)."""
        training = self._training
        if training is None:
            training = self._training = training_set(self._content, self._normaliser)
        return training

    def fingerprint(self) -> str:
        """A digest of all the content that :attr:`training` is made of, without making it
        (1-2 s for 11,000 examples, at every start): its examples, its tables and its typed
        messages (while unparsed, their files' bytes). With the code that normalises and
        labels them (``app.training.ModelCache.key`` adds it), equal fingerprints make equal
        training sets."""
        content = self._content
        digest = hashlib.sha256()
        tables = {
            "faq": [(t.id, t.title, t.examples) for t in content.faq.values()],
            "intents": [(i.label, i.examples) for i in content.intents.values()],
            "negative": content.faq_negative,
            "words": [content.lexicon, content.emoji, content.units, content.aliases],
            "roles": content.roles,
            "options": [
                (sid, [(o.id, o.aliases, o.faq, o.action, o.goto, o.sets) for o in s.options])
                for sid, s in content.screens.items()
            ],
            "steps": [s.id for s in content.install],
        }
        digest.update(json.dumps(tables, ensure_ascii=False, default=str).encode("utf-8"))
        if content.typed is not None:
            typed = [(m.text, m.screen, m.expect) for m in content.typed]
            digest.update(json.dumps(typed, ensure_ascii=False).encode("utf-8"))
        else:
            for name, data in content.typed_sources:
                digest.update(name.encode("utf-8") + b"\0" + data)
        return digest.hexdigest()

    def install(self, fitted: Fitted) -> None:
        """Use a classifier trained elsewhere (a child process, from :attr:`training`)."""
        from bot.classifier import Classifier

        with self._training_lock:
            if self._model is None:
                self._model = Classifier(fitted)

    def expect(self, done: threading.Event) -> None:
        """A classifier is being trained elsewhere and :meth:`install` ed before ``done`` is
        set: a message that needs it meanwhile waits for it rather than training a second."""
        self._elsewhere = done

    @property
    def ready(self) -> bool:
        """Whether the classifier is trained (messages that need it would not wait)."""
        return self._model is not None

    @property
    def _classifier(self) -> Classifier:
        model = self._model
        if model is None and self._elsewhere is not None:
            self._elsewhere.wait(ELSEWHERE_WAIT)
            model = self._model
        if model is None:
            with self._training_lock:
                if self._model is None:
                    from bot.classifier import Classifier, Recipe  # numpy: imported when needed

                    self._model = Classifier.trained(*self.training, self._recipe or Recipe())
                model = self._model
        return model

    @property
    def _labels(self) -> tuple[str, ...]:
        return self._classifier.labels

    def read(self, text: str, context: Context = Context()) -> Reading:
        """What ``text``, typed in ``context``, asks for."""
        if len(text) > MEMO_CHARS:
            return self._read(text, context)
        key = (text, context)
        reading = self._readings.get(key)
        if reading is None:
            if len(self._readings) >= MEMO:
                self._readings.clear()
            reading = self._readings[key] = self._read(text, context)
        return reading

    def _read(self, text: str, context: Context) -> Reading:
        raw = text.strip()
        words = self._normaliser.words(raw)
        scam = self._sounds_like_scam(words)
        if not words:
            return Reading(Unsure(), 0.0, scam=scam, how="empty")
        if _NUMBER.fullmatch(raw):
            n = int(raw.rstrip(".)"))
            in_range = 1 <= n <= len(context.options)
            return Reading(Number(n, in_range), 1.0, scam=scam, how="number")
        picked = self._typed_option(raw, context)
        if picked is not None:
            reaction = self._option_reaction(picked, context)
            return Reading(decision_for(reaction), 1.0, scam=scam, how="option words")
        probs, found = self._label_scores(raw, scam)
        if (
            found.how == "rule"
            and len(words) <= CODE_REPLY_WORDS
            and _on_step_main(context)
            and context.screen in self._code_steps
        ):
            # On the step where the code is typed into the app, a short "nhap ma roi" is the
            # step done: the first aid for a code given away is left to the classifier.
            probs, found = self._label_scores(raw, scam, rules=False)
        if probs.get(OOS, 0.0) > 0.0 and self._on_subject(words, context):
            # "Forgot my VNeID password" is out of scope at the menu, but on the VNeID log-in
            # step it is a complaint about the step: what was read as out of scope is "stuck".
            probs = dict(probs)
            probs[STUCK] = probs.get(STUCK, 0.0) + probs.pop(OOS)
        # A phrasing taught exactly says what it means: no option's resemblance may blur it.
        exact = found.how in ("example", "rule")
        # An option's resemblance chooses it for a reply ("huong dan cai"), not for a story
        # that happens to use its words ("my son installed it for me... how do I sign?").
        near = exact or len(words) > self.thresholds.evidence_words
        evidence = {} if near else self._option_evidence(" ".join(words), context)
        reactions = self._reactions(probs, context, evidence)
        reading = self._decide(raw, probs, reactions, context, found)
        if isinstance(reading.decision, Clarify) and found.how == "classifier":
            if self._complaint_on_subject(words, reading.decision, context):
                return replace(reading, decision=Stuck(), how="step words")
            return self._settled_by_question(raw, words, reading, context, found) or reading
        return reading

    def _complaint_on_subject(
        self, words: Sequence[str], asked: Clarify, context: Context
    ) -> bool:
        """Whether a message that would be asked back, best read as a complaint about the
        current step, is one: it speaks of the step's own subject (its words: "khong thay muc"
        on the VNeID menu, "nhap pin ... khong khop" on the PIN step) and the step's "why"
        option is not among the candidates ("why must I log in to VNeID" is a question, not a
        complaint). Showing a step's fixes harms nothing. dev+a+b+c top1 0.926 -> 0.927, d
        0.880 -> 0.883, wrong unchanged; taking "stuck" when second or third too gave dev 0.929
        but d's wrong 0.035 -> 0.038 ("tai ve roi" on the store step is done, not stuck)."""
        if asked.candidates[0] != "stuck" or not self._on_subject(words, context):
            return False
        why = {f"option:{o.id}" for o in context.options if "alias:why" in o.roles}
        return why.isdisjoint(asked.candidates)

    def _settled_by_question(
        self,
        raw: str,
        words: Sequence[str],
        reading: Reading,
        context: Context,
        found: _Found,
    ) -> Reading | None:
        """A story that would be asked back, read again by its question sentence alone
        (:func:`question_of`): the reading of the question, if it decides one of the
        candidates offered. "My son set the PIN and went back to Korea. I tried 3 times,
        all wrong. What now?" is asked back between the PIN and install; its last sentences
        alone are the forgotten PIN. The guards still read the whole message (a bar anywhere in
        the story still bars). On dev+a+b+c top1 0.923 -> 0.926, on d 0.878 -> 0.880, wrong
        unchanged; taking a question's decision when the whole was not understood at all
        changed nothing more, and reading a clause after a comma as a sentence lowered
        declined_oos (0.952 -> 0.950): neither is done."""
        assert isinstance(reading.decision, Clarify)
        question = self._normaliser.text(question_of(raw))
        if not question or question == " ".join(words):
            return None
        t = self.thresholds
        scores = self._classifier.score(question, t.temperature)
        probs = {label: float(p) for label, p in zip(self._labels, scores.probs, strict=True)}
        grams = self._grams_of(raw)
        for label, guard in self._guards.items():
            if probs.get(label, 0.0) > 0.0 and not guard.passes(grams):
                probs[label] = 0.0
        settled = self._decide(raw, probs, self._reactions(probs, context), context, found)
        if isinstance(settled.decision, Clarify | Unsure):
            return None
        if reaction_of(settled.decision) not in reading.decision.candidates:
            return None
        return replace(settled, how="question")

    def meanings(self, decision: Decision, context: Context = Context()) -> frozenset[str]:
        """Everything ``decision`` stands for in ``context``: its reaction, and the labels
        that lead to the same place (``Pick("install")`` on the menu is also ``nav:install``;
        :class:`Stuck` on the ID-photo step is also ``faq:photo_fail``). For evaluation."""
        chooser = self._choosers(context)
        out: set[str] = set()
        match decision:
            case Pick(option):
                out.add(f"option:{option}")
                out |= {label for label, o in chooser.items() if o == option and ":" in label}
            case Number(n, True):
                reaction = self._option_reaction(context.options[n - 1], context)
                return self.meanings(decision_for(reaction), context) | {"number"}
            case Stuck():
                out.add("stuck")
                out |= {f"option:{o.id}" for o in context.options if "alias:stuck" in o.roles}
                step = self._steps.get(context.screen)
                out |= set(step.stuck) if step is not None else set()
            case _:
                out.add(reaction_of(decision))
        for label in list(out):
            out |= self._groups.get(label, frozenset())
        return frozenset(x for x in out if not x.startswith(("reply:", "alias:")))

    # --- reading --------------------------------------------------------------------------

    def _typed_option(self, raw: str, context: Context) -> Shown | None:
        typed = self._normaliser.emoji_to_words(raw)
        folded = fold(typed)
        if not folded:
            return None
        marked = plain(typed)
        if marked == folded:
            marked = ""  # typed without diacritics
        for option in context.options:
            names = self._names_of(option)
            for name, name_marked in zip(names.folded, names.plain, strict=True):
                if name == folded and self._same_word(marked, name_marked, option, context):
                    return option
        if len(folded) >= 4 and context.options:
            labels = {o.id: self._names_of(o).folded[0] for o in context.options}
            found = process.extractOne(
                folded, labels, scorer=fuzz.ratio, score_cutoff=LABEL_SIMILARITY
            )
            if found:
                return next(o for o in context.options if o.id == found[2])
        words = folded.split()
        taught = plain(typed) in self._exact or folded in self._folded
        if len(words) >= PART_WORDS and not taught:
            # Words of a label typed as they stand in it ("chi phi" for "Chi phi, thoi han,
            # cach dung"): that option, if only one has them and choosing it harms nothing
            # (a phrasing taught exactly keeps its meaning: "lua dao" is the scam card).
            marked_words = marked.split()
            parts = [
                o
                for o in context.options
                if self._harm_roles.isdisjoint(o.roles)
                and _within(words, self._names_of(o).folded[0].split())
                and (
                    not marked_words
                    or not self._names_of(o).plain[0]
                    or _within(marked_words, self._names_of(o).plain[0].split())
                )
            ]
            if len(parts) == 1:
                return parts[0]
        if len(words) <= NAME_WORDS:
            named = [o for o in context.options if any(n in words for n in o.names)]
            if len(named) == 1:
                return named[0]
        return None

    def _same_word(self, marked: str, name_marked: str, option: Shown, context: Context) -> bool:
        """Whether a typed text that folds like one of an option's words is that word.
        ``marked``: the text with its diacritics ("" if typed without); ``name_marked``: the
        word's ("" if it has none). Both with diacritics: they must agree ("stop" typed with
        its marks is not "right", though both fold to "dung"). Typed without them, a word with
        diacritics is taken unless the folded text is taught as something this option does
        not take ("dung" alone is taught as stop)."""
        if not name_marked:
            return True
        if marked:
            return marked == name_marked
        label = self._folded.get(fold(name_marked))
        if label is None:
            return True
        return self._choosers(context).get(self._same.get(label, label)) == option.id

    def _names_of(self, option: Shown) -> _Names:
        """The option's label and words, folded (typed exactly) and normalised (compared)."""
        names = self._names.get(option)
        if names is None:
            if len(self._names) >= MEMO:
                self._names.clear()
            texts = (option.label, *option.words)
            normalised = (self._normaliser.text(t) for t in texts)
            typed = [self._normaliser.emoji_to_words(t) for t in texts]
            folded = tuple(fold(t) for t in typed)
            names = self._names[option] = _Names(
                folded=folded,
                plain=tuple(
                    "" if p == f else p for p, f in zip(map(plain, typed), folded, strict=True)
                ),
                normalised=tuple(dict.fromkeys(n for n in normalised if n)),
            )
        return names

    def _grams_of(self, raw: str) -> frozenset[tuple[str, ...]]:
        """The runs of words the guards look phrases up in, clause by clause: a phrase
        across a comma or a full stop is not one ("co sao khong, toi phai lam gi" does not
        say "khong toi", the OTP has not arrived: folded, "toi" is both "I" and "arrive")."""
        grams: set[tuple[str, ...]] = set()
        for clause in _CLAUSE.split(raw):
            grams |= _grams(self._normaliser.words(clause), self._longest)
        return frozenset(grams)

    def _label_scores(
        self, raw: str, scam: bool, rules: bool = True
    ) -> tuple[dict[str, float], _Found]:
        """Label probabilities of ``raw``, and how they were found: a first-aid rule (unless
        ``rules`` is false), a taught phrasing, or the classifier; then the guards (words a
        label needs or that bar it) take their labels out."""
        words = self._normaliser.words(raw)
        grams = self._grams_of(raw)
        for label, guard in self._guards.items():
            if rules and guard.first and guard.passes(grams) and guard.fires_first(grams):
                return {label: 1.0}, _Found(scam, "rule", raw, 1.0)
        typed = self._normaliser.emoji_to_words(raw)
        exact = self._exact.get(plain(typed)) or self._folded.get(fold(typed))
        if exact is not None:
            return {exact: 1.0}, _Found(scam, "example", raw, 1.0)
        text = " ".join(words)
        t = self.thresholds
        temperature = t.short_temperature if len(words) <= SHORT_WORDS else t.temperature
        scores = self._classifier.score(text, temperature)
        probs = {label: float(p) for label, p in zip(self._labels, scores.probs, strict=True)}
        if t.question_oos < 1.0 and probs.get(OOS, 0.0) > t.question_oos:
            # A story read whole looks like small talk about the market or the family: the
            # question alone says what is asked ("... How long does it take in all?").
            question = self._normaliser.text(question_of(raw))
            if question:
                asked = self._classifier.score(question, t.temperature)
                asked_probs = dict(zip(self._labels, map(float, asked.probs), strict=True))
                if asked_probs.get(OOS, 0.0) < probs[OOS]:
                    probs = asked_probs
        for label, guard in self._guards.items():
            if probs.get(label, 0.0) > 0.0 and not guard.passes(grams):
                probs[label] = 0.0
        nearest = self._classifier.examples[scores.nearest]
        return probs, _Found(scam, "classifier", nearest, scores.similarity)

    def _phrases_of(self, texts: Sequence[str]) -> tuple[tuple[str, ...], ...]:
        return tuple(p for p in (tuple(self._normaliser.words(t)) for t in texts) if p)

    def _on_subject(self, words: Sequence[str], context: Context) -> bool:
        """Whether a message typed on an install step speaks of that step's own subject."""
        if not _on_step_main(context):
            return False
        return any(contains(words, p) for p in self._step_words.get(context.screen, ()))

    def _phrases(self, texts: Sequence[str]) -> tuple[tuple[str, ...], ...]:
        return tuple(p for p in (tuple(self._normaliser.words(t)) for t in texts) if p)

    def _option_evidence(self, text: str, context: Context) -> dict[str, float]:
        """Reaction -> how much the message resembles an option's label or words (the best
        cosine similarity): an option is also chosen by saying what it says."""
        evidence: dict[str, float] = {}
        for option in context.options:
            names = self._names_of(option).normalised
            if names:
                best = max(self._classifier.similarity(text, n) for n in names)
                reaction = self._option_reaction(option, context)
                evidence[reaction] = max(evidence.get(reaction, 0.0), best)
        return evidence

    def _reactions(
        self,
        probs: Mapping[str, float],
        context: Context,
        evidence: Mapping[str, float] | None = None,
    ) -> dict[str, float]:
        """Label probabilities summed into reactions in this context, with the prior and the
        options' evidence."""
        mapped = self._mapping(context)
        prior = self.thresholds.prior
        scores: dict[str, float] = defaultdict(float)
        for label, p in probs.items():
            if p <= 0.0:
                continue
            found = mapped.get(label)
            if found is None:
                found = mapped[label] = self._mapped(label, context)
            reaction, local = found
            scores[reaction] += p * (prior if local else 1.0)
        t = self.thresholds
        for reaction, similarity in (evidence or {}).items():
            # Only what rises above the floor counts: every label shares a few common words.
            scores[reaction] += t.label_weight * max(0.0, similarity - t.label_floor)
        total = sum(scores.values()) or 1.0
        return {r: s / total for r, s in scores.items()}

    def _mapping(self, context: Context) -> dict[str, tuple[str, bool]]:
        """Label -> (its reaction in ``context``, whether it is local to the screen); kept
        per context (the same few contexts come back on every message)."""
        mapped = self._mappings.get(context)
        if mapped is None:
            if len(self._mappings) >= MEMO:
                self._mappings.clear()
            mapped = self._mappings[context] = {}
        return mapped

    def _mapped(self, label: str, context: Context) -> tuple[str, bool]:
        reaction = self._reaction(label, context, self._choosers(context))
        return reaction, reaction == "stuck" or reaction.startswith("option:")

    def _choosers(self, context: Context) -> dict[str, str]:
        """Label -> the first option shown that it chooses."""
        chooser: dict[str, str] = {}
        step = self._steps.get(context.screen) if _on_step_main(context) else None
        for option in context.options:
            if _on_step_main(context) and "alias:stuck" in option.roles:
                continue  # a complaint is a Stuck reaction, with the step's own topics
            for role in option.roles:
                targets = list(self._roles.get(role, ()))
                if role.startswith(("faq:", "nav:")):
                    targets.append(role)
                if role == "alias:why" and step is not None:
                    targets += step.why
                for label in targets:
                    chooser.setdefault(label, option.id)
        return chooser

    def _reaction(self, label: str, context: Context, chooser: Mapping[str, str]) -> str:
        label = self._same.get(label, label)
        if _on_step_main(context):
            step = self._steps.get(context.screen)
            if label == "reply:stuck" or (step is not None and label in step.stuck):
                return "stuck"
        if label in chooser:
            return f"option:{chooser[label]}"
        kind, _, name = label.partition(":")
        if kind in ("nav", "faq"):
            return label
        if kind == "reply":
            return f"social:{name}"
        return OOS

    def _option_reaction(self, option: Shown, context: Context) -> str:
        if _on_step_main(context) and "alias:stuck" in option.roles:
            return "stuck"
        return f"option:{option.id}"

    def _decide(
        self,
        raw: str,
        probs: Mapping[str, float],
        reactions: Mapping[str, float],
        context: Context,
        found: _Found,
    ) -> Reading:
        t = self.thresholds
        ranked = sorted(reactions.items(), key=lambda rs: (-rs[1], rs[0]))

        def reading(decision: Decision, score: float) -> Reading:
            return Reading(
                decision,
                round(score, 4),
                candidates=tuple(Candidate(r, round(s, 4)) for r, s in ranked[:KEEP]),
                scam=found.scam,
                how=found.how,
                nearest=found.nearest,
            )

        real = [(r, s) for r, s in ranked if r != OOS]
        if not real or found.similarity < t.similarity:
            return reading(Unsure(), real[0][1] if real else 0.0)
        best, score = real[0]
        runner_up = next((s for r, s in ranked if r != best), 0.0)
        # A short message, or one read as a reply ("ok", "roi"), never fires a harmful reaction.
        reply = sum(p for label, p in probs.items() if label.startswith("reply:"))
        short = len(fold(raw).split()) < t.harm_words or reply >= 0.5
        harmful = self._harmful(best, context)
        need = max(t.harm_accept, t.accept) if harmful else t.accept
        if harmful and short:
            # "ok" on the delete confirmation: neither erase nor ask back about the others.
            return reading(Unsure(), score)
        if score >= need and score - runner_up >= t.margin:
            return reading(decision_for(best), score)
        offered = tuple(
            r
            for r, s in real[:CLARIFY_MAX]
            if s >= t.clarify_min
            and not r.startswith("social:")
            and not (short and self._harmful(r, context))
        )
        if score >= t.clarify_floor and offered:
            return reading(Clarify(offered), score)
        return reading(Unsure(), score)

    def _harmful(self, reaction: str, context: Context) -> bool:
        kind, _, name = reaction.partition(":")
        if kind == "option":
            option = next((o for o in context.options if o.id == name), None)
            return option is not None and not self._harm_roles.isdisjoint(option.roles)
        return reaction in self._harm

    # --- helpers --------------------------------------------------------------------------

    def _exact_phrasings(self, content: Content, key_of: Callable[[str], str]) -> dict[str, str]:
        """Taught phrasings -> their label, when only one label has it: compared with the
        diacritics (``plain``: "stop" and "right" differ) or without (``fold``: "dung" is
        taught as one thing only)."""
        table: dict[str, str] = {}
        clash: set[str] = set()
        taught = [(e, f"faq:{t.id}") for t in content.faq.values() for e in t.examples]
        taught += [(e, i.label) for i in content.intents.values() for e in i.examples]
        taught += [(e, OOS) for e in content.faq_negative]
        for example, label in taught:
            key = key_of(self._normaliser.emoji_to_words(example))
            if table.setdefault(key, label) != label:
                clash.add(key)
        return {k: v for k, v in table.items() if k not in clash and k}

    def _sounds_like_scam(self, words: Sequence[str]) -> bool:
        scam = self._scam
        for i, word in enumerate(words):
            for phrase in scam.get(word, ()):
                if tuple(words[i : i + len(phrase)]) == phrase:
                    return True
        return False


@dataclass(frozen=True, slots=True)
class _Names:
    """An option's label and words: ``folded`` (the label first), ``plain`` (the same with
    their diacritics, "" for a word without) and ``normalised``."""

    folded: tuple[str, ...]
    plain: tuple[str, ...]
    normalised: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Guard:
    """A label's guard (``content.guards``), in normalised words."""

    needs: tuple[tuple[str, ...], ...]
    bars: tuple[tuple[str, ...], ...]
    first: tuple[tuple[tuple[str, ...], ...], ...]

    def passes(self, grams: frozenset[tuple[str, ...]]) -> bool:
        """Whether a message (its :func:`_grams`) may get the guarded label: one of its cue
        words, none that bar it."""
        if self.needs and grams.isdisjoint(self.needs):
            return False
        return grams.isdisjoint(self.bars)

    def fires_first(self, grams: frozenset[tuple[str, ...]]) -> bool:
        return all(not grams.isdisjoint(group) for group in self.first)


#: What ends a clause for the guards' phrases (a decimal point or a link's dots too: no
#: guard phrase has a number or a link in it).
_CLAUSE = re.compile(r"[.,;:!?\n\u2026]+")


def _grams(words: Sequence[str], longest: int) -> frozenset[tuple[str, ...]]:
    """Every run of 1 to ``longest`` words of a message (phrases are looked up in it)."""
    return frozenset(
        tuple(words[i : i + n]) for n in range(1, longest + 1) for i in range(len(words) - n + 1)
    )


@dataclass(frozen=True, slots=True)
class _Found:
    """How a message's label scores were found (for the reading's explanation)."""

    scam: bool
    how: str
    nearest: str
    similarity: float


#: A sentence: up to its end mark (or the end of the message).
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")
#: A sentence with fewer words is a formula ("Em oi?", "Cho toi hoi.") more than a question.
QUESTION_WORDS = 4


def question_of(raw: str) -> str:
    """The question of a message told as a story: its last sentence that asks (ends with
    "?"), with the sentence before it if it is a mere formula; without a question mark, the
    last two sentences. "" for a message of one sentence (then the whole is the question)."""
    sentences = [s.strip() for s in _SENTENCE.findall(raw) if any(c.isalnum() for c in s)]
    if len(sentences) < 2:
        return ""
    asks = [i for i, s in enumerate(sentences) if s.endswith("?")]
    if not asks:
        return " ".join(sentences[-2:])
    last = asks[-1]
    first = last - 1 if last and len(sentences[last].split()) < QUESTION_WORDS else last
    return " ".join(sentences[first : last + 1])


def _within(words: Sequence[str], label: Sequence[str]) -> bool:
    """Whether ``words`` stand in ``label`` in a row."""
    n = len(words)
    return any(list(label[i : i + n]) == list(words) for i in range(len(label) - n + 1))


def _on_step_main(context: Context) -> bool:
    return context.install_step and context.view == ""
