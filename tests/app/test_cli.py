"""Start-up failures on the command line: one line on stderr and exit code 2, never a
traceback -- the person starting the bot must see what to fix.

The commands run in this process (tests/cli.py: ``app.cli.main``, what ``python -m bot``
runs); the first test starts a real ``python -m bot`` to see the process's own exit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli import run_bot


def _environment(env: dict[str, str]) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("BOT_ID_SECRET", "BOT_ENV")}
    environment.update(env)
    return environment


def bot(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return run_bot(args, env=_environment(env), cwd=cwd)


def bot_process(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=_environment(env),
        timeout=60,
    )


def one_line_error(result: subprocess.CompletedProcess[str], *pieces: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for piece in pieces:
        assert piece in lines[0]


def test_a_binary_config_file(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00binary")
    result = bot_process(["check"], tmp_path, BOT_CONFIG=str(config))
    one_line_error(result, "config.toml", "UTF-8")


def test_a_config_path_that_is_a_folder(tmp_path: Path) -> None:
    one_line_error(bot(["check"], tmp_path, BOT_CONFIG=str(tmp_path)), str(tmp_path))


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://bot:hunter2@127.0.0.1:1/bot",  # nothing listens on port 1
        "postgresql://bot:hunter2@no-such-host.invalid/bot",
    ],
)
def test_postgresql_unreachable_at_start(tmp_path: Path, url: str) -> None:
    result = bot(["migrate"], tmp_path, DATABASE_URL=url)
    one_line_error(result, "cannot use the database")
    assert "hunter2" not in result.stderr


def test_a_sqlite_file_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = bot(["migrate"], tmp_path, DATABASE_URL=f"sqlite:///{blocker}/var/bot.db")
    one_line_error(result, "bot.db")


def test_a_truncated_local_id_secret(tmp_path: Path) -> None:
    (tmp_path / "var").mkdir(mode=0o700)
    (tmp_path / "var" / "id_secret").write_text("3d0c1eab2116")
    (tmp_path / "var" / "id_secret").chmod(0o600)
    result = bot(["retention"], tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'bot.db'}")
    one_line_error(result, "id_secret", "damaged")


def test_a_weak_id_secret(tmp_path: Path) -> None:
    result = bot(
        ["retention"], tmp_path, BOT_ID_SECRET="password12345678", DATABASE_URL="sqlite://"
    )
    one_line_error(result, "BOT_ID_SECRET", "easy to guess")
    assert "password" not in result.stderr


def test_check_refuses_the_example_data_in_production_and_warns_otherwise(
    tmp_path: Path,
) -> None:
    warned = bot(["check"], tmp_path)
    assert warned.returncode == 0, warned.stderr
    assert "warning: config.communes.16279.support.phone is a placeholder" in warned.stderr
    refused = bot(["check"], tmp_path, BOT_ENV="production", BOT_ID_SECRET="s" * 40)
    assert refused.returncode == 1, refused.stderr
    assert "refused: config.communes.16279.support.phone is a placeholder" in refused.stderr
    assert "(BOT_ENV=production)" in refused.stderr.splitlines()[-1]
