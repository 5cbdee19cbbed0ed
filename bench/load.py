"""Webhook load: updates/s and p99 latency for 1, 2 and 4 workers on PostgreSQL, SQLite beside.

What runs
---------
Four kinds of process on this one machine, as in production behind Telegram:

- the bot, ``python -m bot serve --workers N`` (webhook mode: N processes on one port through
  ``SO_REUSEPORT``, sharing only the database), on a fresh PostgreSQL database (``CREATE
  DATABASE`` per configuration and round, dropped after), or for the reference figure with
  one worker on a fresh SQLite file;
- the local Bot API stand-in (``python -m tests.fakes.telegram_api``), which receives the
  bot's replies (``sendMessage``) and timestamps each one;
- this driver, which plays both Telegram's webhook delivery and the citizens;
- PostgreSQL: ``TEST_POSTGRES_URL`` if set, else the throw-away server of ``.ci/postgres.sh``.

That server runs with ``fsync=off`` and the SQLite file in WAL mode with ``synchronous=NORMAL``,
so neither backend waits for the disk at a commit: the figures compare CPU and round trips,
not disks). The per-user flood limit (20 messages a minute) is raised in a temporary copy of
config.toml, and ``TELEGRAM_RATE_LIMITER=off`` (the stand-in enforces no flood limits).

Delivery: a fixed pool of keep-alive connections
-------------------------------------------------
Telegram delivers webhooks over at most ``max_connections`` (default 40, at most 100)
HTTPS connections, one request at a time on each, the next one after the answer. The driver
does the same: ``--connections`` (64) keep-alive connections, each its own client session,
handed out least-recently-used first, so that every connection carries traffic even at low
load. The kernel balances ``SO_REUSEPORT`` by *connection*, not by request, so many
connections are needed to reach every worker; a ``GET /healthz`` on each connection tells
which worker the kernel gave it to, so the driver counts each worker's requests exactly (and
checks at the end that no connection moved). The webhook answers 200 once the step is
committed; the reply is sent to the stand-in after that.

The conversation
----------------
Each of M users (``--users``) first sends "/start" (untimed warm-up, one reply each), then
alternately "2" (opens the readiness screen) and "quay lại" (back to the menu): exactly one
reply each. Every user sends its next message only after the reply to the previous one has
been recorded at the stand-in (the driver polls ``/_control/sends`` every few ms), so each
user's messages stay in order and every reply is deterministic; the driver checks that each
of the two messages always got the same reply text ("odd replies" otherwise).

Two phases per configuration
----------------------------
1. **Capacity (updates/s): closed loop.** All M users at once, each sending its next message
   as soon as its reply is in. After a short ramp, updates/s = replies recorded at the
   stand-in during a fixed window / the window. A closed loop can never offer more than the
   system absorbs: at most M updates are in flight, every worker always has work queued (M
   is far above what N workers process at once), and no backlog builds up that would be
   drained -- and credited -- after the window, or run into the webhook's 10 s patience. A
   worker that runs slower (less CPU, fewer connections) simply gets fewer of the requests,
   as it would behind Telegram, which never has more than ``max_connections`` deliveries in
   flight either. An open-loop burst instead piles thousands of updates onto whichever
   connections (and so workers) the kernel picked, and its figure depends on the burst's
   size and on that draw rather than on the bot. Latency in this phase
   is shown too ("p50/p99 at capacity"), but it is mostly queueing the loop creates itself:
   by Little's law mean latency is about M / (updates/s), whatever the bot does.
2. **Latency (p50, p99): fixed offered load.** ``--rate`` updates/s (the same for every
   configuration; it should be below every configuration's capacity), scheduled round-robin
   over the M users; a user whose previous reply is not yet in sends as soon as it is (so
   order is kept), and latency is counted from the *scheduled* time, so a stall is not
   hidden by the schedule slipping. Latency = scheduled send -> reply recorded at the stand-in
   (both ``time.monotonic()``, one clock for all processes on Linux); it includes the wait for
   a free delivery connection, the webhook, the commit and the ``sendMessage`` call.

Figures
-------
Per configuration: updates/s (capacity), p50/p99 at ``--rate``, p50/p99 at capacity, the
connections and requests each worker got, how the machine's CPU was shared during the window
(in cores: the bot's processes, the local PostgreSQL server's, the stand-in, this driver, and
"other": programs that are not part of the bench, which should be near 0 -- the report warns
otherwise, and says how busy the machine was before the run; a PostgreSQL backend that
starts and exits within the window, like a connection pool's overflow, counts as "other"),
the PostgreSQL connections open in mid-window ("pg conns") and the sessions opened
per second during it ("new/s": the connection pools' churn, from ``pg_stat_database``), the
median time from the send to the webhook's 200 at the fixed rate ("ack p50"), and warnings in
the bot's log.

Two figures explain what several workers cost: "same worker", the share of messages that
reached the worker which had the same user's previous message (about 1/N: nothing ties a user
to a worker, behind Telegram either), and "writes/update", write transactions per update.
Each process keeps recently used sessions in memory and writes the steps it has in hand in
one transaction; a message reaching another worker than the previous one finds no session
there (one more read) or an outdated one (its save conflicts and is redone under a row lock,
one more transaction), and each worker's batches are smaller.

With ``--rounds`` > 1 each figure is the median over rounds (rounds interleave
the configurations). ``scaling_N`` = pg_N / pg_1.

The machine matters: on 2 cores, the workers, PostgreSQL, the stand-in and the driver all
share the same two cores, so N workers cannot come near N times one worker; the CPU table
says where the time went. Scaling on such a machine says whether more workers *hurt* or help
a little, not what a bigger server would do.

Usage: python bench/load.py [--quick] [--users M] [--connections C] [--seconds S]
                            [--rate R] [--rounds K] [--workers 1,2,4]
The last line is ``sqlite_1=... pg_1=... pg_2=... pg_4=... p99_ms_...=... scaling_4=...``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import free_port, unthrottled_config  # noqa: E402
from tests.fakes.telegram_api import make_text_update  # noqa: E402

TOKEN = "123:BENCH"
WEBHOOK_SECRET = "bench-webhook-secret"
ID_SECRET = "bench-secret-0123456789"
USER_BASE = 700_000
SCRIPT = ("2", "quay lại")
START_REPLIES = 1
#: How often the driver asks the stand-in for new replies.
POLL_EVERY = 0.004
#: A reply not recorded this long after its message is an error.
REPLY_PATIENCE = 30.0
RAMP = 1.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CPU_GROUPS = ("bot", "postgres", "stand-in", "driver", "other")

_update_ids = itertools.count(1)


# --------------------------------------------------------------------------- figures


def pct(data: list[float], q: float) -> float:
    if not data:
        return float("nan")
    ordered = sorted(data)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Result:
    backend: str
    workers: int
    rate: float = 0.0
    p50: float = float("nan")
    p99: float = float("nan")
    cap_p50: float = float("nan")
    cap_p99: float = float("nan")
    ack_p50: float = float("nan")
    connections: list[int] = field(default_factory=list)
    share: list[float] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)
    pg_connections: int | None = None
    pg_counts: tuple[int, int] | None = None
    same_worker: float = float("nan")
    fixed_rate: float = 0.0
    fixed_cpu: dict[str, float] = field(default_factory=dict)
    odd_replies: int = 0
    errors: int = 0
    moved: int = 0
    log_warnings: int = 0
    log_sample: str = ""

    @property
    def name(self) -> str:
        return f"{self.backend}_{self.workers}"


# --------------------------------------------------------------------------- processes


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the supervisor stops its workers), then kill the process group we made."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=25)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextlib.contextmanager
def stand_in(port: int, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    args = [sys.executable, "-m", "tests.fakes.telegram_api", "--port", str(port)]
    args += ["--token", TOKEN]
    proc = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if b"listening" in line:
                break
        else:
            raise RuntimeError("the Bot API stand-in did not start")
        yield proc
    finally:
        stop_process(proc)


@contextlib.contextmanager
def bot_process(
    workers: int, env: dict[str, str], log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    args = [sys.executable, "-m", "bot", "serve", "--workers", str(workers)]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True
        )
        try:
            yield proc
        finally:
            stop_process(proc)


@dataclass(frozen=True, slots=True)
class Proc:
    ppid: int
    comm: str
    #: User + system CPU seconds of the process itself.
    cpu: float
    #: The same for its children that have exited (the kernel adds a reaped child's time to
    #: its parent's).
    reaped: float


def processes() -> dict[int, Proc]:
    table: dict[int, Proc] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        reaped = (int(fields[13]) + int(fields[14])) / CLOCK_TICKS
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        table[int(entry.name)] = Proc(int(fields[1]), comm, cpu, reaped)
    return table


def tree(table: dict[int, Proc], root: int) -> set[int]:
    """``root`` and its descendants."""
    children: dict[int, list[int]] = {}
    for pid, proc in table.items():
        children.setdefault(proc.ppid, []).append(pid)
    found = {root} if root in table else set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def postgres_members(table: dict[int, Proc], database: str | None) -> set[int]:
    """The local PostgreSQL server's processes that work for this bench: the server and its
    auxiliary processes, and the backends connected to ``database`` (not other databases'
    backends, e.g. a test suite's). None when the server runs elsewhere."""
    found: set[int] = set()
    for pid, proc in table.items():
        if proc.comm != "postgres":
            continue
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, UnicodeDecodeError):
            continue
        words = title.split()
        # A backend's title: "postgres: USER DATABASE HOST(PORT) STATE".
        backend = len(words) >= 4 and words[0] == "postgres:" and "(" in words[3]
        if not backend or words[2] == database:
            found.add(pid)
    return found


