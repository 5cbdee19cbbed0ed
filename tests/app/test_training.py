"""The classifier trained in a child process is the one trained here, and the bot's process
never imports scikit-learn for it."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
from pathlib import Path

import pytest

from app.runtime import open_runtime
from app.settings import Settings
from app.training import ModelCache, Training
from bot.content import load_content
from bot.understanding import Understanding
from tests.conftest import ROOT, TEST_SECRET

CHILD = """
import sys
from app.training import ModelCache, Training
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


async def test_commands_for_officials_train_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`stats`, `export`, `invite`... read no citizen's message: spawning the training child
    for them cost every such command about 3 s of waiting and a core for a while."""
    monkeypatch.chdir(tmp_path)  # an empty var/models: the bot's process must train
    settings = Settings.from_env(
        {"DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}", "BOT_ID_SECRET": TEST_SECRET.decode()}
    )
    async with open_runtime(settings, citizens=False) as runtime:
        assert multiprocessing.active_children() == []
        assert not runtime.engine.understanding.ready
    async with open_runtime(settings) as runtime:
        assert [p.name for p in multiprocessing.active_children()] == ["understanding"]


def test_a_trained_model_is_kept_and_loaded_the_next_time(tmp_path: Path) -> None:
    """The next start of the same content loads the model instead of training it; what it
    then decides is what the trained one decided."""
    cache = ModelCache(tmp_path / "var" / "models")
    first = Understanding(load_content("vi"))
    training = Training(first, cache)
    training.start()
    assert training.done.wait(120)
    training.close()
    assert first.ready
    assert [p.name for p in (tmp_path / "var" / "models").iterdir()] == [
        f"understanding-{cache.key(*first.training)}.npz"
    ]
    assert (tmp_path / "var").stat().st_mode & 0o077 == 0, "private, like the database"

    again = Understanding(load_content("vi"))
    loading = Training(again, cache)
    loading.start()
    assert again.ready, "loaded at once"
    assert loading.done.is_set()
    assert multiprocessing.active_children() == []
    for text in ("toi muon cai chu ky so", "cks co mat tien ko", "thoi", "ai giu anh cccd"):
        assert again.read(text).decision == first.read(text).decision


def test_a_damaged_or_foreign_file_means_training_again(tmp_path: Path) -> None:
    cache = ModelCache(tmp_path)
    understanding = Understanding(load_content("vi"))
    key = cache.key(*understanding.training)
    (tmp_path / f"understanding-{key}.npz").write_bytes(b"PK\x03\x04 not a zip at all")
    assert cache.load(key) is None
    other = cache.key(["a"], ["faq:cost"])
    assert other != key
    assert cache.load(other) is None
