"""The secret behind users' pseudonymous references: from the environment, or a local file.

``BOT_ID_SECRET`` in production; for local runs a random secret is generated once into
``var/id_secret`` (mode 0600 in a 0700 folder). Without the same secret, the stored
references can never be matched to users again, so the file is checked, not trusted blindly.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from bot.config import ConfigError

LOCAL_SECRET_FILE = Path("var") / "id_secret"
MIN_LENGTH = 16


def load_id_secret(
    value: str | None, *, production: bool, path: Path = LOCAL_SECRET_FILE
) -> bytes:
    """``value`` (``BOT_ID_SECRET``) if given; otherwise, outside production, the local
    secret (created on first use)."""
    if value:
        if len(value) < MIN_LENGTH:
            raise ConfigError(f"BOT_ID_SECRET must be at least {MIN_LENGTH} characters")
        return value.encode()
    if production:
        raise ConfigError(
            "BOT_ENV=production needs BOT_ID_SECRET (a long random string, e.g. "
            "`python -c 'import secrets; print(secrets.token_hex(32))'`); keep it safe: "
            "without it the stored ids cannot be matched to users again"
        )
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(32).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(secret)
    return secret
