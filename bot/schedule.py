"""When a message to a citizen may go out: never in the deployment's quiet hours."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo


def in_quiet_hours(moment: datetime, tz: ZoneInfo, start: time, end: time) -> bool:
    """Whether ``moment`` falls in the quiet hours [start, end) local time (which may span
    midnight, as 21:00-07:00 does)."""
    local = moment.astimezone(tz).time()
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end


def next_allowed(moment: datetime, tz: ZoneInfo, start: time, end: time) -> datetime:
    """``moment`` itself, or -- if it falls in the quiet hours -- the end of them (UTC)."""
    if not in_quiet_hours(moment, tz, start, end):
        return moment
    local = moment.astimezone(tz)
    until = datetime.combine(local.date(), end, tzinfo=tz)
    if until <= local:
        until += timedelta(days=1)
    return until.astimezone(UTC)
