"""Faults: what the bot promises when its processes die, connections pile up and its store fails.

README ("The webhook server", "Several workers", "Reminders and announcements") promises that
a webhook delivery is acknowledged only once it is durable, that every acknowledged delivery
is applied exactly once and answered, that /healthz stays fast and says when the store cannot
commit, and that idle connections cannot lock the server out. This bench checks those
promises against real processes: ``python -m bot serve`` (or ``run`` for the reminders) on
SQLite or PostgreSQL, the Telegram Bot API stand-in (``python -m tests.fakes.telegram_api``,
its own process, which outlives every kill) and the Zalo Bot stand-in
(``tests.fakes.zalo_api.FakeZaloBotAPI``, served from this process).

The platforms' side
-------------------
This process plays Telegram and the Zalo Bot Platform delivering webhooks, and the citizens.
Each citizen follows a script of crash.py (``report``: 7 messages ending in a reported
completion; ``install``: 20, the whole install path and the report), half of them on Telegram
and half on Zalo. A delivery that is not acknowledged -- a connection refused or cut, a
timeout (15 s), any answer but 200 (a 503 when the store cannot take it) -- is delivered
again, the same body with the same ``update_id`` / ``message_id``, after 0.25 s doubling to
3 s: Telegram redelivers every non-2xx, and the bench treats Zalo the same. A citizen sends
the next message once the previous one is acknowledged *and* its answer (the last message of
the step's reply, exactly as that channel shows it: the engine's text, for Zalo numbered
options) has reached the stand-in, as a person waits for the bot before typing on -- or after
``REPLY_PATIENCE`` (90 s) without it. What each step must change and answer comes from
walking the scripts through the bot's own engine in this process.

Scenarios
---------
1. **Burst + kill** (SQLite, ``serve``): ``--burst`` citizens (1,500; quick 40) all start at
   once -- the first wave is that many concurrent deliveries -- and the server is SIGKILLed in
   the middle of that wave (when 15-85 % of it is acknowledged), then at ``--burst-kills`` - 1
   (2; quick 1)
   further random moments of the run, and restarted at once each time. A crash leaves inbox
   rows and unsent replies that the sweeper takes up once they are 30 s old: the citizens wait.
2. **Workers killed on PostgreSQL** (``serve --workers 4``): ``--conversations`` citizens
   (400; quick 12, with 2 workers), the two scripts alternating, while every 1-6 s a worker
   that serves is SIGKILLed unless it is the last one serving (the supervisor starts another,
   which takes 10-20 s here) and the whole tree is killed twice (quick: once): first the supervisor
   alone with SIGKILL (its workers must follow it), then every process at once; a new
   ``serve --workers 4`` is started at once each time (a second server must refuse to start
   only while the first is alive). On a throw-away database on ``TEST_POSTGRES_URL``
   (created and dropped here); skipped, with a line saying so, when that is not set.
3. **Idle connections** (``serve`` under a 256-descriptor limit): ``--idle`` levels of
   connections that never send a byte (250, 500, 1,000; quick 600); at each level /healthz is
   polled on fresh connections every 0.1 s by a monitor process that does nothing else (timed
   in this process, a poll waited for this event loop too, busy with the other scenarios of a
   quick run: one quick run counted 0 levels survived for one 1.3 s poll, the one before
   600), the load average is printed beside it, and 10 deliveries are made,
   until 2 s past the header deadline (5 s); then the bench counts the idle connections the
   server still holds.
4. **The store in trouble** (SQLite, ``serve``): citizens come and go (``--troubled``, 150;
   quick 10) while another process holds SQLite's write lock for ``--lock-seconds`` (20 s;
   quick 3),
   and then while the database file and its write-ahead log are *immutable* for 10 s (quick 2)
   (``chattr +i``: every write fails, reads go on). A read-only file cannot be produced
   honestly here: the bench runs as root, whose writes file permissions do not stop, and a
   read-only remount is refused (EBUSY) while the server holds the file open for writing;
   an immutable file is what a read-only disk looks like to the server (its writes fail, its
   reads do not). /healthz is polled every 0.1 s throughout.
5. **Reminders in flight at a kill** (SQLite, ``run``, as bench/reminders.py seeds them):
   ``--reminder-kills`` SIGKILLs (15; quick 1) while the outbox sends due reminders to the
   Bot API stand-in, which takes ``--reminder-latency`` (0.15 s) to answer each request -- a
   round trip to Telegram's servers and its processing. The outbox marks the rows in flight at
   a kill ``unknown`` and never sends them again; the stand-in knows which of them arrived.

Figures (the last line)
-----------------------
- ``acked_lost``: steps acknowledged (200) but never applied, over scenarios 1, 2 and 4.
  Per citizen: deliveries acknowledged minus steps applied (the session's ``version`` counts
  every committed step), if positive.
- ``doubled``: steps applied more than once: steps applied minus deliveries acknowledged
  (minus one more if the citizen's last delivery was never acknowledged and may have been
  applied), if positive.
- ``silent_steps``: steps applied but never answered: the answers (the last message of each
  applied step's reply) that never reached the citizen's stand-in by the end (after the
  sweeper had its chance), minus the lost steps.
- ``healthz_max_ms``: the slowest /healthz answer in scenarios 3 and 4 (a poll that got no
  answer within 5 s counts as 5,000).
- ``idle_conns_survived``: the largest level of scenario 3 -- idle connections held against
  one server process with 256 descriptors -- at which every /healthz poll was answered 200
  within 1 s of the server's own time (the poll's time minus the time the server's event loop
  waited for a CPU meanwhile, /proc/PID/schedstat: on a machine whose load average is 10 on 2
  cores that wait alone can pass a second) and every delivery was acknowledged at the first
  attempt.

Above it, a summary per scenario: kills and restarts, how deliveries were answered, how long
citizens waited for an answer after a crash, messages a citizen got twice (the sweeper sends
a reply whose first messages went out before the crash again, whole), completions, warnings
in the bot's log; /healthz and deliveries per phase of scenario 4; the idle levels; and for
the reminders, how many rows ended ``unknown`` and how many of those had in fact arrived (a
resend would have doubled them) or not (they are lost).

``--quick`` runs the five scenarios side by side: a smoke run, whose latencies include the
other scenarios' load. The goal is under a minute; on the shared 2-core machine it took about
3 minutes at load average 8-12 with 100, 30 and 20 citizens, and 111 s at load 6.5-9 with the
smaller quick sizes below (scenario 2: 96 s, 5: 82 s, 1: 65 s). What sets the floor is not
the number of citizens: a bot takes 10-20 s to start on that machine (twice in each kill
scenario), and replies a kill cut off wait 30-40 s for the sweeper. The full run (``python
bench/faults.py``) runs them one after the other: scenario 1 alone took 6-7 minutes there,
and scenario 2 had not finished after 12.
Usage: python bench/faults.py [--quick] [--scenarios 1,2,3,4,5] [--seed S] [--keep]
The last line is ``acked_lost=0 doubled=0 silent_steps=0 healthz_max_ms=...
idle_conns_survived=...``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import random
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.runtime import build_engine  # noqa: E402
from bench import reminders as seeding  # noqa: E402
from bench.common import free_port, unthrottled_config  # noqa: E402
from bench.crash import SCRIPTS  # noqa: E402
from bot.engine import Engine  # noqa: E402
from bot.identity import UserRefs  # noqa: E402
from bot.model import Input, OutMessage, Start, State, Text  # noqa: E402
from handlers.inbound import split_text  # noqa: E402
from handlers.render import numbered  # noqa: E402
from handlers.telegram import CAPABILITIES as TELEGRAM_CAPABILITIES  # noqa: E402
from handlers.zalo_bot import CAPABILITIES as ZALO_CAPABILITIES  # noqa: E402
from tests.fakes.telegram_api import make_text_update  # noqa: E402
from tests.fakes.zalo_api import FakeZaloBotAPI, text_event  # noqa: E402

ID_SECRET = "faults-bench-secret-0123456789"
TELEGRAM_TOKEN = "123:FAULTS"
TELEGRAM_SECRET = "faults-telegram-webhook-secret"
ZALO_TOKEN = "4567:FAULTS"
ZALO_SECRET = "faults-zalo-webhook-secret"
TELEGRAM = "telegram"
ZALO = "zalo_bot"
CHANNELS = (TELEGRAM, ZALO)
WEBHOOKS = {
    TELEGRAM: ("/telegram/webhook", {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}),
    ZALO: ("/zalo/bot/webhook", {"X-Bot-Api-Secret-Token": ZALO_SECRET}),
}
#: Delivery connections per platform (Telegram's max_connections is at most 100).
CONNECTIONS = 100
#: A delivery not answered within this is delivered again.
DELIVERY_TIMEOUT = 15.0
FIRST_RETRY = 0.25
LONGEST_RETRY = 3.0
#: A delivery still not acknowledged after this long is given up (never expected).
GIVE_UP = 300.0
#: How long a citizen waits for the answer to an acknowledged message: the sweeper sends
#: what a crash cut off once it is 30 s old, looking every 10 s.
REPLY_PATIENCE = 90.0
#: An answer later than this after its acknowledgement was held up by a crash.
SLOW_ANSWER = 5.0
#: /healthz: slower than this (less the server's wait for a CPU), or anything but 200, and an
#: idle level is not survived.
HEALTHZ_OK_MS = 1000.0
HEALTHZ_PATIENCE = 5.0
START_PATIENCE = 90.0
#: Scenario 3.
FD_LIMIT = 256
HEADER_TIMEOUT = 5.0
#: Chat ids of each scenario's citizens start here (distinct across scenarios).
USER_BASE = {1: 3_000_000, 2: 4_000_000, 3: 5_000_000, 4: 6_000_000}
NAMES = {
    1: "burst + kill",
    2: "workers killed on PostgreSQL",
    3: "idle connections",
    4: "the store in trouble",
    5: "reminders in flight at a kill",
}

_update_ids = itertools.count(1)
#: Process groups of every bot started, killed on the way out whatever happens (a bench
#: stopped by SIGTERM or an error must not leave servers running).
GROUPS: set[int] = set()
STARTED = time.monotonic()
EventKey = tuple[str, str | None, str | None]


class BenchError(Exception):
    """The bench cannot go on (a process does not start, the flow changed)."""


# --------------------------------------------------------------------------- the scripts


@dataclass(frozen=True, slots=True)
class Step:
    """One message of a script: what the citizen types, and what applying it must do."""

    text: str
    #: Every message of the reply as the channel shows it (pieces of long texts apart).
    messages: tuple[str, ...]
    events: tuple[EventKey, ...]

    @property
    def answer(self) -> str:
        """The message a citizen waits for: the last of the reply (the screen)."""
        return self.messages[-1]


def _input(text: str) -> Input:
    head, _, payload = text.partition(" ")
    return Start(payload.strip() or None) if head == "/start" else Text(text)


def _shown(channel: str, message: OutMessage) -> list[str]:
    """``message`` as the channel's adapter sends it (handlers/telegram.py, zalo_bot.py)."""
    if message.attachment is not None:
        raise BenchError("a script's reply holds a file: the bench reads only text messages")
    if channel == TELEGRAM:
        return split_text(message.text, TELEGRAM_CAPABILITIES.max_text)
    return split_text(numbered(message), ZALO_CAPABILITIES.max_text)


