"""Text folding for matching what people type: case, diacritics, punctuation, spacing.

A question typed with Vietnamese accents and the same words typed without them fold to
the same string, so matching works for people who type without accents.
"""

from __future__ import annotations

import re
import unicodedata

_NON_WORD = re.compile(r"[^\w]+", re.UNICODE)
_SPACES = re.compile(r"\s+")


class _Marks(dict[int, int | None]):
    """``str.translate`` table dropping combining marks (category Mn), filled as characters
    are met: a few hundred ever, looked up in C instead of a category test per character
    (long messages are folded several times on each read)."""

    def __missing__(self, code: int) -> int | None:
        kept = None if unicodedata.category(chr(code)) == "Mn" else code
        self[code] = kept
        return kept


_MARKS = _Marks()


def strip_marks(text: str) -> str:
    """Remove diacritics: "D" with stroke -> "D", "o" with circumflex -> "o"."""
    if text.isascii():
        return text
    # D with stroke (U+0110/U+0111) has no decomposition: map it by hand.
    decomposed = unicodedata.normalize("NFD", text.replace("\u0111", "d").replace("\u0110", "D"))
    return decomposed.translate(_MARKS)


def fold(text: str) -> str:
    """Lowercase, strip diacritics and punctuation, collapse spaces."""
    text = strip_marks(text).lower().replace("_", " ")
    return _SPACES.sub(" ", _NON_WORD.sub(" ", text)).strip()


def plain(text: str) -> str:
    """Lowercase without punctuation, diacritics kept (words that fold alike stay apart)."""
    text = unicodedata.normalize("NFC", text).lower().replace("_", " ")
    return _SPACES.sub(" ", _NON_WORD.sub(" ", text)).strip()


def tokens(text: str) -> list[str]:
    """The folded words of ``text``."""
    return fold(text).split()


#: Characters that show nothing but change what a computer reads: format controls (zero-width
#: space and joiners, direction marks, soft hyphen, byte-order mark, tags: Unicode category
#: Cf, as of Unicode 15), the combining grapheme joiner, variation selectors and the Hangul
#: fillers. tests/bot/test_textnorm.py checks the list against every Cf character.
INVISIBLE = re.compile(
    "[\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160\u17b4\u17b5"
    "\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0"
    "\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
)
#: Control characters (C0 and C1) other than tab, line feed and carriage return.
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def clean_input(text: str) -> str:
    """What a person typed, as a keyboard means it: invisible characters removed (inside a
    word or a number they would hide it from matching, e.g. a phone number from the
    sensitive-data guard) and control characters (NUL...) read as spaces (they separate
    what is around them; no phone keyboard types them)."""
    return INVISIBLE.sub("", CONTROL.sub(" ", text))