def machine_busy() -> float:
    """CPU seconds spent busy by all cores since boot."""
    head = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(x) for x in head]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks[:8]) - idle) / CLOCK_TICKS


@dataclass(frozen=True, slots=True)
class Roots:
    """The processes whose CPU time is accounted for, by group."""

    bot: int
    stand_in: int
    database: str | None


@dataclass
class CpuSnapshot:
    at: float
    busy: float
    groups: dict[str, dict[int, float]]

    @staticmethod
    def take(roots: Roots) -> CpuSnapshot:
        table = processes()
        members = {
            "bot": tree(table, roots.bot),
            "postgres": postgres_members(table, roots.database),
            "stand-in": tree(table, roots.stand_in),
            "driver": {os.getpid()},
        }
        groups = {name: {p: table[p].cpu for p in pids} for name, pids in members.items()}
        # A worker that died and was restarted still counts (the supervisor reaped it);
        # PostgreSQL's reaped backends do not: the server also reaps other databases'.
        groups["bot"] = {p: table[p].cpu + table[p].reaped for p in members["bot"]}
        return CpuSnapshot(time.monotonic(), machine_busy(), groups)

    def cores_since(self, before: CpuSnapshot) -> dict[str, float]:
        """Cores used by each group between two snapshots (1.0 = one core all the time).

        A process that appeared in between counts whole (it started in between)."""
        span = self.at - before.at
        used: dict[str, float] = {}
        for name, now in self.groups.items():
            then = before.groups.get(name, {})
            used[name] = sum(cpu - then.get(pid, 0.0) for pid, cpu in now.items()) / span
        used["other"] = max(0.0, (self.busy - before.busy) / span - sum(used.values()))
        used["total"] = (self.busy - before.busy) / span
        return used