def walk(engine: Engine, script: str, channel: str, now: datetime) -> list[Step]:
    """The script through the bot's engine: each message, what it answers, what it records."""
    answers = SCRIPTS[script]
    medium = (TELEGRAM_CAPABILITIES if channel == TELEGRAM else ZALO_CAPABILITIES).medium(channel)
    state, steps = State(), list[Step]()
    while state.screen != "complete":
        screen = str(state.screen)
        text = answers.get(screen)
        if text is None and engine.content.install_step(screen) is not None:
            text = answers.get("*install")
        if text is None or len(steps) > 60:
            raise BenchError(f"script {script} has no answer for screen {screen!r}")
        reply = engine.advance(state, _input(text), now, medium=medium)
        if not reply.persist or not reply.messages:
            raise BenchError(f"script {script}: {text!r} at {screen} is not a step with a reply")
        shown = tuple(piece for m in reply.messages for piece in _shown(channel, m))
        events = tuple((str(e.kind), _str(e.step), _str(e.detail)) for e in reply.events)
        steps.append(Step(text, shown, events))
        state = reply.state
    return steps


def _str(value: object) -> str | None:
    return None if value is None else str(value)


# --------------------------------------------------------------------------- processes


def children(pid: int) -> list[int]:
    """Live child processes of ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def listening(pids: list[int], port: int) -> list[int]:
    """Those of ``pids`` that hold a socket listening on ``port`` (they serve)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{fields[9]}]")
    found = []
    for pid in pids:
        with contextlib.suppress(OSError):
            fds = Path(f"/proc/{pid}/fd")
            if any(os.readlink(fd) in inodes for fd in fds.iterdir()):
                found.append(pid)
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


