"""Crash safety: scripted conversations while the bot is SIGKILLed and restarted.

"Nothing is lost" (README) claims that each step is committed before its reply is sent,
that a redelivered update is applied once, and that a returning user is offered to continue
where they were. This bench checks the claim the hard way: N scripted citizens talk to the
real bot (``python -m bot run``, python-telegram-bot long polling, SQLite) through the local
Bot API stand-in (tests/fakes/telegram_api.py, a separate process that plays Telegram: it
survives the bot and delivers again every update whose offset the bot had not confirmed),
while a supervisor kills the bot with SIGKILL at K random moments and restarts it.

Method
------
- Two scripts, alternating between users, each ending in a reported completion: the whole
  install path (menu, readiness, VNPT SmartCA on Android, the reminder offer, the nine "Bước
  n/9" steps, consent, commune, village, residence, provider: about 20 messages) and the
  "already installed" report (menu, "Tôi đã cài xong", consent, commune, village, residence,
  provider: 7 messages). A script is what its user answers on each screen (``SCRIPTS``),
  typed as people do: option numbers and words ("vnpt", "xong", "đồng ý", "có").
- The path, and the exact text of every screen on it and of every answer to /start along
  it, come from walking the scripts through the bot's own engine (``bot.engine.Engine``, a
  pure function) in this process, so the bench follows content and flow edits (a new screen
  needs an answer in ``SCRIPTS``: the bench says so). Replies are recognised by exact text;
  one the engine never sends ends that user's run (counted). The per-user flood limit (20
  messages a minute) is raised in a temporary copy of config.toml: the bench compresses a
  quarter of an hour of a person's chat into a second or two.
- Users behave like people: each sends its next message only after the reply to the
  previous one has arrived (plus a short random pause), ``--users`` at a time.
- Kills fall at uniformly random points of the run's progress: K points drawn uniformly
  over the messages the scripts will send (progress rather than wall time, so no kill is
  spent while everybody waits), each plus a few milliseconds of jitter. They hit the bot
  while it fetches, processes, commits and replies; points close together give kills in
  quick succession, as in a crash loop. After each kill the bot is restarted after a random
  pause of up to ``--pause`` seconds; it is "up" again once a probe user's /start is
  answered.
- A user who waits ``--patience`` seconds (counted from when the bot is up again) without the
  expected reply after a kill does what the bot tells people to do: sends /start. A user in
  the middle of the flow then gets "Tiếp tục ở bước n/9 hay làm lại?" (or "Lần trước bạn
  đang ở phần …"), which names the step: the user judges it, types "tiếp tục" and goes on
  from the screen shown. A user whose last step was the menu gets "Chào bạn quay lại" and the
  menu; one who had just finished gets the same, taps "Tôi đã cài xong" and must read "Bạn
  đã báo cài xong ngày …" (the report is on record). If the answer to /start or to "tiếp
  tục" is lost too, the user sends /start again (at most 8 times in a row, then gives up).
  Wherever the bot puts them, users carry on with their script from that screen (from the
  menu: the script again), so their completion is still tested. Without any kill, a user
  waits 30 s before calling a reply lost.

Figures
-------
- ``lost``: users who saw their completion confirmed ("Đã ghi nhận!" or "Bạn đã báo cài xong")
  but have no row in ``completions``.
- ``doubled``: users with more than one ``completions`` row or more than one ``completed``
  event.
- ``not_resumed``: users put, after a kill, anywhere but the screen of their last committed
  step: either the screen before the message whose reply was lost (it was not committed) or
  the one after it (it was). Also counted: a greeting as for a new user when they had a
  session, and a reply that is not the screen the engine predicts. A user is counted once;
  after a misplacement they are driven to the end but no longer judged (the prediction
  need not hold for them: a user sent back to the menu who installs again has already
  agreed, so the last step leads past the consent question).
- ``wrong_final``: users whose ``sessions.step`` in the database is not the screen they last
  saw (where their script ended).
- ``resumes``: how often users had to ask (/start) because a reply did not come; the summary
  splits them into messages lost before their step was committed and replies lost after it.
- Also shown: completions on record that no user saw confirmed, users who gave up, replies
  that went missing without any kill, the largest SQLite write-ahead log seen, tracebacks in
  the bot's log, and the first users with a problem, each with the messages that led to it
  ("text -> screen it led to").

Usage: python bench/crash.py [--quick] [--conversations N] [--kills K] [--users U] [--seed S]
The last line is ``conversations=N kills=K lost=0 doubled=0 not_resumed=0 wrong_final=0
resumes=R`` (targets: 0 for lost, doubled, not_resumed and wrong_final).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import random
import re
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.runtime import build_engine  # noqa: E402
from bench.common import free_port, unthrottled_config  # noqa: E402
from bot.engine import Engine, screen_key  # noqa: E402
from bot.identity import UserRefs  # noqa: E402
from bot.model import Input, Reply, Start, State, Text  # noqa: E402
from tests.fakes.telegram_api import make_text_update  # noqa: E402

TOKEN = "123:BENCH"
SECRET = "crash-bench-secret-0123456789"
CHANNEL = "telegram"
USER_BASE = 800_000
PROBE_USER = 799_999
#: What a user types: to resume on the "continue or start over?" screen, and on the menu to
#: check whether their report is on record.
RESUME_WORD = "tiếp tục"
REPORT_WORD = "Tôi đã cài xong"
#: What each scripted user answers on each screen, by step ("*install": any install step).
#: The path through the flow is the engine's: a screen added to it needs an answer here.
SCRIPTS: dict[str, dict[str, str]] = {
    "install": {
        "": "/start",
        "menu": "2",
        "ready": "1",
        "choose_provider": "vnpt",
        "choose_phone": "android",
        "remind_offer": "có",
        "announce_offer": "không",
        "*install": "xong",
        "report_consent": "đồng ý",
        "report_commune": "1",
        "report_village": "1",
        "report_lives": "có",
        "report_provider": "1",
    },
    "report": {
        "": "/start",
        "menu": REPORT_WORD,
        "report_consent": "1",
        "report_commune": "1",
        "report_village": "2",
        "report_lives": "1",
        "report_provider": "2",
    },
}
#: Screens at which a script has ended (the completion, or "you reported on ...").
FINISHED = ("complete", "report_again")
NO_SESSION = ""
#: The key of a screen the engine in this process never showed (the bot's code changed?).
UNKNOWN = "?"
#: Longest path a script may take through the flow.
MAX_PATH = 80
#: Without a kill, a missing reply is declared lost after this long.
QUIET_PATIENCE = 30.0
#: A user asks (/start) at most this many times in a row before giving up.
MAX_ASKS = 8
#: Seconds for the bot to start and answer the probe.
START_PATIENCE = 60.0


# --------------------------------------------------------------------------- expected screens


class BenchError(Exception):
    """The bench itself cannot go on (the bot or the stand-in does not start)."""


@dataclass(frozen=True, slots=True)
class Landing:
    """Where a reply put the user: a screen (its key), or the resume question for one."""

    key: str
    resume: bool = False
    greeted: bool = False  # the menu came after a new user's greeting
    welcomed: bool = False  # the menu came after "welcome back"


@dataclass
class Catalogue:
    """Every message the scripts can get, by exact text, from running them through the engine.

    ``screens``: the last message of a screen (the one with the buttons) -> its key;
    ``resumes``: the "continue or start over?" question -> the key it offers to continue;
    ``notes``: the other messages (greeting, "welcome back", first halves of screens);
    ``confirmations``: messages saying the completion is recorded.
    """

    engine: Engine
    steps: dict[str, str] = field(default_factory=dict)  # screen key -> sessions.step
    screens: dict[str, str] = field(default_factory=dict)
    resumes: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    confirmations: set[str] = field(default_factory=set)
    paths: dict[str, dict[str, str]] = field(default_factory=dict)  # screen -> the next

    def classify(self, text: str) -> Landing | str | None:
        """A landing for a screen-ending message, a note's name, or None if unknown."""
        if text in self.screens:
            return Landing(self.screens[text])
        if text in self.resumes:
            return Landing(self.resumes[text], resume=True)
        return self.notes.get(text)

    def _add(self, table: dict[str, str], text: str, value: str) -> None:
        known = table.setdefault(text, value)
        if known != value:
            raise BenchError(f"two screens send the same text ({known}, {value}): {text[:60]!r}")

    def _record(self, reply: Reply, first_note: str | None = None) -> str:
        key = _key(reply.state)
        self.steps[key] = reply.state.screen
        if not reply.messages:
            raise BenchError(f"the engine sends nothing on the way to {key}")
        *notes, last = [m.text for m in reply.messages]
        for i, text in enumerate(notes):
            name = first_note if i == 0 and first_note else f"{key}:{i}"
            self._add(self.notes, text, name)
        if reply.state.screen == "resume":
            self._add(self.resumes, last, reply.state.back_to.key if reply.state.back_to else "")
        else:
            self._add(self.screens, last, key)
        if reply.state.screen in FINISHED:
            self.confirmations.update(m.text for m in reply.messages)
        return key

    def answer(self, script: str, key: str) -> str | None:
        """What a user of ``script`` types on screen ``key`` (None: the script has no answer)."""
        step = self.steps.get(key, key)
        answers = SCRIPTS[script]
        if step in answers:
            return answers[step]
        if self.engine.content.install_step(step) is not None:
            return answers.get("*install")
        return None

    def learn(self, name: str, now: datetime) -> None:
        """Walk one script through the engine; check it ends in one completion."""
        engine, state = self.engine, State()
        path: dict[str, str] = {}
        completed = 0
        while state.screen != "complete" and len(path) < MAX_PATH:
            before = _key(state)
            self.steps.setdefault(before, state.screen)
            text = self.answer(name, before)
            if text is None:
                raise BenchError(f"script {name} has no answer for screen {before!r}")
            reply = engine.advance(state, _input(text), now)
            after = self._record(reply, "greeting" if not state.screen else None)
            if after in path or after == before:
                raise BenchError(f"script {name}: {text!r} at {before} leads back to {after}")
            completed += sum(e.kind == "completed" for e in reply.events)
            path[before] = after
            state = reply.state
            self._learn_returns(state, now)
        if state.screen != "complete" or completed != 1:
            raise BenchError(f"script {name} ends at {state.screen!r}, {completed} completions")
        self.paths[name] = path

    def _learn_returns(self, state: State, now: datetime) -> None:
        """What /start shows at ``state`` -- and what comes after it."""
        engine = self.engine
        back = engine.advance(state, Start(None), now)
        if back.state.screen == "resume":
            self._record(back)
            again = engine.advance(back.state, Text(RESUME_WORD), now)
            if _key(again.state) != _key(state):
                raise BenchError(f"{RESUME_WORD!r} does not lead back to {_key(state)}")
            self._record(again)
            return
        self._record(back, "welcome_back")
        if state.screen == "complete":
            # The menu, then "Tôi đã cài xong": "you reported on <date>".
            self._record(engine.advance(back.state, Text(REPORT_WORD), now))