# --------------------------------------------------------------------------- PostgreSQL


def postgres_admin_url() -> str:
    url = os.environ.get("TEST_POSTGRES_URL")
    if not url:
        script = ROOT / ".ci" / "postgres.sh"
        url = subprocess.run(
            [str(script)], cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True
        ).stdout.strip()
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def pg_execute(admin: str, sql: str) -> None:
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def pg_value(admin: str, sql: str, *params: object) -> str:
    conn = await asyncpg.connect(admin)
    try:
        return str(await conn.fetchval(sql, *params))
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def fresh_database(admin: str) -> AsyncIterator[tuple[str, str]]:
    """A new, empty database on the server: (its URL, its name); dropped afterwards."""
    name = f"load_{uuid.uuid4().hex[:12]}"
    await pg_execute(admin, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(admin).set(database=name).render_as_string(hide_password=False), name
    finally:
        await pg_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --------------------------------------------------------------------------- the driver


@dataclass(slots=True)
class Reply:
    at: float
    text: str


class Replies:
    """Polls the stand-in for the bot's replies and wakes the user waiting for each."""

    def __init__(self, http: aiohttp.ClientSession, base: str):
        self.http = http
        self.base = base
        self.seen = 0
        self.by_user: dict[int, list[Reply]] = {}
        self.waiting: dict[int, tuple[int, asyncio.Future[None]]] = {}

    async def reset(self) -> None:
        async with self.http.post(f"{self.base}/_control/reset") as r:
            r.raise_for_status()
        self.seen = 0
        self.by_user.clear()

    async def poll(self) -> None:
        try:
            while True:
                await self._poll_once()
                await asyncio.sleep(POLL_EVERY)
        except Exception as exc:  # wake every waiting user: the run cannot go on
            for _, future in self.waiting.values():
                if not future.done():
                    future.set_exception(RuntimeError(f"polling the stand-in failed: {exc!r}"))
            raise

    async def _poll_once(self) -> None:
        params = {"since": str(self.seen)}
        async with self.http.get(f"{self.base}/_control/sends", params=params) as r:
            r.raise_for_status()
            sends: list[dict[str, Any]] = await r.json()
        self.seen += len(sends)
        for send in sends:
            user = int(send["chat_id"])
            got = self.by_user.setdefault(user, [])
            got.append(Reply(float(send["at"]), str(send["text"])))
            waiter = self.waiting.get(user)
            if waiter is not None and len(got) >= waiter[0] and not waiter[1].done():
                waiter[1].set_result(None)

    async def wait(self, user: int, count: int) -> Reply:
        """The user's ``count``-th reply (1-based), once the stand-in has recorded it."""
        got = self.by_user.setdefault(user, [])
        if len(got) < count:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self.waiting[user] = (count, future)
            try:
                async with asyncio.timeout(REPLY_PATIENCE):
                    await future
            except TimeoutError:
                raise TimeoutError(
                    f"user {user}: reply {count} not recorded within {REPLY_PATIENCE:g} s "
                    f"(has {len(got)})"
                ) from None
            finally:
                del self.waiting[user]
        return got[count - 1]


@dataclass(eq=False)
class Connection:
    session: aiohttp.ClientSession
    worker: int = -1
    requests: int = 0


class Delivery:
    """Telegram's side of the webhook: a pool of keep-alive connections, LRU first."""

    def __init__(self, url: str, size: int):
        self.url = url
        self.size = size
        self.free: asyncio.Queue[Connection] = asyncio.Queue()
        self.all: list[Connection] = []
        self.errors = 0
        #: Messages, and those that reached the same worker as the user's previous one.
        self.followed = 0
        self.same_worker = 0

    async def open(self) -> None:
        for _ in range(self.size):
            connector = aiohttp.TCPConnector(limit=1, keepalive_timeout=3600)
            conn = Connection(aiohttp.ClientSession(connector=connector))
            conn.worker = await self.worker_of(conn)
            self.all.append(conn)
            self.free.put_nowait(conn)

    async def worker_of(self, conn: Connection) -> int:
        async with conn.session.get(f"{self.url}/healthz") as r:
            return int((await r.json())["worker"])

    async def moved(self) -> int:
        """Connections that now reach another worker than at the start (reconnected)."""
        return sum([await self.worker_of(c) != c.worker for c in self.all])

    async def close(self) -> None:
        for conn in self.all:
            await conn.session.close()

    def reset_counts(self) -> None:
        self.followed = self.same_worker = 0
        for conn in self.all:
            conn.requests = 0

    async def post(self, update: dict[str, Any], previous: int | None) -> int:
        """Deliver ``update``; returns the worker that got it. ``previous``: the worker that
        got the same user's previous message."""
        conn = await self.free.get()
        try:
            async with conn.session.post(
                f"{self.url}/telegram/webhook",
                json=update,
                headers={"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET},
            ) as r:
                await r.read()
                if r.status != 200:
                    self.errors += 1
            conn.requests += 1
            if previous is not None:
                self.followed += 1
                self.same_worker += previous == conn.worker
            return conn.worker
        finally:
            self.free.put_nowait(conn)

    def per_worker(self, workers: int) -> tuple[list[int], list[float]]:
        connections = [0] * workers
        requests = [0] * workers
        for conn in self.all:
            connections[conn.worker] += 1
            requests[conn.worker] += conn.requests
        total = sum(requests) or 1
        return connections, [r / total for r in requests]


@dataclass(slots=True)
class Sent:
    text: str
    sent_at: float
    acked_at: float
    reply: Reply


class User:
    def __init__(self, uid: int, delivery: Delivery, replies: Replies):
        self.uid = uid
        self.delivery = delivery
        self.replies = replies
        self.expected = 0
        self.timed = 0  # messages of the script sent, for the alternation
        self.worker: int | None = None  # the worker that got the previous message

    async def say(self, text: str, replies: int = 1, sent_at: float | None = None) -> Sent:
        start = time.monotonic() if sent_at is None else sent_at
        update = make_text_update(self.uid, text)
        update["update_id"] = next(_update_ids)
        self.expected += replies
        self.worker = await self.delivery.post(update, self.worker)
        acked = time.monotonic()
        reply = await self.replies.wait(self.uid, self.expected)
        return Sent(text, start, acked, reply)

    async def step(self, sent_at: float | None = None) -> Sent:
        text = SCRIPT[self.timed % 2]
        self.timed += 1
        return await self.say(text, sent_at=sent_at)


async def wait_for_workers(url: str, workers: int, proc: subprocess.Popen[bytes]) -> None:
    """Until every worker answers /healthz (fresh connections land on random workers)."""
    seen: set[int] = set()
    deadline = time.monotonic() + 90
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as http:
        while len(seen) < workers:
            if proc.poll() is not None:
                raise RuntimeError(f"the bot exited ({proc.returncode}) while starting")
            if time.monotonic() > deadline:
                raise TimeoutError(f"only workers {sorted(seen)} of {workers} answered")
            try:
                async with http.get(f"{url}/healthz") as r:
                    seen.add(int((await r.json())["worker"]))
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)


def odd_replies(sends: list[Sent]) -> int:
    """Replies that differ from the usual reply to the same message."""
    by_text: dict[str, Counter[str]] = {}
    for sent in sends:
        by_text.setdefault(sent.text, Counter())[sent.reply.text] += 1
    return sum(c.total() - c.most_common(1)[0][1] for c in by_text.values())


@dataclass
class Window:
    """What the capacity window measured besides the replies."""

    cpu: dict[str, float] = field(default_factory=dict)
    pg_connections: int | None = None
    #: Sessions opened on the bench's database and write transactions on the server during
    #: the window.
    pg_counts: tuple[int, int] | None = None


async def pg_counts(pg: tuple[str, str] | None) -> tuple[int, int] | None:
    """Sessions opened on the bench's database so far (cumulative statistics, which busy
    backends report about once a second: fine for a rate over several seconds), and the
    server's next transaction id (exact; only transactions that write or lock rows take
    one -- on the whole server, so another program's writes would count too)."""
    if pg is None:
        return None
    admin, name = pg
    conn = await asyncpg.connect(admin)
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT sessions FROM pg_stat_database WHERE datname = $1),"
            " pg_snapshot_xmax(pg_current_snapshot())::text::bigint",
            name,
        )
    except asyncpg.PostgresError:  # sessions: PostgreSQL 14 and later
        return None
    finally:
        await conn.close()
    return (int(row[0]), int(row[1]))