class Server:
    """``python -m bot serve`` (or ``run``) in a process group of its own: started, killed in
    the ways a machine kills, restarted."""

    def __init__(
        self,
        env: dict[str, str],
        cwd: Path,
        log: Path,
        *,
        command: str = "serve",
        workers: int = 1,
        limit_fds: int | None = None,
    ):
        self.env = env
        self.cwd = cwd
        self.log = log
        self.argv = [sys.executable, "-m", "bot", command]
        if workers > 1:
            self.argv += ["--workers", str(workers)]
        self.workers = workers
        self.limit_fds = limit_fds
        self.proc: asyncio.subprocess.Process | None = None
        self.port = int(env.get("PORT", "0"))
        self.url = f"http://127.0.0.1:{self.port}"
        self.kills: Counter[str] = Counter()
        self.refused = 0  # starts refused because a live server held the port
        self.restarts: list[float] = []  # seconds from a kill until /healthz answered again
        self.orphans_gone: list[float] = []  # seconds until a killed supervisor's workers died

    async def start(self) -> None:
        limit = self.limit_fds

        def lower_limit() -> None:
            if limit is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

        with self.log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
                preexec_fn=lower_limit if limit is not None else None,
            )
        GROUPS.add(self.proc.pid)

    async def start_serving(self, patience: float = START_PATIENCE) -> float:
        """Start and wait until /healthz answers (a new server refused beside a live one is
        started again a moment later); returns the seconds it took."""
        began = time.monotonic()
        while True:
            await self.start()
            try:
                await self.ready(began + patience)
            except _Refused:
                self.refused += 1
                await asyncio.sleep(0.5)
                continue
            return time.monotonic() - began

    async def ready(self, deadline: float) -> None:
        assert self.proc is not None
        timeout = aiohttp.ClientTimeout(total=2)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while True:
                if self.proc.returncode is not None:
                    text = self.log.read_text(errors="replace")
                    if self.proc.returncode == 2 and "already running" in text[-2000:]:
                        raise _Refused
                    raise BenchError(f"the bot exited ({self.proc.returncode}):\n{text[-2000:]}")
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with http.get(f"{self.url}/healthz") as response:
                        await response.read()
                        return
                if time.monotonic() > deadline:
                    raise BenchError(f"the bot did not answer /healthz; log: {self.log}")
                await asyncio.sleep(0.1)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def warmed(self, patience: float = 60.0) -> float:
        """Until the process has been idle for 1 s (it trains the understanding of typed
        messages in a thread after it starts answering /healthz); returns the seconds."""
        began = time.monotonic()
        ticks = os.sysconf("SC_CLK_TCK")
        used = _cpu_seconds(self.pid, ticks)
        while time.monotonic() - began < patience:
            await asyncio.sleep(1.0)
            now = _cpu_seconds(self.pid, ticks)
            if now - used < 0.05:
                break
            used = now
        return time.monotonic() - began

    async def kill(self, how: str = "server") -> None:
        """SIGKILL: ``server`` the process started (the supervisor with workers), ``tree``
        every process of the group at once."""
        assert self.proc is not None
        if how == "tree":
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
        else:
            self.proc.kill()
        await self.proc.wait()
        self.kills[how] += 1

    async def kill_worker(self, rng: random.Random) -> bool:
        """SIGKILL a worker that serves, never the last one serving: a worker takes 10-20 s
        to start on this loaded machine (imports, then training the understanding), so a
        kill every 1-6 s of any worker would soon leave nobody serving (the tree kills do
        that, on purpose, twice)."""
        running = self.proc is not None and self.proc.returncode is None
        workers = listening(children(self.pid), self.port) if running else []
        if len(workers) < 2:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(rng.choice(workers), signal.SIGKILL)
        self.kills["worker"] += 1
        return True

    async def restart_after(self, how: str, rng: random.Random, pause: float = 0.3) -> None:
        """Kill (``how``), wait a moment, start again; for a supervisor killed alone, also
        time how long its workers outlive it."""
        orphans = children(self.pid) if how == "server" and self.workers > 1 else []
        began = time.monotonic()
        await self.kill(how)
        watch = asyncio.create_task(_gone(orphans)) if orphans else None
        await asyncio.sleep(rng.uniform(0.0, pause))
        await self.start_serving()
        self.restarts.append(time.monotonic() - began)
        if watch is not None:
            self.orphans_gone.append(await watch)

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), 40)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            await self.proc.wait()

    def log_problems(self) -> tuple[int, int, str]:
        """Tracebacks, ERROR lines and the first of either in the log."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        lines = text.splitlines()
        errors = [x for x in lines if " ERROR " in x or "CRITICAL" in x]
        first = next((x for x in lines if "Traceback" in x or " ERROR " in x), "")
        return text.count("Traceback"), len(errors), first[:200]


def _cpu_seconds(pid: int, ticks: int) -> float:
    """CPU time used by ``pid`` (user and system), in seconds."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / ticks


def kill_all() -> None:
    """SIGKILL every bot this bench started (their groups), on the way out."""
    for group in GROUPS:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)


class _Refused(Exception):
    """``serve`` refused to start: a live server holds the port."""


async def _gone(pids: list[int], patience: float = 60.0) -> float:
    """Seconds until every process of ``pids`` has ended (``patience`` at most)."""
    began = time.monotonic()
    while any(alive(p) for p in pids):
        if time.monotonic() - began > patience:
            break
        await asyncio.sleep(0.05)
    return time.monotonic() - began


