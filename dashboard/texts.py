"""The dashboard's words: ``content/<locale>/dashboard.toml``, checked when loaded."""

from __future__ import annotations

import string
import tomllib
from pathlib import Path

from bot.content import CONTENT_ROOT, ContentError


def load_dashboard_texts(locale: str = "vi", root: Path = CONTENT_ROOT) -> dict[str, str]:
    """Every text of the dashboard (a missing file or broken braces is a ContentError)."""
    path = root / locale / "dashboard.toml"
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ContentError(f"{path}: {exc}") from exc
    texts = raw.get("texts")
    if not isinstance(texts, dict) or not all(isinstance(v, str) for v in texts.values()):
        raise ContentError(f"{path}: [texts] must hold only strings")
    for key, text in texts.items():
        try:
            list(string.Formatter().parse(text))
        except ValueError as exc:
            raise ContentError(f"dashboard.toml: texts.{key}: broken braces ({exc})") from exc
    return dict(texts)
