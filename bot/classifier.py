"""A text classifier trained from the content's example phrasings, scored without scikit-learn.

Character n-grams (2 to 5 letters, inside word boundaries: robust to typos and to words
run together) and words and word pairs, each weighted by TF-IDF, feed a linear support vector
machine (scikit-learn's ``LinearSVC``, one class against the rest). Its margins become
probabilities with a softmax whose temperature is calibrated with the thresholds
(``bench/understanding.py --calibrate``). Beside the classes, the cosine similarity to the
nearest training example tells how familiar a message is: a message that shares almost nothing
with any example is out of scope, whatever class is least unlikely.

Two halves, so that the bot's process never imports scikit-learn (1.3-4.6 s of start-up, and
about 2 s of training, both holding the interpreter's lock while citizens wait for replies):
:func:`fit` trains (it imports scikit-learn, and runs in a child process at start-up:
``app/training.py``) and returns a :class:`Fitted` -- plain arrays, vocabularies and the
recipe, picklable; :class:`Classifier` scores messages from it with numpy (and one scipy
product). The analyzers (how a text becomes n-grams) are ours and are given to scikit-learn
too, so both halves cut texts the same way by construction.

Chosen on the development data (``bench/understanding.py --compare`` prints the alternatives
side by side; the README has the figures): against logistic regression, other n-gram ranges
and calibrated sigmoid probabilities, this recipe is as accurate or better and trains fastest.
Training is deterministic (fixed seed).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix

#: Vectors kept by :meth:`Classifier.similarity` (a few hundred option labels in practice).
MEMO = 4096


@dataclass(frozen=True, slots=True)
class Recipe:
    """How a classifier is trained (the alternatives ``bench/understanding.py --compare``
    measures)."""

    #: Character n-gram lengths inside word boundaries ((0, 0): none).
    chars: tuple[int, int] = (2, 5)
    #: Word n-gram lengths ((0, 0): none).
    words: tuple[int, int] = (1, 2)
    #: "svm" (LinearSVC, one against the rest) or "logreg" (multinomial logistic regression).
    model: str = "svm"
    #: Regularisation (1.0 is scikit-learn's default; 0.5 to 2 scored alike for the SVM).
    c: float = 1.0
    #: "softmax" (of the margins, with the calibrated temperature) or "sigmoid" (Platt
    #: scaling per class, fitted by 5-fold cross-validation, then normalised).
    probabilities: str = "softmax"
    #: Classes weighted by the inverse of their number of examples ("balanced"), or not ("").
    class_weight: str = ""


@dataclass(frozen=True, slots=True)
class Scores:
    """One message's class probabilities and its nearest training example."""

    probs: NDArray[np.float64]
    similarity: float
    nearest: int


@dataclass(frozen=True, slots=True)
class Fitted:
    """A trained classifier as plain data (what :func:`fit` returns, picklable)."""

    recipe: Recipe
    labels: tuple[str, ...]
    examples: tuple[str, ...]
    #: Per view (characters, words): the vocabulary (n-gram -> column) and its idf weights.
    vocabularies: tuple[dict[str, int], ...]
    idfs: tuple[NDArray[np.float64], ...]
    #: (features, classes) weights and (classes,) intercepts of the linear model.
    coef: NDArray[np.float64]
    intercept: NDArray[np.float64]
    #: Platt scaling per class (``sigmoid`` probabilities): p = 1 / (1 + exp(a * m + b)).
    sigmoid_a: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    sigmoid_b: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    #: The training examples' vectors (CSR arrays: a row per example).
    train_indptr: NDArray[np.int64] = field(default_factory=lambda: np.zeros(1, np.int64))
    train_columns: NDArray[np.int32] = field(default_factory=lambda: np.zeros(0, np.int32))
    train_data: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))


def char_grams(low: int, high: int) -> Callable[[str], list[str]]:
    """Character n-grams of ``low`` to ``high`` letters inside word boundaries, each word
    padded with a space (scikit-learn's ``char_wb`` analyzer on lower-cased text)."""

    def analyze(text: str) -> list[str]:
        grams: list[str] = []
        add = grams.append
        for word in text.lower().split():
            padded = f" {word} "
            length = len(padded)
            for n in range(low, high + 1):
                offset = 0
                add(padded[0:n])
                while offset + n < length:
                    offset += 1
                    add(padded[offset : offset + n])
                if offset == 0:  # a word shorter than n counts once
                    break
        return grams

    return analyze


