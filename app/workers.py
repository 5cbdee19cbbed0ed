"""``python -m bot serve --workers N``: N worker processes on one port, sharing only the database.

The supervisor (this process) migrates the database once, then starts N copies of ``python -m
bot serve`` with ``BOT_WORKER_INDEX`` set; each binds the same port with ``SO_REUSEPORT``, so
the kernel spreads connections across them. A worker that dies is started again (after a
pause if it keeps dying); SIGTERM or SIGINT stops them all. Nothing is shared between workers
but the database: one user's steps stay in order through the session's version check, a
delivery seen by two workers is applied once (the deliveries table), and work that one
process at a time must do (the outbox, retention) goes to whoever holds its lease
(storage/leases.py). Worker 0 alone registers the Telegram webhook.

Workers die with their supervisor, even one killed with SIGKILL (the kernel sends each the
signal ``PR_SET_PDEATHSIG`` names), and a second server refuses to start on a port whose
server is alive (a lock file held for the server's life: ``var/serve-PORT.lock``) -- so a
restart never runs twice the workers, nor twice the database connections.
"""

from __future__ import annotations

import asyncio
import ctypes
import fcntl
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from app.deathsignal import libc, request_death_signal
from app.settings import SUPERVISOR_PID, WORKER_COUNT, WORKER_INDEX, Settings
from bot.config import ConfigError
from bot.folders import private_folder
from storage.database import Database, migrate

#: A worker that dies sooner than this after starting is crash-looping: wait before restarting.
STEADY_AFTER = 10.0
MAX_PAUSE = 30.0
STOP_PATIENCE = 20.0
LOCK_FOLDER = Path("var")

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
            SUPERVISOR_PID: str(os.getpid()),
        }
        # The parent-death signal is asked for before the worker's program even starts: a
        # worker still importing (10-20 s on a loaded machine) outlived a SIGKILLed
        # supervisor by 20 s in bench/faults.py, until it reached die_with_supervisor().
        supervisor, lib = os.getpid(), libc()
        worker.proc = subprocess.Popen(
            self.argv, env=env, preexec_fn=lambda: _die_with(lib, supervisor)
        )
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


def _die_with(lib: ctypes.CDLL, parent: int) -> None:
    """In the forked child, before exec: SIGTERM when ``parent`` dies (it survives exec);
    if it already has, end here."""
    request_death_signal(signal.SIGTERM, lib)
    if os.getppid() != parent:
        os._exit(1)


def die_with_supervisor(supervisor: int) -> None:
    """In a worker: ask the kernel for SIGTERM when the supervisor dies, however it dies;
    if it already has (we are an orphan now), stop at once."""
    if not request_death_signal(signal.SIGTERM):
        log.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
    if os.getppid() != supervisor:
        raise SystemExit("the supervisor is gone: this worker stops")


@contextmanager
def only_server_on(port: int, folder: Path = LOCK_FOLDER) -> Iterator[None]:
    """Hold ``folder/serve-PORT.lock`` for the life of the block; raise ConfigError (one
    line) if a live server holds it. The lock dies with its holder, however it dies."""
    private_folder(folder)
    path = folder / f"serve-{port}.lock"
    handle = path.open("a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            raise ConfigError(
                f"a server is already running on port {port} (pid {holder}): stop it first"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()
