"""Per-user flood limit: a kind "slow down" once, then silence until the minute has passed.

Kept in memory per process (a flood is short; with several workers each counts its own
share, which only makes the limit more lenient).
"""

from __future__ import annotations

import enum
from collections import OrderedDict, deque
from datetime import datetime, timedelta

WINDOW = timedelta(minutes=1)


class Verdict(enum.Enum):
    OK = "ok"
    WARN = "warn"  # first message over the limit: say "slow down"
    DROP = "drop"  # further messages over the limit: say nothing


class RateLimiter:
    """At most ``per_minute`` messages per user in any sliding minute."""

    def __init__(self, per_minute: int, *, users: int = 10_000):
        self.per_minute = per_minute
        self._users = users
        self._seen: OrderedDict[str, tuple[deque[datetime], list[bool]]] = OrderedDict()

    def check(self, user: str, now: datetime) -> Verdict:
        times, warned = self._seen.get(user) or (deque(), [False])
        self._seen[user] = (times, warned)
        self._seen.move_to_end(user)
        if len(self._seen) > self._users:
            self._seen.popitem(last=False)
        while times and now - times[0] >= WINDOW:
            times.popleft()
        if len(times) < self.per_minute:
            times.append(now)
            warned[0] = False
            return Verdict.OK
        if warned[0]:
            return Verdict.DROP
        warned[0] = True
        return Verdict.WARN