@contextlib.asynccontextmanager
async def telegram_stand_in(token: str, latency: float = 0.0) -> AsyncIterator[str]:
    """The Bot API stand-in in its own process, answering each call after ``latency``
    seconds; yields its URL."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.fakes.telegram_api", "--port", "0",
        "--token", token, "--latency", str(latency),
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip()
        if not line.startswith("listening on "):
            raise BenchError(f"the Bot API stand-in did not start: {line!r}")
        yield line.removeprefix("listening on ")
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()


# --------------------------------------------------------------------------- the platforms


class Answers:
    """What reached the citizens: the stand-ins' records of the bot's messages, per chat."""

    def __init__(self, http: aiohttp.ClientSession, telegram_url: str, zalo: FakeZaloBotAPI):
        self.http = http
        self.telegram_url = telegram_url
        self.zalo = zalo
        self.got: dict[tuple[str, str], Counter[str]] = {}
        self._telegram_seen = 0
        self._zalo_seen = 0
        self._changed: dict[tuple[str, str], asyncio.Event] = {}

    async def pump(self) -> None:
        while True:
            await self.poll()
            await asyncio.sleep(0.02)

    async def poll(self) -> None:
        params = {"since": str(self._telegram_seen)}
        async with self.http.get(f"{self.telegram_url}/_control/sends", params=params) as r:
            sends: list[dict[str, Any]] = await r.json()
        self._telegram_seen += len(sends)
        for send in sends:
            self._add((TELEGRAM, str(send["chat_id"])), str(send["text"]))
        calls = self.zalo.calls
        new, self._zalo_seen = calls[self._zalo_seen :], len(calls)
        for call in new:
            if call.method == "sendMessage" and call.ok:
                self._add((ZALO, str(call.params["chat_id"])), str(call.params["text"]))

    def _add(self, key: tuple[str, str], text: str) -> None:
        self.got.setdefault(key, Counter())[text] += 1
        event = self._changed.pop(key, None)
        if event is not None:
            event.set()

    async def wait(self, key: tuple[str, str], text: str, count: int, patience: float) -> bool:
        """Until ``text`` has reached chat ``key`` ``count`` times; False after ``patience``."""
        deadline = time.monotonic() + patience
        while self.got.get(key, Counter())[text] < count:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            event = self._changed.setdefault(key, asyncio.Event())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), left)
        return True


def _clock(at: float) -> str:
    """A moment of the run, as seconds since the bench started."""
    return f"{at - STARTED:.1f} s"


def delivery(channel: str, user: str, text: str, number: int) -> dict[str, Any]:
    """A webhook body as the platform sends it, with its delivery id."""
    if channel == TELEGRAM:
        return {"update_id": next(_update_ids), **make_text_update(int(user), text)}
    return text_event(user, text, message_id=f"{uuid.uuid4().hex}{number:04d}")


class Webhooks:
    """The platforms delivering webhooks to one server: again until acknowledged."""

    def __init__(self, url: str, *, fresh_connections: bool = False):
        self.url = url
        self.fresh = fresh_connections
        self.sessions: dict[str, aiohttp.ClientSession] = {}
        self.acked = 0
        self.progress = asyncio.Event()
        #: What the server answered, per phase (scenario 4 names its phases).
        self.phase = "run"
        self.outcomes: dict[str, Counter[str]] = {}
        self.slowest: dict[str, float] = {}
        self.first_attempt_failures = 0

    async def __aenter__(self) -> Webhooks:
        for channel in CHANNELS:
            connector = aiohttp.TCPConnector(limit=CONNECTIONS, force_close=self.fresh)
            timeout = aiohttp.ClientTimeout(total=DELIVERY_TIMEOUT)
            self.sessions[channel] = aiohttp.ClientSession(connector=connector, timeout=timeout)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        for session in self.sessions.values():
            await session.close()

    async def post(self, channel: str, body: dict[str, Any]) -> str:
        path, headers = WEBHOOKS[channel]
        phase, began = self.phase, time.monotonic()
        try:
            async with self.sessions[channel].post(
                f"{self.url}{path}", json=body, headers=headers
            ) as response:
                await response.read()
                outcome = str(response.status)
        except TimeoutError:
            outcome = "timeout"
        except (aiohttp.ClientError, OSError):
            outcome = "connection"
        self.outcomes.setdefault(phase, Counter())[outcome] += 1
        took = time.monotonic() - began
        if outcome not in ("connection",):
            self.slowest[phase] = max(self.slowest.get(phase, 0.0), took)
        return outcome

    async def until_acked(self, channel: str, body: dict[str, Any]) -> int:
        """Deliver ``body`` until it is acknowledged (200); how many attempts it took (0:
        given up)."""
        deadline = time.monotonic() + GIVE_UP
        wait = FIRST_RETRY
        attempt = 0
        while time.monotonic() < deadline:
            attempt += 1
            if await self.post(channel, body) == "200":
                self.acked += 1
                self.progress.set()
                return attempt
            if attempt == 1:
                self.first_attempt_failures += 1
            await asyncio.sleep(wait * random.uniform(0.5, 1.5))
            wait = min(LONGEST_RETRY, wait * 2)
        return 0

    async def acked_at_least(self, count: float) -> None:
        while self.acked < count:
            self.progress.clear()
            await self.progress.wait()

    def all_outcomes(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for counts in self.outcomes.values():
            total.update(counts)
        return total


@dataclass
class Citizen:
    """One scripted conversation, and what happened to it."""

    channel: str
    user: str
    steps: list[Step]
    acked: int = 0
    gave_up: bool = False
    unanswered: int = 0  # answers waited for in vain
    waits: list[float] = field(default_factory=list)  # acknowledgement -> answer, seconds
    finished: bool = False
    trail: list[str] = field(default_factory=list)  # what happened to each message

    @property
    def key(self) -> tuple[str, str]:
        return (self.channel, self.user)


async def converse(
    citizen: Citizen,
    hooks: Webhooks,
    answers: Answers,
    rng: random.Random,
    *,
    think: tuple[float, float] = (0.0, 0.0),
    start_at: float = 0.0,
) -> None:
    if start_at:
        await asyncio.sleep(start_at)
    seen: Counter[str] = Counter()
    for number, step in enumerate(citizen.steps):
        body = delivery(citizen.channel, citizen.user, step.text, number)
        sent_at = time.monotonic()
        attempts = await hooks.until_acked(citizen.channel, body)
        if not attempts:
            citizen.gave_up = True
            citizen.trail.append(f"{step.text!r} at {_clock(sent_at)}: never acknowledged")
            return
        citizen.acked += 1
        acked_at = time.monotonic()
        seen[step.answer] += 1
        note = f"{step.text!r} at {_clock(sent_at)}: acknowledged at attempt {attempts}, "
        if await answers.wait(citizen.key, step.answer, seen[step.answer], REPLY_PATIENCE):
            citizen.waits.append(time.monotonic() - acked_at)
            citizen.trail.append(note + f"answered {time.monotonic() - acked_at:.1f} s later")
        else:
            citizen.unanswered += 1
            citizen.trail.append(note + f"no answer within {REPLY_PATIENCE:.0f} s")
        if think[1]:
            await asyncio.sleep(rng.uniform(*think))
    citizen.finished = True


def citizens_for(ctx: Context, scenario: int, count: int, scripts: Iterable[str]) -> list[Citizen]:
    """``count`` citizens, channels alternating, scripts in turn."""
    names = list(scripts)
    base = USER_BASE[scenario]
    return [
        Citizen(channel, str(base + i), list(ctx.steps[(names[i // 2 % len(names)], channel)]))
        for i in range(count)
        for channel in (CHANNELS[i % 2],)
    ]


# --------------------------------------------------------------------------- checking


@dataclass
class Stored:
    """What the store holds for one citizen."""

    version: int = 0
    events: list[EventKey] = field(default_factory=list)
    completions: int = 0
    #: Steps whose replies were never marked sent, and deliveries still in the inbox.
    unsent: int = 0
    inbox: int = 0


_QUERIES = (
    "SELECT channel, user_ref, version FROM sessions",
    "SELECT channel, user_ref, kind, step, detail FROM events ORDER BY id",
    "SELECT channel, user_ref, count(*) FROM completions GROUP BY channel, user_ref",
    "SELECT channel, user_ref, count(*) FROM deliveries WHERE outgoing IS NOT NULL"
    " GROUP BY channel, user_ref",
    "SELECT channel, user_ref, count(*) FROM inbox GROUP BY channel, user_ref",
)


def read_sqlite(path: Path) -> dict[tuple[str, str], Stored]:
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as conn:
        return _stored(*(conn.execute(query).fetchall() for query in _QUERIES))


async def read_postgres(url: str) -> dict[tuple[str, str], Stored]:
    conn = await asyncpg.connect(url)
    try:
        return _stored(*[await conn.fetch(query) for query in _QUERIES])
    finally:
        await conn.close()


def _stored(
    sessions: Iterable[Any],
    events: Iterable[Any],
    completions: Iterable[Any],
    unsent: Iterable[Any],
    inbox: Iterable[Any],
) -> dict[tuple[str, str], Stored]:
    found: dict[tuple[str, str], Stored] = {}
    for channel, ref, version in sessions:
        found.setdefault((channel, ref), Stored()).version = int(version)
    for channel, ref, kind, step, detail in events:
        found.setdefault((channel, ref), Stored()).events.append((kind, step, detail))
    for channel, ref, count in completions:
        found.setdefault((channel, ref), Stored()).completions = int(count)
    for channel, ref, count in unsent:
        found.setdefault((channel, ref), Stored()).unsent = int(count)
    for channel, ref, count in inbox:
        found.setdefault((channel, ref), Stored()).inbox = int(count)
    return found


@dataclass
class Tally:
    """Scenario 1, 2 or 4 checked: the store against what the citizens were told."""

    citizens: int = 0
    acked: int = 0
    lost: int = 0
    doubled: int = 0
    silent: int = 0
    #: Citizens whose steps were all applied once, but not all in the order they were sent:
    #: their events are not their script's (the bench cannot predict their answers).
    out_of_order: int = 0
    unanswered: int = 0  # answers waited for in vain (REPLY_PATIENCE)
    twice: int = 0  # messages a citizen got more than the steps sent them
    completions: int = 0
    completion_users: int = 0
    left_in_inbox: int = 0
    gave_up: int = 0
    unfinished: int = 0
    waits: list[float] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)


def tally(
    citizens: list[Citizen], stored: dict[tuple[str, str], Stored], answers: Answers
) -> Tally:
    """Each citizen's store against their script and what reached them (the module
    docstring defines the figures)."""
    refs = UserRefs(ID_SECRET.encode())
    t = Tally(citizens=len(citizens))
    for c in citizens:
        s = stored.get((c.channel, refs.ref(c.channel, c.user)), Stored())
        maybe = 1 if c.gave_up else 0
        lost = max(0, c.acked - s.version)
        doubled = max(0, s.version - c.acked - maybe)
        expected = [e for step in c.steps[: c.acked] for e in step.events]
        possible = expected + [
            e for step in c.steps[c.acked : c.acked + maybe] for e in step.events
        ]
        scripted = s.events in (expected, possible)
        got = answers.got.get(c.key, Counter())
        if scripted:
            # Applied as sent: each applied step's answer is known; which did not come?
            applied = c.steps[: min(c.acked, s.version)]
            needed = Counter(step.answer for step in applied)
            silent = sum(max(0, n - got[text]) for text, n in needed.items())
            sent = Counter(m for step in applied for m in step.messages)
            t.twice += sum(max(0, n - sent[text]) for text, n in got.items() if text in sent)
        else:
            # Applied in another order: the store says which replies never went out.
            silent = s.unsent
        t.acked += c.acked
        t.lost += lost
        t.doubled += doubled
        t.silent += silent
        t.out_of_order += not scripted and not lost and not doubled
        t.unanswered += c.unanswered
        t.completions += s.completions
        t.completion_users += s.completions > 0
        t.left_in_inbox += s.inbox
        t.gave_up += c.gave_up
        t.unfinished += not c.finished
        t.waits += c.waits
        if (lost or doubled or silent or not scripted) and len(t.examples) < 3:
            t.examples.append(
                f"{c.channel} {c.user}: acknowledged {c.acked}, applied {s.version}, "
                f"silent {silent}, events {'as scripted' if scripted else 'not as scripted'}; "
                + "; ".join(c.trail)
            )
    return t


def describe_tally(t: Tally, hooks: Webhooks) -> list[str]:
    outcomes = hooks.all_outcomes()
    waits = sorted(t.waits) or [0.0]
    slow = [w for w in waits if w > SLOW_ANSWER]
    lines = [
        f"  deliveries: {sum(outcomes.values())} requests for {t.acked} acknowledged messages "
        f"of {t.citizens} citizens; answers: {_counts(outcomes)}",
        f"  applied: lost {t.lost}, doubled {t.doubled}; answered: silent {t.silent}; "
        f"citizens whose steps were applied out of order: {t.out_of_order}; inbox rows left "
        f"{t.left_in_inbox}; gave up {t.gave_up}, unfinished {t.unfinished}",
        f"  waits for an answer after the acknowledgement: median {_ms(waits[len(waits) // 2])}, "
        f"max {waits[-1]:.1f} s; {len(slow)} answers came after more than {SLOW_ANSWER:g} s "
        f"(held up by a crash: the sweeper sends them once 30 s old), {t.unanswered} not "
        f"within {REPLY_PATIENCE:.0f} s (the citizen went on); messages received twice: "
        f"{t.twice}",
        f"  completions: {t.completions} rows for {t.completion_users} citizens",
    ]
    lines += [f"    e.g. {example}" for example in t.examples]
    return lines


def _counts(counts: Counter[str]) -> str:
    return ", ".join(f"{k} x{n}" for k, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


# --------------------------------------------------------------------------- the run


@dataclass
class Result:
    scenario: int
    lines: list[str] = field(default_factory=list)
    tally: Tally | None = None
    healthz_max_ms: float = 0.0
    survived: int | None = None
    skipped: str = ""
    #: Scenario 5: reminders marked unknown, and how many of them had arrived.
    reminders: tuple[int, int] | None = None


@dataclass
class Context:
    args: argparse.Namespace
    tmp: Path
    config: Path
    http: aiohttp.ClientSession
    telegram_url: str
    zalo: FakeZaloBotAPI
    answers: Answers
    steps: dict[tuple[str, str], list[Step]]

    def rng(self, scenario: int) -> random.Random:
        return random.Random(f"{self.args.seed}-{scenario}")

    def folder(self, name: str) -> Path:
        path = self.tmp / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def bot_env(self, port: int, database_url: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("TELEGRAM_", "ZALO_", "BOT_", "DATABASE_URL", "HTTP_"))
        }
        env.update(
            PYTHONPATH=str(ROOT),
            HOST="127.0.0.1",
            PORT=str(port),
            DATABASE_URL=database_url,
            BOT_CONFIG=str(self.config),
            BOT_ID_SECRET=ID_SECRET,
            LOG_LEVEL="WARNING",
            TELEGRAM_BOT_TOKEN=TELEGRAM_TOKEN,
            TELEGRAM_API_BASE_URL=f"{self.telegram_url}/bot",
            TELEGRAM_WEBHOOK_SECRET=TELEGRAM_SECRET,
            TELEGRAM_RATE_LIMITER="off",
            ZALO_BOT_TOKEN=ZALO_TOKEN,
            ZALO_BOT_WEBHOOK_SECRET=ZALO_SECRET,
            ZALO_BOT_API_BASE_URL=self.zalo.base_url,
        )
        return env


async def conversations_under(
    ctx: Context,
    citizens: list[Citizen],
    hooks: Webhooks,
    faults: Callable[[], Coroutine[Any, Any, None]],
    **talk: Any,
) -> None:
    """Run the citizens' conversations while ``faults`` runs; cancel it when they end."""
    rng = random.Random(ctx.args.seed)
    talks = asyncio.gather(*(converse(c, hooks, ctx.answers, rng, **talk) for c in citizens))
    killer = asyncio.create_task(faults())
    either: list[asyncio.Future[Any]] = [talks, killer]
    try:
        done, _ = await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if killer in done:
            killer.result()  # the faults could not go on: stop here
        await talks
    finally:
        talks.cancel()
        killer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await killer
        with contextlib.suppress(asyncio.CancelledError):
            await talks


