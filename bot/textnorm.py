"""Text folding for matching what people type: case, diacritics, punctuation, spacing.

"Chữ ký số  là gì??" and "chu ky so la gi" fold to the same string, so matching works for
people who type without Vietnamese accents.
"""

from __future__ import annotations

import re
import unicodedata

_NON_WORD = re.compile(r"[^\w]+", re.UNICODE)
_SPACES = re.compile(r"\s+")


def strip_marks(text: str) -> str:
    """Remove diacritics: "Đồng ý" -> "Dong y"."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")


def fold(text: str) -> str:
    """Lowercase, strip diacritics and punctuation, collapse spaces."""
    text = strip_marks(text).lower().replace("_", " ")
    return _SPACES.sub(" ", _NON_WORD.sub(" ", text)).strip()


def tokens(text: str) -> list[str]:
    """The folded words of ``text``."""
    return fold(text).split()
