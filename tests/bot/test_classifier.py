"""The classifier's fast scoring path gives what scikit-learn gives, deterministically."""

from __future__ import annotations

import numpy as np
from scipy.sparse import hstack

from bot.classifier import Classifier

TEXTS = [
    "chu ky so la gi",
    "chu ky so co mat tien khong",
    "bao nhieu tien mot nam",
    "quet mat khong duoc",
    "quet khuon mat bi loi",
    "xin chao",
]
LABELS = ["what", "cost", "cost", "face", "face", "hello"]


def test_fast_vectors_and_margins_equal_scikit_learn() -> None:
    classifier = Classifier(TEXTS, LABELS)
    chars, words, svm = classifier._sklearn
    queries = ["chu ky so mat bao nhieu tien", "quet mat hoai ko dc", "zzz", ""]
    ours = classifier.vectors(queries)
    theirs = hstack([chars.transform(queries), words.transform(queries)]).tocsr()
    assert abs(ours - theirs).max() < 1e-12
    assert np.allclose(classifier.margins(ours), svm.decision_function(theirs))


def test_scores_are_probabilities_with_the_nearest_example() -> None:
    classifier = Classifier(TEXTS, LABELS)
    [scores] = classifier.score(["quet mat bi loi hoai"], temperature=0.2)
    assert abs(float(scores.probs.sum()) - 1.0) < 1e-9
    assert classifier.labels[int(scores.probs.argmax())] == "face"
    assert classifier.examples[scores.nearest] == "quet khuon mat bi loi"
    assert 0.0 < scores.similarity <= 1.0
    assert classifier.similarity("quet mat", "quet mat") > 0.99
    assert classifier.similarity("quet mat", "xin chao") < 0.1


def test_training_is_deterministic() -> None:
    a, b = Classifier(TEXTS, LABELS), Classifier(TEXTS, LABELS)
    assert np.array_equal(a._coef, b._coef)
