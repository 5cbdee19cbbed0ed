"""Helpers shared by the benchmark scripts (run as ``python bench/<name>.py``)."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unthrottled_config(path: Path) -> Path:
    """Write to ``path`` a copy of the deployment's config (``BOT_CONFIG`` or config.toml)
    whose per-user flood limit does not throttle scripted users, who compress a quarter of
    an hour of a person's chat into a second or two."""
    source = Path(os.environ.get("BOT_CONFIG") or ROOT / "config.toml")
    text = source.read_text(encoding="utf-8")
    limit = "messages_per_minute = 1000000"
    text, found = re.subn(r"(?m)^messages_per_minute\s*=.*$", limit, text)
    if not found:
        text = text.replace("[deployment]\n", f"[deployment]\n{limit}\n", 1)
    path.write_text(text, encoding="utf-8")
    return path


class StandInControl:
    """Talks to the control endpoints of the Bot API stand-in (tests/fakes/telegram_api.py)."""

    def __init__(self, session: aiohttp.ClientSession, port: int):
        self.http = session
        self.base = f"http://127.0.0.1:{port}"

    async def enqueue(self, updates: list[dict[str, Any]]) -> None:
        async with self.http.post(f"{self.base}/_control/enqueue", json={"updates": updates}) as r:
            r.raise_for_status()

    async def stats(self) -> dict[str, Any]:
        async with self.http.get(f"{self.base}/_control/stats") as r:
            result: dict[str, Any] = await r.json()
            return result

    async def sends(self, since: int) -> list[dict[str, Any]]:
        async with self.http.get(f"{self.base}/_control/sends", params={"since": since}) as r:
            result: list[dict[str, Any]] = await r.json()
            return result

    async def reset(self) -> None:
        async with self.http.post(f"{self.base}/_control/reset") as r:
            r.raise_for_status()

    async def replies(self) -> int:
        """How many messages the bot has sent through the stand-in so far."""
        return int((await self.stats())["send_message"])

    async def wait_replies(self, count: int, patience: float = 180.0) -> None:
        """Wait until the bot has sent ``count`` messages (TimeoutError after ``patience``)."""
        deadline = time.monotonic() + patience
        while (got := await self.replies()) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {got}/{count} replies")
            await asyncio.sleep(0.02)