async def scenario_burst(ctx: Context) -> Result:
    """1. Many concurrent deliveries, SIGKILL in the middle, restart; everything checked."""
    args, rng = ctx.args, ctx.rng(1)
    tmp = ctx.folder("burst")
    port = free_port()
    db = tmp / "bot.db"
    server = Server(ctx.bot_env(port, f"sqlite:///{db}"), tmp, tmp / "bot.log")
    citizens = citizens_for(ctx, 1, args.burst, ["report"])
    planned = sum(len(c.steps) for c in citizens)
    # The first kill in the middle of the first wave (every citizen's /start at once), the
    # others at random moments of the rest of the run.
    points = [rng.uniform(0.15, 0.85) * len(citizens)]
    points += sorted(
        rng.uniform(len(citizens), 0.9 * planned) for _ in range(args.burst_kills - 1)
    )
    result = Result(1)
    began = time.monotonic()
    async with Webhooks(server.url) as hooks:
        await server.start_serving()

        async def kills() -> None:
            for point in points:
                await hooks.acked_at_least(point)
                await asyncio.sleep(rng.uniform(0.0, 0.005))
                await server.restart_after("server", rng)

        try:
            await conversations_under(ctx, citizens, hooks, kills)
        finally:
            await server.stop()
        t = tally(citizens, read_sqlite(db), ctx.answers)
    tracebacks, errors, first = server.log_problems()
    restarts = sorted(server.restarts) or [0.0]
    result.tally = t
    result.lines = [
        f"{len(citizens)} citizens (Telegram and Zalo Bot, {len(citizens[0].steps)} messages "
        f"each), all starting at once; {server.kills['server']} SIGKILLs of `serve` (SQLite), "
        f"the first at {points[0] / len(citizens):.0%} of the first wave; restarted until "
        f"/healthz answers in {restarts[len(restarts) // 2]:.1f} s (median); "
        f"{time.monotonic() - began:.0f} s",
        *describe_tally(t, hooks),
        f"  bot log: {tracebacks} tracebacks, {errors} ERROR lines"
        + (f" ({first})" if first else ""),
    ]
    return result


