"""Normalise what people type before it is understood: one spelling for many.

Citizens type with or without diacritics, in teencode ("ko", "dc", "cks"), with regional
words ("rang", "rua", "mo"), stretched letters ("okkk", "dcccc"), emoji instead of words, and
long stories without punctuation. :class:`Normaliser` turns a message into folded words (no
case, accents or punctuation), maps emoji to words, squeezes stretched letters and replaces
each teencode or regional word with its plain form from the locale's lexicon
(``content/<locale>/lexicon.toml``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence

from bot.textnorm import fold

#: A letter typed three or more times in a row is one letter ("okkkk"): no Vietnamese word
#: has a tripled letter.
_STRETCHED = re.compile(r"(\w)\1{2,}")
#: Variation selectors, joiners and skin tones are dropped so that every thumbs-up is one.
_VARIATION = re.compile("[\ufe0e\ufe0f\u200d\U0001f3fb-\U0001f3ff]")


class Normaliser:
    """Folded, expanded words of a message, with the lexicon of one locale."""

    def __init__(self, expand: Mapping[str, str], emoji: Mapping[str, str] | None = None):
        folded = {fold(k): fold(v) for k, v in expand.items()}
        self._expand = {k: v for k, v in folded.items() if " " not in k}
        #: Two-word keys ("han quoc": a country, not "han" alone, the validity), by first word.
        self._pairs: dict[str, dict[str, str]] = {}
        for key, value in folded.items():
            if " " in key:
                first, second = key.split(" ", 1)
                self._pairs.setdefault(first, {})[second] = value
        self._emoji = {_strip_variation(k): fold(v) for k, v in (emoji or {}).items()}

    def words(self, text: str) -> list[str]:
        """The folded words of ``text``, teencode and regional words replaced by plain ones."""
        out: list[str] = []
        tokens = fold(self.emoji_to_words(text)).split()
        pairs = self._pairs
        skip = False
        for i, token in enumerate(tokens):
            if skip:
                skip = False
                continue
            pair = pairs.get(token)
            if pair is not None and i + 1 < len(tokens) and tokens[i + 1] in pair:
                out.extend(pair[tokens[i + 1]].split())
                skip = True
                continue
            if token not in self._expand:
                token = _STRETCHED.sub(r"\1", token)  # "cccd" is a word, "okkk" is "ok"
            out.extend(self._expand.get(token, token).split())
        return out

    def text(self, text: str) -> str:
        """:meth:`words` as one string."""
        return " ".join(self.words(text))

    def emoji_to_words(self, text: str) -> str:
        """``text`` with each known emoji replaced by its words ("👍" -> "ok")."""
        if text.isascii() or not self._emoji:
            return text
        text = _strip_variation(unicodedata.normalize("NFC", text))
        return "".join(f" {self._emoji[ch]} " if ch in self._emoji else ch for ch in text)


def contains(words: Sequence[str], phrase: Sequence[str]) -> bool:
    """Whether ``phrase`` (normalised words) occurs in ``words``, its words in a row."""
    n = len(phrase)
    if not n:
        return False
    first = phrase[0]
    return any(
        words[i] == first and list(words[i : i + n]) == list(phrase)
        for i in range(len(words) - n + 1)
    )


def _strip_variation(text: str) -> str:
    return _VARIATION.sub("", text)
