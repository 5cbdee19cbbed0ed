"""The classifier scores without scikit-learn exactly as scikit-learn would, deterministically,
and its trained form travels between processes."""

from __future__ import annotations

import pickle

import numpy as np

from bot.classifier import Classifier, Recipe, char_grams, fit, word_grams

TEXTS = [
    "chu ky so la gi",
    "chu ky so co mat tien khong",
    "bao nhieu tien mot nam",
    "quet mat khong duoc",
    "quet khuon mat bi loi",
    "xin chao",
]
LABELS = ["what", "cost", "cost", "face", "face", "hello"]
QUERIES = ["chu ky so mat bao nhieu tien", "quet mat hoai ko dc", "zzz", "", "a"]


# scikit-learn is imported in the tests that compare with it, not with the module: importing it
# (2.2 s, scipy.stats with it) at collection cost every test process that much at its start.


def test_our_analyzers_cut_texts_as_scikit_learns() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5)).build_analyzer()
    words = TfidfVectorizer(ngram_range=(1, 2), token_pattern=r"\S+").build_analyzer()
    for text in [*TEXTS, *QUERIES, "Ai  đó\tgọi  tôi", "x y"]:
        assert char_grams(2, 5)(text) == chars(text)
        assert word_grams(1, 2)(text) == words(text)


def test_vectors_margins_and_similarities_equal_scikit_learns() -> None:
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.svm import LinearSVC

    classifier = Classifier.trained(TEXTS, LABELS)
    vectorizers = [
        TfidfVectorizer(analyzer=char_grams(2, 5), sublinear_tf=True),
        TfidfVectorizer(analyzer=word_grams(1, 2), sublinear_tf=True),
    ]
    train = hstack([v.fit_transform(TEXTS) for v in vectorizers]).tocsr()
    svm = LinearSVC(random_state=0).fit(train, LABELS)
    theirs = hstack([v.transform(QUERIES) for v in vectorizers]).tocsr()
    for i, query in enumerate(QUERIES):
        columns, weights = classifier.vector(query)
        row = theirs[i]
        assert list(columns) == list(row.indices)
        assert np.allclose(weights, row.data)
        assert np.allclose(classifier.margins(columns, weights), svm.decision_function(row)[0])
        sims = (row @ train.T).toarray()[0] / 2.0
        score = classifier.score(query, temperature=0.2)
        assert abs(score.similarity - sims.max()) < 1e-12
        if sims.max() > 0:
            assert score.nearest == int(sims.argmax())


def test_scores_are_probabilities_with_the_nearest_example() -> None:
    classifier = Classifier.trained(TEXTS, LABELS)
    scores = classifier.score("quet mat bi loi hoai", temperature=0.2)
    assert abs(float(scores.probs.sum()) - 1.0) < 1e-9
    assert classifier.labels[int(scores.probs.argmax())] == "face"
    assert classifier.examples[scores.nearest] == "quet khuon mat bi loi"
    assert 0.0 < scores.similarity <= 1.0
    assert classifier.similarity("quet mat", "quet mat") > 0.99
    assert classifier.similarity("quet mat", "xin chao") < 0.1


def test_other_recipes_score_too() -> None:
    for recipe in (Recipe(model="logreg", c=10.0), Recipe(words=(0, 0)), Recipe(chars=(1, 4))):
        classifier = Classifier.trained(TEXTS, LABELS, recipe)
        scores = classifier.score("quet mat bi loi hoai", temperature=0.2)
        assert classifier.labels[int(scores.probs.argmax())] == "face"


def test_training_is_deterministic_and_travels_by_pickle() -> None:
    a, b = fit(TEXTS, LABELS), fit(TEXTS, LABELS)
    assert np.array_equal(a.coef, b.coef)
    copy = Classifier(pickle.loads(pickle.dumps(a)))
    mine = Classifier(a).score("quet mat", 0.2)
    assert np.array_equal(copy.score("quet mat", 0.2).probs, mine.probs)
