"""The guard on what a helper may pass on to a citizen: no asking for a secret.

Scammers ask for the one-time code, the PIN or password, a photo of the ID card or of the
face -- and a helper in a citizen's chat must never need any of them (the citizen types them
into the official app themselves). A helper's message that asks for one is not delivered,
and the helper is told why (handlers/helpdesk.py).

What counts is read from content (``helpdesk.toml`` ``[guard]``), one sentence at a time,
folded (no accents or case) and with the lexicon's expansions (``otp`` -> "ma xac nhan",
``cccd`` -> "can cuoc", ``mk`` -> "mat khau"), so that "gui ma OTP cho a", "Gui ma xac nhan
cho anh" and "gui mk cho e" read alike. A sentence is held back when it names a secret and

- asks for its value ("ma OTP la bao nhieu"), or
- has a word that passes something on ("gui", "doc", "xin", "cho em"...) that is not
  negated just before it ("dung gui", "khong ai duoc hoi") -- unless the sentence points
  the secret only into the app ("go ma vao ung dung", "ung dung gui ma ve may") and not to
  the helper ("... cho em", "... qua day").

Holding back a harmless sentence costs a helper one rephrasing; letting a real request
through may cost a citizen their signature -- so in doubt it is held back. Pure: text in,
the kind of secret out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.content import Content
from bot.normalise import Normaliser

#: The secrets a helper must never ask for, in the order they are looked for.
SECRETS = ("otp", "pin", "card", "face")
#: How many words before a "pass on" word a negation still negates it ("khong ai duoc hoi").
NEGATION_REACH = 4
#: Sentences end at these. Not a comma ("gui giup em, ma OTP ay") nor a question mark:
#: "mat khau bac nho khong? doc em nghe" asks in the words after it.
_SENTENCE = re.compile(r"[.!;\n]+")
#: ... but a negation does not reach across these ("nho khong? doc em nghe" is no "khong
#: doc"; "khong sao, gui em ma" neither).
_CLAUSE = re.compile(r"[?,:]+")

Phrase = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Lists:
    secrets: Mapping[str, tuple[Phrase, ...]]
    asks: tuple[Phrase, ...]
    value: tuple[Phrase, ...]
    to_me: tuple[Phrase, ...]
    into_app: tuple[Phrase, ...]
    negations: tuple[Phrase, ...]


class Guard:
    """Tells whether a helper's message asks a citizen for a secret, and which."""

    def __init__(self, lists: Mapping[str, Sequence[str]], normaliser: Normaliser):
        self._words = normaliser.words

        def phrases(key: str) -> tuple[Phrase, ...]:
            found = {tuple(self._words(p)) for p in lists.get(key, ())}
            return tuple(sorted((p for p in found if p), key=len, reverse=True))

        missing = [k for k in (*SECRETS, "asks", "negations") if not lists.get(k)]
        if missing:
            raise ValueError(f"helpdesk.toml [guard]: {', '.join(missing)} missing")
        self._lists = _Lists(
            secrets={kind: phrases(kind) for kind in SECRETS},
            asks=phrases("asks"),
            value=phrases("value"),
            to_me=phrases("to_me"),
            into_app=phrases("into_app"),
            negations=phrases("negations"),
        )

    @classmethod
    def from_content(cls, content: Content) -> Guard:
        """The guard of ``content`` (its ``helpdesk.toml`` ``[guard]``, read with it)."""
        return cls(content.help_guard, Normaliser(content.lexicon, content.emoji))

    def held_back(self, text: str) -> str | None:
        """The secret ``text`` asks for ("otp", "pin", "card", "face"), or None."""
        for sentence in _SENTENCE.split(text):
            clauses = [self._words(clause) for clause in _CLAUSE.split(sentence)]
            words = [word for clause in clauses for word in clause]
            if not words:
                continue
            # Where each clause begins: a negation reaches back only to its own clause's.
            starts = [n for n, clause in enumerate(clauses) for _ in clause]
            begins = [sum(len(c) for c in clauses[:n]) for n in starts]
            kind, named = self._secret(words)
            if kind is not None and self._asks(words, named, begins):
                return kind
        return None

    def _secret(self, words: list[str]) -> tuple[str | None, set[int]]:
        """The first kind of secret the sentence names, and the positions of the words that
        name secrets (folded, "xac nhan" of "ma xac nhan" must not read as "nhan", to send)."""
        found: str | None = None
        named: set[int] = set()
        for kind in SECRETS:
            for phrase in self._lists.secrets[kind]:
                for start in _starts(words, phrase):
                    found = found or kind
                    named.update(range(start, start + len(phrase)))
        return found, named

    def _asks(self, words: list[str], named: set[int], begins: list[int]) -> bool:
        lists = self._lists
        if any(_starts(words, p) for p in lists.value):
            return True
        passes = [
            start
            for phrase in lists.asks
            for start in _starts(words, phrase)
            if start not in named and not self._negated(words, start, begins[start])
        ]
        if not passes:
            return False
        to_me = any(_starts(words, p) for p in lists.to_me)
        into_app = any(_starts(words, p) for p in lists.into_app)
        return to_me or not into_app

    def _negated(self, words: list[str], start: int, clause: int) -> bool:
        before = words[max(clause, start - NEGATION_REACH) : start]
        return any(_starts(before, p) for p in self._lists.negations)


def _starts(words: Sequence[str], phrase: Phrase) -> list[int]:
    """Where ``phrase`` begins in ``words`` (word by word)."""
    n = len(phrase)
    return [i for i in range(len(words) - n + 1) if tuple(words[i : i + n]) == phrase]
