"""The folders the bot writes into (``var/`` and below): readable by their owner only."""

from __future__ import annotations

import contextlib
from pathlib import Path


def private_folder(path: Path) -> None:
    """Create ``path`` and every missing folder above it with mode 0700, whatever the umask.

    ``Path.mkdir(parents=True, mode=...)`` applies the mode to the last folder only: the
    picture cache, the first thing to write on a fresh machine, left ``var/`` (the database,
    the identity secret) readable by every local user."""
    for folder in (*reversed(path.parents), path):
        if folder.exists():
            continue
        with contextlib.suppress(FileExistsError):  # another worker made it meanwhile
            folder.mkdir(mode=0o700)
            folder.chmod(0o700)
