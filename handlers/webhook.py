"""What every webhook does with a request body it cannot trust yet: one order, defined answers.

For every channel, in this order:

1. the platform's secret or signature is checked on the raw bytes -- a header compared in
   constant time (Telegram, Zalo Bot) or a hash over the body (Zalo OA) -- and a mismatch is
   answered 403 before the body is parsed at all;
2. the body is parsed only when its nesting is shallow: a cheap scan of the bytes comes first
   (100,000 '[' made the standard parser recurse until it failed: a 500 on every route);
3. the adapter reads the fields it acts on with the helpers below, which raise
   :class:`Malformed` for a missing required field or a value of the wrong type.

The answers: 403 for a delivery that is not the platform's, 400 for a malformed one (nothing
processed), 200 for an event the bot does not act on (ignored), and 200 once the step of an
event it acts on is committed. No other answer can come out of a webhook -- the fuzz tests
(tests/handlers/test_webhook_fuzz.py) feed any JSON value and any bytes to the three parsers.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from aiohttp import web

from bot.logs import OncePerInterval

#: The deepest nesting a webhook body may have. Telegram's deepest update (a button press on
#: a message with an inline keyboard) nests 7 levels; Zalo's events 3 or 4.
MAX_DEPTH = 32

#: A JSON string, escapes included (possessive: no backtracking, linear in the body).
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
#: Every byte but the four brackets (bytes.translate deletes them).
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPENING = frozenset(b"[{")

log = logging.getLogger(__name__)
# A storm of malformed deliveries is one line a minute, not one per request.
log.addFilter(OncePerInterval(60.0))


class Malformed(ValueError):
    """The body is not what the platform sends: answered 400, nothing processed."""


def too_deep(raw: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether the JSON text ``raw`` nests deeper than ``limit`` (brackets inside strings do
    not count). Costs two passes in C and one over the brackets alone -- never a parse."""
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    if len(brackets) <= limit:
        return False
    level = 0
    for byte in brackets:
        if byte in _OPENING:
            level += 1
            if level > limit:
                return True
        else:
            level -= 1
    return False


def parse(raw: bytes) -> Any:
    """The JSON value of ``raw``; :class:`Malformed` for anything else, or anything deeper
    than :data:`MAX_DEPTH`."""
    if too_deep(raw):
        raise Malformed(f"nested deeper than {MAX_DEPTH}")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise Malformed("not JSON") from exc


def obj(value: object, where: str) -> dict[str, Any]:
    """``value`` if it is a JSON object."""
    if not isinstance(value, dict):
        raise Malformed(f"{where}: not an object")
    return value


def string(value: object, where: str) -> str:
    """``value`` if it is a JSON string."""
    if not isinstance(value, str):
        raise Malformed(f"{where}: not a string")
    return value


def ident(value: object, where: str) -> str:
    """An id as the platforms send them: a non-empty string, or a whole number (never a
    boolean), as a string."""
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise Malformed(f"{where}: not an id")
    return str(value)


def refused(channel: str, exc: Malformed) -> web.Response:
    """The 400 answer to a malformed delivery; says what was wrong in the log (which field,
    never its value)."""
    log.warning("%s: malformed delivery refused (%s)", channel, exc)
    return web.json_response({"ok": False, "error": "malformed"}, status=400)