def _show(landing: Landing) -> str:
    if landing.resume:
        return f"resume?({landing.key})"
    note = " (greeting)" if landing.greeted else " (welcome back)" if landing.welcomed else ""
    return (landing.key or "-") + note


def _key(state: State) -> str:
    return screen_key(state) if state.screen else NO_SESSION


def _input(text: str) -> Input:
    """As the Telegram adapter translates a typed text."""
    head, _, payload = text.partition(" ")
    if head.split("@")[0] == "/start":
        return Start(payload.strip() or None)
    return Text(text)


# --------------------------------------------------------------------------- processes


@contextlib.asynccontextmanager
async def stand_in(port: int, env: dict[str, str]) -> AsyncIterator[None]:
    """The Bot API stand-in ("Telegram"), up until the end of the run."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.fakes.telegram_api", "--port", str(port), "--token", TOKEN,
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        while b"listening" not in await proc.stdout.readline():
            if proc.returncode is not None:
                raise BenchError("the Bot API stand-in did not start")
        yield
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()


class Hub:
    """Talks to the stand-in: users' messages in, the bot's replies routed to each user."""

    def __init__(self, http: aiohttp.ClientSession, port: int):
        self.http = http
        self.base = f"http://127.0.0.1:{port}"
        self.inboxes: dict[int, asyncio.Queue[str]] = {}
        self.sent = 0  # messages users have sent (the run's progress)
        self.moved = asyncio.Event()  # set at each message sent
        self.replies = 0

    def inbox(self, user: int) -> asyncio.Queue[str]:
        return self.inboxes.setdefault(user, asyncio.Queue())

    async def say(self, user: int, text: str) -> None:
        body = {"updates": [make_text_update(user, text)]}
        async with self.http.post(f"{self.base}/_control/enqueue", json=body) as r:
            r.raise_for_status()
        self.sent += 1
        self.moved.set()

    async def pump(self) -> None:
        """Poll the stand-in's record of sent messages; hand each to its user."""
        while True:
            params = {"since": str(self.replies)}
            async with self.http.get(f"{self.base}/_control/sends", params=params) as r:
                sends: list[dict[str, Any]] = await r.json()
            for send in sends:
                self.inbox(int(send["chat_id"])).put_nowait(str(send["text"]))
            self.replies += len(sends)
            await asyncio.sleep(0.01)


