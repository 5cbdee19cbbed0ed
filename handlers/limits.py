"""Per-user flood limit: a kind "slow down" once, then silence until the minute has passed.

Kept in memory per process (a flood is short; with several workers each counts its own
share, which only makes the limit more lenient). Only users heard from within the last minute
are remembered -- everyone else has an empty window anyway -- so the memory follows the
people talking right now, not everyone ever served (and never more than ``users``).
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from datetime import datetime, timedelta

WINDOW = timedelta(minutes=1)


class Verdict(enum.Enum):
    OK = "ok"
    WARN = "warn"  # first message over the limit: say "slow down"
    DROP = "drop"  # further messages over the limit: say nothing


class _Window:
    __slots__ = ("times", "warned")

    def __init__(self) -> None:
        self.times: list[datetime] = []
        self.warned = False


class RateLimiter:
    """At most ``per_minute`` messages per user in any sliding minute."""

    def __init__(self, per_minute: int, *, users: int = 10_000):
        self.per_minute = per_minute
        self._users = users
        self._seen: OrderedDict[str, _Window] = OrderedDict()

    def check(self, user: str, now: datetime) -> Verdict:
        window = self._seen.pop(user, None) or _Window()
        self._forget_quiet(now)
        self._seen[user] = window  # the most recently heard from are last
        times = window.times
        start = 0
        while start < len(times) and now - times[start] >= WINDOW:
            start += 1
        if start:
            del times[:start]
        if len(times) < self.per_minute:
            times.append(now)
            window.warned = False
            return Verdict.OK
        if window.warned:
            return Verdict.DROP
        window.warned = True
        return Verdict.WARN

    def _forget_quiet(self, now: datetime) -> None:
        while self._seen:
            oldest = next(iter(self._seen.values()))
            quiet = not oldest.times or now - oldest.times[-1] >= WINDOW
            if not quiet and len(self._seen) < self._users:
                return
            self._seen.popitem(last=False)

    def __len__(self) -> int:
        return len(self._seen)
