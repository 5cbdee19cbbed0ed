"""FAQ matching over a held-out labelled set (tests/data/faq_labelled.toml).

The set was written apart from the examples the matcher learns from: at least four phrasings
per topic, many without diacritics or with teencode and regional words, plus questions outside
every topic that must get no answer.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from collections import Counter

import pytest

from bot.content import Content
from bot.faq import FaqMatcher
from bot.textnorm import fold, strip_marks
from tests.conftest import ROOT

CASES = tomllib.loads((ROOT / "tests/data/faq_labelled.toml").read_text(encoding="utf-8"))["case"]


@pytest.fixture(scope="module")
def matcher(content: Content) -> FaqMatcher:
    return FaqMatcher.from_content(content)


def test_the_labelled_set_covers_every_topic(content: Content) -> None:
    per_topic = Counter(c["topic"] for c in CASES if c["topic"])
    plain = Counter(c["topic"] for c in CASES if c["topic"] and strip_marks(c["q"]) == c["q"])
    for topic in content.faq:
        assert per_topic[topic] >= 3, topic
        assert plain[topic] >= 1, f"{topic}: no case without diacritics"
    assert sum(1 for c in CASES if not c["topic"]) >= 30


def test_the_labelled_set_is_held_out(content: Content) -> None:
    seen = {fold(e) for t in content.faq.values() for e in (t.title, *t.examples)}
    seen |= {fold(e) for e in content.faq_negative}
    assert not [c["q"] for c in CASES if fold(c["q"]) in seen]


def test_questions_get_the_right_topic_and_never_a_wrong_one(matcher: FaqMatcher) -> None:
    right: list[tuple[str, str, str | None]] = []
    wrong: list[tuple[str, str, str | None]] = []
    unsure: list[tuple[str, str, str | None]] = []
    for case in (c for c in CASES if c["topic"]):
        got = matcher.match(case["q"]).topic
        (right if got == case["topic"] else unsure if got is None else wrong).append(
            (case["q"], case["topic"], got)
        )
    total = len(right) + len(wrong) + len(unsure)
    assert len(right) / total >= 0.9, unsure + wrong
    assert len(wrong) <= 2, wrong


def test_questions_outside_the_topics_get_no_answer(matcher: FaqMatcher) -> None:
    claimed = [
        (c["q"], matcher.match(c["q"]).topic)
        for c in CASES
        if not c["topic"] and matcher.match(c["q"]).topic
    ]
    assert len(claimed) <= 1, claimed


@pytest.mark.parametrize(
    ("question", "topic"),
    [
        ("Chữ ký số là gì?", "what_is"),
        ("chu ky so la gi", "what_is"),
        ("cks co mat tien ko", "cost"),
        ("ko nhan dc ma otp", "otp_missing"),
        ("răng phải quét mặt rứa", "why_face"),
    ],
)
def test_typical_phrasings(matcher: FaqMatcher, question: str, topic: str) -> None:
    assert matcher.match(question).topic == topic


def test_empty_question_has_no_topic(matcher: FaqMatcher) -> None:
    assert matcher.match("").topic is None
    assert matcher.match("?!").topic is None


def test_cli_prints_one_json_object() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bot", "faq", "--json", "chữ ký số là gì"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    result = json.loads(out)
    assert result["topic"] == "what_is"
    assert isinstance(result["score"], float)


def test_cli_reads_questions_from_stdin() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bot", "faq", "--json"],
        input="cks co mat tien ko\nmay gio roi\n\n",
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["topic"] for line in lines] == ["cost", None]
