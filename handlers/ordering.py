"""Run jobs in order per key (one user's updates) and concurrently across keys.

Each job for a key waits for the previous job of the same key to finish, so a user's
messages are applied in the order they arrived even while other users are served at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable


class KeyedRunner:
    """Per-key ordered, globally bounded task runner."""

    def __init__(self, limit: int = 32):
        self._limit = asyncio.Semaphore(limit)
        self._tails: dict[Hashable, asyncio.Task[None]] = {}

    def submit(self, key: Hashable, job: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
        previous = self._tails.get(key)
        task = asyncio.create_task(self._run(previous, job))
        self._tails[key] = task
        task.add_done_callback(lambda done: self._forget(key, done))
        return task

    async def _run(
        self, previous: asyncio.Task[None] | None, job: Callable[[], Awaitable[None]]
    ) -> None:
        if previous is not None and not previous.done():
            await asyncio.wait([previous])
        async with self._limit:
            await job()

    def _forget(self, key: Hashable, done: asyncio.Task[None]) -> None:
        if self._tails.get(key) is done:
            del self._tails[key]

    @property
    def pending(self) -> int:
        return len(self._tails)

    async def drain(self) -> None:
        """Wait until every submitted job has finished."""
        while self._tails:
            await asyncio.wait(list(self._tails.values()))