async def capacity(
    users: list[User], seconds: float, roots: Roots, pg: tuple[str, str] | None
) -> tuple[float, list[Sent], Window]:
    """Closed loop: every user sends its next message as soon as its reply is in."""
    t0 = time.monotonic() + RAMP
    t1 = t0 + seconds
    sends: list[Sent] = []

    async def loop(user: User) -> None:
        while time.monotonic() < t1:
            sends.append(await user.step())

    async def watch() -> Window:
        window = Window()
        await asyncio.sleep(t0 - time.monotonic())
        before = CpuSnapshot.take(roots)
        counts = await pg_counts(pg)
        await asyncio.sleep(seconds / 2)
        if pg is not None:
            admin, name = pg
            sql = "SELECT count(*) FROM pg_stat_activity WHERE datname = $1"
            window.pg_connections = int(await pg_value(admin, sql, name))
        await asyncio.sleep(t1 - time.monotonic())
        window.cpu = CpuSnapshot.take(roots).cores_since(before)
        now = await pg_counts(pg)
        if counts is not None and now is not None:
            window.pg_counts = (now[0] - counts[0], now[1] - counts[1])
        return window

    watcher = asyncio.create_task(watch())
    await asyncio.gather(*(loop(u) for u in users))
    window = await watcher
    done = sum(1 for s in sends if t0 <= s.reply.at < t1)
    timed = [s for s in sends if t0 <= s.sent_at < t1]
    return done / seconds, timed, window


