"""Logging that cannot leak: no bot token, no message text.

python-telegram-bot logs every Bot API call with its parameters at DEBUG (message texts, and
the updates users sent), and httpx logs request URLs, which contain the bot token. So those
loggers never go below INFO/WARNING, whatever ``LOG_LEVEL`` says, and every line that is
written has anything shaped like a bot token, or a run of six or more digits (a code, an ID
or phone number that slipped into an exception message), masked.
"""

from __future__ import annotations

import logging
import re
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
