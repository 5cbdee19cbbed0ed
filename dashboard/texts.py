"""The dashboard's words: ``content/<locale>/dashboard.toml``, checked when loaded."""

from __future__ import annotations

import string
from pathlib import Path

from bot.content import CONTENT_ROOT, ContentError, read_texts


def load_dashboard_texts(locale: str = "vi", root: Path = CONTENT_ROOT) -> dict[str, str]:
    """Every text of the dashboard (a missing file or broken braces is a ContentError)."""
    path = root / locale / "dashboard.toml"
    texts = read_texts(path)
    for key, text in texts.items():
        try:
            list(string.Formatter().parse(text))
        except ValueError as exc:
            raise ContentError(f"dashboard.toml: texts.{key}: broken braces ({exc})") from exc
    return dict(texts)
