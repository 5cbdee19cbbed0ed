"""Run jobs in order per key (one user's updates) and concurrently across keys.

Each key with pending jobs has one worker task that runs them one after the other, so a
user's messages are applied in the order they arrived while other users are served at once.
At most ``limit`` keys are worked on at a time.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable

Job = Callable[[], Awaitable[None]]

log = logging.getLogger(__name__)


class KeyedRunner:
    """Per-key ordered, globally bounded job runner."""

    def __init__(self, limit: int = 8):
        self._limit = asyncio.Semaphore(limit)
        self._queues: dict[Hashable, deque[Job]] = {}
        self._workers: set[asyncio.Task[None]] = set()

    def submit(self, key: Hashable, job: Job) -> None:
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = deque()
            worker = asyncio.get_running_loop().create_task(self._work(key, queue))
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)
        queue.append(job)

    async def _work(self, key: Hashable, queue: deque[Job]) -> None:
        async with self._limit:
            try:
                while queue:
                    job = queue.popleft()
                    try:
                        await job()
                    except Exception:
                        # A job handles its own errors; this is the last line of defence, so
                        # that one failure never stalls the user's later messages.
                        log.exception("a job failed")
            finally:
                del self._queues[key]

    @property
    def pending(self) -> int:
        """Keys with jobs waiting or running."""
        return len(self._queues)

    async def drain(self) -> None:
        """Wait until every submitted job has finished."""
        while self._workers:
            await asyncio.wait(list(self._workers))
