"""Today's FAQ matcher (bot/faq.py), still used by the engine until it moves to
bot/understanding.py; bench/understanding.py compares the two on the same labelled data."""

from __future__ import annotations

import pytest

from bot.content import Content
from bot.faq import FaqMatcher


@pytest.fixture(scope="module")
def matcher(content: Content) -> FaqMatcher:
    return FaqMatcher.from_content(content)


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


def test_questions_outside_the_topics_get_no_answer(matcher: FaqMatcher) -> None:
    assert matcher.match("may gio roi").topic is None


def test_empty_question_has_no_topic(matcher: FaqMatcher) -> None:
    assert matcher.match("").topic is None
    assert matcher.match("?!").topic is None
