"""Quiet hours: no message to citizens at night (deployment time)."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from bot.schedule import in_quiet_hours, next_allowed

VN = ZoneInfo("Asia/Ho_Chi_Minh")  # UTC+7
NIGHT = (time(21, 0), time(7, 0))


def utc(hour: int, minute: int = 0, day: int = 24) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("moment", "quiet"),
    [
        (utc(13, 59), False),  # 20:59 in Vietnam
        (utc(14, 0), True),  # 21:00
        (utc(17, 0), True),  # 00:00
        (utc(23, 59), True),  # 06:59
        (utc(0, 0, day=25), False),  # 07:00
        (utc(5, 0), False),  # 12:00
    ],
)
def test_quiet_hours_span_midnight(moment: datetime, quiet: bool) -> None:
    assert in_quiet_hours(moment, VN, *NIGHT) is quiet


def test_a_message_due_at_night_waits_until_seven() -> None:
    assert next_allowed(utc(15, 30), VN, *NIGHT) == utc(0, 0, day=25)  # 22:30 -> 07:00
    assert next_allowed(utc(22, 0), VN, *NIGHT) == utc(0, 0, day=25)  # 05:00 -> 07:00
    assert next_allowed(utc(3, 0), VN, *NIGHT) == utc(3, 0)  # 10:00: at once


def test_quiet_hours_within_a_day_and_none() -> None:
    lunch = (time(11, 30), time(13, 30))
    assert in_quiet_hours(utc(5, 0), VN, *lunch)  # 12:00
    assert next_allowed(utc(5, 0), VN, *lunch) == utc(6, 30)
    assert not in_quiet_hours(utc(17, 0), VN, time(0, 0), time(0, 0))
