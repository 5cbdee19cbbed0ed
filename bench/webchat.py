"""The web chat under load: 2,000 people in the chat at once, 200 messages a second, one worker.

What runs
---------
``python -m bot serve`` (one worker, the web chat only, a fresh SQLite file in WAL mode) and
this driver, which plays the phones: each session is a browser of its own (its own cookie,
its own address, given to the bot as a reverse proxy on this machine gives it, in
X-Forwarded-For, so that the per-address limit sees a village of different phones, not one
address), and posts the page's own forms as chat.js does (``X-Chat: 1``, a fresh form id per
post, the session's CSRF token).

The conversation
----------------
Each session opens ``/chat``, presses "start" (the greeting, the privacy promise and the
menu) and asks a question (all untimed), then goes round: "benefits" on the menu, a typed
question ("cks co mat tien ko": read by the understanding component, answered), "back" to
the menu -- two buttons and one typed question in three, each reply checked (the button
pressed must be on the reply before it). Every message is one delivery through the durable
inbox, the engine and a commit, as in production.

Latency: a fixed offered load
-----------------------------
``--rate`` messages a second, scheduled round-robin over all sessions (at 200/s and 2,000
sessions, each phone sends every 10 s -- 6 a minute, under the 20 a minute flood limit). A
session whose previous reply is not in yet sends as soon as it is (a person waits for the
answer), and latency is counted from the *scheduled* time, so a stall is not hidden by the
schedule slipping: scheduled send -> the whole reply read by the driver.

Memory: flat in the number of sessions
--------------------------------------
The bot keeps in memory only the sessions recently used (a bounded cache), the rate limiters'
last minute (at most 10,000 addresses), and nothing per cookie: the session cache holds at most
2,000 (storage/repository.py CACHE_SIZE), so memory grows until it is full, then no more.
The load runs twice: with a quarter of the sessions
(and a quarter of the rate), then with all of them; the resident memory of the bot's process
after each is compared ("rss growth per 1,000 sessions").

Usage: python bench/webchat.py [--quick] [--sessions N] [--rate R] [--seconds S]
``--quick``: 500 sessions, 100 messages/s, 8 s per phase (under a minute).
Last line: ``sessions=<N> p99_ms=<x> rss_mb=<y>``. Targets: p99 < 100 ms at 200/s with
2,000 sessions; rss growth per 1,000 sessions a few MB at most.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import html
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from bench.common import free_port  # noqa: E402

ID_SECRET = "bench-secret-0123456789"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
QUESTION = "cks co mat tien ko"
#: The round each session goes: (what to send, the screen's option it must find, if any).
ROUND = (("option", "benefits"), ("text", QUESTION), ("option", "back"))
_FORM = re.compile(r"<form\b[^>]*>(.*?)</form>", re.S)
_INPUT = re.compile(r'<input type="hidden" name="(\w+)" value="([^"]*)">')
_BUTTON = re.compile(r'<button type="submit" name="option" value="([^"]*)"')


def pct(data: list[float], q: float) -> float:
    ordered = sorted(data)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (MB)."""
    total = 0
    for task in [pid, *_children(pid)]:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{task}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process and its children have used so far."""
    total = 0
    for task in [pid, *_children(pid)]:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{task}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / CLOCK_TICKS


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            text = Path(f"/proc/{pid}/task/{tid}/children").read_text().split()
            for child in map(int, text):
                found += [child, *_children(child)]
    return found


@dataclass
class Phone:
    """One person's browser: its cookie, its address, the forms of the last reply."""

    number: int
    cookie: str = ""
    csrf: str = ""
    #: option id -> the screen of the form holding it (the last reply's buttons).
    options: dict[str, str] = field(default_factory=dict)
    step: int = 0
    busy: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def address(self) -> str:
        return f"10.{self.number // 65536 % 256}.{self.number // 256 % 256}.{self.number % 256}"

    def headers(self) -> dict[str, str]:
        headers = {"X-Forwarded-For": self.address}
        if self.cookie:
            headers["Cookie"] = f"chat_id={self.cookie}"
        return headers

    def read(self, page: str) -> None:
        self.options = {}
        for form in _FORM.findall(page):
            fields = dict(_INPUT.findall(form))
            if "csrf" in fields:
                self.csrf = html.unescape(fields["csrf"])
            for option in _BUTTON.findall(form):
                self.options[html.unescape(option)] = html.unescape(fields.get("screen", ""))


