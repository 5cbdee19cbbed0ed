"""The webhook server's connection guard: what it costs per request, and what it buys.

1. Cost. The same small app -- /healthz, and a POST route that reads a JSON body as a
   webhook does -- served two ways in this process: bare aiohttp (``web.TCPSite``, no
   middleware), and as ``python -m bot serve`` serves it (``app.server.make_app`` with the
   body deadline and the :class:`~app.connections.ConnectionGuard`, through ``serving``).
   A client here sends the same requests over 8 keep-alive connections; the process's CPU
   time per request is measured for each, alternately, and the lowest of the rounds kept
   (other programs on the machine only ever add time). The difference is the guard's cost.
2. Benefit. ``python -m bot serve`` under a 256-descriptor limit, with 600 connections
   held idle against it (the audit's storm, scaled to the limit): /healthz latency while
   they are held, how many of them the server still holds after the header deadline, and
   how many lines the storm left in its log.

Usage: python bench/connections.py [--quick]
The last line is ``guard_us_per_request=… bare_us_per_request=… healthz_p50_ms=…
healthz_max_ms=… idle_held_after_deadline=… storm_log_lines=…``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.connections import ConnectionGuard  # noqa: E402
from app.httplimits import HttpLimits  # noqa: E402
from app.server import make_app, serving  # noqa: E402
from bench.common import free_port  # noqa: E402

BODY = b'{"update_id": 1, "message": {"text": "' + b"x" * 200 + b'"}}'
FD_LIMIT = 256
IDLE = 600
HEADER_TIMEOUT = 2.0


async def webhook(request: web.Request) -> web.Response:
    await request.json()
    return web.json_response({"ok": True})


@contextlib.asynccontextmanager
async def bare() -> AsyncIterator[int]:
    app = web.Application()
    app.router.add_get("/healthz", lambda _r: _ok())
    app.router.add_post("/hook", webhook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield port
    finally:
        await runner.cleanup()


async def _ok() -> web.Response:
    return web.json_response({"ok": True})


@contextlib.asynccontextmanager
async def guarded() -> AsyncIterator[int]:
    limits = HttpLimits()
    guard = ConnectionGuard(limits)
    app = make_app([], limits=limits, guard=guard)
    app.router.add_post("/hook", webhook)
    async with serving(app, guard, "127.0.0.1", 0) as site:
        yield site.port


async def cpu_per_request(
    server: Callable[[], contextlib.AbstractAsyncContextManager[int]], requests: int
) -> float:
    """Microseconds of this process's CPU per request (client and server together)."""
    async with server() as port:
        connector = aiohttp.TCPConnector(limit=8)
        async with aiohttp.ClientSession(connector=connector) as session:
            base = f"http://127.0.0.1:{port}"

            async def one(n: int) -> None:
                if n % 4:
                    async with session.post(f"{base}/hook", data=BODY) as response:
                        await response.read()
                else:
                    async with session.get(f"{base}/healthz") as response:
                        await response.read()

            await asyncio.gather(*(one(n) for n in range(50)))  # warm up
            started = time.process_time()
            for chunk in range(0, requests, 64):
                await asyncio.gather(*(one(n) for n in range(chunk, min(requests, chunk + 64))))
            return (time.process_time() - started) / requests * 1e6


async def storm(log: Path) -> tuple[list[float], int, int]:
    """Latencies of /healthz (ms) while IDLE connections are held, how many of those the
    server still holds after the header deadline, and the storm's lines in its log."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "ZALO_"))},
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "DATABASE_URL": f"sqlite:///{log.parent / 'bot.db'}",
        "BOT_ID_SECRET": "bench-connections-secret-0123456789",
        "HTTP_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
    }

    def lower_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))

    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "serve",
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=lower_limit,
        )
    try:
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(timeout=timeout) as session:

            async def healthz() -> float:
                started = time.perf_counter()
                async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                    await response.read()
                    assert response.status == 200
                return (time.perf_counter() - started) * 1000

            for _ in range(150):
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    await healthz()
                    break
                await asyncio.sleep(0.2)
            idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(IDLE)]
            latencies = [await _fresh(f"http://127.0.0.1:{port}/healthz") for _ in range(20)]
            await asyncio.sleep(HEADER_TIMEOUT + 1.5)
            held = sum([not await _closed(reader) for reader, _ in idle])
            for _, writer in idle:
                writer.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 15)
    text = await asyncio.to_thread(log.read_text)
    storms = ("app.connections", "out of system resource")
    lines = [line for line in text.splitlines() if any(s in line for s in storms)]
    return latencies, held, len(lines)


async def _fresh(url: str) -> float:
    """One /healthz on a new connection (as a monitor asks), in ms."""
    started = time.perf_counter()
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as r:
        await r.read()
        assert r.status == 200
    return (time.perf_counter() - started) * 1000


async def _closed(reader: asyncio.StreamReader) -> bool:
    try:
        async with asyncio.timeout(0.05):
            return await reader.read(1) == b""
    except TimeoutError:
        return False
    except ConnectionError:
        return True


async def main(quick: bool) -> None:
    requests = 1500 if quick else 6000
    rounds = 2 if quick else 4
    servers: dict[str, Callable[[], contextlib.AbstractAsyncContextManager[int]]] = {
        "bare": bare,
        "guarded": guarded,
    }
    costs: dict[str, list[float]] = {name: [] for name in servers}
    for number in range(rounds):
        for name, server in servers.items():
            costs[name].append(await cpu_per_request(server, requests))
        print(
            f"round {number + 1}: "
            + ", ".join(f"{n} {v[-1]:.0f} us/request" for n, v in costs.items()),
            flush=True,
        )
    bare_us, guard_us = min(costs["bare"]), min(costs["guarded"])
    print(f"CPU per request (client and server in this process, best of {rounds}):")
    print(f"  bare aiohttp {bare_us:.0f} us, as served {guard_us:.0f} us")
    with tempfile.TemporaryDirectory() as tmp:
        latencies, held, lines = await storm(Path(tmp) / "serve.log")
    p50, worst = statistics.median(latencies), max(latencies)
    print("/healthz latencies, ms: " + " ".join(f"{v:.0f}" for v in latencies))
    print(
        f"{IDLE} idle connections against `serve` under a {FD_LIMIT}-descriptor limit: "
        f"/healthz p50 {p50:.1f} ms, max {worst:.1f} ms; held after the deadline: {held}; "
        f"storm lines in the log: {lines}"
    )
    print(
        f"guard_us_per_request={guard_us:.0f} bare_us_per_request={bare_us:.0f} "
        f"healthz_p50_ms={p50:.1f} healthz_max_ms={worst:.1f} "
        f"idle_held_after_deadline={held} storm_log_lines={lines}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small run (well under a minute)")
    asyncio.run(main(parser.parse_args().quick))
