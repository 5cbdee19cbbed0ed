"""Memory: RSS of one worker with 1,000 vs 100,000 stored users (target flat, < 150 MB).

Method. Two SQLite databases are made by the bot's own migrations (``python -m bot migrate``)
and bulk-loaded with plain sqlite3: one with 1,000 stored users, one with 100,000 (``--quick``:
20,000). A stored user is what the bot itself leaves behind: a ``sessions`` row, their
``events`` and ``reached`` rows and, for about 30 %, a ``completions`` row. These rows are
not invented: a few hundred conversations are first played through the real engine
(``bot.engine.Engine``, config.toml and content/vi) -- random walks through the menu, the
readiness check, the provider and phone pickers, the install steps with their "stuck" and
"why" views, FAQ questions, and, for completers, the report with consent, village and
provider -- and each stored user is one of these conversations, shifted to a random day of
the last four months, under the keyed hash (``bot.identity.UserRefs``) of the Telegram user
id the benchmark later writes as.

Then, for each database in turn, one worker (``python -m bot run``, long polling the local
Bot API stand-in tests/fakes/telegram_api.py, a separate process) is started on it and driven
with the same number of text updates (20,000; ``--quick``: 10,000), in rounds, a bounded
number in flight. On the large database every update comes from a different stored user,
spread over the whole population (user ``k * 7919 mod N``): at least as many users as the
session cache (storage/repository.py, CACHE_SIZE) and the flood limiter (handlers/limits.py)
hold, so both fill to their caps (and, in the full run, evict). On the small database the
same volume comes from its 1,000 users, each several times (at most the configured messages
per minute, so the flood limit never answers). Every update is "menu" (back to the menu,
from any screen) or, for a user's next message, "2" (the menu's second option): each gets
exactly one reply, and the run waits for all of them, then checks that every driven user was
answered. No staff command is sent.

The worker's memory is read from /proc/<pid>/status: VmRSS (resident now) after start-up and
after each round, VmHWM (the peak resident size over the worker's life) and RssAnon (the
heap part of VmRSS: the rest is shared-library pages, which vary by several MB from one
moment to the next with what the OS has cached, through fault-around). Reported: both runs,
the ratio large/small of the final RSS, the peaks and the anonymous parts.

Reading it: what a worker holds per user is bounded by the users it has *served*, not by the
users stored -- the database is read one row at a time and SQLite's page cache is fixed.
Three things grow with users served (measured with tracemalloc): the session cache, about
1 KB a session, up to CACHE_SIZE; the flood limiter, about 0.9 KB a user (an empty deque
alone is 760 bytes), up to its 10,000 users; and python-telegram-bot's
``Application._chat_ids/_user_ids_to_be_updated_in_persistence`` sets, which every update
adds its chat and user id to and which are only emptied when a persistence is configured
(this bot has none): 100-200 bytes per distinct user since start, with no cap.

Usage: python bench/memory.py [--quick] [--users-small N] [--users-large N] [--updates N]
[--rounds R]
Last line: ``rss_small_mb=.. rss_large_mb=.. ratio=.. peak_small_mb=.. peak_large_mb=..
anon_small_mb=.. anon_large_mb=.. users_small=.. users_large=.. updates=.. distinct_large=..``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import StandInControl, free_port  # noqa: E402
from bot.config import load_config  # noqa: E402
from bot.content import load_content  # noqa: E402
from bot.engine import Engine  # noqa: E402
from bot.identity import UserRefs  # noqa: E402
from bot.model import Choice, Input, Reply, Start, State, Text  # noqa: E402
from storage.repository import CACHE_SIZE, funnel_stage  # noqa: E402
from tests.fakes.telegram_api import make_text_update  # noqa: E402

TOKEN = "123:BENCH"
SECRET = "bench-memory-secret-0123456789"
CHANNEL = "telegram"
USER_BASE = 900_000_000
#: Spreads the driven users over the whole stored population (coprime with 10^k).
STRIDE = 7919
#: Share of stored users who reported their completion.
COMPLETED_SHARE = 0.3
#: Conversations played through the engine; stored users are copies of them.
TEMPLATES = 400
#: Updates enqueued at a time, and at most this many waiting for their reply.
CHUNK = 500
IN_FLIGHT = 1500
#: Options a random walk goes for, in this order (the rest are detours).
FORWARD = (
    "resume", "install", "ok", "yes", "helper", "start", "android", "iphone", "done",
    "stuck_done", "why_back", "next", "menu",
)  # fmt: skip
#: Options a walk never takes (they delete what it built).
AVOID = frozenset({"erase", "delete", "withdraw", "restart"})
QUESTIONS = (
    "có mất tiền không?",
    "chữ ký số có an toàn không",
    "cài mất bao lâu",
    "quên mã pin thì làm sao",
    "người già có cài được không",
    "thời tiết hôm nay thế nào",
)
REFERENCE = datetime(2026, 1, 1, tzinfo=UTC)
MB = 1024 * 1024


# --- stored users: conversations played through the real engine ------------------------------


@dataclass(frozen=True, slots=True)
class StoredConversation:
    """What the bot stores for one user after one conversation, times relative to its start."""

    state: dict[str, Any]  # State.to_json() at REFERENCE
    saves: int
    span: float
    events: tuple[tuple[float, str, str | None, str | None, str | None], ...]
    stages: tuple[tuple[str, float], ...]
    completion: tuple[float, Mapping[str, str]] | None


def _plain(option_id: str) -> str:
    """An option id without the engine's prefix for options valid on any screen."""
    return option_id.removeprefix("g:")