async def fixed_rate(
    users: list[User], rate: float, count: int, roots: Roots
) -> tuple[list[Sent], float, dict[str, float]]:
    """``count`` messages at ``rate``/s, round-robin over the users, each user in order.
    Returns them, the rate achieved and the CPU used meanwhile."""
    start = time.monotonic() + 0.2
    plan: dict[int, list[float]] = {}
    for i in range(count):
        plan.setdefault(i % len(users), []).append(start + i / rate)
    sends: list[Sent] = []

    async def run(user: User, times: list[float]) -> None:
        for at in times:
            delay = at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            sends.append(await user.step(sent_at=at))

    await asyncio.sleep(start - time.monotonic())
    before = CpuSnapshot.take(roots)
    await asyncio.gather(*(run(users[i], times) for i, times in plan.items()))
    after = CpuSnapshot.take(roots)
    return sends, count / (after.at - before.at), after.cores_since(before)


def ms(sends: list[Sent], q: float) -> float:
    return pct([(s.reply.at - s.sent_at) * 1000 for s in sends], q)


async def measure(
    backend: str,
    workers: int,
    database_url: str,
    pg: tuple[str, str] | None,
    env: dict[str, str],
    stand_in_proc: subprocess.Popen[bytes],
    api_base: str,
    args: argparse.Namespace,
    tmp: Path,
) -> Result:
    result = Result(backend, workers)
    port = free_port()
    bot_env = {
        **env,
        "PORT": str(port),
        "DATABASE_URL": database_url,
        "TELEGRAM_API_BASE_URL": f"{api_base}/bot",
    }
    log_path = tmp / f"{backend}-{workers}-{uuid.uuid4().hex[:6]}.log"
    url = f"http://127.0.0.1:{port}"
    with bot_process(workers, bot_env, log_path) as proc:
        await wait_for_workers(url, workers, proc)
        async with aiohttp.ClientSession() as control:
            replies = Replies(control, api_base)
            await replies.reset()
            poller = asyncio.create_task(replies.poll())
            delivery = Delivery(url, args.connections)
            try:
                await delivery.open()
                users = [User(USER_BASE + i, delivery, replies) for i in range(args.users)]
                await asyncio.gather(*(u.say("/start", START_REPLIES) for u in users))
                delivery.reset_counts()
                roots = Roots(proc.pid, stand_in_proc.pid, pg[1] if pg else None)
                rate, timed, window = await capacity(users, args.seconds, roots, pg)
                result.rate = rate
                result.cap_p50, result.cap_p99 = ms(timed, 0.5), ms(timed, 0.99)
                result.cpu = window.cpu
                result.pg_connections = window.pg_connections
                result.pg_counts = window.pg_counts
                result.connections, result.share = delivery.per_worker(workers)
                result.same_worker = delivery.same_worker / max(1, delivery.followed)
                paced, result.fixed_rate, result.fixed_cpu = await fixed_rate(
                    users, args.rate, args.latency_updates, roots
                )
                result.p50, result.p99 = ms(paced, 0.5), ms(paced, 0.99)
                acks = [(s.acked_at - s.sent_at) * 1000 for s in paced]
                result.ack_p50 = pct(acks, 0.5)
                result.odd_replies = odd_replies(timed) + odd_replies(paced)
                result.moved = await delivery.moved()
                result.errors = delivery.errors
            finally:
                poller.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poller
                await delivery.close()
    lines = log_path.read_text(errors="replace").splitlines()
    noisy = [x for x in lines if re.search(r"WARNING|ERROR|CRITICAL|Traceback", x)]
    result.log_warnings = len(noisy)
    result.log_sample = noisy[0][:160] if noisy else ""
    return result