class Bot:
    """The bot process: started, SIGKILLed, restarted; "up" once the probe is answered."""

    def __init__(self, hub: Hub, env: dict[str, str], log: IO[bytes], db: Path):
        self.hub = hub
        self.env = env
        self.log = log
        self.wal = db.with_name(db.name + "-wal")
        self.wal_bytes = 0  # the largest write-ahead log seen (at kills and at the end)
        self.proc: asyncio.subprocess.Process | None = None
        self.up = asyncio.Event()
        self.ready_at = 0.0
        self.kills = 0
        self.restart_seconds: list[float] = []

    async def start(self) -> None:
        t0 = time.monotonic()
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run",
            cwd=ROOT, env=self.env, stdout=asyncio.subprocess.DEVNULL, stderr=self.log,
        )  # fmt: skip
        probe = self.hub.inbox(PROBE_USER)
        while not probe.empty():
            probe.get_nowait()
        await self.hub.say(PROBE_USER, "/start")
        try:
            async with asyncio.timeout(START_PATIENCE):
                await probe.get()
        except TimeoutError:
            raise BenchError(f"the bot did not answer within {START_PATIENCE:.0f} s") from None
        self.ready_at = time.monotonic()
        self.restart_seconds.append(self.ready_at - t0)
        self.up.set()

    async def kill(self) -> None:
        assert self.proc is not None
        self.up.clear()
        self.proc.kill()  # SIGKILL: no handler, no cleanup, no last getUpdates
        await self.proc.wait()
        self.kills += 1
        self.measure_wal()

    def measure_wal(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.wal_bytes = max(self.wal_bytes, self.wal.stat().st_size)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                async with asyncio.timeout(15):
                    await self.proc.wait()
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


async def supervise(
    bot: Bot, hub: Hub, points: list[int], rng: random.Random, pause: float
) -> None:
    """Kill the bot as the run's progress passes each point; restart it."""
    for point in points:
        while hub.sent < point:
            hub.moved.clear()
            await hub.moved.wait()
        await asyncio.sleep(rng.uniform(0.0, 0.02))
        await bot.kill()
        await asyncio.sleep(rng.uniform(0.0, pause))
        await bot.start()


# --------------------------------------------------------------------------- citizens


@dataclass
class Citizen:
    """One scripted conversation and what happened in it."""

    user: int
    script: str
    last: str = NO_SESSION  # the screen the user last saw
    confirmed: bool = False
    finished: bool = False
    gave_up: bool = False
    asks: int = 0
    lost_inputs: int = 0  # a message lost before its step was committed
    lost_replies: int = 0  # a reply lost after its step was committed
    silent: int = 0  # a reply missing although no kill happened
    late: int = 0  # replies that came after the user had stopped waiting
    misplaced: list[str] = field(default_factory=list)
    misplaced_at: int = -1  # index in ``trace`` of the first misplacement
    unknown: list[str] = field(default_factory=list)
    trace: list[str] = field(default_factory=list)  # what was sent -> where it led

    def misplace(self, what: str) -> None:
        if not self.misplaced:
            self.misplaced_at = len(self.trace)
        self.misplaced.append(what)


class Conversation:
    """Drives one citizen through their script, like a person, across kills."""

    def __init__(
        self, citizen: Citizen, cat: Catalogue, hub: Hub, bot: Bot, args: argparse.Namespace
    ):
        self.c = citizen
        self.cat = cat
        self.hub = hub
        self.bot = bot
        self.inbox = hub.inbox(citizen.user)
        self.patience = float(args.patience)
        self.think = float(args.think)
        self.rng = random.Random(f"{args.seed}-{citizen.user}")
        self.path = cat.paths[citizen.script]

    async def run(self) -> None:
        c = self.c
        while c.last not in FINISHED:
            text = self.cat.answer(c.script, c.last)
            if text is None:  # a screen the script never goes to: a person would be lost
                c.misplace(f"off-script at {c.last}")
                c.gave_up = True
                return
            expected = self.path.get(c.last)
            landing = await self.ask(text)
            if landing is None:
                committed = {c.last} if expected is None else {c.last, expected}
                landing = await self.recover(committed, before=c.last, after=expected)
            elif landing.key != expected and not c.misplaced:
                # (After a misplacement the prediction need not hold: see the docstring.)
                c.misplace(f"{text!r} at {c.last}: got {landing.key}, not {expected}")
            if landing is None:
                c.gave_up = True
                return
            c.last = landing.key
        c.finished = True

    async def ask(self, text: str) -> Landing | None:
        """Send ``text``; the screen it leads to, or None if no reply came in time."""
        while not self.inbox.empty():  # came after we stopped waiting for them
            self.inbox.get_nowait()
            self.c.late += 1
        if self.think:
            await asyncio.sleep(self.rng.uniform(0.0, self.think))
        kills = self.bot.kills
        sent_at = time.monotonic()
        await self.hub.say(self.c.user, text)
        greeted = welcomed = False
        strange = math.inf  # when a message we cannot place came
        while True:
            deadline = min(self._deadline(sent_at, kills), strange + self.patience)
            wait = min(0.5, deadline - time.monotonic())
            if wait <= 0:
                if strange < math.inf:  # a screen this bench does not know
                    self.c.trace.append(f"{text} -> {UNKNOWN}")
                    return Landing(UNKNOWN)
                if self.bot.kills == kills:
                    self.c.silent += 1
                self.c.trace.append(f"{text} -> (no reply, {self.bot.kills - kills} kills)")
                return None
            try:
                message = await asyncio.wait_for(self.inbox.get(), wait)
            except TimeoutError:
                continue
            if message in self.cat.confirmations:
                self.c.confirmed = True
            seen = self.cat.classify(message)
            if isinstance(seen, Landing):
                landing = Landing(seen.key, seen.resume, greeted, welcomed)
                self.c.trace.append(f"{text} -> {_show(landing)}")
                return landing
            if seen is None:
                self.c.unknown.append(message[:80])
                strange = min(strange, time.monotonic())
            greeted |= seen == "greeting"
            welcomed |= seen == "welcome_back"

    def _deadline(self, sent_at: float, kills: int) -> float:
        if not self.bot.up.is_set():
            return math.inf
        base = max(sent_at, self.bot.ready_at)
        return base + (self.patience if self.bot.kills != kills else QUIET_PATIENCE)

    async def recover(
        self, committed: set[str], *, before: str, after: str | None
    ) -> Landing | None:
        """No reply: send /start (again if need be) and judge where the bot puts us.

        ``committed``: the screens the last committed step may show; ``before`` and
        ``after``: the screens before and after the message whose reply did not come. Only
        users not misplaced before are judged: for the others the prediction may not hold.
        """
        c = self.c
        judge, first, retried = not c.misplaced, True, ""
        for _ in range(MAX_ASKS):
            c.asks += 1
            landing = await self.ask("/start")
            if landing is None:
                retried = " after a lost answer to /start"
                continue  # lost as well: ask again
            shown: Landing | None = landing
            if landing.resume:
                place = landing.key
            elif landing.key == "menu" and landing.welcomed and "complete" in committed:
                # The user had just finished: is the report on record?
                shown = await self.ask(REPORT_WORD)
                if shown is None:
                    retried = f" after a lost {REPORT_WORD!r}"
                    continue
                place = "complete" if shown.key == "report_again" else "menu"
            elif landing.key == "menu" and landing.greeted:
                place = NO_SESSION
            else:
                place = landing.key
            if judge and place not in committed:
                where = place or "a new start"
                c.misplace(f"resumed at {where}{retried}, not {sorted(committed)}")
            elif judge and first and place == before:
                c.lost_inputs += 1
            elif judge and first and place == after:
                c.lost_replies += 1
            first = False
            committed = {place}  # where the bot now says the user is
            if landing.resume:
                shown = await self.ask(RESUME_WORD)
                if shown is None:
                    retried = f" after a lost {RESUME_WORD!r}"
                    continue
                if judge and shown.key != place:
                    c.misplace(f"{RESUME_WORD!r} on resume({place}) showed {shown.key}")
            return shown
        return None


# --------------------------------------------------------------------------- the run


@dataclass(frozen=True, slots=True)
class Stored:
    step: str | None
    completions: int
    completed_events: int


def read_store(db_path: Path, refs: dict[str, int]) -> dict[int, Stored]:
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        steps = dict(
            conn.execute("SELECT user_ref, step FROM sessions WHERE channel = ?", (CHANNEL,))
        )
        done = Counter(
            r
            for (r,) in conn.execute(
                "SELECT user_ref FROM completions WHERE channel = ?", (CHANNEL,)
            )
        )
        events = Counter(
            r
            for (r,) in conn.execute(
                "SELECT user_ref FROM events WHERE channel = ? AND kind = 'completed'", (CHANNEL,)
            )
        )
    return {user: Stored(steps.get(ref), done[ref], events[ref]) for ref, user in refs.items()}


async def conversations(
    citizens: list[Citizen], cat: Catalogue, hub: Hub, bot: Bot, args: argparse.Namespace
) -> None:
    queue = list(reversed(citizens))

    async def worker() -> None:
        while queue:
            await Conversation(queue.pop(), cat, hub, bot, args).run()

    await asyncio.gather(*(worker() for _ in range(min(args.users, len(citizens)))))


async def main_async(args: argparse.Namespace) -> str:
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="crash-") as tmp_name:
        tmp = Path(tmp_name)
        config = unthrottled_config(tmp / "config.toml")
        cat = Catalogue(build_engine(config))
        now = datetime.now(UTC)
        for name in SCRIPTS:
            cat.learn(name, now)
        names = sorted(SCRIPTS)
        citizens = [
            Citizen(USER_BASE + i, names[i % len(names)]) for i in range(args.conversations)
        ]
        planned = sum(len(cat.paths[c.script]) for c in citizens)
        # Uniform over the run's progress; the last 3 % are left for the final stragglers.
        points = sorted(rng.randrange(1, max(2, int(planned * 0.97))) for _ in range(args.kills))
        port = free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        db_path = tmp / "crash.db"
        bot_env = {
            **env,
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_BASE_URL": f"http://127.0.0.1:{port}/bot",
            "DATABASE_URL": f"sqlite:///{db_path}",
            "BOT_ID_SECRET": SECRET,
            "BOT_CONFIG": str(config),
            "LOG_LEVEL": "WARNING",
            "TELEGRAM_RATE_LIMITER": "off",
        }
        log_path = tmp / "bot.log"
        t0 = time.monotonic()
        async with stand_in(port, env), aiohttp.ClientSession() as http:
            hub = Hub(http, port)
            pump = asyncio.create_task(hub.pump())
            with log_path.open("ab") as log:
                bot = Bot(hub, bot_env, log, db_path)
                try:
                    await bot.start()
                    killer = asyncio.create_task(supervise(bot, hub, points, rng, args.pause))
                    talks = asyncio.create_task(conversations(citizens, cat, hub, bot, args))
                    await asyncio.wait({killer, talks}, return_when=asyncio.FIRST_EXCEPTION)
                    if killer.done() and killer.exception() is not None:
                        talks.cancel()
                        await killer  # raises: the bot could not be restarted
                    await talks
                    seconds = time.monotonic() - t0
                    bot.measure_wal()
                    killer.cancel()  # kills planned after the last conversation: not done
                    with contextlib.suppress(asyncio.CancelledError):
                        await killer
                except BenchError as exc:
                    tail = log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
                    raise BenchError(f"{exc}; the bot's log ends with:\n{tail}") from None
                finally:
                    await bot.stop()
                    pump.cancel()
        refs = UserRefs(SECRET.encode())
        stored = read_store(db_path, {refs.ref(CHANNEL, c.user): c.user for c in citizens})
        log_text = log_path.read_text(encoding="utf-8", errors="replace")
        return report(citizens, stored, bot, seconds, log_text, cat, args)


