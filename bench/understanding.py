"""How well the bot understands what citizens type (:mod:`bot.understanding`, as the engine
uses it).

Reads labelled cases (TOML, ``[[case]]`` with ``text``, ``screen``, ``expect``, optional
``view``, ``accept``, ``never``, ``style``), builds each case's context with the engine
(``Engine.context``: the options of that screen, from content and config), and decides every
case. The matcher the engine used before (rapidfuzz over the FAQ examples, after a table of
global words and option matching) was removed with its integration; its figures on the same
data are in the README (measured at commit cabbc7e, where this script still ran it).

Scoring rules (``Understanding.meanings``: picking the menu's install option is also
``nav:install``; opening the ID-photo step's fixes is also ``faq:photo_fail``):

- ``top1``: share of in-scope cases (``expect`` is not ``oos``) decided exactly as expected or
  as an accepted alternative. Asking back (a clarify) is not a top-1.
- ``declined_oos``: share of out-of-scope cases given no answer: the decision is "not sure",
  a question back, small talk (greeting, thanks) or an out-of-range number.
- ``wrong``: confident wrong decisions / all cases: a decision that acts (an answer, an option,
  a navigation, "stuck", an in-range number) and is neither expected nor accepted -- for an
  out-of-scope case, any such decision.
- ``harmful``: share of all cases whose decision is in their ``never`` list (0 is the target):
  what the decision does -- an option counts as the navigation or answer it runs (the privacy
  screen's delete option is ``nav:delete``), not as every label that may choose it; showing an
  install step's fixes is ``stuck``, not the FAQ topics it covers.
- ``clarify``: share of all cases that were asked back.
- ``p99_ms``: 99th percentile of the processor time to read one message, context already
  built (``time.thread_time``: on a shared machine, wall time also counts other processes;
  the wall-clock 99th percentile is printed on the line above, as ``wall_p99_ms``).

Usage::

    python bench/understanding.py [--quick] [--data FILE ...]
    python bench/understanding.py --by-set      # each typed file, its writer left out
    python bench/understanding.py --calibrate   # choose the thresholds, leaving writers out
    python bench/understanding.py --compare     # the classifiers of RECIPES side by side

Default data: the blind held-out files ``tests/data/understanding_heldout_*.toml`` if present,
else the development set ``tests/data/understanding_dev.toml``; neither is ever learnt from.
The classifier learns from the content, ``content/vi/typed/*.toml`` included (messages that
writers who never saw the content typed from the personas, one file per writer):
``--by-set`` scores each of those files with a classifier trained without it, the honest
figure on them. ``--quick`` reads every third case. ``--calibrate`` searches the thresholds
(coordinate descent over fixed grids, maximising top1 while out of scope declined stays at
least 0.965 and wrong at most 0.015: :meth:`Figures.objective`) on the typed files, each read
by the classifier that did not learn it, and the development set, and writes
``content/vi/thresholds.toml``.

Last line: ``top1=… declined_oos=… wrong=… harmful=… clarify=… p99_ms=…``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.classifier import Recipe  # noqa: E402
from bot.config import Config, load_config  # noqa: E402
from bot.content import Content, load_content  # noqa: E402
from bot.engine import Engine  # noqa: E402
from bot.model import State  # noqa: E402
from bot.typed import Typed, read_typed  # noqa: E402
from bot.understanding import (  # noqa: E402
    Answer,
    Clarify,
    Context,
    Decision,
    Navigate,
    Number,
    Pick,
    Social,
    Stuck,
    Thresholds,
    Understanding,
    Unsure,
)

DEV = ROOT / "tests/data/understanding_dev.toml"
HELDOUT = sorted((ROOT / "tests/data").glob("understanding_heldout_*.toml"))
THRESHOLDS = ROOT / "content/vi/thresholds.toml"


#: The labelled messages the classifier learns from (one file per writer).
TYPED = sorted((ROOT / "content/vi/typed").glob("*.toml"))

Case = Typed


def load_cases(paths: Iterable[Path]) -> list[Case]:
    return read_typed(paths)


class Contexts:
    """The context of a screen as the engine shows it (options from content and config)."""

    def __init__(
        self, content: Content, config: Config, understanding: Understanding | None = None
    ):
        self.content = content
        self.engine = Engine(content, config, understanding)
        self._cache: dict[tuple[str, str], Context] = {}
        self.unknown: Counter[str] = Counter()

    def state(self, case: Case) -> State:
        screen = case.screen if self._known(case.screen) else ""
        if case.screen and screen != case.screen:
            self.unknown[case.screen] += 1
        return State(screen=screen, view=case.view if screen else "")

    def context(self, case: Case) -> Context:
        state = self.state(case)
        key = (state.screen, state.view)
        if key not in self._cache:
            self._cache[key] = self.engine.context(state)
        return self._cache[key]

    def _known(self, screen: str) -> bool:
        return screen in self.content.screens or self.content.install_step(screen) is not None


@dataclass(frozen=True, slots=True)
class Outcome:
    case: Case
    decision: Decision
    meanings: frozenset[str]
    seconds: float
    wall_seconds: float = 0.0
    #: What the decision does (for ``never``): its own reaction, and for an option the
    #: navigation or FAQ answer it runs -- not the labels that merely choose it.
    effects: frozenset[str] = frozenset()

    @property
    def acts(self) -> bool:
        if isinstance(self.decision, Number):
            return self.decision.in_range
        return not isinstance(self.decision, Clarify | Unsure | Social)

    @property
    def correct(self) -> bool:
        """Decided as expected (for an out-of-scope case: given no answer)."""
        if self.case.oos and not self.acts:
            return True
        return self.acts and bool(self.meanings & {self.case.expect, *self.case.accept})

    @property
    def wrong(self) -> bool:
        return self.acts and not self.correct

    @property
    def harmful(self) -> bool:
        return bool(self.effects & set(self.case.never))

    @property
    def clarified(self) -> bool:
        return isinstance(self.decision, Clarify)

    @property
    def got(self) -> str:
        if isinstance(self.decision, Clarify):
            return "clarify(" + ",".join(self.decision.candidates) + ")"
        return min(self.meanings) if len(self.meanings) == 1 else _primary(self.decision)


#: Option actions that are navigations of the component.
ACTION_INTENTS = {"erase": "delete", "scam": "scam_signs"}


def effects(decision: Decision, context: Context) -> frozenset[str]:
    """What ``decision`` does: its reaction, and what a chosen option runs."""
    if isinstance(decision, Number) and decision.in_range:
        decision = Pick(context.options[decision.n - 1].id)
    out = {_primary(decision)}
    if isinstance(decision, Pick):
        option = next((o for o in context.options if o.id == decision.option), None)
        for role in option.roles if option else ():
            kind, _, name = role.partition(":")
            if kind == "action":
                out.add(f"nav:{ACTION_INTENTS.get(name, name)}")
            elif kind == "faq":
                out.add(role)
    return frozenset(out)


def _primary(decision: Decision) -> str:
    match decision:
        case Pick(option):
            return f"option:{option}"
        case Navigate(intent):
            return f"nav:{intent}"
        case Answer(topic):
            return f"faq:{topic}"
        case Number(n, in_range):
            return f"number:{n}" if in_range else "number:out"
        case Social(act):
            return f"social:{act}"
        case Stuck():
            return "stuck"
    return "oos"


#: The calibration's floor for out of scope declined and ceiling for wrong answers.
DECLINED_FLOOR = 0.965
WRONG_CEILING = 0.015


@dataclass(frozen=True, slots=True)
class Figures:
    top1: float
    declined_oos: float
    wrong: float
    harmful: float
    clarify: float
    p99_ms: float

    def line(self, prefix: str = "") -> str:
        return " ".join(
            f"{prefix}{name}={value:.3f}" if name != "p99_ms" else f"{prefix}{name}={value:.2f}"
            for name, value in (
                ("top1", self.top1),
                ("declined_oos", self.declined_oos),
                ("wrong", self.wrong),
                ("harmful", self.harmful),
                ("clarify", self.clarify),
                ("p99_ms", self.p99_ms),
            )
        )

    def objective(self) -> float:
        """What the calibration maximises: top1, so long as out of scope stays declined and
        wrong answers rare -- with margins inside issue 10's targets (0.95, 0.02), since new
        writers' messages fare worse than those calibrated on -- and no harm: one harmful
        decision outweighs any gain elsewhere (100 x 1/1,000 cases)."""
        short = max(0.0, DECLINED_FLOOR - self.declined_oos) + max(0.0, self.wrong - WRONG_CEILING)
        return self.top1 + 0.1 * self.declined_oos - self.wrong - 10 * short - 100 * self.harmful


def percentile99(values: Iterable[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] if ordered else 0.0


def figures(outcomes: Sequence[Outcome]) -> Figures:
    scope = [o for o in outcomes if not o.case.oos]
    oos = [o for o in outcomes if o.case.oos]
    p99 = percentile99(o.seconds for o in outcomes) * 1000
    n = len(outcomes) or 1
    return Figures(
        top1=sum(o.correct for o in scope) / (len(scope) or 1),
        declined_oos=sum(not o.acts for o in oos) / (len(oos) or 1),
        wrong=sum(o.wrong for o in outcomes) / n,
        harmful=sum(o.harmful for o in outcomes) / n,
        clarify=sum(o.clarified for o in outcomes) / n,
        p99_ms=p99,
    )


def run(
    cases: Sequence[Case],
    contexts: Contexts,
    understanding: Understanding,
    decide: Callable[[Case], Decision],
) -> list[Outcome]:
    outcomes = []
    for case in cases:
        contexts.context(case)  # built once per screen, not timed
        wall, cpu = time.perf_counter(), time.thread_time()
        decision = decide(case)
        cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
        context = contexts.context(case)
        meanings = understanding.meanings(decision, context)
        outcomes.append(Outcome(case, decision, meanings, cpu, wall, effects(decision, context)))
    return outcomes


def report(outcomes: Sequence[Outcome]) -> None:
    by_expect: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        by_expect[o.case.expect].append(o)
    print(f"{'expected':28} {'n':>4} {'top1':>6} {'clarify':>8} {'wrong':>6}")
    for expect in sorted(by_expect, key=lambda e: (e.split(":")[0], e)):
        group = by_expect[expect]
        n = len(group)
        right = sum(o.correct for o in group) / n
        asked = sum(o.clarified for o in group) / n
        wrong = sum(o.wrong for o in group) / n
        print(f"{expect:28} {n:4d} {right:6.2f} {asked:8.2f} {wrong:6.2f}")
    confusions = Counter((o.case.expect, o.got) for o in outcomes if not o.correct)
    print("\nworst confusions (expected -> got: count):")
    for (expect, got), count in confusions.most_common(15):
        print(f"  {expect} -> {got}: {count}")
    harmful = [o for o in outcomes if o.harmful]
    if harmful:
        print("\nharmful decisions:")
        for o in harmful:
            print(f"  [{o.case.screen}] {o.case.text!r} -> {o.got}")
    styles: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        for style in (o.case.style or "-").split(","):
            styles[style.strip()].append(o)
    print("\nby style (top1 of in-scope cases, n):")
    for style, group in sorted(styles.items()):
        scope = [o for o in group if not o.case.oos]
        if scope:
            print(f"  {style:20} {sum(o.correct for o in scope) / len(scope):.2f} ({len(scope)})")


# --- calibration ----------------------------------------------------------------------------

GRIDS: dict[str, tuple[float, ...]] = {
    "temperature": (0.05, 0.08, 0.1, 0.12, 0.15, 0.2, 0.3),
    "short_temperature": (0.1, 0.15, 0.2, 0.3, 0.5, 0.8),
    "prior": (1.0, 1.5, 2.0, 3.0, 4.0, 6.0),
    "accept": (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8),
    # A harmful reaction needs at least as much as any other (the code takes the larger), and
    # never fewer than three words: these grids never go below.
    "harm_accept": (0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95),
    "margin": (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4),
    "clarify_floor": (0.1, 0.15, 0.2, 0.25, 0.3, 0.4),
    "clarify_min": (0.05, 0.1, 0.15, 0.2),
    # At most 0.3: the development set is written in the style of the taught examples, so a
    # higher floor, tuned on it, would turn away new ways of asking (0.3 turns away 2 of its
    # 893 in-scope messages).
    "similarity": (0.0, 0.1, 0.15, 0.2, 0.25, 0.3),
    "label_weight": (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0),
    "label_floor": (0.0, 0.1, 0.2, 0.3, 0.4),
    "harm_words": (3.0, 4.0),
    "evidence_words": (6.0, 10.0, 15.0, 20.0, 1000.0),
    "question_oos": (0.3, 0.5, 0.7, 0.9, 1.0),
}


@dataclass(frozen=True, slots=True)
class Fold:
    """Cases scored by one trained understanding (leaving a writer out: one per file)."""

    cases: Sequence[Case]
    contexts: Contexts
    understanding: Understanding

    def outcomes(self) -> list[Outcome]:
        return run(self.cases, self.contexts, self.understanding, self.reader)

    def reader(self, case: Case) -> Decision:
        return self.understanding.read(case.text, self.contexts.context(case)).decision


def folds_by_set(content: Content, config: Config, quick: bool = False) -> list[Fold]:
    """One fold per typed file: its messages, read by a classifier that learnt from the
    others (every file was written blind by another writer: a new writer's messages)."""
    folds = []
    sets = {path: load_cases([path]) for path in TYPED}
    for path, own in sets.items():
        others = tuple(m for p, messages in sets.items() if p != path for m in messages)
        without = replace(content, typed=others)
        understanding = Understanding(without)
        understanding.warm()
        folds.append(
            Fold(
                own[::3] if quick else own, Contexts(without, config, understanding), understanding
            )
        )
    return folds


def calibrate(folds: Sequence[Fold], names: str, rounds: int = 4) -> None:
    """Choose the thresholds on ``folds`` (:func:`search`) and write them."""
    best = search(folds, rounds=rounds)
    lines = [
        f"# Written by bench/understanding.py --calibrate from {names}",
        f"# ({sum(len(f.cases) for f in folds)} cases). Do not edit by hand: calibrate again.",
        "[thresholds]",
        *(f"{name} = {value:g}" for name, value in best.as_dict().items()),
    ]
    THRESHOLDS.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {THRESHOLDS.relative_to(ROOT)}")


def search(
    folds: Sequence[Fold],
    verbose: bool = True,
    start: Thresholds | None = None,
    grids: dict[str, tuple[float, ...]] | None = None,
    rounds: int = 4,
) -> Thresholds:
    """Coordinate descent over ``grids`` (:data:`GRIDS`), from ``start`` (the defaults of
    :class:`Thresholds`, not the file: the same data always gives the same thresholds),
    maximising the objective of all folds' outcomes together. Leaves each fold's
    understanding with the best thresholds, and its scoring as it was."""
    kept = [(f.understanding._label_scores, f.understanding._option_evidence) for f in folds]
    for fold in folds:
        _remember_scores(fold.understanding)
    best = start or Thresholds()
    score = _objective(best, folds)
    if verbose:
        print(f"start: {score:.4f} {best}")
    for round_no in range(1, rounds + 1):
        changed = False
        for name, grid in (grids or GRIDS).items():
            for value in grid:
                trial = replace(best, **{name: value})
                trial_score = _objective(trial, folds)
                if trial_score > score + 1e-9:
                    best, score, changed = trial, trial_score, True
        if verbose:
            print(f"round {round_no}: {score:.4f} {best}", flush=True)
        if not changed:
            break
    for fold, (label_scores, option_evidence) in zip(folds, kept, strict=True):
        fold.understanding.thresholds = best
        setattr(fold.understanding, "_label_scores", label_scores)  # noqa: B010
        setattr(fold.understanding, "_option_evidence", option_evidence)  # noqa: B010
    return best


def _remember_scores(understanding: Understanding) -> None:
    """Keep each message's classifier scores (per temperature) and options' evidence: the
    other thresholds do not change them, so each trial of the search only re-decides (about
    40 ms for 1,000 cases)."""
    score = understanding._label_scores
    memory: dict[tuple[str, bool, bool, float, float, float], Any] = {}

    def remembered(raw: str, scam: bool, rules: bool = True) -> Any:
        t = understanding.thresholds
        key = (raw, scam, rules, t.temperature, t.short_temperature, t.question_oos)
        if key not in memory:
            memory[key] = score(raw, scam, rules)
        return memory[key]

    evidence = understanding._option_evidence
    seen: dict[tuple[str, Context], Any] = {}

    def remembered_evidence(text: str, context: Context) -> Any:
        if (text, context) not in seen:
            seen[text, context] = evidence(text, context)
        return seen[text, context]

    setattr(understanding, "_label_scores", remembered)  # noqa: B010 (a method of one object)
    setattr(understanding, "_option_evidence", remembered_evidence)  # noqa: B010


def _objective(thresholds: Thresholds, folds: Sequence[Fold]) -> float:
    outcomes = []
    for fold in folds:
        fold.understanding.thresholds = thresholds
        outcomes += fold.outcomes()
    return figures(outcomes).objective()


# --- alternatives ---------------------------------------------------------------------------

#: The classifiers compared by ``--compare`` (the first is the one in use).
RECIPES: dict[str, Recipe] = {
    "svm, chars 2-5 + words 1-2 (in use)": Recipe(),
    "logistic regression (C=10), same features": Recipe(model="logreg", c=10.0),
    "svm, sigmoid-calibrated (Platt, 5-fold)": Recipe(probabilities="sigmoid"),
    "svm, chars 1-4 + words 1-2": Recipe(chars=(1, 4)),
    "svm, chars 2-5 only": Recipe(words=(0, 0)),
    "svm, chars 2-5 + words 1-3": Recipe(words=(1, 3)),
    "svm, classes weighted (balanced)": Recipe(class_weight="balanced"),
}


#: The thresholds whose scale depends on the classifier, chosen again for each recipe (from
#: the file's values; a full calibration of each took too long on a shared machine).
SCALE = ("temperature", "short_temperature", "accept", "margin", "clarify_floor")


def compare(content: Content, config: Config, dev: Sequence[Case], test: Sequence[Case]) -> None:
    """Each recipe trained, the thresholds of :data:`SCALE` chosen again on ``dev``, then
    scored on ``test``."""
    grids = {name: GRIDS[name] for name in SCALE}
    for name, recipe in RECIPES.items():
        understanding = Understanding(content, recipe=recipe)
        start = time.perf_counter()
        understanding.warm()
        train_s = time.perf_counter() - start
        contexts = Contexts(content, config, understanding)
        first = Thresholds.from_mapping(content.thresholds)
        search([Fold(dev, contexts, understanding)], False, first, grids, rounds=2)
        line = figures(Fold(test, contexts, understanding).outcomes()).line()
        print(f"{name:44} train_s={train_s:5.1f} {line}", flush=True)


# --- main -----------------------------------------------------------------------------------


def by_set(folds: Sequence[Fold]) -> None:
    """Each typed file's figures, read by a classifier that learnt from the others, then
    all of them together."""
    everything: list[Outcome] = []
    for path, fold in zip(TYPED, folds, strict=True):
        outcomes = fold.outcomes()
        everything += outcomes
        print(f"{path.name:10} n={len(outcomes):5} {figures(outcomes).line()}")
    harmed = [o for o in everything if o.harmful]
    for o in harmed:
        print(f"harmful: {o.case.text!r} on {o.case.screen or '-'} -> {o.got}")
    print(f"cases={len(everything)} harmful_n={len(harmed)}")
    print(figures(everything).line())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="every third case")
    parser.add_argument("--data", type=Path, action="append", help="case file(s)")
    parser.add_argument("--calibrate", action="store_true", help="write thresholds.toml")
    parser.add_argument(
        "--rounds", type=int, default=4, help="rounds of the calibration's search (at most)"
    )
    parser.add_argument(
        "--compare",
        action="store_true",
        help="train each classifier of RECIPES, calibrate it on the development set, score it",
    )
    parser.add_argument(
        "--by-set",
        action="store_true",
        help="score each file of content/vi/typed/ with a classifier trained without it",
    )
    args = parser.parse_args(argv)
    paths = args.data or (HELDOUT or [DEV])
    cases = load_cases(paths)
    if args.quick:
        cases = cases[::3]
    content, config = load_content("vi"), load_config(ROOT / "config.toml")
    if args.by_set or args.calibrate:
        folds = folds_by_set(content, config, quick=args.quick)
        if args.calibrate:
            dev = Understanding(content)  # the development set is never learnt from
            dev.warm()
            folds.append(Fold(load_cases([DEV]), Contexts(content, config, dev), dev))
            calibrate(
                folds, "content/vi/typed/*.toml (each left out) and " + DEV.name, args.rounds
            )
        by_set(folds[: len(TYPED)])
        return 0
    if args.compare:
        print(f"calibrated on {DEV.name}, scored on: {', '.join(p.name for p in paths)}")
        compare(content, config, load_cases([DEV]), cases)
        return 0
    start = time.perf_counter()
    understanding = Understanding(content)
    understanding.warm()
    train_s = time.perf_counter() - start
    contexts = Contexts(content, config, understanding)
    print(f"data: {', '.join(str(p) for p in paths)} ({len(cases)} cases)")

    def new(case: Case) -> Decision:
        return understanding.read(case.text, contexts.context(case)).decision

    for case in cases[:20]:  # warm up caches before timing
        new(case)
    understanding.forget()  # every message timed as new (a repeated one costs about 2 us)
    outcomes = run(cases, contexts, understanding, new)
    if contexts.unknown:
        print(f"screens not in the content (read as a new user): {dict(contexts.unknown)}")
    report(outcomes)
    wall = percentile99(o.wall_seconds for o in outcomes) * 1000
    print(f"\ntrain_s={train_s:.2f} cases={len(cases)} wall_p99_ms={wall:.2f}")
    print(figures(outcomes).line())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