async def scenario_workers(ctx: Context) -> Result:
    """2. serve --workers 4 on PostgreSQL; workers killed at random, the whole tree twice."""
    args, rng = ctx.args, ctx.rng(2)
    admin = os.environ.get("TEST_POSTGRES_URL", "")
    result = Result(2)
    if not admin:
        result.skipped = (
            "skipped: no PostgreSQL (set TEST_POSTGRES_URL, e.g. "
            "TEST_POSTGRES_URL=$(.ci/postgres.sh))"
        )
        return result
    tmp = ctx.folder("workers")
    began = time.monotonic()
    async with throwaway_database(admin) as url:
        port = free_port()
        server = Server(ctx.bot_env(port, url), tmp, tmp / "bot.log", workers=args.workers)
        scripts = ["report"] if args.quick else ["install", "report"]
        citizens = citizens_for(ctx, 2, args.conversations, scripts)
        planned = sum(len(c.steps) for c in citizens)
        tree_points = [planned * (n + 1) / (args.tree_kills + 1) for n in range(args.tree_kills)]
        async with Webhooks(server.url) as hooks:
            await server.start_serving()

            async def kills() -> None:
                tree_kinds = itertools.cycle(["server", "tree"])
                while True:
                    await asyncio.sleep(rng.uniform(1.0, 6.0))
                    if tree_points and hooks.acked >= tree_points[0]:
                        tree_points.pop(0)
                        await server.restart_after(next(tree_kinds), rng)
                    else:
                        await server.kill_worker(rng)

            try:
                await conversations_under(ctx, citizens, hooks, kills, think=(0.0, 0.2))
            finally:
                await server.stop()
            stored = await read_postgres(_asyncpg_url(url))
            t = tally(citizens, stored, ctx.answers)
    tracebacks, errors, first = server.log_problems()
    orphans = max(server.orphans_gone, default=0.0)
    result.tally = t
    result.lines = [
        f"{len(citizens)} citizens (two scripts, {planned} messages in all) through `serve "
        f"--workers {args.workers}` on PostgreSQL; SIGKILLs: {server.kills['worker']} of a "
        f"worker (every 1-6 s), {server.kills['server']} of the supervisor alone, "
        f"{server.kills['tree']} of every process at once; {time.monotonic() - began:.0f} s",
        f"  a supervisor killed alone: its workers were gone {orphans:.1f} s later (at most); "
        f"a new server refused beside a live one: {server.refused} times",
        *describe_tally(t, hooks),
        f"  bot log: {tracebacks} tracebacks, {errors} ERROR lines"
        + (f" ({first})" if first else ""),
    ]
    return result


def _asyncpg_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextlib.asynccontextmanager
async def throwaway_database(admin: str) -> AsyncIterator[str]:
    """A new database on the server of ``admin`` (its URL), dropped afterwards."""
    name = f"faults_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(_asyncpg_url(admin))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield make_url(admin).set(database=name).render_as_string(hide_password=False)
    finally:
        conn = await asyncpg.connect(_asyncpg_url(admin))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


async def scenario_idle(ctx: Context) -> Result:
    """3. Idle connections against one server under a lowered descriptor limit."""
    tmp = ctx.folder("idle")
    port = free_port()
    env = {**ctx.bot_env(port, f"sqlite:///{tmp / 'bot.db'}"), "HTTP_HEADER_TIMEOUT": "5"}
    server = Server(env, tmp, tmp / "bot.log", limit_fds=FD_LIMIT)
    result = Result(3)
    user = itertools.count(USER_BASE[3])
    rows = []
    await server.start_serving()
    warm = await server.warmed()
    try:
        async with Webhooks(server.url, fresh_connections=True) as hooks:
            for level in ctx.args.idle:
                idle = await _hold_idle(port, level)
                polls: list[float] = []
                failed = 0

                async def deliver() -> None:
                    for _ in range(10):
                        uid = str(next(user))
                        await hooks.until_acked(TELEGRAM, delivery(TELEGRAM, uid, "/start", 0))
                        await asyncio.sleep(0.3)

                before = hooks.first_attempt_failures
                deliveries = asyncio.create_task(deliver())
                load = _load()
                starved = 0.0
                polled = await _healthz_polled_apart(server.url, HEADER_TIMEOUT + 2.0, server.pid)
                for took, waited in polled:
                    polls.append(took if took is not None else HEALTHZ_PATIENCE * 1000)
                    # The server's own time: a machine with more runnable processes than
                    # cores keeps the server waiting for a CPU (load average 10 on 2 cores:
                    # one poll of 1.2 s), which is the machine's doing, not the server's.
                    failed += took is None or took - waited > HEALTHZ_OK_MS
                    starved = max(starved, waited)
                await deliveries
                refused = hooks.first_attempt_failures - before
                held = sum(await asyncio.gather(*(_still_open(r) for r, _ in idle)))
                for _, writer in idle:
                    writer.close()
                worst = max(polls)
                result.healthz_max_ms = max(result.healthz_max_ms, worst)
                if not failed and not refused and (result.survived or 0) < level:
                    result.survived = level
                rows.append(
                    f"  {level:>5} idle: /healthz {len(polls)} polls, max {worst:.1f} ms, "
                    f"{failed} failed or slower than {HEALTHZ_OK_MS:.0f} ms without the time "
                    f"the server waited for a CPU (at most {starved:.0f} ms in a poll); "
                    "10 deliveries, "
                    f"{refused} not acknowledged at the first attempt; idle connections still "
                    f"open {HEADER_TIMEOUT + 2:.0f} s later: {held} (load average {load})"
                )
                await asyncio.sleep(1.0)
    finally:
        await server.stop()
    tracebacks, errors, _ = server.log_problems()
    storm = sum(
        1 for x in server.log.read_text(errors="replace").splitlines() if "http: closing" in x
    )
    result.lines = [
        f"`serve` with {FD_LIMIT} descriptors (so at most {FD_LIMIT - 64} connections), header "
        f"deadline {HEADER_TIMEOUT:g} s, idle {warm:.0f} s after it first answered (its "
        "warm-up done); connections that never send a byte, then /healthz on fresh "
        "connections every 0.1 s and a delivery every 0.3 s:",
        *rows,
        f"  bot log: {storm} storm lines, {tracebacks} tracebacks, {errors} ERROR lines",
    ]
    return result


async def _hold_idle(
    port: int, count: int
) -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    held = []
    for _ in range(count):
        with contextlib.suppress(OSError):
            held.append(await asyncio.open_connection("127.0.0.1", port))
    return held


#: Scenario 3's monitor, a process of its own that does nothing else: timed in this process,
#: a poll also waited for this event loop, busy with the other scenarios of a quick run
#: (one quick run counted a 1.3 s poll there, and so 0 idle connections survived, where the
#: one before counted 600).
MONITOR = """
import http.client, sys, time
host, port = sys.argv[1], int(sys.argv[2])
seconds, patience, server = float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])

def queued():
    # ns the server's event loop thread has waited for a CPU (runnable, not running)
    try:
        with open(f"/proc/{server}/schedstat") as f:
            return int(f.read().split()[1])
    except (OSError, IndexError, ValueError):
        return 0

end = time.monotonic() + seconds
while time.monotonic() < end:
    waited = queued()
    began = time.perf_counter()
    try:
        conn = http.client.HTTPConnection(host, port, timeout=patience)
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        response.read()
        conn.close()
        took = (time.perf_counter() - began) * 1000 if response.status == 200 else None
    except OSError:
        took = None
    waited = (queued() - waited) / 1e6
    print("-" if took is None else f"{took:.2f}", f"{waited:.2f}", flush=True)
    time.sleep(0.1)
"""


