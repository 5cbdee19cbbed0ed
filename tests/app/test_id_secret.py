"""The secret behind users' references: strong, private, and never a traceback."""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.id_secret import load_id_secret
from bot.config import ConfigError


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The umask most systems run with (022): files are world-readable unless we say not."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(
    "weak",
    [
        " " * 16,
        "a" * 16,
        "a" * 64,
        "password12345678",
        "Password1234567890!",
        "1234567890123456",
        "qwertyuiopasdfgh",
        "abcdefghijklmnopqrstuvwxyz",
        "trolychukyso2025trolychukyso2025",
    ],
)
def test_a_weak_secret_is_refused_without_being_echoed(weak: str) -> None:
    with pytest.raises(ConfigError, match="BOT_ID_SECRET") as caught:
        load_id_secret(weak, production=True)
    assert weak not in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "strong",
    [
        "7f3a9c0e5b2d4f61a8e7c3b9d0f2a4c6e8b1d3f5a7c9e0b2d4f6a8c1e3b5d7f9",  # token_hex(32)
        "9f2c4e71b08a3d56",  # 16 random hex digits: the old minimum, still accepted
        "Xq7-LmW2_pR9vKs4",  # token_urlsafe(12)
        "correct horse battery staple, xa Nong Cong",
    ],
)
def test_a_random_secret_is_accepted(strong: str) -> None:
    assert load_id_secret(strong, production=True) == strong.encode()


def test_the_local_secret_is_private(tmp_path: Path, usual_umask: None) -> None:
    path = tmp_path / "var" / "id_secret"
    first = load_id_secret(None, production=False, path=path)
    assert len(first) == 64
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert load_id_secret(None, production=False, path=path) == first


def test_a_local_secret_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "id_secret"
    path.write_text(secrets.token_hex(32))
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_id_secret(None, production=False, path=path)


@pytest.mark.parametrize(
    "content", [b"", b"abc", b"7f3a9c0e5b2d4f61a8e7c3b9d0f2a4c6e8b1d3f5", b"\xff\xfe" * 32]
)
def test_a_damaged_local_secret_is_a_clear_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "id_secret"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(ConfigError, match="damaged"):
        load_id_secret(None, production=False, path=path)
