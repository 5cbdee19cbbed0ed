"""Throughput and latency of the real bot against a bare python-telegram-bot echo bot.

All run as their own processes, long-polling the local Bot API stand-in
(tests/fakes/telegram_api.py, a third process). Each of M users first opens the bot (not
timed), then sends text messages that each get exactly one reply: alternately "2" (an option
of the menu: opens the readiness screen) and "quay lại" (a global word: back to the menu).
The real bot loads the session, runs the engine, commits state and events to SQLite, then
replies. Two baselines:

- ``echo``: the bare echo bot, replying with the text it got (a few bytes);
- ``shaped``: the same echo bot replying with the real bot's screens (Vietnamese text and
  four inline buttons), so that bot/shaped isolates what the bot *does* per update from what
  it *sends* (bigger messages cost PTB and httpx time too).

- Throughput: N updates enqueued at once; updates/s = N / (last reply - enqueue).
- Latency: updates paced at a steady --rate (default 200/s, the same for every bot), time
  from enqueue to the reply, p50 and p99.
- CPU per update: user+sys time of the bot's process (its children apart: the classifier's
  training at start-up is printed on its own) over both timed phases / their updates. Less
  sensitive to other work on the machine than the wall-clock figures.

Usage: python bench/throughput.py [--quick] [--updates N] [--users M] [--rounds R]
The last line is ``throughput_ratio=<bot/echo> shaped_ratio=<bot/shaped> p99_ms=<bot p99>
cpu_ms_per_update=<bot>``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import StandInControl, free_port  # noqa: E402
from tests.fakes.telegram_api import make_text_update  # noqa: E402

TOKEN = "123:BENCH"
USER_BASE = 700_000
SCRIPT = ("2", "quay lại")


@dataclass
class Result:
    name: str
    updates: int
    seconds: float
    latencies_ms: list[float]
    #: Processor time (user+sys) of the bot's own process per timed update, and of its
    #: children (the classifier's training) in all.
    cpu_ms: float = float("nan")
    children_cpu_s: float = float("nan")

    @property
    def rate(self) -> float:
        return self.updates / self.seconds

    def pct(self, q: float) -> float:
        data = sorted(self.latencies_ms)
        return data[min(len(data) - 1, int(q * len(data)))] if data else float("nan")


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user+sys of the process, user+sys of its waited-for children), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    own = (int(fields[11]) + int(fields[12])) / tick
    children = (int(fields[13]) + int(fields[14])) / tick
    return own, children


@contextlib.contextmanager
def process(
    args: list[str], env: dict[str, str], ready: str | None = None
) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        if ready is not None:
            assert proc.stdout is not None
            for line in proc.stdout:
                if ready in line:
                    break
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def users(m: int) -> list[int]:
    return [USER_BASE + i for i in range(m)]


async def measure(
    server: StandInControl, name: str, n: int, m: int, warm_replies: int, pid: int
) -> Result:
    """Open the bot for every user (untimed), then time a burst of ``n`` updates. The
    result's ``cpu_ms`` holds the process's processor time (s) when the burst began."""
    await server.reset()
    await server.enqueue([make_text_update(u, "/start") for u in users(m)])
    await server.wait_replies(warm_replies * m)
    await server.reset()
    everyone = users(m)
    batch = [make_text_update(everyone[i % m], SCRIPT[(i // m) % 2]) for i in range(n)]
    cpu = cpu_seconds(pid)[0]
    t0 = time.monotonic()
    await server.enqueue(batch)
    await server.wait_replies(n)
    return Result(name, n, (await server.stats())["last_send_at"] - t0, [], cpu_ms=cpu)


async def latency(server: StandInControl, result: Result, m: int, rate: float, count: int) -> None:
    """Send ``count`` updates at ``rate``/s; record enqueue -> reply for each."""
    await server.reset()
    everyone = users(m)
    asked: dict[int, list[float]] = {}
    start = time.monotonic()
    for i in range(count):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        user = everyone[i % m]
        asked.setdefault(user, []).append(time.monotonic())
        await server.enqueue([make_text_update(user, SCRIPT[(i // m) % 2])])
    await server.wait_replies(count)
    answered: dict[int, list[float]] = {}
    for send in await server.sends(0):
        answered.setdefault(int(send["chat_id"]), []).append(float(send["at"]))
    for user, times in asked.items():
        for sent, replied in zip(times, answered.get(user, []), strict=False):
            result.latencies_ms.append((replied - sent) * 1000)


async def run_bot(
    label: str, cmd: list[str], env: dict[str, str], port: int, args: argparse.Namespace
) -> Result:
    warm = 1  # the greeting is one message, as the echo bot's reply
    with process(cmd, env) as proc:
        async with aiohttp.ClientSession() as session:
            server = StandInControl(session, port)
            # The first replies are not timed: what the process does at start-up is not
            # the cost of an update (the training in a child is reported apart).
            result = await measure(server, label, args.updates, args.users, warm, proc.pid)
            before = result.cpu_ms
            await latency(server, result, args.users, args.rate, args.latency_updates)
            after, children = cpu_seconds(proc.pid)
            updates = args.updates + args.latency_updates
            result.cpu_ms = (after - before) * 1000 / updates
            result.children_cpu_s = children
    return result


async def main_async(args: argparse.Namespace) -> None:
    port = free_port()
    base_env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server_cmd = [sys.executable, "-m", "tests.fakes.telegram_api", "--port", str(port)]
    server_cmd += ["--token", TOKEN]
    api = f"http://127.0.0.1:{port}/bot"
    results: dict[str, list[Result]] = {"echo": [], "shaped": [], "bot": []}
    with process(server_cmd, base_env, ready="listening"), tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            echo_cmd = [sys.executable, str(ROOT / "bench" / "echo_bot.py"), api, TOKEN]
            results["echo"].append(await run_bot("echo", echo_cmd, base_env, port, args))
            shaped_cmd = [*echo_cmd, "--like-bot"]
            results["shaped"].append(await run_bot("shaped", shaped_cmd, base_env, port, args))
            bot_env = {
                **base_env,
                "TELEGRAM_BOT_TOKEN": TOKEN,
                "TELEGRAM_API_BASE_URL": api,
                "DATABASE_URL": f"sqlite:///{tmp}/bench-{round_}.db",
                "BOT_ID_SECRET": "bench-secret-0123456789",
                "LOG_LEVEL": "WARNING",
                # The echo bot has no flood-limit guard either (Telegram's 30 msg/s cap would
                # otherwise be what is measured).
                "TELEGRAM_RATE_LIMITER": "off",
            }
            bot_cmd = [sys.executable, "-m", "bot", "run"]
            results["bot"].append(await run_bot("bot", bot_cmd, bot_env, port, args))
    best = {name: max(rs, key=lambda r: r.rate) for name, rs in results.items()}
    print(f"updates={args.updates} users={args.users} rounds={args.rounds} (best round shown)")
    for name, r in best.items():
        print(
            f"{name:>6}: {r.rate:8.0f} updates/s   latency p50 {r.pct(0.5):6.1f} ms   "
            f"p99 {r.pct(0.99):6.1f} ms   CPU {r.cpu_ms:.2f} ms/update   (rounds: "
            f"{', '.join(f'{x.rate:.0f}' for x in results[name])} updates/s)"
        )
    bot = best["bot"]
    print(f"bot: children's CPU (the classifier's training) {bot.children_cpu_s:.1f} s")
    plain = best["bot"].rate / best["echo"].rate
    shaped = best["bot"].rate / best["shaped"].rate
    p99 = best["bot"].pct(0.99)
    print(f"ratio bot/echo: {plain:.2f}; bot/echo sending the bot's messages: {shaped:.2f}")
    print(
        f"throughput_ratio={plain:.2f} shaped_ratio={shaped:.2f} p99_ms={p99:.1f} "
        f"cpu_ms_per_update={bot.cpu_ms:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small run (well under a minute)")
    parser.add_argument("--updates", type=int, default=None, help="updates in the burst")
    parser.add_argument("--users", type=int, default=None, help="distinct users")
    parser.add_argument("--rounds", type=int, default=None, help="repeat and keep the best")
    parser.add_argument("--rate", type=float, default=200.0, help="latency phase updates/s")
    args = parser.parse_args()
    args.updates = args.updates or (1000 if args.quick else 5000)
    args.users = args.users or (100 if args.quick else 500)
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.latency_updates = 300 if args.quick else 2000
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
