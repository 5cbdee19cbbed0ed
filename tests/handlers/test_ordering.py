"""KeyedRunner: in order per key, concurrent across keys."""

from __future__ import annotations

import asyncio
import random

import pytest

from handlers.ordering import KeyedRunner


async def test_jobs_of_one_key_run_in_order_while_keys_interleave() -> None:
    runner = KeyedRunner(limit=8)
    seen: dict[int, list[int]] = {k: [] for k in range(5)}
    running = 0
    peak = 0

    def job(key: int, n: int) -> object:
        async def run() -> None:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(random.random() / 500)
            seen[key].append(n)
            running -= 1

        return run

    for n in range(20):
        for key in range(5):
            runner.submit(key, job(key, n))  # type: ignore[arg-type]
    await runner.drain()
    assert all(seen[k] == list(range(20)) for k in seen)
    assert peak > 1, "different keys ran concurrently"
    assert runner.pending == 0


async def test_a_failing_job_does_not_block_the_next(caplog: pytest.LogCaptureFixture) -> None:
    runner = KeyedRunner()
    done: list[str] = []

    async def boom() -> None:
        raise RuntimeError("boom")

    async def fine() -> None:
        done.append("fine")

    runner.submit("k", boom)
    runner.submit("k", fine)
    await runner.drain()
    assert done == ["fine"]
    assert "a job failed" in caplog.text


async def test_limit_bounds_concurrency() -> None:
    runner = KeyedRunner(limit=2)
    running = 0
    peak = 0

    async def work() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.001)
        running -= 1

    for key in range(10):
        runner.submit(key, work)
    await runner.drain()
    assert peak == 2
