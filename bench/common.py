"""Helpers shared by the benchmark scripts (run as ``python bench/<name>.py``)."""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def unthrottled_config(path: Path) -> Path:
    """Write to ``path`` a copy of the deployment's config (``BOT_CONFIG`` or config.toml)
    whose per-user flood limit does not throttle scripted users, who compress a quarter of
    an hour of a person's chat into a second or two."""
    source = Path(os.environ.get("BOT_CONFIG") or ROOT / "config.toml")
    text = source.read_text(encoding="utf-8")
    limit = "messages_per_minute = 1000000"
    text, found = re.subn(r"(?m)^messages_per_minute\s*=.*$", limit, text)
    if not found:
        text = text.replace("[deployment]\n", f"[deployment]\n{limit}\n", 1)
    path.write_text(text, encoding="utf-8")
    return path