def report(
    citizens: list[Citizen],
    stored: dict[int, Stored],
    bot: Bot,
    seconds: float,
    log_text: str,
    cat: Catalogue,
    args: argparse.Namespace,
) -> str:
    lost = [c for c in citizens if c.confirmed and stored[c.user].completions == 0]
    doubled = [
        c
        for c in citizens
        if stored[c.user].completions > 1 or stored[c.user].completed_events > 1
    ]
    unconfirmed = [c for c in citizens if stored[c.user].completions and not c.confirmed]
    misplaced = [c for c in citizens if c.misplaced]
    wrong_final = [c for c in citizens if stored[c.user].step != cat.steps.get(c.last, c.last)]
    asks = sum(c.asks for c in citizens)
    rows = sum(s.completions for s in stored.values())
    events = sum(s.completed_events for s in stored.values())
    restarts = sorted(bot.restart_seconds[1:]) or [0.0]
    unknown = Counter(t for c in citizens for t in c.unknown)
    print(
        f"{len(citizens)} conversations ({args.users} at a time, scripts: "
        f"{', '.join(f'{k} {len(v)} messages' for k, v in cat.paths.items())}), "
        f"{bot.kills} SIGKILLs, {seconds:.1f} s"
    )
    print(
        f"  restarts: median {restarts[len(restarts) // 2]:.2f} s until the bot answers, "
        f"max {restarts[-1]:.2f} s; largest SQLite write-ahead log: "
        f"{bot.wal_bytes / 1e6:.1f} MB"
    )
    print(
        f"  finished: {sum(c.finished for c in citizens)}; saw their completion confirmed: "
        f"{sum(c.confirmed for c in citizens)}; gave up: {sum(c.gave_up for c in citizens)}"
    )
    print(
        f"  database: {rows} completion rows, {events} 'completed' events for "
        f"{sum(1 for s in stored.values() if s.completions)} users"
    )
    print(
        f"  resumes (/start after a missing reply): {asks}, by "
        f"{sum(1 for c in citizens if c.asks)} users; messages lost before their step was "
        f"committed: {sum(c.lost_inputs for c in citizens)}; replies lost after it: "
        f"{sum(c.lost_replies for c in citizens)}; replies missing without a kill: "
        f"{sum(c.silent for c in citizens)}; late replies: {sum(c.late for c in citizens)}"
    )
    print(f"  lost completions (confirmed, not on record): {len(lost)}")
    print(f"  doubled completions (more than one row or event): {len(doubled)}")
    print(f"  completions on record never confirmed to the user: {len(unconfirmed)}")
    # The first misplacement of each user: after a lost answer (whatever the screen), or
    # straight away (by screen).
    kinds = Counter(
        re.split(r"[,:]", c.misplaced[0])[0]
        if "after a lost" in c.misplaced[0]
        else c.misplaced[0]
        for c in misplaced
    )
    print(f"  users not resumed at their last step: {len(misplaced)}")
    for kind, n in kinds.most_common():
        print(f"    x{n} {kind}")
    print(f"  users whose sessions.step is not where their script ended: {len(wrong_final)}")
    shown = {c.user: c for c in misplaced + wrong_final + lost + doubled}
    for n, c in enumerate(shown.values()):
        if n == 8:
            break
        s = stored[c.user]
        print(
            f"    user {c.user} ({c.script}): last saw {c.last or '-'}, db step {s.step}, "
            f"rows {s.completions}, events {s.completed_events}; {'; '.join(c.misplaced)}"
        )
        if n < 3:  # how it came about: the messages before the first misplacement
            at = c.misplaced_at if c.misplaced else len(c.trace)
            for line in c.trace[max(0, at - 6) : at + 1]:
                print(f"        {line}")
    if unknown:
        print("  messages the engine in this process never sends (code changed during the run?):")
    for text, n in unknown.most_common(5):
        print(f"    x{n}: {text!r}")
    tracebacks = log_text.count("Traceback")
    if tracebacks:
        print(f"  bot log: {tracebacks} tracebacks; last lines:")
        for line in log_text.strip().splitlines()[-5:]:
            print(f"    {line}")
    return (
        f"conversations={len(citizens)} kills={bot.kills} lost={len(lost)} "
        f"doubled={len(doubled)} not_resumed={len(misplaced)} wrong_final={len(wrong_final)} "
        f"resumes={asks}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small run (well under a minute)")
    parser.add_argument("--conversations", type=int, default=None, help="scripted users")
    parser.add_argument("--kills", type=int, default=None, help="SIGKILLs during the run")
    parser.add_argument("--users", type=int, default=None, help="conversations at a time")
    parser.add_argument("--seed", type=int, default=1, help="random seed (kills, pauses)")
    parser.add_argument("--patience", type=float, default=3.0, help="s to wait after a kill")
    parser.add_argument("--pause", type=float, default=0.5, help="max s before a restart")
    parser.add_argument("--think", type=float, default=0.05, help="max s between messages")
    args = parser.parse_args()
    args.conversations = args.conversations or (60 if args.quick else 1000)
    args.kills = args.kills if args.kills is not None else (3 if args.quick else 25)
    args.users = args.users or (30 if args.quick else 100)
    try:
        last = asyncio.run(main_async(args))
    except BenchError as exc:
        sys.exit(f"bench/crash.py: {exc}")
    print(last)


if __name__ == "__main__":
    main()