async def _healthz_polled_apart(
    url: str, seconds: float, server: int
) -> list[tuple[float | None, float]]:
    """/healthz on a fresh connection every 0.1 s for ``seconds``, asked and timed by a
    monitor process of its own: per poll (ms, None if not a 200 within the patience; ms the
    ``server`` process's event loop waited for a CPU meanwhile, from /proc/PID/schedstat)."""
    address = url.removeprefix("http://").split("/")[0]
    host, port = address.rsplit(":", 1)
    monitor = await asyncio.create_subprocess_exec(
        sys.executable, "-c", MONITOR, host, port, str(seconds), str(HEALTHZ_PATIENCE),
        str(server), stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await monitor.communicate()
    polls = [line.split() for line in out.decode().splitlines() if line.strip()]
    return [(None if took == "-" else float(took), float(waited)) for took, waited in polls]


async def _still_open(reader: asyncio.StreamReader) -> bool:
    try:
        async with asyncio.timeout(0.2):
            return await reader.read(1) != b""
    except TimeoutError:
        return True
    except (ConnectionError, OSError):
        return False


async def scenario_troubled(ctx: Context) -> Result:
    """4. Another process holds SQLite's write lock; then the files refuse every write."""
    args, rng = ctx.args, ctx.rng(4)
    tmp = ctx.folder("troubled")
    port = free_port()
    db = tmp / "bot.db"
    server = Server(ctx.bot_env(port, f"sqlite:///{db}"), tmp, tmp / "bot.log")
    citizens = citizens_for(ctx, 4, args.troubled, ["report"])
    lock_at, lock_for = 3.0, args.lock_seconds
    ro_at = lock_at + lock_for + 5.0
    span = ro_at + args.read_only_seconds + 3.0
    result = Result(4)
    health: dict[str, list[tuple[float, str]]] = {}
    immutable = shutil.which("chattr") is not None
    note = ""
    async with Webhooks(server.url) as hooks:
        await server.start_serving()
        polling = asyncio.create_task(_poll_health(server.url, hooks, health))

        async def faults() -> None:
            nonlocal immutable, note
            await asyncio.sleep(lock_at)
            hooks.phase = "locked"
            await _hold_write_lock(db, lock_for)
            hooks.phase = "after the lock"
            await asyncio.sleep(ro_at - lock_at - lock_for)
            files = [db, db.with_name(db.name + "-wal")]
            if immutable:
                try:
                    _chattr("+i", files)
                except subprocess.CalledProcessError as exc:
                    immutable, note = False, exc.stderr.strip()
            if immutable:
                hooks.phase = "read-only"
                try:
                    await asyncio.sleep(args.read_only_seconds)
                finally:
                    _chattr("-i", files)
            hooks.phase = "after read-only"

        try:
            await _spread(ctx, citizens, hooks, faults, rng, span)
        finally:
            polling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await polling
            await server.stop()
        t = tally(citizens, read_sqlite(db), ctx.answers)
    tracebacks, errors, first = server.log_problems()
    result.tally = t
    worst = max((ms for polls in health.values() for ms, _ in polls), default=0.0)
    result.healthz_max_ms = worst
    rows = []
    for phase in ("run", "locked", "after the lock", "read-only", "after read-only"):
        polls = health.get(phase, [])
        if not polls and phase not in hooks.outcomes:
            continue
        said = Counter(answer for _, answer in polls)
        slowest = max((p for p, _ in polls), default=0)
        rows.append(
            f"  {phase:>15}: /healthz {_counts(said)}; max {slowest:.0f} ms"
            f" | deliveries {_counts(hooks.outcomes.get(phase, Counter()))}; slowest answer "
            f"{hooks.slowest.get(phase, 0.0):.1f} s"
        )
    result.lines = [
        f"{len(citizens)} citizens coming and going over {span:.0f} s (`serve`, SQLite); "
        f"another process holds the write lock for {lock_for:g} s; then "
        + (
            f"the database and its log are immutable for {args.read_only_seconds:g} s"
            if immutable
            else f"no read-only phase (chattr unavailable: {note or 'not installed'})"
        ),
        *rows,
        *describe_tally(t, hooks),
        f"  bot log: {tracebacks} tracebacks, {errors} ERROR lines"
        + (f" ({first})" if first else ""),
    ]
    return result


async def _spread(
    ctx: Context,
    citizens: list[Citizen],
    hooks: Webhooks,
    faults: Callable[[], Coroutine[Any, Any, None]],
    rng: random.Random,
    span: float,
) -> None:
    """Citizens starting at random moments over ``span`` seconds, taking their time."""
    talks = asyncio.gather(
        *(
            converse(c, hooks, ctx.answers, rng, think=(0.3, 1.5), start_at=rng.uniform(0, span))
            for c in citizens
        )
    )
    trouble = asyncio.create_task(faults())
    try:
        await trouble
        await talks
    finally:
        trouble.cancel()
        talks.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await talks


def _chattr(flag: str, files: list[Path]) -> None:
    subprocess.run(["chattr", flag, *map(str, files)], check=True, capture_output=True, text=True)


async def _hold_write_lock(db: Path, seconds: float) -> None:
    """Another process takes SQLite's write lock (BEGIN IMMEDIATE) and keeps it."""
    code = (
        "import sqlite3, sys, time\n"
        "c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)\n"
        "c.execute('BEGIN IMMEDIATE')\n"
        "print('locked', flush=True)\n"
        "time.sleep(float(sys.argv[2]))\n"
        "c.execute('ROLLBACK')\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, str(db), str(seconds), stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    if (await proc.stdout.readline()).strip() != b"locked":
        raise BenchError("could not take the write lock")
    await proc.wait()


async def _poll_health(
    url: str, hooks: Webhooks, health: dict[str, list[tuple[float, str]]]
) -> None:
    """/healthz every 0.1 s on a keep-alive connection: (ms, what it said) per phase."""
    timeout = aiohttp.ClientTimeout(total=HEALTHZ_PATIENCE)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        while True:
            phase, began = hooks.phase, time.perf_counter()
            try:
                async with http.get(f"{url}/healthz") as response:
                    body = await response.json()
                    said = f"{response.status} {body.get('store', 'ok')}"
            except (aiohttp.ClientError, TimeoutError, ValueError):
                said = "no answer"
            took = (time.perf_counter() - began) * 1000
            health.setdefault(phase, []).append((took, said))
            await asyncio.sleep(0.1)


async def scenario_reminders(ctx: Context) -> Result:
    """5. Reminders being sent while the bot is SIGKILLed: which of those in flight arrived."""
    args, rng = ctx.args, ctx.rng(5)
    tmp = ctx.folder("reminders")
    count = args.reminder_kills * 45 + 100
    config = seeding.bench_config(tmp, 25)
    trial = seeding.Trial(25, count, 30, True)
    path, url = await seeding.seed(tmp, trial, config)
    result = Result(5)
    began = time.monotonic()
    async with (
        telegram_stand_in(seeding.TOKEN, args.reminder_latency) as api,
        aiohttp.ClientSession() as http,
    ):
        env = seeding.bot_env(url, config, f"{api}/bot", limiter=True)
        bot = Server(env, tmp, tmp / "bot.log", command="run")
        arrived: Counter[int] = Counter()
        seen = 0

        async def follow() -> int:
            nonlocal seen
            async with http.get(f"{api}/_control/sends", params={"since": str(seen)}) as r:
                sends: list[dict[str, Any]] = await r.json()
            seen += len(sends)
            new = 0
            for send in sends:
                if str(send["text"]).startswith(seeding.REMINDER_MARK):
                    arrived[int(send["chat_id"])] += 1
                    new += 1
            return new

        async def sending() -> None:
            """Until a reminder arrives (the bot is up and sending)."""
            deadline = time.monotonic() + START_PATIENCE
            while not await follow():
                if time.monotonic() > deadline:
                    raise BenchError(f"no reminder arrived; log: {bot.log}")
                await asyncio.sleep(0.05)

        await bot.start()
        try:
            for _ in range(args.reminder_kills):
                await sending()
                await asyncio.sleep(rng.uniform(0.3, 2.0))
                await bot.kill()
                await asyncio.sleep(rng.uniform(0.0, 0.3))
                await bot.start()
            quiet_since = time.monotonic()
            while time.monotonic() - quiet_since < 8.0:  # until nothing is left to send
                if await follow() or _outbox_counts(path).get("pending", 0):
                    quiet_since = time.monotonic()
                await asyncio.sleep(0.25)
        finally:
            await bot.stop()
        await follow()
    refs = UserRefs(seeding.SECRET.encode())
    chat_of = {
        refs.ref(seeding.CHANNEL, user): user
        for user in range(seeding.FIRST_USER, seeding.FIRST_USER + count)
    }
    rows = _outbox_rows(path)
    statuses = Counter(status for _, status in rows)
    unknown = [chat_of[ref] for ref, status in rows if status == "unknown"]
    came = sum(1 for chat in unknown if arrived[chat])
    sent_missing = sum(1 for ref, status in rows if status == "sent" and not arrived[chat_of[ref]])
    duplicates = sum(n - 1 for n in arrived.values() if n > 1)
    never = count - len(arrived)
    tracebacks, errors, first = bot.log_problems()
    share = f"{came / len(unknown):.0%}" if unknown else "-"
    result.lines = [
        f"{count} due reminders sent by `run` (SQLite, pace 25/s, AIORateLimiter on) to a Bot "
        f"API stand-in answering in {args.reminder_latency:g} s; {bot.kills['server']} "
        f"SIGKILLs while sending; {time.monotonic() - began:.0f} s",
        f"  outbox rows: {_counts(statuses)}",
        f"  marked unknown (in flight at a kill, never sent again): {len(unknown)}; of them "
        f"arrived {came} ({share}: a resend would have doubled them), did not arrive "
        f"{len(unknown) - came} (lost: a resend would have delivered them)",
        f"  rows marked sent that never arrived: {sent_missing}; reminders received twice: "
        f"{duplicates}; citizens without a reminder at the end: {never}",
        f"  bot log: {tracebacks} tracebacks, {errors} ERROR lines"
        + (f" ({first})" if first else ""),
    ]
    result.reminders = (len(unknown), came)
    return result


def _outbox_rows(path: Path) -> list[tuple[str, str]]:
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as conn:
        return [(str(r), str(s)) for r, s in conn.execute("SELECT user_ref, status FROM outbox")]


def _outbox_counts(path: Path) -> Counter[str]:
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as conn:
        return Counter(
            {
                str(s): int(n)
                for s, n in conn.execute("SELECT status, count(*) FROM outbox GROUP BY status")
            }
        )


SCENARIOS: dict[int, Callable[[Context], Awaitable[Result]]] = {
    1: scenario_burst,
    2: scenario_workers,
    3: scenario_idle,
    4: scenario_troubled,
    5: scenario_reminders,
}


async def run(args: argparse.Namespace) -> list[Result]:
    tmp = Path(tempfile.mkdtemp(prefix="faults-"))
    now = datetime.now(UTC)
    config = unthrottled_config(tmp / "config.toml")
    engine = build_engine(config)
    steps = {
        (script, channel): walk(engine, script, channel, now)
        for script in ("report", "install")
        for channel in CHANNELS
    }
    results: list[Result] = []
    try:
        async with (
            telegram_stand_in(TELEGRAM_TOKEN) as telegram_url,
            FakeZaloBotAPI(ZALO_TOKEN) as zalo,
            aiohttp.ClientSession() as http,
        ):
            answers = Answers(http, telegram_url, zalo)
            ctx = Context(args, tmp, config, http, telegram_url, zalo, answers, steps)
            pump = asyncio.create_task(answers.pump())

            async def one(number: int) -> Result:
                began = time.monotonic()
                result = await SCENARIOS[number](ctx)
                report(result, time.monotonic() - began)
                return result

            try:
                if args.quick:
                    groups = [[n] for n in args.scenarios if n not in (3, 4)]
                    groups.append([n for n in args.scenarios if n in (3, 4)])

                    async def in_turn(numbers: list[int]) -> list[Result]:
                        return [await one(n) for n in numbers]

                    for found in await asyncio.gather(*(in_turn(g) for g in groups if g)):
                        results += found
                else:
                    for number in args.scenarios:
                        results.append(await one(number))
            finally:
                pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pump
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return sorted(results, key=lambda r: r.scenario)


def report(result: Result, seconds: float) -> None:
    print(f"{result.scenario}. {NAMES[result.scenario]} ({seconds:.0f} s)")
    for line in [result.skipped] if result.skipped else result.lines:
        print(f"   {line}")
    print(flush=True)


def last_line(results: list[Result]) -> str:
    tallies = [r.tally for r in results if r.tally is not None]
    survived = [r.survived for r in results if r.scenario == 3]
    figures = {
        "acked_lost": sum(t.lost for t in tallies),
        "doubled": sum(t.doubled for t in tallies),
        "silent_steps": sum(t.silent for t in tallies),
        "healthz_max_ms": f"{max((r.healthz_max_ms for r in results), default=0.0):.1f}",
        "idle_conns_survived": (survived[0] or 0) if survived else "-",
    }
    return " ".join(f"{k}={v}" for k, v in figures.items())


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small run, side by side")
    parser.add_argument("--scenarios", default="1,2,3,4,5", help="which to run (1-5)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the databases and logs")
    parser.add_argument("--burst", type=int, default=None, help="scenario 1: citizens")
    parser.add_argument("--burst-kills", type=int, default=None, help="scenario 1: SIGKILLs")
    parser.add_argument("--conversations", type=int, default=None, help="scenario 2: citizens")
    parser.add_argument(
        "--workers", type=int, default=None, help="scenario 2: worker processes (4; quick 2)"
    )
    parser.add_argument("--tree-kills", type=int, default=None, help="scenario 2 (2; quick 1)")
    parser.add_argument("--idle", default=None, help="scenario 3: idle levels (250,500,1000)")
    parser.add_argument("--troubled", type=int, default=None, help="scenario 4: citizens")
    parser.add_argument(
        "--lock-seconds", type=float, default=None, help="scenario 4 (20; quick 3)"
    )
    parser.add_argument("--reminder-kills", type=int, default=None, help="scenario 5")
    parser.add_argument(
        "--reminder-latency", type=float, default=0.15, help="scenario 5: stand-in's answer time"
    )
    args = parser.parse_args(argv)
    quick = args.quick
    args.scenarios = sorted({int(x) for x in str(args.scenarios).split(",") if x.strip()})
    if not set(args.scenarios) <= set(SCENARIOS):
        parser.error("--scenarios: numbers from 1 to 5")
    args.burst = args.burst or (40 if quick else 1500)
    args.burst_kills = args.burst_kills or (1 if quick else 2)
    args.conversations = args.conversations or (12 if quick else 400)
    args.workers = args.workers or (2 if quick else 4)
    args.tree_kills = args.tree_kills if args.tree_kills is not None else (1 if quick else 2)
    args.lock_seconds = args.lock_seconds or (3.0 if quick else 20.0)
    args.read_only_seconds = 2.0 if quick else 10.0
    args.idle = [int(x) for x in (args.idle or ("600" if quick else "250,500,1000")).split(",")]
    args.troubled = args.troubled or (10 if quick else 150)
    args.reminder_kills = args.reminder_kills or (1 if quick else 15)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM (``timeout``, a CI job cancelled) unwinds as Ctrl-C does: every scenario's
    # ``finally`` runs, the throw-away database is dropped, and kill_all() ends the rest.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    print(f"load average at the start: {_load()}", flush=True)
    try:
        results = asyncio.run(run(args))
    except BenchError as exc:
        sys.exit(f"bench/faults.py: {exc}")
    finally:
        kill_all()
    print(f"load average at the end: {_load()} (2 cores, shared)")
    print(last_line(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
