"""``python -m bot faq``: what questions are understood as, in JSON or explained."""

from __future__ import annotations

import json

from tests.cli import run_bot


def faq(*args: str, stdin: str = "") -> str:
    done = run_bot(["faq", *args], stdin=stdin)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_one_json_object_per_question_with_the_candidates_when_asking_back() -> None:
    out = faq(
        "--json",
        stdin="chữ ký số là gì\ncks co mat tien ko\ngia lua hom nay\n\n"
        "con bac o binh duong lam ho bac dc ko\nai dam bao bot nay an toan\n",
    )
    results = [json.loads(line) for line in out.splitlines()]
    # Issue 10's "lam ho bac": a relative doing it for me, never "yes, from anywhere".
    assert [r["topic"] for r in results] == ["what_is", "cost", None, "relative_helps", None]
    assert all(isinstance(r["score"], float) for r in results)
    assert "clarify" not in results[0]
    # "Who guarantees this bot is safe": is it safe, or is it the real one?
    assert set(results[4]["clarify"]) == {"safety", "bot_genuine"}


def test_the_decision_is_shown_with_its_candidates_and_scores() -> None:
    out = faq("cks co mat tien ko")
    assert "Answer(topic='cost')" in out
    assert "faq:cost" in out
    assert "nearest example" in out
