"""Logging that cannot leak: no bot token, no message text.

python-telegram-bot logs every Bot API call with its parameters at DEBUG (message texts, and
the updates users sent), and httpx logs request URLs, which contain the bot token. So those
loggers never go below INFO/WARNING, whatever ``LOG_LEVEL`` says, and every line that is
written has anything shaped like a bot token, or a run of six or more digits (a code, an ID
or phone number that slipped into an exception message), masked.

Logging that cannot flood: a message that repeats in a storm (asyncio's "socket.accept() out
of system resource" once per connection attempt, a malformed delivery per request) goes
through :class:`OncePerInterval` -- the first of its kind per interval is written, the rest
are counted and the count is told with the next one written.
"""

from __future__ import annotations

import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TextIO

_TOKEN = re.compile(r"\d{5,}:[A-Za-z0-9_-]{20,}")
_DIGITS = re.compile(r"(?<![\w.])\+?\d(?:[ .-]?\d){5,}(?![\w.])")
#: Loggers held back: below these levels they would log secrets or message text, or (PTB's
#: rate limiter) every 429 as an error with a traceback, though its callers handle them.
QUIET = {
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "telegram": logging.INFO,
    "telegram.ext.AIORateLimiter": logging.CRITICAL,
    "alembic.runtime.plugins": logging.WARNING,
}


def redact(text: str) -> str:
    return _DIGITS.sub("<digits>", _TOKEN.sub("<token>", text))


class RedactingFormatter(logging.Formatter):
    """Formats a record with its message and traceback masked (not its timestamp)."""

    def format(self, record: logging.LogRecord) -> str:
        copy = logging.makeLogRecord(record.__dict__)
        copy.msg, copy.args = redact(record.getMessage()), None
        if copy.exc_info and not copy.exc_text:
            copy.exc_text = self.formatException(copy.exc_info)
        if copy.exc_text:
            copy.exc_text = redact(copy.exc_text)
        return super().format(copy)


def configure(level: str = "INFO", stream: TextIO | None = None) -> logging.Handler:
    """Log to ``stream`` (stderr) at ``level``, redacted, with the noisy loggers held back."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name, floor in QUIET.items():
        logging.getLogger(name).setLevel(max(floor, root.level))
    return handler


class OncePerInterval(logging.Filter):
    """Lets through the first record of each kind per ``seconds`` and holds back the rest,
    telling how many were held back on the next one let through.

    A record's kind is its logger and the first line of its message template (arguments
    aside), so "%s: malformed delivery refused" is one kind whichever channel it names.
    At most ``kinds`` kinds are remembered (the oldest are forgotten), so memory stays
    bounded whatever is logged."""

    def __init__(
        self,
        seconds: float = 60.0,
        *,
        kinds: int = 256,
        clock: Callable[[], float] = time.monotonic,
    ):
        super().__init__()
        self.seconds = seconds
        self._kinds = kinds
        self._clock = clock
        #: kind -> (when one was last let through, how many held back since)
        self._seen: OrderedDict[tuple[str, str], tuple[float, int]] = OrderedDict()

    def filter(self, record: logging.LogRecord) -> bool:
        kind = (record.name, str(record.msg).split("\n", 1)[0][:200])
        now = self._clock()
        seen = self._seen.get(kind)
        if seen is not None and now - seen[0] < self.seconds:
            self._seen[kind] = (seen[0], seen[1] + 1)
            return False
        self._seen[kind] = (now, 0)
        self._seen.move_to_end(kind)
        while len(self._seen) > self._kinds:
            self._seen.popitem(last=False)
        if seen is not None and seen[1]:
            # Said after the message is formatted, so no "%" in it can meet the arguments.
            record.msg, record.args = record.getMessage(), None
            record.msg += f" ({seen[1]} more like this in the last {now - seen[0]:.0f} s)"
        return True
