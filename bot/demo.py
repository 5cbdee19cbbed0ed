"""Demo data left in a deployment: what ``python -m bot check`` refuses in production.

The config in the repository is a working example: its support phone is a placeholder
(zeros) and its villages, population figures and ways in are marked as samples ("(mau)", with
its accents). Citizens must never be told to call a number that does not exist or look for a
bot that is not there, so with ``BOT_ENV=production`` the check fails on any of them;
elsewhere it warns.
Also warned about: content that names a provider the config does not have.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import fields, is_dataclass
from typing import Any

from bot.config import Config
from bot.content import Content

#: The sample mark in the example config, also with a word before it (as for the phone),
#: written escaped (no Vietnamese letters in Python files).
SAMPLE_MARK = re.compile("\\((?:[^()]*\\s)?m\u1eabu\\)", re.IGNORECASE)


def demo_data(config: Config) -> list[str]:
    """What in ``config`` is still the example's: a placeholder support phone, any value
    marked as a sample. One line each, saying where."""
    problems: dict[str, str] = {}
    for commune in config.communes:
        digits = re.sub(r"\D", "", commune.support.phone)
        if not digits or set(digits) == {"0"}:
            where = f"config.communes.{commune.code}.support.phone"
            problems[where] = f"{where} is a placeholder: {commune.support.phone!r}"
    for where, value in _strings(config, "config"):
        if SAMPLE_MARK.search(value) and where not in problems:
            problems[where] = f"{where} is marked as a sample: {value!r}"
    return list(problems.values())


def content_warnings(config: Config, content: Content) -> list[str]:
    """Content that names what the config does not have (an install step's provider note)."""
    known = {p.id for p in config.providers}
    return [
        f"install step {step.id!r}: a note for provider {provider!r}, which the config lacks"
        for step in content.install
        for provider in step.notes
        if provider not in known
    ]


def _strings(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """Every string in a config value, with its path ("config.communes.16279.name")."""
    if isinstance(value, str):
        yield where, value
    elif is_dataclass(value) and not isinstance(value, type):
        for f in fields(value):
            yield from _strings(getattr(value, f.name), f"{where}.{f.name}")
    elif isinstance(value, tuple):
        for index, item in enumerate(value):
            name = getattr(item, "code", None) or getattr(item, "id", None) or str(index)
            yield from _strings(item, f"{where}.{name}")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, f"{where}.{key}")
