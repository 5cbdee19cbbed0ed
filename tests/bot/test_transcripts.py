"""Golden transcripts of the main conversation paths (see tests/bot/transcript.py)."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

from bot.engine import Engine
from tests.bot import transcript
from tests.conftest import T0

FOLDER = Path(__file__).parent / "transcripts"
FILES = sorted(FOLDER.glob("*.txt"))


def test_there_are_transcripts() -> None:
    assert len(FILES) >= 8


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_transcript(path: Path, engine: Engine) -> None:
    expected = path.read_text(encoding="utf-8")
    header, inputs = transcript.parse(expected)
    actual = transcript.run(engine, header, inputs, T0)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(actual, encoding="utf-8")
        return
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                actual.splitlines(keepends=True),
                "expected",
                "actual",
            )
        )
        pytest.fail(f"{path.name} differs (UPDATE_GOLDEN=1 rewrites it after review):\n{diff}")
