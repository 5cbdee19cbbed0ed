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

from bot.textnorm import fold, plain

#: A letter typed three or more times in a row is one letter ("okkkk"): no Vietnamese word
#: has a tripled letter.
_STRETCHED = re.compile(r"(\w)\1{2,}")
#: A number with a unit run together ("17t": seventeen years old, "5p": five minutes).
_UNIT = re.compile(r"(\d{1,4})([a-z]{1,3})")
#: Variation selectors, joiners and skin tones are dropped so that every thumbs-up is one.
_VARIATION = re.compile("[\ufe0e\ufe0f\u200d\U0001f3fb-\U0001f3ff]")
#: Texts whose words are kept, and typed words kept folded, at most (then forgotten at once):
#: a few hundred kilobytes.
SEEN_TEXTS = 512
SEEN_WORDS = 20_000


class Normaliser:
    """Folded, expanded words of a message, with the lexicon of one locale."""

    def __init__(
        self,
        expand: Mapping[str, str],
        emoji: Mapping[str, str] | None = None,
        units: Mapping[str, str] | None = None,
    ):
        #: Words written with their diacritics match only as typed with them ("no" with a hook
        #: above is Central for "not"; "no" with an acute, "it", folds the same).
        self._marked = {plain(k): fold(v) for k, v in expand.items() if plain(k) != fold(k)}
        folded = {fold(k): fold(v) for k, v in expand.items() if plain(k) == fold(k)}
        self._expand = {k: v for k, v in folded.items() if " " not in k}
        #: Keys of several words ("han quoc": a country, not "han" alone, the validity; "ve ne
        #: ai di": voice typing's spelling of VNeID), by first word, the longest first.
        self._phrases: dict[str, list[tuple[tuple[str, ...], str]]] = {}
        for key, value in sorted(folded.items(), key=lambda kv: -len(kv[0].split())):
            if " " in key:
                first, *rest = key.split()
                self._phrases.setdefault(first, []).append((tuple(rest), value))
        self._emoji = {_strip_variation(k): fold(v) for k, v in (emoji or {}).items()}
        #: Units typed after a number ("t" after an age), folded.
        self._units = {fold(k): fold(v) for k, v in (units or {}).items()}
        #: Words of the texts met last, and each typed word folded: one reading normalises a
        #: message whole, clause by clause and its question apart (7 times for a long story:
        #: a quarter of its reading), and the same words recur across messages.
        self._seen: dict[str, tuple[str, ...]] = {}
        self._folded: dict[str, str] = {}

    def words(self, text: str) -> list[str]:
        """The folded words of ``text``, teencode and regional words replaced by plain ones."""
        seen = self._seen.get(text)
        if seen is None:
            if len(self._seen) >= SEEN_TEXTS:
                self._seen.clear()
            seen = self._seen[text] = tuple(self._words(text))
        return list(seen)

    def _words(self, text: str) -> list[str]:
        out: list[str] = []
        text = self.emoji_to_words(text)
        if self._marked and not text.isascii():
            tokens = []
            folded = self._folded
            if len(folded) >= SEEN_WORDS:
                folded.clear()
            for typed in plain(text).split():
                word = self._marked.get(typed) or folded.get(typed)
                if word is None:
                    word = folded[typed] = fold(typed)
                tokens += word.split()
        else:
            tokens = fold(text).split()
        phrases = self._phrases
        i, count = 0, len(tokens)
        while i < count:
            token = tokens[i]
            i += 1
            found = next(
                (
                    (rest, value)
                    for rest, value in phrases.get(token, ())
                    if tuple(tokens[i : i + len(rest)]) == rest
                ),
                None,
            )
            if found is not None:
                out.extend(found[1].split())
                i += len(found[0])
                continue
            if token not in self._expand:
                token = _STRETCHED.sub(r"\1", token)  # "cccd" is a word, "okkk" is "ok"
                unit = _UNIT.fullmatch(token) if self._units else None
                if unit is not None and unit.group(2) in self._units:
                    out += [unit.group(1), *self._units[unit.group(2)].split()]
                    continue
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
