"""Guards every input and output passes: secrets typed by mistake, unreadable text, links
(parsed by bot/links.py).

Pure functions of text (and the deployment's allowed links): no state, no content.
"""

from __future__ import annotations

import re

from bot import links
from bot.config import Config

#: Longer messages are not read (a question fits in far less).
MAX_TEXT = 600

_DIGIT_RUN = re.compile(r"\+?\d(?:[\s.\-]?\d)+")
_YEAR = re.compile(r"^(19|20)\d\d$")
#: The letters and digits of a volunteer's code: none that can be mistaken for another
#: (no I, O, 0, 1). storage/staff.py issues the codes; a test keeps the two in step.
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
#: A referral payload the engine keeps: only what the bot issues, a volunteer's code ("V" and
#: six of the alphabet, from a link or typed). Staff invites ("inv_...") never reach the
#: engine (the staff desk takes them). Anything else is not kept -- it was "0912345678"
#: typed after /start that once landed in the session, the events and the figures.
REFERRAL = re.compile(rf"^V[{CODE_ALPHABET}]{{6}}$")
#: A volunteer's code as people type it after "ma": V and six letters or digits.
TYPED_CODE = re.compile(r"^V[A-Z0-9]{6}$")


def sensitive_kind(text: str) -> str | None:
    """What kind of secret or identifier ``text`` seems to contain, if any.

    12 (or the old 9) digits: an ID number; 10-11 digits from 0 or +84: a phone number;
    13-19 digits: a bank card; 4-8 digits (not a year): a one-time code or PIN.
    """
    for run in _DIGIT_RUN.findall(text):
        digits = re.sub(r"\D", "", run)
        n = len(digits)
        if n in (9, 12):
            return "id"
        if n in (10, 11) and (digits.startswith(("0", "84"))):
            return "phone"
        if 13 <= n <= 19:
            return "card"
        if 4 <= n <= 8 and not _YEAR.match(digits):
            return "code"
    return None


def unreadable(text: str) -> bool:
    """Too long to be a question (control and invisible characters are cleaned before:
    bot.textnorm.clean_input)."""
    return len(text) > MAX_TEXT


def foreign_links(text: str, config: Config) -> list[str]:
    """The sites ``text`` (typed by a person) links to that the deployment does not allow."""
    return links.foreign_links(text, config.links)


def hide_foreign_links(text: str, config: Config, replacement: str) -> str:
    """``text`` with every link to a site the deployment does not allow replaced (a safety
    net on everything the bot sends: the content is checked, but a bad edit must never send
    citizens elsewhere)."""
    return links.scrub(text, config.links, replacement)