def _next_input(reply: Reply, rng: random.Random, detour: float) -> Input:
    """What a citizen might do next on the screen ``reply`` shows."""
    shown = [m for m in reply.messages if m.options]
    if not shown or rng.random() < 0.05:
        return Text(rng.choice(QUESTIONS) if shown else "menu")
    message = shown[-1]
    options = [o for o in message.options if _plain(o.id) not in AVOID]
    if not options:
        return Text("menu")
    if rng.random() < detour:
        return Choice(rng.choice(options).id, message.screen)
    items = [o for o in options if o.id.startswith("i:") and o.id != "i:unknown"]
    if items:
        return Choice(rng.choice(items).id, message.screen)
    ranked = sorted(
        (o for o in options if _plain(o.id) in FORWARD), key=lambda o: FORWARD.index(_plain(o.id))
    )
    chosen = ranked[0] if ranked else rng.choice(options)
    return Choice(chosen.id, message.screen)


def play(engine: Engine, rng: random.Random, *, complete: bool) -> StoredConversation | None:
    """One conversation: to the completion report (``complete``) or a few screens in."""
    state, now, offset = State(), REFERENCE, 0.0
    event: Input = Start(None)
    events: list[tuple[float, str, str | None, str | None, str | None]] = []
    stages: dict[str, float] = {}
    completion: tuple[float, Mapping[str, str]] | None = None
    limit = 120 if complete else rng.randint(2, 9)
    saves, span = 0, 0.0
    for _ in range(limit):
        reply = engine.advance(state, event, now)
        if reply.erase:
            return None
        state, saves, span = reply.state, saves + 1, offset
        for e in reply.events:
            data = json.dumps(dict(e.data), ensure_ascii=False) if e.data else None
            events.append((offset, e.kind, e.step, e.detail, data))
            stage = funnel_stage(e.kind, e.step, e.detail)
            if stage is not None:
                stages.setdefault(stage, offset)
            if e.kind == "completed" and e.data:
                completion = (offset, dict(e.data))
            elif e.kind == "consent_withdrawn":
                completion = None
        if complete and completion is not None:
            break
        event = _next_input(reply, rng, 0.1 if complete else 0.25)
        gap = rng.uniform(5.0, 120.0)
        offset += gap
        now += timedelta(seconds=gap)
    if (completion is not None) != complete:
        return None
    return StoredConversation(
        state.to_json(), saves, span, tuple(events), tuple(stages.items()), completion
    )


