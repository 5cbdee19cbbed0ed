"""``python -m bot serve --workers N``: N worker processes on one port, sharing only the database.

The supervisor (this process) migrates the database once, then starts N copies of ``python -m
bot serve`` with ``BOT_WORKER_INDEX`` set; each binds the same port with ``SO_REUSEPORT``, so
the kernel spreads connections across them. A worker that dies is started again (after a
pause if it keeps dying); SIGTERM or SIGINT stops them all. Nothing is shared between workers
but the database: one user's steps stay in order through the session's version check, a
delivery seen by two workers is applied once (the deliveries table), and work that one
process at a time must do (the outbox, retention) goes to whoever holds its lease
(storage/leases.py). Worker 0 alone registers the Telegram webhook.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from types import FrameType

from app.settings import WORKER_COUNT, WORKER_INDEX, Settings
from storage.database import Database, migrate

#: A worker that dies sooner than this after starting is crash-looping: wait before restarting.
STEADY_AFTER = 10.0
MAX_PAUSE = 30.0
STOP_PATIENCE = 20.0

log = logging.getLogger(__name__)


@dataclass
class _Worker:
    index: int
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    failures: int = 0
    restart_at: float = 0.0


class Supervisor:
    def __init__(self, settings: Settings, count: int, argv: list[str] | None = None):
        self.settings = settings
        self.count = count
        self.argv = argv or [sys.executable, "-m", "bot", "serve"]
        self.workers = [_Worker(i) for i in range(count)]
        self.stopping = False

    def _start(self, worker: _Worker) -> None:
        env = {
            **self.settings.environment,
            WORKER_INDEX: str(worker.index),
            WORKER_COUNT: str(self.count),
        }
        worker.proc = subprocess.Popen(self.argv, env=env)
        worker.started = time.monotonic()
        log.info("worker %d started (pid %d)", worker.index, worker.proc.pid)

    def _stop(self, signum: int, _frame: FrameType | None) -> None:
        self.stopping = True
        for worker in self.workers:
            if worker.proc is not None and worker.proc.poll() is None:
                worker.proc.send_signal(signal.SIGTERM)

    def run(self) -> int:
        asyncio.run(_migrate_once(self.settings.database_url))
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        for worker in self.workers:
            self._start(worker)
        while not self.stopping:
            time.sleep(0.2)
            now = time.monotonic()
            for worker in self.workers:
                self._look_after(worker, now)
        deadline = time.monotonic() + STOP_PATIENCE
        for worker in self.workers:
            if worker.proc is None:
                continue
            try:
                worker.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker %d did not stop in time: killed", worker.index)
                worker.proc.kill()
                worker.proc.wait()
        return 0

    def _look_after(self, worker: _Worker, now: float) -> None:
        if worker.proc is not None:
            code = worker.proc.poll()
            if code is None or self.stopping:
                return
            steady = now - worker.started >= STEADY_AFTER
            worker.failures = 0 if steady else worker.failures + 1
            pause = 0.0 if steady else min(MAX_PAUSE, 0.5 * 2**worker.failures)
            log.warning("worker %d exited (%s); restarting in %.1f s", worker.index, code, pause)
            worker.proc = None
            worker.restart_at = now + pause
        if now >= worker.restart_at:
            self._start(worker)


async def _migrate_once(url: str) -> None:
    db = Database(url)
    try:
        await migrate(db)
    finally:
        await db.dispose()
