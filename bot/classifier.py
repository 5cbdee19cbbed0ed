"""A text classifier trained at start-up from the content's example phrasings.

Character n-grams (2 to 5 letters, inside word boundaries: robust to typos and to words
run together) and words and word pairs, each weighted by TF-IDF, feed a linear support vector
machine (scikit-learn's ``LinearSVC``, one class against the rest). Its margins become
probabilities with a softmax whose temperature is calibrated with the thresholds
(``bench/understanding.py --calibrate``). Beside the classes, the cosine similarity to the
nearest training example tells how familiar a message is: a message that shares almost nothing
with any example is out of scope, whatever class is least unlikely.

Chosen on the development set (bench/understanding.py): against logistic regression it is as
accurate and trains about fifteen times faster (0.2 s against 3 s for about 1,500 examples),
which keeps retraining at every start cheap. Training is deterministic (fixed seed).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix, hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

#: Regularisation of the SVM (1.0 is scikit-learn's default; 0.5 to 2 scored alike).
C = 1.0
#: Vectors kept by :meth:`Classifier.similarity` (a few hundred option labels in practice).
MEMO = 4096


@dataclass(frozen=True, slots=True)
class Scores:
    """One message's class probabilities and its nearest training example."""

    probs: NDArray[np.float64]
    similarity: float
    nearest: int


class Classifier:
    """Linear SVM over TF-IDF character and word n-grams of already normalised texts.

    scikit-learn fits the vocabularies, weights and SVM; scoring a message then computes the
    same vectors and margins directly from those fitted arrays (about 0.3 ms instead of about
    5 ms through scikit-learn's checks for one message; tests/bot/test_classifier.py shows
    the results are the same).
    """

    def __init__(self, texts: Sequence[str], labels: Sequence[str]):
        if len(texts) != len(labels) or not texts:
            raise ValueError("need as many labels as texts, and at least one of each")
        chars = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, dtype=np.float64
        )
        words = TfidfVectorizer(
            analyzer="word",
            ngram_range=(1, 2),
            sublinear_tf=True,
            token_pattern=r"\S+",
            dtype=np.float64,
        )
        matrix = hstack([chars.fit_transform(texts), words.fit_transform(texts)]).tocsr()
        svm = LinearSVC(C=C, random_state=0)
        svm.fit(matrix, list(labels))
        self.labels: tuple[str, ...] = tuple(str(c) for c in svm.classes_)
        self.examples: tuple[str, ...] = tuple(texts)
        self._views = [
            _View(chars.build_analyzer(), chars.vocabulary_, chars.idf_, 0),
            _View(words.build_analyzer(), words.vocabulary_, words.idf_, len(chars.idf_)),
        ]
        self._width = len(chars.idf_) + len(words.idf_)
        self._coef = np.ascontiguousarray(np.asarray(svm.coef_, dtype=np.float64).T)
        self._intercept = np.asarray(svm.intercept_, dtype=np.float64)
        self._train_t: csr_matrix = matrix.T.tocsr()
        self._sklearn = (chars, words, svm)  # kept for the equivalence test
        self._memo: dict[str, dict[int, float]] = {}

    def score(self, texts: Sequence[str], temperature: float) -> list[Scores]:
        """Class probabilities (in :attr:`labels` order) and familiarity of each text."""
        matrix = self.vectors(texts)
        margins = self.margins(matrix)
        scaled = margins / max(temperature, 1e-6)
        scaled -= scaled.max(axis=1, keepdims=True)
        probs = np.exp(scaled)
        probs /= probs.sum(axis=1, keepdims=True)
        # The mean of the two views' cosines (each half of a vector has unit length).
        sims = (matrix @ self._train_t).toarray() / 2.0
        nearest = sims.argmax(axis=1)
        return [
            Scores(probs=probs[i], similarity=float(sims[i, nearest[i]]), nearest=int(nearest[i]))
            for i in range(len(texts))
        ]

    def similarity(self, text: str, other: str) -> float:
        """The similarity (as :meth:`score`'s) of two texts. The vectors of the last few
        thousand texts are kept: options' labels come back on every message."""
        a, b = self._sparse(text), self._sparse(other)
        if len(a) > len(b):
            a, b = b, a
        return sum(w * b.get(j, 0.0) for j, w in a.items()) / 2.0

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

    def vectors(self, texts: Sequence[str]) -> csr_matrix:
        """The TF-IDF rows of ``texts`` (as scikit-learn's fitted vectorizers make them)."""
        indptr, indices, data = [0], [], []
        for text in texts:
            for view in self._views:
                columns, weights = view.weights(text)
                indices.extend(columns)
                data.extend(weights)
            indptr.append(len(indices))
        return csr_matrix(
            (np.asarray(data, dtype=np.float64), np.asarray(indices, dtype=np.int32), indptr),
            shape=(len(texts), self._width),
        )

    def margins(self, matrix: csr_matrix) -> NDArray[np.float64]:
        """The SVM's margin for every class (rows: texts)."""
        margins = np.asarray(matrix @ self._coef, dtype=np.float64) + self._intercept
        if margins.shape[1] == 1:  # two classes: one margin, for the second
            margins = np.hstack([-margins, margins])
        return margins


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
