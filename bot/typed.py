"""Messages typed as people type, each labelled with the right reaction where it was typed.

A file of them is TOML, one ``[[case]]`` per message: ``text`` (as typed, typos kept),
``screen`` (a screen or install step id; "" for a first message), ``expect``
(``faq:<topic>``, ``option:<option id>``, ``nav:<intent>``, ``stuck`` or ``oos``) and optional
``view``, ``accept`` (other fine reactions), ``never`` (reactions that would harm), ``style``.

Two uses, kept apart by folder:

- ``content/<locale>/typed/*.toml``: what the classifier learns from besides the content's
  own examples (:func:`bot.understanding.training_set`). Each file was written by someone who
  saw only the topic list, the screens and the personas -- never the content -- so they
  teach the ways people ask that the content's authors do not think of;
- ``tests/data/``: the development set and the blind held-out sets, scored by
  ``bench/understanding.py`` and never learnt from.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

#: The reaction of a message no topic or intent answers.
OOS = "oos"


@dataclass(frozen=True, slots=True)
class Typed:
    """One labelled message."""

    text: str
    screen: str
    expect: str
    view: str = ""
    accept: tuple[str, ...] = ()
    never: tuple[str, ...] = ()
    style: str = ""

    @property
    def oos(self) -> bool:
        return self.expect == OOS


def read_typed(paths: Iterable[Path]) -> list[Typed]:
    """The messages of these files, in order."""
    return [m for path in paths for m in parse_typed(path.read_text(encoding="utf-8"))]


def parse_typed(text: str) -> list[Typed]:
    """The messages of one file's text, in order."""
    return [
        Typed(
            text=str(raw["text"]),
            screen=str(raw.get("screen", "")),
            expect=str(raw["expect"]),
            view=str(raw.get("view", "")),
            accept=tuple(str(a) for a in raw.get("accept", [])),
            never=tuple(str(n) for n in raw.get("never", [])),
            style=str(raw.get("style", "")),
        )
        for raw in tomllib.loads(text).get("case", [])
    ]
