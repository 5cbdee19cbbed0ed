"""Text folding for matching what people type: case, diacritics, punctuation, spacing.

A question typed with Vietnamese accents and the same words typed without them fold to
the same string, so matching works for people who type without accents.
"""

from __future__ import annotations

import re
import unicodedata

_NON_WORD = re.compile(r"[^\w]+", re.UNICODE)
_SPACES = re.compile(r"\s+")


def strip_marks(text: str) -> str:
    """Remove diacritics: "D" with stroke -> "D", "o" with circumflex -> "o"."""
    # D with stroke (U+0110/U+0111) has no decomposition: map it by hand.
    decomposed = unicodedata.normalize("NFD", text.replace("\u0111", "d").replace("\u0110", "D"))
    return "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")


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
