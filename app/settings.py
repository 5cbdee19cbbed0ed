"""Everything the process is told by its environment, read once, in this one module.

No other module reads ``os.environ``: the composition root reads :class:`Settings` at start
and hands each part the values it needs (the store its URL, each channel the snapshot of the
environment to take its own variables from). Secrets
never live in ``config.toml``; they come from here. What each variable means: README,
"Environment".
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from app.httplimits import DEFAULT_LIMITS, HttpLimits
from bot.config import DEFAULT_CONFIG, ConfigError

DEFAULT_DATABASE_URL = "sqlite:///var/bot.db"
#: Set by ``serve --workers N`` for each worker it starts.
WORKER_INDEX = "BOT_WORKER_INDEX"
WORKER_COUNT = "BOT_WORKERS"
SUPERVISOR_PID = "BOT_SUPERVISOR_PID"


@dataclass(frozen=True, slots=True)
class Settings:
    config_path: Path = DEFAULT_CONFIG
    database_url: str = DEFAULT_DATABASE_URL
    #: ``BOT_ID_SECRET``; without it (outside production) a local one is generated once.
    id_secret: str | None = None
    #: ``BOT_ENV=production``: secrets must come from the environment, never be generated.
    production: bool = False
    log_level: str = "INFO"
    host: str = "0.0.0.0"
    port: int = 8080
    worker_index: int = 0
    workers: int = 1
    #: The webhook server's connection cap and deadlines (``HTTP_*``, app/connections.py).
    http: HttpLimits = DEFAULT_LIMITS
    #: Set by the supervisor in each worker it starts: the worker dies with it.
    supervisor_pid: int | None = None
    #: ``PUBLIC_URL``: where people reach this server (the dashboard's login links); without
    #: it, http://127.0.0.1:PORT (the operator's own machine).
    public_url: str = ""
    #: The environment as read at start: each channel reads its own variables from it
    #: (``Channel.configure``), so that a channel stays one module; workers inherit it.
    environment: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def several_workers(self) -> bool:
        return self.workers > 1

    @property
    def web_url(self) -> str:
        """The server's address as people's browsers reach it (no trailing slash)."""
        return self.public_url or f"http://127.0.0.1:{self.port}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the environment (``os.environ`` unless given); raise :class:`ConfigError`
        with a one-line reason for anything malformed or incomplete."""
        env = dict(os.environ if env is None else env)
        return cls(
            config_path=Path(env["BOT_CONFIG"]) if env.get("BOT_CONFIG") else DEFAULT_CONFIG,
            database_url=env.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
            id_secret=env.get("BOT_ID_SECRET") or None,
            production=env.get("BOT_ENV", "").strip().lower() == "production",
            log_level=env.get("LOG_LEVEL") or "INFO",
            host=env.get("HOST") or "0.0.0.0",
            port=_int(env, "PORT", 8080, low=1, high=65535),
            worker_index=_int(env, WORKER_INDEX, 0, low=0, high=1024),
            workers=_int(env, WORKER_COUNT, 1, low=1, high=1024),
            http=HttpLimits(
                max_connections=_int(
                    env,
                    "HTTP_MAX_CONNECTIONS",
                    DEFAULT_LIMITS.max_connections,
                    low=8,
                    high=100_000,
                ),
                header_timeout=_seconds(env, "HTTP_HEADER_TIMEOUT", DEFAULT_LIMITS.header_timeout),
                body_timeout=_seconds(env, "HTTP_BODY_TIMEOUT", DEFAULT_LIMITS.body_timeout),
                keepalive_timeout=_seconds(
                    env, "HTTP_KEEPALIVE_TIMEOUT", DEFAULT_LIMITS.keepalive_timeout
                ),
            ),
            supervisor_pid=_int(env, SUPERVISOR_PID, 0, low=0, high=2**22) or None,
            public_url=_public_url(env.get("PUBLIC_URL", "")),
            environment=env,
        )


def _int(env: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw[:20]!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}")
    return value


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, not {raw[:20]!r}") from None
    if not 0.1 <= value <= 300:
        raise ConfigError(f"{name} must be between 0.1 and 300 seconds")
    return value


def _public_url(raw: str) -> str:
    url = raw.strip().rstrip("/")
    if url and not url.startswith(("https://", "http://")):
        raise ConfigError(f"PUBLIC_URL must start with https:// (or http://), not {url[:30]!r}")
    return url


def prepare_process() -> None:
    """Process-wide switches of the libraries we use, set once at start (before any of them
    runs): python-telegram-bot gives durations (``RetryAfter.retry_after``...) as timedelta,
    as its next major version will, instead of warning at every flood-control answer."""
    os.environ.setdefault("PTB_TIMEDELTA", "true")
