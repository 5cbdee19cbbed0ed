"""Pseudonymous user references: a keyed hash of (channel, channel user id).

The database never holds a Telegram or Zalo user id, only HMAC-SHA256 of it under a secret
the application supplies (``BOT_ID_SECRET``, see app/id_secret.py). Without the secret, a
database dump cannot be linked back to people.

The one exception is the chat address of a citizen who agreed to reminders (the bot must
know where to send them): it is *sealed* -- AES-GCM under a key derived from the same secret,
bound to the user's reference -- and deleted when they stop them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class UserRefs:
    """Turns channel user ids into stable, non-reversible references."""

    def __init__(self, secret: bytes):
        if len(secret) < 16:
            raise ValueError("the id secret must be at least 16 bytes")
        self._secret = secret
        # Keyed once: a copy of a keyed HMAC skips hashing the key again (every message hashes
        # its user's id two to four times), and the sealing key is derived once.
        self._keyed = hmac.new(secret, digestmod=hashlib.sha256)
        self._box = AESGCM(self._sealing_key())

    def ref(self, channel: str, user_id: str | int) -> str:
        keyed = self._keyed.copy()
        keyed.update(f"{channel}:{user_id}".encode())
        return keyed.hexdigest()[:40]

    def delivery(self, channel: str, delivery_id: str) -> str:
        """A platform's delivery id as the store keeps it: a keyed hash (some ids, such as
        Zalo OA's "follow:USER:TIME", contain a user id)."""
        keyed = self._keyed.copy()
        keyed.update(f"delivery:{channel}:{delivery_id}".encode())
        return keyed.hexdigest()[:40]

    def seal(self, channel: str, user_ref: str, address: str | int) -> str:
        """``address`` encrypted for storage; only :meth:`unseal` with the same secret, channel
        and reference can read it (a sealed address copied to another row does not open)."""
        nonce = secrets.token_bytes(12)
        sealed = self._box.encrypt(nonce, str(address).encode(), f"{channel}:{user_ref}".encode())
        return base64.urlsafe_b64encode(nonce + sealed).decode()

    def unseal(self, channel: str, user_ref: str, sealed: str) -> str | None:
        """The address, or None if it does not open (another secret, another row)."""
        try:
            raw = base64.urlsafe_b64decode(sealed.encode())
            plain = self._box.decrypt(raw[:12], raw[12:], f"{channel}:{user_ref}".encode())
        except (InvalidTag, ValueError):
            return None
        return plain.decode()

    def _sealing_key(self) -> bytes:
        return hmac.new(self._secret, b"sealing-key:v1", hashlib.sha256).digest()