def word_grams(low: int, high: int) -> Callable[[str], list[str]]:
    """Runs of ``low`` to ``high`` words (split at white space)."""

    def analyze(text: str) -> list[str]:
        tokens = text.lower().split()
        grams: list[str] = []
        for n in range(low, min(high, len(tokens)) + 1):
            grams.extend(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
        return grams

    return analyze


def analyzers(recipe: Recipe) -> list[Callable[[str], list[str]]]:
    out = []
    if recipe.chars[1]:
        out.append(char_grams(*recipe.chars))
    if recipe.words[1]:
        out.append(word_grams(*recipe.words))
    return out


def fit(texts: Sequence[str], labels: Sequence[str], recipe: Recipe = Recipe()) -> Fitted:
    """Train on (already normalised) ``texts``. Imports scikit-learn: 1-5 s the first time."""
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer

    if len(texts) != len(labels) or not texts:
        raise ValueError("need as many labels as texts, and at least one of each")
    vectorizers = [
        TfidfVectorizer(analyzer=analyze, sublinear_tf=True, dtype=np.float64)
        for analyze in analyzers(recipe)
    ]
    matrix = hstack([v.fit_transform(texts) for v in vectorizers]).tocsr()
    model = _model(recipe)
    model.fit(matrix, list(labels))
    a = b = np.zeros(0)
    if recipe.probabilities == "sigmoid":
        linear, a, b = _platt(model, matrix, list(labels), recipe)
    else:
        linear = model
    coef = np.asarray(linear.coef_, dtype=np.float64)
    intercept = np.asarray(linear.intercept_, dtype=np.float64).ravel()
    return Fitted(
        recipe=recipe,
        labels=tuple(str(c) for c in model.classes_),
        examples=tuple(texts),
        vocabularies=tuple(
            {str(k): int(j) for k, j in v.vocabulary_.items()} for v in vectorizers
        ),
        idfs=tuple(np.asarray(v.idf_, dtype=np.float64) for v in vectorizers),
        coef=np.ascontiguousarray(coef.T),
        intercept=intercept,
        sigmoid_a=a,
        sigmoid_b=b,
        train_indptr=np.asarray(matrix.indptr, dtype=np.int64),
        train_columns=np.asarray(matrix.indices, dtype=np.int32),
        train_data=np.asarray(matrix.data, dtype=np.float64),
    )


def _model(recipe: Recipe) -> Any:  # a scikit-learn estimator
    if recipe.model == "logreg":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(
            C=recipe.c, max_iter=3000, random_state=0, class_weight=recipe.class_weight or None
        )
    from sklearn.svm import LinearSVC

    return LinearSVC(C=recipe.c, random_state=0, class_weight=recipe.class_weight or None)


def _platt(
    model: Any, matrix: Any, labels: list[str], recipe: Recipe
) -> tuple[Any, NDArray[np.float64], NDArray[np.float64]]:
    """The linear model refitted inside scikit-learn's ``CalibratedClassifierCV`` (sigmoid,
    5 folds, one model on all the data), and each class's Platt parameters."""
    from sklearn.calibration import CalibratedClassifierCV

    calibrated = CalibratedClassifierCV(_model(recipe), method="sigmoid", cv=5, ensemble=False)
    calibrated.fit(matrix, labels)
    [one] = calibrated.calibrated_classifiers_
    a = np.asarray([c.a_ for c in one.calibrators], dtype=np.float64)
    b = np.asarray([c.b_ for c in one.calibrators], dtype=np.float64)
    return one.estimator, a, b


class Classifier:
    """Scores messages with a :class:`Fitted` model, without scikit-learn."""

    def __init__(self, fitted: Fitted):
        self.fitted = fitted
        self.labels = fitted.labels
        self.examples = fitted.examples
        self._views: list[_View] = []
        offset = 0
        for analyze, vocabulary, idf in zip(
            analyzers(fitted.recipe), fitted.vocabularies, fitted.idfs, strict=True
        ):
            self._views.append(_View(analyze, vocabulary, idf, offset))
            offset += len(idf)
        self._memo: dict[str, dict[int, float]] = {}
        # By columns: a message has 100-300 of the 17,500 columns, and multiplying only
        # those (0.49 ms for 6,400 examples) beats the whole matrix by a dense vector (1.47 ms).
        self._train = csr_matrix(
            (fitted.train_data, fitted.train_columns, fitted.train_indptr),
            shape=(len(fitted.examples), offset),
        ).tocsc()

    @classmethod
    def trained(
        cls, texts: Sequence[str], labels: Sequence[str], recipe: Recipe = Recipe()
    ) -> Classifier:
        """Train here and now (tests, the command line, benchmarks)."""
        return cls(fit(texts, labels, recipe))

    def score(self, text: str, temperature: float) -> Scores:
        """Class probabilities (in :attr:`labels` order) and familiarity of ``text``."""
        columns, weights = self.vector(text)
        margins = self.margins(columns, weights)
        fitted = self.fitted
        if fitted.recipe.probabilities == "sigmoid":
            probs = 1.0 / (1.0 + np.exp(fitted.sigmoid_a * margins + fitted.sigmoid_b))
        else:
            scaled = margins / max(temperature, 1e-6)
            probs = np.exp(scaled - scaled.max())
        probs /= probs.sum()
        sims = self._similarities(columns, weights)
        nearest = int(sims.argmax()) if len(sims) else 0
        return Scores(probs=probs, similarity=float(sims[nearest]), nearest=nearest)

    def vector(self, text: str) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """The TF-IDF vector of ``text`` (columns, weights), as scikit-learn's fitted
        vectorizers make it, each view l2-normalised."""
        columns: list[int] = []
        weights: list[float] = []
        for view in self._views:
            c, w = view.weights(text)
            columns += c
            weights += w
        return np.asarray(columns, dtype=np.int64), np.asarray(weights, dtype=np.float64)

    def margins(
        self, columns: NDArray[np.int64], weights: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """The linear model's margin for every class."""
        fitted = self.fitted
        margins = weights @ fitted.coef[columns] + fitted.intercept
        if margins.shape[0] == 1:  # two classes: one margin, for the second
            margins = np.concatenate([-margins, margins])
        return np.asarray(margins, dtype=np.float64)

    def _similarities(
        self, columns: NDArray[np.int64], weights: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """Cosine similarity to every training example (the mean over the views): the
        training matrix's columns of the message's n-grams times their weights."""
        if not len(columns):
            return np.zeros(self._train.shape[0])
        sims = self._train[:, columns] @ weights
        return np.asarray(sims / max(len(self._views), 1), dtype=np.float64)

    def similarity(self, text: str, other: str) -> float:
        """The similarity (as :meth:`score`'s) of two texts. The vectors of the last few
        thousand texts are kept: options' labels come back on every message."""
        a, b = self._sparse(text), self._sparse(other)
        if len(a) > len(b):
            a, b = b, a
        return sum(w * b.get(j, 0.0) for j, w in a.items()) / max(len(self._views), 1)

    def _sparse(self, text: str) -> dict[int, float]:
        found = self._memo.get(text)
        if found is None:
            if len(self._memo) >= MEMO:
                self._memo.clear()
            found = {}
            for view in self._views:
                columns, weights = view.weights(text)
                found.update(zip(columns, weights, strict=True))
            self._memo[text] = found
        return found


@dataclass(frozen=True, slots=True)
class _View:
    """One fitted vectorizer: its analyzer, vocabulary and weights, and where its columns
    start in the joint vector."""

    analyze: Callable[[str], list[str]]
    vocabulary: Mapping[str, int]
    idf: NDArray[np.float64]
    offset: int

    def weights(self, text: str) -> tuple[list[int], list[float]]:
        """Column numbers and l2-normalised sublinear TF-IDF weights of ``text``."""
        counts = Counter(self.analyze(text))
        found = [(self.vocabulary[g], n) for g, n in counts.items() if g in self.vocabulary]
        if not found:
            return [], []
        found.sort()
        weights = [(1.0 + math.log(n)) * float(self.idf[j]) for j, n in found]
        norm = math.sqrt(sum(w * w for w in weights))
        return [j + self.offset for j, _ in found], [w / norm for w in weights]
