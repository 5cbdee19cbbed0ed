"""Match a free-text question to an FAQ topic, or honestly to none.

Each topic has example phrasings in the content, and ``faq_negative.toml`` lists things people
type that no topic answers. A question and the examples are folded (no case, accents or
punctuation), expanded with the locale's lexicon (teencode such as "ko", "dc", "cks";
regional words such as "rang", "hong"), typo-corrected against the known vocabulary
(rapidfuzz), and compared by TF-IDF cosine similarity on two views: words and word pairs, and
character trigrams (robust to typos). A topic's score is its best example, blended with the
topic as a whole, and discounted by how much of the question the topic's vocabulary does not
explain (a question about a marriage certificate is not a "requirements" question because it shares
"giấy tờ").

A topic wins only if it scores above a threshold, clearly beats the runner-up, and is not
beaten by a negative example; otherwise the answer is "no topic", so the bot never gives a
confident wrong answer. The constants below were chosen on the former
``tests/data/faq_labelled.toml`` (now part of ``tests/data/understanding_dev.toml``).

Kept while the engine still uses it, and as the baseline that ``bench/understanding.py``
compares :mod:`bot.understanding` with.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise

from rapidfuzz import fuzz, process

from bot.content import Content
from bot.textnorm import fold

#: Below this score no topic is claimed.
THRESHOLD = 0.30
#: The winner must beat the best other topic (or negative example) by this much.
MARGIN = 0.06
#: Weight of the word view against the character view in an example's score.
WORD_WEIGHT = 0.7
#: Weight of the whole topic (all its examples together) against its best example.
TOPIC_WEIGHT = 0.3
#: How strongly unexplained question words lower a topic's score.
COVERAGE_POWER = 0.5
#: Weight of a word no example uses (an unknown word is strong evidence of another subject).
UNKNOWN_WORD_WEIGHT = 6.0
#: The pseudo-topic of negative examples.
NONE = "_none"

_Vector = dict[str, float]


@dataclass(frozen=True, slots=True)
class Match:
    topic: str | None
    score: float
    runner_up: str | None = None


class _Index:
    """TF-IDF vectors of a set of documents with an inverted index for fast scoring."""

    def __init__(self, docs: Sequence[Sequence[str]]):
        df: Counter[str] = Counter()
        for feats in docs:
            df.update(set(feats))
        n = len(docs)
        self.idf = {f: math.log((1 + n) / (1 + d)) + 1.0 for f, d in df.items()}
        self.postings: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for i, feats in enumerate(docs):
            for f, w in self.vector(feats).items():
                self.postings[f].append((i, w))

    def vector(self, features: Iterable[str]) -> _Vector:
        counts = Counter(features)
        vec = {f: (1 + math.log(c)) * self.idf[f] for f, c in counts.items() if f in self.idf}
        norm = math.sqrt(sum(v * v for v in vec.values()))
        return {f: v / norm for f, v in vec.items()} if norm else {}

    def cosines(self, features: Iterable[str]) -> dict[int, float]:
        scores: dict[int, float] = defaultdict(float)
        for f, w in self.vector(features).items():
            for i, dw in self.postings.get(f, ()):
                scores[i] += w * dw
        return scores


class FaqMatcher:
    """Nearest-example matcher over the topics of one locale's content."""

    def __init__(
        self,
        examples: Mapping[str, Sequence[str]],
        lexicon: Mapping[str, str],
        *,
        negatives: Sequence[str] = (),
        stopwords: Iterable[str] = (),
    ):
        self._lexicon = {fold(k): fold(v).split() for k, v in lexicon.items()}
        self._stop = {fold(w) for w in stopwords}
        labels: list[str] = []
        words: list[list[str]] = []
        for topic, phrasings in [*examples.items(), (NONE, negatives)]:
            for phrase in phrasings:
                labels.append(topic)
                words.append(self._words(phrase, correct=False))
        self._labels = labels
        self._vocab = tuple(sorted({w for ws in words for w in ws}))
        self._vocab_set = frozenset(self._vocab)
        self._word_index = _Index([_word_features(ws) for ws in words])
        self._char_index = _Index([_char_features(ws) for ws in words])
        topics = list(dict.fromkeys(labels))
        self._topic_no = {t: n for n, t in enumerate(topics)}
        by_topic: dict[str, list[str]] = defaultdict(list)
        for label, ws in zip(labels, words, strict=True):
            by_topic[label].extend(_word_features(ws))
        self._topic_index = _Index([by_topic[t] for t in topics])
        self._topic_vocab = {t: frozenset(f for f in by_topic[t] if " " not in f) for t in topics}

    @classmethod
    def from_content(cls, content: Content) -> FaqMatcher:
        examples = {t.id: (t.title, *t.examples) for t in content.faq.values()}
        return cls(
            examples,
            content.lexicon,
            negatives=content.faq_negative,
            stopwords=content.stopwords,
        )

    def match(self, question: str) -> Match:
        """The best topic for ``question`` and its score (0..1); topic None if unsure."""
        ranked = self.rank(question)
        real = [(t, s) for t, s in ranked if t != NONE]
        if not real:
            return Match(None, 0.0)
        top, score = ranked[0]
        second = ranked[1][1] if len(ranked) > 1 else 0.0
        confident = top != NONE and score >= THRESHOLD and score - second >= MARGIN
        best_real, best_score = real[0]
        runner_up = real[1][0] if len(real) > 1 else None
        if confident:
            return Match(top, round(score, 4), runner_up)
        return Match(None, round(best_score, 4), best_real)

    def rank(self, question: str) -> list[tuple[str, float]]:
        """Every topic (and the negative pseudo-topic) with its score, best first."""
        words = self._words(question, correct=True)
        if not words:
            return []
        word_feats = _word_features(words)
        by_word = self._word_index.cosines(word_feats)
        by_char = self._char_index.cosines(_char_features(words))
        best: dict[str, float] = {}
        for i in by_word.keys() | by_char.keys():
            score = WORD_WEIGHT * by_word.get(i, 0.0) + (1 - WORD_WEIGHT) * by_char.get(i, 0.0)
            topic = self._labels[i]
            if score > best.get(topic, 0.0):
                best[topic] = score
        whole = self._topic_index.cosines(word_feats)
        content = [w for w in set(words) if w not in self._stop]
        weight = {w: self._word_index.idf.get(w, UNKNOWN_WORD_WEIGHT) for w in content}
        total = sum(weight.values())
        for topic in best:
            blended = (1 - TOPIC_WEIGHT) * best[topic]
            blended += TOPIC_WEIGHT * whole.get(self._topic_no[topic], 0.0)
            if total:
                covered = sum(v for w, v in weight.items() if w in self._topic_vocab[topic])
                blended *= (covered / total) ** COVERAGE_POWER
            best[topic] = blended
        return sorted(best.items(), key=lambda kv: kv[1], reverse=True)

    def _words(self, text: str, *, correct: bool) -> list[str]:
        out: list[str] = []
        for token in fold(text).split():
            out.append(token)
            expansion = self._lexicon.get(token)
            if expansion:
                out.extend(expansion)
            elif correct and len(token) >= 4 and token not in self._vocab_set:
                fixed = _closest(token, self._vocab)
                if fixed:
                    out.append(fixed)
        return out


@lru_cache(maxsize=8192)
def _closest(token: str, vocab: tuple[str, ...]) -> str | None:
    found = process.extractOne(token, vocab, scorer=fuzz.ratio, score_cutoff=80)
    return found[0] if found else None


def _word_features(words: Sequence[str]) -> list[str]:
    return [*words, *(f"{a} {b}" for a, b in pairwise(words))]


def _char_features(words: Sequence[str]) -> list[str]:
    feats: list[str] = []
    for word in words:
        padded = f" {word} "
        feats.extend(padded[i : i + 3] for i in range(len(padded) - 2))
    return feats
