"""Pseudonymous user references: a keyed hash of (channel, channel user id).

The database never holds a Telegram or Zalo user id, only HMAC-SHA256 of it under a secret
from ``BOT_ID_SECRET``. Without the secret, a database dump cannot be linked back to people.
For local runs a random secret is generated once and kept in ``var/id_secret``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

LOCAL_SECRET_FILE = Path("var") / "id_secret"


class UserRefs:
    """Turns channel user ids into stable, non-reversible references."""

    def __init__(self, secret: bytes):
        if len(secret) < 16:
            raise ValueError("the id secret must be at least 16 bytes")
        self._secret = secret

    def ref(self, channel: str, user_id: str | int) -> str:
        message = f"{channel}:{user_id}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()[:40]


def load_id_secret(path: Path = LOCAL_SECRET_FILE) -> bytes:
    """``BOT_ID_SECRET`` if set; otherwise a locally generated one (created on first use)."""
    value = os.environ.get("BOT_ID_SECRET")
    if value:
        return value.encode()
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(32).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(secret)
    return secret