def conversations(
    engine: Engine, count: int, seed: int = 11
) -> dict[bool, list[StoredConversation]]:
    """``count`` conversations, COMPLETED_SHARE of them ending in a completion report."""
    rng = random.Random(seed)
    pools: dict[bool, list[StoredConversation]] = {True: [], False: []}
    completers = max(1, round(count * COMPLETED_SHARE))
    wanted = {True: completers, False: max(1, count - completers)}
    for complete in (True, False):
        for _ in range(50 * count):
            if len(pools[complete]) == wanted[complete]:
                break
            played = play(engine, rng, complete=complete)
            if played is not None:
                pools[complete].append(played)
        else:
            raise RuntimeError("the engine's conversations no longer reach a completion report")
    return pools


def _stamp(moment: datetime) -> str:
    """A timestamp as the bot's writes store it in SQLite (str() of an aware datetime)."""
    return moment.isoformat(" ")


def _shift_iso(value: str | None, delta: timedelta) -> str | None:
    return (datetime.fromisoformat(value) + delta).isoformat() if value else None


def _state_json(conv: StoredConversation, delta: timedelta) -> str:
    state = dict(conv.state)
    state["last_at"] = _shift_iso(state["last_at"], delta)
    answers = dict(state["answers"])
    for key in ("consent_at", "completed_at"):
        if key in answers:
            answers[key] = _shift_iso(answers[key], delta)
    state["answers"] = answers
    return json.dumps(state, ensure_ascii=False, separators=(",", ":"))


@dataclass
class Seeded:
    users: int = 0
    events: int = 0
    reached: int = 0
    completions: int = 0
    seconds: float = 0.0
    megabytes: float = 0.0


def user_id(index: int) -> int:
    return USER_BASE + index


def seed(
    path: Path, users: int, pools: dict[bool, list[StoredConversation]], commune: str
) -> Seeded:
    """Bulk-insert ``users`` stored users into a migrated database (set-up, not measured)."""
    t0 = time.monotonic()
    rng = random.Random(users)
    refs = UserRefs(SECRET.encode())
    now = datetime.now(UTC)
    out = Seeded(users=users)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    for first in range(0, users, 10_000):
        sessions, events, reached, completions = [], [], [], []
        for index in range(first, min(users, first + 10_000)):
            ref = refs.ref(CHANNEL, user_id(index))
            conv = rng.choice(pools[rng.random() < COMPLETED_SHARE])
            start = now - timedelta(days=rng.uniform(1.0, 120.0))
            delta = start - REFERENCE
            state = _state_json(conv, delta)
            sessions.append(
                (CHANNEL, ref, conv.state["step"], state, conv.saves, conv.state["stopped"],
                 _stamp(start), _stamp(start + timedelta(seconds=conv.span)))
            )  # fmt: skip
            for offset, kind, step, detail, data in conv.events:
                at = _stamp(start + timedelta(seconds=offset))
                events.append((at, CHANNEL, ref, kind, step, detail, data, commune))
            for stage, offset in conv.stages:
                at = _stamp(start + timedelta(seconds=offset))
                reached.append((CHANNEL, ref, stage, commune, at))
            if conv.completion is not None:
                offset, report = conv.completion
                at = _stamp(start + timedelta(seconds=offset))
                completions.append(
                    (CHANNEL, ref, report["commune"], report["village"], report["provider"],
                     report["lives_here"] == "yes", report.get("source", "self"),
                     report.get("referral"), at, at)
                )  # fmt: skip
        conn.executemany(
            "INSERT INTO sessions (channel, user_ref, step, state, version, stopped, created_at,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            sessions,
        )
        conn.executemany(
            "INSERT INTO events (at, channel, user_ref, kind, step, detail, data, commune)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            events,
        )
        conn.executemany(
            "INSERT INTO reached (channel, user_ref, stage, commune, at) VALUES (?, ?, ?, ?, ?)",
            reached,
        )
        conn.executemany(
            "INSERT INTO completions (channel, user_ref, commune, village, provider, lives_here,"
            " source, referral, completed_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            completions,
        )
        out.events += len(events)
        out.reached += len(reached)
        out.completions += len(completions)
    conn.execute("COMMIT")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    out.seconds = time.monotonic() - t0
    out.megabytes = path.stat().st_size / MB
    return out


# --- the processes ------------------------------------------------------------------------------