@dataclass
class Run:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    #: CPU milliseconds the bot's process used per message during the phase.
    cpu_ms: float = float("nan")
    odd: int = 0
    sent: int = 0


class Driver:
    def __init__(self, http: aiohttp.ClientSession, base: str):
        self.http = http
        self.base = base

    async def open(self, phone: Phone) -> None:
        """The page, "start" (the greeting, the privacy promise, the menu) and a question
        (the first in the process waits for the understanding component's training, which
        the server starts in the background at start-up)."""
        async with self.http.get(self.base + "/chat", headers=phone.headers()) as r:
            r.raise_for_status()
            morsel = r.cookies.get("chat_id")
            phone.cookie = morsel.value if morsel else ""
            phone.read(await r.text())
        await self.post(phone, {"start": "1"})
        await self.post(phone, {"text": QUESTION})
        if "benefits" not in phone.options:
            raise RuntimeError(f"no menu after start: {sorted(phone.options)}")

    async def post(self, phone: Phone, data: dict[str, str]) -> int:
        """The reply's HTTP status; 0 if none came within the client's 30 s."""
        form = {"csrf": phone.csrf, "nonce": secrets.token_urlsafe(16), **data}
        headers = {**phone.headers(), "X-Chat": "1", "Origin": self.base}
        try:
            async with self.http.post(self.base + "/chat", data=form, headers=headers) as r:
                body = await r.read()
                if r.status == 200:
                    phone.read(json.loads(body)["html"])
                return r.status
        except (TimeoutError, aiohttp.ClientError):
            return 0

    async def say(self, phone: Phone, run: Run, scheduled: float) -> None:
        async with phone.busy:  # a person waits for the answer before the next message
            kind, value = ROUND[phone.step % len(ROUND)]
            phone.step += 1
            if kind == "option":
                screen = phone.options.get(value)
                if screen is None:
                    run.odd += 1  # not on the last reply: back to the menu, untimed
                    await self.post(phone, {"text": "menu"})
                    phone.step = 0
                    return
                data = {"option": value, "screen": screen}
            else:
                data = {"text": value}
            status = await self.post(phone, data)
            run.latencies.append((time.monotonic() - scheduled) * 1000)
            run.sent += 1
            if status != 200:
                run.errors += 1

    async def load(self, phones: list[Phone], rate: float, seconds: float, pid: int) -> Run:
        run = Run()
        cpu = cpu_seconds(pid)
        tasks: list[asyncio.Task[None]] = []
        start = time.monotonic() + 0.2
        count = int(rate * seconds)
        for i in range(count):
            scheduled = start + i / rate
            delay = scheduled - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            phone = phones[i % len(phones)]
            tasks.append(asyncio.create_task(self.say(phone, run, scheduled)))
        await asyncio.gather(*tasks)
        run.cpu_ms = (cpu_seconds(pid) - cpu) * 1000 / max(1, run.sent)
        return run


async def open_all(driver: Driver, phones: list[Phone], parallel: int = 32) -> None:
    queue = list(phones)

    async def worker() -> None:
        while queue:
            await driver.open(queue.pop())

    await asyncio.gather(*(worker() for _ in range(parallel)))


def serve(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "ZALO_"))},
        "DATABASE_URL": f"sqlite:///{folder / 'bot.db'}",
        "BOT_ID_SECRET": ID_SECRET,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("PUBLIC_URL", None)
    with open(folder / "bot.log", "wb") as out:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=out, start_new_session=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=1) as response:
                if response.status == 200:
                    return proc, base
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                log = (folder / "bot.log").read_text(errors="replace")[-2000:]
                raise RuntimeError("serve did not start: " + log) from None
            time.sleep(0.2)


