"""``python -m bot serve --workers 2`` as real processes on one port, sharing one database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from storage.database import Database
from tests.conftest import ROOT, rows, shared_caches
from tests.fakes.telegram_api import FakeBotAPI, make_text_update
from tests.processes import child_outlives_its_killed_parent

SECRET = "workers-Webhook_secret"
USERS = range(91_000, 91_060)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


class Cluster:
    def __init__(
        self,
        proc: asyncio.subprocess.Process,
        port: int,
        api: FakeBotAPI,
        url: str,
        env: dict[str, str],
        folder: Path,
    ):
        self.proc = proc
        self.port = port
        self.env = env
        self.folder = folder
        self.base = f"http://127.0.0.1:{port}"
        self.api = api
        self.url = url

    async def get(self, path: str) -> Any:
        # A new connection each time, so that the kernel may pick another worker.
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http,
            http.get(self.base + path) as response,
        ):
            return await response.json()

    async def post(self, update: dict[str, Any]) -> int:
        headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http,
            http.post(self.base + "/telegram/webhook", json=update, headers=headers) as response,
        ):
            return response.status

    async def workers_seen(self, tries: int = 60) -> set[int]:
        return {(await self.get("/healthz"))["worker"] for _ in range(tries)}

    # Why 60 s: each worker imports the stack and trains the understanding at its start, about
    # 4 s alone on 2 cores but 15 s and more with the rest of the suite running beside it.
    async def wait_up(self, count: int = 2, patience: float = 60.0) -> None:
        async with asyncio.timeout(patience):
            while True:
                with contextlib.suppress(aiohttp.ClientError):
                    if len(await self.workers_seen(20)) == count:
                        return
                await asyncio.sleep(0.2)


async def serve_two(
    folder: Path, env: dict[str, str], **streams: Any
) -> asyncio.subprocess.Process:
    """``python -m bot serve --workers 2`` started in ``folder``."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "serve", "--workers", "2", cwd=folder, env=env, **streams
    )


@pytest.fixture
async def cluster(database_url: str, tmp_path: Path) -> AsyncIterator[Cluster]:
    port = free_port()
    async with FakeBotAPI() as api:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "PORT": str(port),
            "HOST": "127.0.0.1",
            "DATABASE_URL": database_url,
            "BOT_ID_SECRET": "workers-test-secret-0123456789",
            "TELEGRAM_BOT_TOKEN": api.token,
            "TELEGRAM_API_BASE_URL": api.base_url,
            "TELEGRAM_WEBHOOK_SECRET": SECRET,
            "TELEGRAM_RATE_LIMITER": "off",
            "LOG_LEVEL": "WARNING",
        }
        for name in ("ZALO_BOT_TOKEN", "ZALO_OA_APP_ID", "TELEGRAM_WEBHOOK_URL"):
            env.pop(name, None)
        proc = await serve_two(shared_caches(tmp_path), env)
        try:
            cluster = Cluster(proc, port, api, database_url, env, tmp_path)
            await cluster.wait_up()
            yield cluster
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), 30)
                except TimeoutError:
                    proc.kill()
                    raise


async def share_the_port_and_apply_each_update_once(cluster: Cluster) -> None:
    assert await cluster.workers_seen() == {0, 1}
    # Every update is delivered twice at once (a retry racing the original), very likely to
    # both workers.
    first = [{"update_id": 1000 + i, **make_text_update(u, "/start")} for i, u in enumerate(USERS)]
    statuses = await asyncio.gather(*(cluster.post(u) for u in first + first))
    assert set(statuses) == {200}
    for user in USERS:
        await cluster.api.wait_sent(user, 1)  # greeting, privacy promise and menu in one
    then = [{"update_id": 2000 + i, **make_text_update(u, "2")} for i, u in enumerate(USERS)]
    await asyncio.gather(*(cluster.post(u) for u in then + then))
    for user in USERS:
        await cluster.api.wait_sent(user, 2)  # the screen option 2 leads to
    await asyncio.sleep(0.3)  # a doubled reply would have arrived by now
    assert all(len(cluster.api.sent(u)) == 2 for u in USERS)
    db = Database(cluster.url)
    try:
        assert (await rows(db, "SELECT count(*) FROM sessions"))[0][0] == len(USERS)
        started = await rows(db, "SELECT count(*) FROM events WHERE kind = 'started'")
        assert started[0][0] == len(USERS)
        assert (await rows(db, "SELECT count(*) FROM deliveries"))[0][0] == 2 * len(USERS)
        assert {r[0] for r in await rows(db, "SELECT step FROM sessions")} == {"ready"}
    finally:
        await db.dispose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_two_workers_share_the_port_and_apply_each_update_once(cluster: Cluster) -> None:
    """On PostgreSQL; on SQLite, the first chapter of the supervisor's story below."""
    await share_the_port_and_apply_each_update_once(cluster)


# One cluster on SQLite for the whole story (each cluster costs three process starts, about
# 10 s of CPU): the supervisor's own behaviour does not depend on the database.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_supervisor_keeps_its_port_and_workers_and_takes_them_when_it_dies(
    cluster: Cluster,
) -> None:
    """Two workers share the port and apply each update once; a second server on the port
    refuses in one line; SIGKILL of the supervisor takes its workers with it (it used to
    leave them serving: a restart then ran twice the workers on the port, and twice the
    database connections), and a second one may start; a killed worker of it is started
    again; SIGTERM stops it and all its workers."""
    await share_the_port_and_apply_each_update_once(cluster)

    # A second server on a live one's port refuses, in one line.
    second = await serve_two(cluster.folder, cluster.env, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(second.communicate(), 30)
    assert second.returncode == 2
    message = err.decode().strip()
    assert message.startswith("error: a server is already running on port")
    assert "\n" not in message
    assert "Traceback" not in message
    assert len(children(cluster.proc.pid)) == 2, "the live one goes on"

    # The supervisor killed: its workers die with it.
    workers = children(cluster.proc.pid)
    assert len(workers) == 2
    os.kill(cluster.proc.pid, signal.SIGKILL)
    await cluster.proc.wait()
    for _ in range(200):  # the kernel signals them at once; they stop within seconds
        if not any(alive(pid) for pid in workers):
            break
        await asyncio.sleep(0.05)
    assert not any(alive(pid) for pid in workers)

    # A second one may start then. A killed worker of it is started again, the other one
    # left alone; SIGTERM stops it and all its workers, the restarted one too.
    again = await serve_two(cluster.folder, cluster.env)
    try:
        await cluster.wait_up()
        before = children(again.pid)
        assert len(before) == 2
        os.kill(before[0], signal.SIGKILL)
        await cluster.wait_up()
        after = children(again.pid)
        assert len(after) == 2
        assert before[0] not in after
        assert before[1] in after
        again.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(again.wait(), 30) == 0
        assert not any(alive(pid) for pid in after)
    finally:
        if again.returncode is None:
            again.kill()
            await again.wait()


STARTING = """
import sys, time
from app.settings import Settings
from app.workers import Supervisor, _Worker

if __name__ == "__main__":
    # A worker still starting: it has not yet reached die_with_supervisor() (its imports
    # take 10-20 s on a loaded machine); this one never will.
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    supervisor = Supervisor(Settings.from_env({}), 1, sleeper)
    worker = _Worker(0)
    supervisor._start(worker)
    print(worker.proc.pid, flush=True)
    time.sleep(60)
"""


def test_a_worker_still_starting_dies_with_a_killed_supervisor() -> None:
    # At once: bench/faults.py saw 20 s.
    assert not child_outlives_its_killed_parent(STARTING, within=2.0)