@contextlib.contextmanager
def process(
    args: list[str], env: dict[str, str], ready: str | None = None, stderr: TextIO | None = None
) -> Iterator[subprocess.Popen[str]]:
    quiet = stderr if stderr is not None else subprocess.DEVNULL
    proc = subprocess.Popen(
        args,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE if ready is not None else quiet,
        stderr=quiet,
        text=True,
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


def memory(pid: int) -> dict[str, float]:
    """VmRSS, VmHWM and RssAnon of a process, in MB (Linux)."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM", "RssAnon"):
            values[name] = int(rest.split()[0]) / 1024
    return values


# --- one measured run ---------------------------------------------------------------------------


@dataclass
class Run:
    label: str
    stored: int
    updates: int
    distinct: int = 0
    seconds: float = 0.0
    start_mb: float = 0.0
    start_anon_mb: float = 0.0
    rounds_mb: list[float] = field(default_factory=list)
    rss_mb: float = 0.0
    anon_mb: float = 0.0
    peak_mb: float = 0.0
    log_lines: int = 0


def traffic(stored: int, updates: int) -> Iterator[tuple[int, str]]:
    """(user index, text) of each update: users spread over all ``stored``, in turn; each
    user's messages alternate "menu" and "2" (the menu's second option)."""
    for i in range(updates):
        turn, position = divmod(i, stored)
        yield (position * STRIDE) % stored, ("menu", "2")[turn % 2]


async def drive(
    server: StandInControl, stored: int, updates: int, rounds: int, pid: int, run: Run
) -> None:
    plan = list(traffic(stored, updates))
    run.distinct = len({user for user, _ in plan})
    per_round = -(-updates // rounds)
    sent = 0
    t0 = time.monotonic()
    for first in range(0, updates, per_round):
        for chunk_start in range(first, min(updates, first + per_round), CHUNK):
            chunk = plan[chunk_start : min(first + per_round, chunk_start + CHUNK)]
            await server.wait_replies(sent - IN_FLIGHT)
            await server.enqueue([make_text_update(user_id(u), text) for u, text in chunk])
            sent += len(chunk)
        await server.wait_replies(sent)
        run.rounds_mb.append(memory(pid)["VmRSS"])
    run.seconds = time.monotonic() - t0
    await asyncio.sleep(0.5)  # nothing more may come: exactly one reply per update
    answered = await server.sends(0)
    if len(answered) != updates:
        raise RuntimeError(f"{len(answered)} replies to {updates} updates")
    chats = {int(s["chat_id"]) for s in answered}
    if chats != {user_id(u) for u, _ in plan}:
        raise RuntimeError("some users got no reply")


async def measure(
    label: str, db: Path, stored: int, args: argparse.Namespace, port: int, tmp: Path
) -> Run:
    run = Run(label, stored, args.updates)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE_URL": f"http://127.0.0.1:{port}/bot",
        "DATABASE_URL": f"sqlite:///{db}",
        "BOT_ID_SECRET": SECRET,
        "LOG_LEVEL": "WARNING",
        "TELEGRAM_RATE_LIMITER": "off",
    }
    log_path = tmp / f"{label}.log"
    async with aiohttp.ClientSession() as session:
        server = StandInControl(session, port)
        await server.reset()
        with (
            log_path.open("w") as log,
            process([sys.executable, "-m", "bot", "run"], env, stderr=log) as worker,
        ):
            # Started: getMe, setMyCommands, deleteWebhook, then the first long poll.
            deadline = time.monotonic() + 60
            while int((await server.stats())["calls"]) < 4:
                if worker.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the worker did not start: see {log_path.read_text()}")
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)
            started = memory(worker.pid)
            run.start_mb, run.start_anon_mb = started["VmRSS"], started["RssAnon"]
            await drive(server, stored, args.updates, args.rounds, worker.pid, run)
            final = memory(worker.pid)
            run.rss_mb, run.anon_mb, run.peak_mb = final["VmRSS"], final["RssAnon"], final["VmHWM"]
    run.log_lines = len(log_path.read_text().splitlines())
    return run


def migrate(db: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": f"sqlite:///{db}"}
    subprocess.run(
        [sys.executable, "-m", "bot", "migrate"],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def main_async(args: argparse.Namespace) -> None:
    t0 = time.monotonic()
    config = load_config(ROOT / "config.toml")
    engine = Engine(load_content(config.locale), config)
    pools = conversations(engine, TEMPLATES)
    commune = config.communes[0].code
    port = free_port()
    server_cmd = [sys.executable, "-m", "tests.fakes.telegram_api", "--port", str(port)]
    server_cmd += ["--token", TOKEN]
    runs: list[tuple[Seeded, Run]] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp_name,
        process(server_cmd, {**os.environ, "PYTHONPATH": str(ROOT)}, ready="listening"),
    ):
        tmp = Path(tmp_name)
        for label, stored in (("small", args.users_small), ("large", args.users_large)):
            db = tmp / f"{label}.db"
            migrate(db)
            seeded = seed(db, stored, pools, commune)
            print(
                f"{label}: seeded {seeded.users:,} users, {seeded.events:,} events, "
                f"{seeded.reached:,} reached, {seeded.completions:,} completions "
                f"({seeded.megabytes:.0f} MB) in {seeded.seconds:.1f} s",
                flush=True,
            )
            runs.append((seeded, await measure(label, db, stored, args, port, tmp)))
            db.unlink()
    print(
        f"updates per run: {args.updates:,} in {args.rounds} rounds; session cache "
        f"{CACHE_SIZE:,} entries; elapsed {time.monotonic() - t0:.0f} s"
    )
    for seeded, run in runs:
        rounds = ", ".join(f"{mb:.1f}" for mb in run.rounds_mb)
        print(
            f"{run.label:>5}: {run.stored:>7,} stored users ({seeded.events / seeded.users:.0f} "
            f"events, {seeded.reached / seeded.users:.0f} stages each; "
            f"{seeded.completions / seeded.users:.0%} completed), {run.updates:,} updates from "
            f"{run.distinct:,} users in {run.seconds:.1f} s ({run.updates / run.seconds:.0f}/s)"
            f"\n       RSS {run.start_mb:.1f} MB after start (anonymous {run.start_anon_mb:.1f})"
            f" -> [{rounds}] after each round -> final {run.rss_mb:.1f} MB (anonymous "
            f"{run.anon_mb:.1f}), peak {run.peak_mb:.1f} MB"
            + (f"; {run.log_lines} log lines" if run.log_lines else "")
        )
    small, large = runs[0][1], runs[1][1]
    ratio = large.rss_mb / small.rss_mb
    verdict = "flat" if ratio < 1.1 else "NOT flat"
    target = "under" if max(small.peak_mb, large.peak_mb) < 150 else "OVER"
    print(f"large/small RSS: {ratio:.2f} ({verdict}); peak {target} 150 MB")
    print(
        f"rss_small_mb={small.rss_mb:.1f} rss_large_mb={large.rss_mb:.1f} ratio={ratio:.2f} "
        f"peak_small_mb={small.peak_mb:.1f} peak_large_mb={large.peak_mb:.1f} "
        f"anon_small_mb={small.anon_mb:.1f} anon_large_mb={large.anon_mb:.1f} "
        f"users_small={small.stored} users_large={large.stored} updates={args.updates} "
        f"distinct_large={large.distinct}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small run (well under a minute)")
    parser.add_argument("--users-small", type=int, default=1000, help="stored users, small DB")
    parser.add_argument("--users-large", type=int, default=None, help="stored users, large DB")
    parser.add_argument("--updates", type=int, default=None, help="updates per run")
    parser.add_argument("--rounds", type=int, default=None, help="RSS is read after each")
    args = parser.parse_args()
    args.users_large = args.users_large or (20_000 if args.quick else 100_000)
    args.updates = args.updates or (10_000 if args.quick else 20_000)
    args.rounds = args.rounds or (3 if args.quick else 4)
    limit = load_config(ROOT / "config.toml").messages_per_minute
    if args.updates > limit * args.users_small:
        parser.error(
            f"--updates {args.updates} would give each of the {args.users_small} small-run users "
            f"more than the flood limit ({limit} messages a minute): some would get no reply"
        )
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
