"""The per-user flood limit."""

from __future__ import annotations

from datetime import timedelta

from handlers.limits import RateLimiter, Verdict
from tests.conftest import T0


def test_twenty_a_minute_then_one_warning_then_silence() -> None:
    limiter = RateLimiter(20)
    verdicts = [limiter.check("u", T0 + timedelta(seconds=i)) for i in range(23)]
    assert verdicts[:20] == [Verdict.OK] * 20
    assert verdicts[20:] == [Verdict.WARN, Verdict.DROP, Verdict.DROP]


def test_users_are_limited_separately() -> None:
    limiter = RateLimiter(2)
    assert [limiter.check(u, T0) for u in "aabb"] == [Verdict.OK] * 4


def test_the_window_slides() -> None:
    limiter = RateLimiter(2)
    limiter.check("u", T0)
    limiter.check("u", T0 + timedelta(seconds=30))
    assert limiter.check("u", T0 + timedelta(seconds=59)) is Verdict.WARN
    assert limiter.check("u", T0 + timedelta(seconds=61)) is Verdict.OK


def test_memory_is_bounded() -> None:
    limiter = RateLimiter(1, users=100)
    for n in range(1000):
        limiter.check(str(n), T0)
    assert limiter.check("0", T0) is Verdict.OK, "the oldest users were forgotten"


def test_only_people_heard_from_in_the_last_minute_are_remembered() -> None:
    limiter = RateLimiter(5)
    for n in range(1000):
        limiter.check(str(n), T0 + timedelta(seconds=n))
    assert len(limiter) <= 61
