"""The classifier trained in a child process is the one trained here, and the bot's process
never imports scikit-learn for it."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
from pathlib import Path

from app.runtime import open_runtime
from app.settings import Settings
from app.training import Training
from bot.content import load_content
from bot.understanding import Understanding
from tests.conftest import ROOT, TEST_SECRET

CHILD = """
import sys
from app.training import Training
from bot.content import load_content
from bot.understanding import Understanding

if __name__ == "__main__":
    understanding = Understanding(load_content("vi"))
    training = Training(understanding)
    training.start()
    assert training.done.wait(120)
    print(understanding.ready, "sklearn" in sys.modules)
    print(understanding.read("toi muon cai chu ky so").decision)
    training.close()
"""


def test_a_child_process_trains_it_and_sends_it_back() -> None:
    here = Understanding(load_content("vi"))
    expected = here.read("toi muon cai chu ky so").decision
    found = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=ROOT, capture_output=True, text=True, timeout=180
    )
    assert found.returncode == 0, found.stderr
    flags, decision = found.stdout.strip().splitlines()
    assert flags == "True False"  # trained, and scikit-learn never imported here
    assert decision == repr(expected)


def test_closing_ends_a_training_under_way() -> None:
    understanding = Understanding(load_content("vi"))
    training = Training(understanding)
    training.start()
    training.close()
    assert training.done.wait(10)
    assert not understanding.ready


async def test_commands_for_officials_train_nothing(tmp_path: Path) -> None:
    """`stats`, `export`, `invite`... read no citizen's message: spawning the training child
    for them cost every such command about 3 s of waiting and a core for a while."""
    settings = Settings.from_env(
        {"DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}", "BOT_ID_SECRET": TEST_SECRET.decode()}
    )
    async with open_runtime(settings, citizens=False) as runtime:
        assert multiprocessing.active_children() == []
        assert not runtime.engine.understanding.ready
    async with open_runtime(settings) as runtime:
        assert [p.name for p in multiprocessing.active_children()] == ["understanding"]
