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
#: A referral payload the engine keeps (a volunteer's code, from a link or typed).
REFERRAL = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
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
