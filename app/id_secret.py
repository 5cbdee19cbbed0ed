"""The secret behind users' pseudonymous references: from the environment, or a local file.

``BOT_ID_SECRET`` in production; for local runs a random secret is generated once into
``var/id_secret`` (mode 0600 in a 0700 folder). Without the same secret, the stored
references can never be matched to users again, so the file is checked, not trusted blindly:
one readable by other users, or damaged, stops the start with a one-line reason.

Strength, not only length: whoever has a copy of the database and guesses the secret can
compute every user's reference, offline, at billions of guesses a second. A secret must be
at least 16 characters *and* need at least 10^12 guesses by zxcvbn's estimate (the password
strength estimator of Dropbox: it finds words, names, keyboard rows, repeats, sequences and
dates, here also the project's own words). zxcvbn credits a truly random string with 10
guesses a character, so a random 16-character secret rates about 10^16; of 8,000 random
16-character secrets (hex, lower case, letters and digits, URL-safe: bench/secret_strength.py)
none rated below 10^12.36, while "password12345678" rates 10^4.2, sixteen spaces or "aaaa..."
10^2.3 and "Password1234567890!" 10^8. (16 random *digits* fall below in 3 %, 61 of 2,000:
use a longer one.)
"""

from __future__ import annotations

import os
import re
import secrets
import stat
from pathlib import Path

from zxcvbn import zxcvbn

from bot.config import ConfigError
from bot.folders import private_folder

LOCAL_SECRET_FILE = Path("var") / "id_secret"
MIN_LENGTH = 16
#: At least this many guesses (log10) by zxcvbn's estimate; see the module docstring.
MIN_GUESSES_LOG10 = 12.0
#: Longer secrets are fine; only this much is rated (zxcvbn slows down with length).
RATED_LENGTH = 256
#: Words a person choosing a secret for this bot might use: rated as easy to guess.
PROJECT_WORDS = (
    "trolychukyso", "tro ly chu ky so", "chukyso", "chu ky so", "troly", "bot", "secret",
    "botidsecret", "idsecret", "telegram", "zalo", "vneid", "dichvucong", "vnpt", "viettel",
    "misa", "smartca", "mysign",
)  # fmt: skip
#: What this module writes: 32 random bytes in hex.
_GENERATED = re.compile(r"^[0-9a-f]{64}$")
_HOW = "`python -c 'import secrets; print(secrets.token_hex(32))'`"


def load_id_secret(
    value: str | None, *, production: bool, path: Path = LOCAL_SECRET_FILE
) -> bytes:
    """``value`` (``BOT_ID_SECRET``) if given; otherwise, outside production, the local
    secret (created on first use). Raises :class:`ConfigError` with a one-line reason."""
    if value:
        check_strength(value)
        return value.encode()
    if production:
        raise ConfigError(
            f"BOT_ENV=production needs BOT_ID_SECRET (a long random string, e.g. {_HOW}); "
            "keep it safe: without it the stored ids cannot be matched to users again"
        )
    if path.exists():
        return _read_local(path)
    return _create_local(path)


def check_strength(value: str) -> None:
    """Raise :class:`ConfigError` if ``value`` is too short or too easy to guess (never
    saying what it is)."""
    if len(value) < MIN_LENGTH:
        raise ConfigError(f"BOT_ID_SECRET must be at least {MIN_LENGTH} characters")
    rating = zxcvbn(value[:RATED_LENGTH], user_inputs=list(PROJECT_WORDS), max_length=RATED_LENGTH)
    if float(rating["guesses_log10"]) < MIN_GUESSES_LOG10:
        raise ConfigError(
            "BOT_ID_SECRET is too easy to guess (a word, a pattern, repeats or a sequence): "
            f"use a long random string, e.g. {_HOW}"
        )


def _read_local(path: Path) -> bytes:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if mode & 0o077:
        raise ConfigError(
            f"{path} can be read by other users (mode {mode:04o}): run `chmod 600 {path}`"
        )
    secret = raw.strip()
    if not _GENERATED.match(secret.decode("ascii", errors="replace")):
        raise ConfigError(
            f"{path} is damaged (it should hold 64 hex digits): restore it from a backup; "
            "deleting it starts afresh, and the stored users can no longer be recognised"
        )
    return secret


def _create_local(path: Path) -> bytes:
    secret = secrets.token_hex(32).encode()
    try:
        private_folder(path.parent)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(secret)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be created ({exc.strerror or exc})") from exc
    return secret
