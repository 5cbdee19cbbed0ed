"""Folders the bot creates are private (mode 0700), each of them, whatever the umask."""

from __future__ import annotations

import os
from pathlib import Path

from bot.folders import private_folder
from bot.pictures import load_pictures


def test_every_folder_created_is_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        private_folder(tmp_path / "var" / "models")
        private_folder(tmp_path / "var" / "models")  # again: nothing to do, no error
    finally:
        os.umask(old)
    for folder in (tmp_path / "var", tmp_path / "var" / "models"):
        assert folder.stat().st_mode & 0o777 == 0o700, folder


def test_the_picture_cache_on_a_fresh_machine_leaves_var_private(tmp_path: Path) -> None:
    """The pictures were the first thing written on a fresh machine: var/ became 0755."""
    old = os.umask(0o022)
    try:
        load_pictures("vi", cache=tmp_path / "var" / "pictures")
    finally:
        os.umask(old)
    assert (tmp_path / "var").stat().st_mode & 0o777 == 0o700