def report(name: str, run: Run, phones: int, rss: float) -> None:
    print(
        f"{name}: {phones} sessions, {run.sent} messages, p50 {pct(run.latencies, 0.5):.1f} ms, "
        f"p99 {pct(run.latencies, 0.99):.1f} ms, max {max(run.latencies, default=0):.0f} ms, "
        f"errors {run.errors}, odd {run.odd}, rss {rss:.1f} MB, "
        f"bot cpu {run.cpu_ms:.1f} ms/message",
        flush=True,
    )


async def bench(sessions: int, rate: float, seconds: float, connections: int) -> None:
    with tempfile.TemporaryDirectory(prefix="webchat-bench-") as tmp:
        folder = Path(tmp)
        proc, base = serve(folder)
        try:
            connector = aiohttp.TCPConnector(limit=connections)
            jar = aiohttp.DummyCookieJar()  # each phone's cookie is sent by hand
            timeout = aiohttp.ClientTimeout(total=30)
            async with aiohttp.ClientSession(
                connector=connector, cookie_jar=jar, timeout=timeout
            ) as http:
                driver = Driver(http, base)
                phones = [Phone(n) for n in range(1, sessions + 1)]
                quarter = phones[: max(1, sessions // 4)]
                t0 = time.monotonic()
                await open_all(driver, quarter)
                print(f"opened {len(quarter)} sessions in {time.monotonic() - t0:.1f} s")
                # The same pace for each phone: a quarter of the messages.
                first = await driver.load(
                    quarter, rate * len(quarter) / sessions, seconds, proc.pid
                )
                rss_quarter = rss_mb(proc.pid)
                report("a quarter", first, len(quarter), rss_quarter)
                t0 = time.monotonic()
                await open_all(driver, phones[len(quarter) :])
                print(f"opened {sessions - len(quarter)} more in {time.monotonic() - t0:.1f} s")
                full = await driver.load(phones, rate, seconds, proc.pid)
                rss_full = rss_mb(proc.pid)
                report("all", full, sessions, rss_full)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        warnings = [
            line
            for line in (folder / "bot.log").read_text(errors="replace").splitlines()
            if "WARNING" in line or "ERROR" in line
        ]
    growth = (rss_full - rss_quarter) / ((sessions - len(quarter)) / 1000)
    p99 = pct(full.latencies, 0.99)
    print(
        f"rate {rate:g}/s over {seconds:g} s; rss growth per 1,000 sessions {growth:.1f} MB; "
        f"bot log warnings {len(warnings)}"
        + (f" (first: {warnings[0][:160]})" if warnings else "")
    )
    print(f"target p99 < 100 ms: {'met' if p99 < 100 else 'NOT met'}")
    busy = os.getloadavg()[0]
    print(
        f"the bot's CPU per message {full.cpu_ms:.1f} ms: one free core takes about "
        f"{1000 / full.cpu_ms:.0f} messages/s; load average now {busy:.1f} on {os.cpu_count()} "
        "cores"
        + (
            " (other programs were busy: the latencies include waiting for a core)"
            if busy > (os.cpu_count() or 1)
            else ""
        )
    )
    if full.errors or full.odd:
        print(f"errors {full.errors}, odd replies {full.odd}")
    if statistics.fmean(full.latencies or [0]) > 1000:
        print("the bot fell behind the offered rate (mean latency over 1 s)")
    print(f"sessions={sessions} p99_ms={p99:.1f} rss_mb={rss_full:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="500 sessions, 100/s, 8 s")
    parser.add_argument("--sessions", type=int)
    parser.add_argument("--rate", type=float, help="messages a second (200)")
    parser.add_argument("--seconds", type=float, help="seconds of load per phase (30)")
    parser.add_argument("--connections", type=int, default=256, help="HTTP connections")
    args = parser.parse_args()
    sessions = args.sessions or (500 if args.quick else 2000)
    rate = args.rate or (100.0 if args.quick else 200.0)
    seconds = args.seconds or (8.0 if args.quick else 30.0)
    asyncio.run(bench(sessions, rate, seconds, args.connections))


if __name__ == "__main__":
    main()