# --------------------------------------------------------------------------- the run


def base_env(config: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TELEGRAM_", "ZALO_", "BOT_", "DATABASE_URL"))
    }
    env.update(
        PYTHONPATH=str(ROOT),
        HOST="127.0.0.1",
        BOT_CONFIG=str(config),
        BOT_ID_SECRET=ID_SECRET,
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_WEBHOOK_SECRET=WEBHOOK_SECRET,
        TELEGRAM_RATE_LIMITER="off",
        LOG_LEVEL="WARNING",
    )
    return env


def median_result(rounds: list[Result]) -> Result:
    """Each figure's median over the rounds (per-worker shares from the median round)."""
    mid = sorted(rounds, key=lambda r: r.rate)[len(rounds) // 2]

    def med(get: str) -> float:
        return statistics.median(float(getattr(r, get)) for r in rounds)

    cpu_keys = mid.cpu.keys()
    return Result(
        mid.backend,
        mid.workers,
        rate=med("rate"),
        p50=med("p50"),
        p99=med("p99"),
        cap_p50=med("cap_p50"),
        cap_p99=med("cap_p99"),
        ack_p50=med("ack_p50"),
        connections=mid.connections,
        share=mid.share,
        cpu={k: statistics.median(r.cpu.get(k, 0.0) for r in rounds) for k in cpu_keys},
        pg_connections=mid.pg_connections,
        pg_counts=mid.pg_counts,
        same_worker=med("same_worker"),
        fixed_rate=med("fixed_rate"),
        fixed_cpu={
            k: statistics.median(r.fixed_cpu.get(k, 0.0) for r in rounds) for k in mid.fixed_cpu
        },
        odd_replies=sum(r.odd_replies for r in rounds),
        errors=sum(r.errors for r in rounds),
        moved=sum(r.moved for r in rounds),
        log_warnings=sum(r.log_warnings for r in rounds),
        log_sample=next((r.log_sample for r in rounds if r.log_sample), ""),
    )


def per_update(cpu: dict[str, float], rate: float) -> str:
    """Milliseconds of CPU the bot and PostgreSQL spent per update."""
    if not rate:
        return "-"
    bot = cpu.get("bot", 0.0) / rate * 1000
    pg = cpu.get("postgres", 0.0) / rate * 1000
    return f"{bot:.2f} + {pg:.2f}"


def report(results: dict[str, list[Result]], args: argparse.Namespace, pg_info: str) -> None:
    best = {name: median_result(rs) for name, rs in results.items()}
    cores = os.cpu_count() or 0
    print()
    print(
        f"{cores} cores shared by the bot's workers, PostgreSQL, the stand-in and this driver; "
        f"{args.users} users, {args.connections} delivery connections, "
        f"{args.seconds:g} s window, latency at {args.rate:g} updates/s "
        f"({args.latency_updates} updates), {args.rounds} round(s)"
        + (" (medians)" if args.rounds > 1 else "")
    )
    print(f"PostgreSQL: {pg_info}")
    print(f"other programs used {args.background:.2f} cores just before the run")
    print()
    head = (
        f"{'backend':<10}{'workers':>8}{'updates/s':>11}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'cap p50':>9}{'cap p99':>9}   rounds (updates/s)"
    )
    print(head)
    print("-" * len(head))
    for name, r in best.items():
        spread = ", ".join(f"{x.rate:.0f}" for x in results[name])
        over = "  (over capacity)" if r.rate < args.rate * 1.05 else ""
        print(
            f"{r.backend:<10}{r.workers:>8}{r.rate:>11.0f}{r.p50:>9.1f}{r.p99:>9.1f}"
            f"{r.cap_p50:>9.0f}{r.cap_p99:>9.0f}   {spread}{over}"
        )
    print()
    print(
        "p50/p99: latency at the fixed rate (scheduled send -> reply at the stand-in); "
        "cap p50/p99: in the closed loop at capacity (about users / updates/s, Little's law)."
    )
    print()
    print("Where the CPU went, in cores (1.00 = one core all the time), and per update:")
    print(
        f"{'config':<10}{'at capacity: bot / pg / stand-in / driver / other = total':<60}"
        f"{'bot+pg ms/update':>18}{'same at fixed rate':>20}"
    )
    for name, r in best.items():
        cpu = " / ".join(f"{r.cpu.get(k, 0.0):.2f}" for k in CPU_GROUPS)
        cpu += f" = {r.cpu.get('total', 0.0):.2f}"
        print(
            f"{name:<10}{cpu:<60}{per_update(r.cpu, r.rate):>18}"
            f"{per_update(r.fixed_cpu, r.fixed_rate):>20}"
        )
    print()
    print("Workers and database (at capacity; ack p50: send -> webhook 200 at the fixed rate):")
    print(
        f"{'config':<10}{'conns per worker':<20}{'requests per worker':<26}{'same worker':>12}"
        f"{'pg conns':>9}{'new/s':>7}{'writes/update':>15}{'ack p50 ms':>12}"
    )
    for name, r in best.items():
        conns = "/".join(str(c) for c in r.connections)
        share = "/".join(f"{s:.0%}" for s in r.share)
        pg_conns = opened = writes = "-"
        if r.pg_connections is not None:
            pg_conns = str(r.pg_connections)
        if r.pg_counts is not None:
            sessions, xids = r.pg_counts
            opened = f"{sessions / args.seconds:.0f}"
            writes = f"{xids / max(1.0, r.rate * args.seconds):.2f}"
        print(
            f"{name:<10}{conns:<20}{share:<26}{r.same_worker:>12.0%}{pg_conns:>9}{opened:>7}{writes:>15}"
            f"{r.ack_p50:>12.1f}"
        )
    problems = [
        f"{name}: {r.errors} non-200 webhook answers, {r.odd_replies} odd replies, "
        f"{r.moved} connections moved, {r.log_warnings} warnings in the bot's log"
        + (f" (first: {r.log_sample})" if r.log_sample else "")
        for name, r in best.items()
        if r.errors or r.odd_replies or r.moved or r.log_warnings
    ]
    busy = max([args.background, *(r.cpu.get("other", 0.0) for r in best.values())])
    if busy > 0.25:
        problems.append(
            f"WARNING: other programs used up to {busy:.2f} of {cores} cores (column 'other'): "
            "the figures understate this machine"
        )
    print()
    print("\n".join(problems) if problems else "no errors, odd replies or log warnings")
    figures: dict[str, str] = {}
    for name, r in best.items():
        figures[name] = f"{r.rate:.0f}"
    for name, r in best.items():
        figures[f"p99_ms_{name}"] = f"{r.p99:.1f}"
    if "pg_1" in best:
        one = best["pg_1"].rate
        for r in best.values():
            if r.backend == "pg" and r.workers > 1:
                figures[f"scaling_{r.workers}"] = f"{r.rate / one:.2f}"
        scaling = [(k.split("_")[1], v) for k, v in figures.items() if k.startswith("scaling_")]
        if scaling:
            print(
                "scaling on PostgreSQL (updates/s of N workers / 1 worker): "
                + ", ".join(f"{n} workers {v}" for n, v in scaling)
                + f" -- on {cores} cores shared with PostgreSQL, the stand-in and the driver"
            )
    print()
    print(" ".join(f"{k}={v}" for k, v in figures.items()))


async def background_load(seconds: float = 1.0) -> float:
    """Cores busy before the bench starts anything (other programs on the machine)."""
    before = (time.monotonic(), machine_busy())
    await asyncio.sleep(seconds)
    return (machine_busy() - before[1]) / (time.monotonic() - before[0])


async def main_async(args: argparse.Namespace) -> None:
    admin = postgres_admin_url()
    args.background = await background_load()
    settings = []
    for key in ("server_version", "max_connections", "fsync", "synchronous_commit"):
        settings.append(f"{key}={await pg_value(admin, f'SHOW {key}')}")
    pg_info = f"{make_url(admin).render_as_string(hide_password=True)} " + " ".join(settings)
    configs = [("sqlite", 1)] if not args.no_sqlite else []
    configs += [("pg", n) for n in args.workers]
    results: dict[str, list[Result]] = {f"{b}_{n}": [] for b, n in configs}
    api_port = free_port()
    api_base = f"http://127.0.0.1:{api_port}"
    with tempfile.TemporaryDirectory(prefix="load-") as tmp_name:
        tmp = Path(tmp_name)
        env = base_env(unthrottled_config(tmp / "config.toml"))
        with stand_in(api_port, {**os.environ, "PYTHONPATH": str(ROOT)}) as api_proc:
            for round_ in range(args.rounds):
                for backend, workers in configs:
                    began = time.monotonic()
                    if backend == "sqlite":
                        url = f"sqlite:///{tmp}/load-{round_}.db"
                        result = await measure(
                            backend, workers, url, None, env, api_proc, api_base, args, tmp
                        )
                    else:
                        async with fresh_database(admin) as (url, name):
                            result = await measure(
                                backend,
                                workers,
                                url,
                                (admin, name),
                                env,
                                api_proc,
                                api_base,
                                args,
                                tmp,
                            )
                    results[result.name].append(result)
                    print(
                        f"round {round_ + 1}: {result.name:<9} {result.rate:7.0f} updates/s  "
                        f"p99 {result.p99:6.1f} ms  requests per worker "
                        f"{'/'.join(f'{s:.0%}' for s in result.share)}  "
                        f"({time.monotonic() - began:.1f} s)",
                        flush=True,
                    )
    report(results, args, pg_info)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small run (well under a minute)")
    parser.add_argument("--users", type=int, default=None, help="concurrent users (M)")
    parser.add_argument("--connections", type=int, default=64, help="delivery connections")
    parser.add_argument("--seconds", type=float, default=None, help="capacity window (s)")
    parser.add_argument("--rate", type=float, default=None, help="latency phase updates/s")
    parser.add_argument("--rounds", type=int, default=None, help="repeat; medians are shown")
    parser.add_argument(
        "--workers",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1, 2, 4],
        help="PostgreSQL worker counts (default 1,2,4)",
    )
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite reference")
    args = parser.parse_args()
    args.users = args.users or (200 if args.quick else 400)
    args.seconds = args.seconds or (2.5 if args.quick else 10.0)
    args.rate = args.rate or 200.0
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.latency_updates = int(args.rate * (1.5 if args.quick else 8.0))
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
