"""The webhook server under connections that ask for nothing: real sockets, a served app.

In-process cases drive :func:`app.server.serving` with small deadlines and a small cap; the
last case runs ``python -m bot serve`` itself under a lowered descriptor limit and holds
hundreds of idle connections against it, as the audit did (1,000 connections, 1,024
descriptors: /healthz timed out and the log grew 97 MB in 40 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import resource
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from app.connections import ConnectionGuard, connection_cap
from app.httplimits import HttpLimits
from app.server import make_app, serving
from bench.common import free_port
from tests.conftest import ROOT

LIMITS = HttpLimits(
    max_connections=16, header_timeout=0.4, body_timeout=0.4, keepalive_timeout=0.8
)


class Served:
    def __init__(self, guard: ConnectionGuard, port: int, release: asyncio.Event):
        self.guard = guard
        self.port = port
        #: Set to let the requests waiting on /slow finish.
        self.release = release

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)

    async def healthz(self) -> int:
        timeout = aiohttp.ClientTimeout(total=3)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(f"http://127.0.0.1:{self.port}/healthz") as response,
        ):
            return response.status


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    guard = ConnectionGuard(LIMITS)
    app = make_app([], limits=LIMITS, guard=guard)
    release = asyncio.Event()

    async def slow(_request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="done")

    app.router.add_get("/slow", slow)
    async with serving(app, guard, "127.0.0.1", 0) as site:
        yield Served(guard, site.port, release)
        release.set()


async def closed_by_server(reader: asyncio.StreamReader, within: float) -> bool:
    """Whether the server closes the connection (EOF or reset) within ``within`` seconds."""
    try:
        async with asyncio.timeout(within):
            while await reader.read(4096):
                pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


async def test_a_connection_that_sends_nothing_is_closed_at_the_deadline(served: Served) -> None:
    connections = [await served.connect() for _ in range(10)]
    closed = await asyncio.gather(*(closed_by_server(r, 2.0) for r, _ in connections))
    assert all(closed)
    assert served.guard.closed_idle >= 10
    for _, writer in connections:
        writer.close()


async def test_headers_trickled_byte_by_byte_do_not_keep_a_connection(served: Served) -> None:
    reader, writer = await served.connect()
    started = time.monotonic()

    async def trickle() -> None:
        with contextlib.suppress(ConnectionError):
            for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.05)

    dripping = asyncio.create_task(trickle())
    assert await closed_by_server(reader, 3.0)
    assert time.monotonic() - started < 2.0, "closed at the header deadline, not later"
    dripping.cancel()
    writer.close()


async def test_a_body_that_does_not_arrive_is_answered_408(served: Served) -> None:
    reader, writer = await served.connect()
    writer.write(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"{" * 10)
    await writer.drain()
    async with asyncio.timeout(3):
        status = await reader.readline()
    assert status.startswith(b"HTTP/1.1 408"), status
    assert await closed_by_server(reader, 2.0)
    writer.close()


async def test_an_answered_connection_is_kept_a_while_for_its_next_request(
    served: Served,
) -> None:
    reader, writer = await served.connect()
    for pause in (0.0, 0.5, 0.5):  # later requests past the first deadline, inside this one
        await asyncio.sleep(pause)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        async with asyncio.timeout(3):
            assert (await reader.readline()).startswith(b"HTTP/1.1 200")
            await reader.readuntil(b"}")  # the rest of the answer
    started = time.monotonic()
    assert await closed_by_server(reader, 3.0)
    assert time.monotonic() - started >= 0.6, "kept for the keep-alive deadline"
    writer.close()


async def test_at_the_cap_idle_connections_make_room_and_health_stays_up(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="app.connections")
    held = [await served.connect() for _ in range(200)]
    await asyncio.sleep(0.05)
    assert len(served.guard.open) <= LIMITS.max_connections
    for _ in range(5):
        assert await served.healthz() == 200
    assert served.guard.evicted >= 200 - LIMITS.max_connections
    storm = [r for r in caplog.records if r.name == "app.connections"]
    assert len(storm) <= 1, "a storm is one line per interval, not one per connection"
    for _, writer in held:
        writer.close()


async def test_when_every_connection_is_busy_a_newcomer_is_closed_at_once(
    served: Served,
) -> None:
    busy = []
    for _ in range(LIMITS.max_connections):
        reader, writer = await served.connect()
        writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        busy.append((reader, writer))
    await asyncio.sleep(0.6)  # past the header deadline: busy connections are not idle
    assert len(served.guard.open) == LIMITS.max_connections
    newcomer, writer = await served.connect()
    assert await closed_by_server(newcomer, 1.0)
    assert served.guard.refused >= 1
    served.release.set()
    for reader, _ in busy:
        async with asyncio.timeout(3):
            assert (await reader.readline()).startswith(b"HTTP/1.1 200")
    writer.close()
    for _, w in busy:
        w.close()


def test_the_cap_stays_under_the_descriptor_limit() -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert connection_cap(10**9) == soft - 64
    assert connection_cap(16) == 16


# --- the real server, under a lowered descriptor limit ----------------------------------------

#: Descriptors the served process may open, and idle connections held against it.
FD_LIMIT = 256
IDLE = 600


@pytest.fixture
def bot_serve(tmp_path: Path) -> Iterator[tuple[int, Path, int]]:
    port = free_port()
    log = tmp_path / "serve.log"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "ZALO_"))},
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
        "BOT_ID_SECRET": "connections-test-secret-0123456789abcdef",
        "HTTP_HEADER_TIMEOUT": "2",
    }

    def lower_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))

    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=lower_limit,
        )
    try:
        yield port, log, proc.pid
    finally:
        proc.send_signal(signal.SIGCONT)  # if a test left it stopped
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _healthz(port: int, within: float = 3.0) -> int:
    url = f"http://127.0.0.1:{port}/healthz"
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=within)) as session,
        session.get(url) as response,
    ):
        return response.status


async def _wait_up(port: int, log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            if await _healthz(port) == 200:
                return
        assert time.monotonic() < deadline, _tail(log)
        await asyncio.sleep(0.2)


def _tail(log: Path) -> str:
    return log.read_text()[-2000:]


async def test_hundreds_of_connections_held_then_queued_never_exhaust_the_descriptors(
    bot_serve: tuple[int, Path, int],
) -> None:
    """One served process (starting one takes seconds), two storms of 600 connections, more
    than its 256 descriptors. First held idle against the running server, as the audit did.
    Then queued in the kernel while the server is stopped, as a busy event loop is: asyncio
    accepted as many as the listen backlog (1,024) in one go, past the descriptors -- "out
    of system resource" and no accept for a second. In this order because the storm line
    the first storm is checked by is said once a minute (STORM_LOG_EVERY)."""
    port, log, pid = bot_serve
    await _wait_up(port, log)

    # 1. Held idle, more than the server has descriptors.
    idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(IDLE)]
    # Why 15 s and not "at once": on a loaded 2-core CI machine the server may still be
    # accepting the 600 from the kernel's queue when the probe arrives (a run measured 3 s+).
    # What shows the cap at work is in the log: connections closed to make room, and no
    # accept() storm -- without the cap the probe would wait for the header deadline instead.
    for _ in range(5):
        assert await _healthz(port, 15.0) == 200
    # Past the deadline, the server holds none of them any more.
    closed = await asyncio.gather(*(closed_by_server(r, 4.0) for r, _ in idle))
    assert all(closed)
    for _, writer in idle:
        writer.close()
    text = log.read_text()
    assert len(text) < 10_000, text[-2000:]
    assert "out of system resource" not in text, text[-2000:]
    made_room = [int(n) for n in re.findall(r"(\d+) closed to make room", text)]
    assert made_room, text[-2000:]
    assert max(made_room) > 0, text[-2000:]

    # 2. Queued while the server was busy.
    os.kill(pid, signal.SIGSTOP)
    try:
        queued = [await asyncio.open_connection("127.0.0.1", port) for _ in range(IDLE)]
    finally:
        os.kill(pid, signal.SIGCONT)
    for _ in range(5):
        assert await _healthz(port, 15.0) == 200
    for _, writer in queued:
        writer.close()
    assert "out of system resource" not in log.read_text(), log.read_text()[-2000:]
