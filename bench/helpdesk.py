"""Help requests at scale: many helpers claiming at once, then a flood of relayed messages.

The claims under test (README "Help requests", handlers/helpdesk.py): the first claim wins
-- also with many helpers on several workers pressing at the same moment -- and a citizen's
message in a claimed request reaches the helper quickly, none lost.

Method
------
- A fresh PostgreSQL database (``TEST_POSTGRES_URL``, the tests' server; a throw-away
  database on it, dropped afterwards), migrated.
- N open chat requests (``storage.helpdesk.create``: what a citizen's consent step writes,
  their chat address sealed as the step seals it), all of Nong Cong; V volunteers of Nong
  Cong enrolled through one-time invites (their chat addresses sealed).
- Four workers in one process: four database pools, each with its own conversations,
  staff desk, help desk, inbound path and Telegram channel, all on the Bot API stand-in
  (tests/fakes/telegram_api.py, in this process, no flood limit -- the bot's own time is
  measured, not Telegram's 30 messages a second; PTB's rate limiter off for the same reason).
- Claims: each request is claimed by three different volunteers at once (3N claims, all
  started together, each through the worker of its volunteer). ``double_claims``: requests
  whose claim two helpers were told they won, or whose row names a helper who was told
  "taken" (target 0).
- Relay: M messages, M / N per citizen, each a citizen's typed text handed to the inbound
  path of one worker (``Inbound.submit``, as a polled delivery), up to 8 at a time (latency
  below saturation; the rate is shown too); its latency is from the hand-over to the
  stand-in's receipt of the ``sendMessage`` to the helper's chat carrying its marker (the
  stand-in and the bot share the monotonic clock).
  ``lost``: messages never received by the stand-in (target 0).

Usage: python bench/helpdesk.py [--quick]   (quick: 100 requests, 20 volunteers, 1,000
messages; full: 1,000, 200, 10,000)
Last line: ``requests=<N> double_claims=<d> lost=<l> relay_p99_ms=<p>`` (target p99 < 200).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.config import load_config  # noqa: E402
from bot.content import load_content  # noqa: E402
from bot.engine import Engine  # noqa: E402
from bot.identity import UserRefs  # noqa: E402
from bot.model import Start, Text  # noqa: E402
from bot.officials import Scope  # noqa: E402
from handlers.channel import Incoming  # noqa: E402
from handlers.conversation import Conversations, utcnow  # noqa: E402
from handlers.helpdesk import HelpDesk  # noqa: E402
from handlers.inbound import Inbound  # noqa: E402
from handlers.staff import StaffDesk  # noqa: E402
from handlers.telegram import TelegramChannel  # noqa: E402
from storage import helpdesk as store  # noqa: E402
from storage.database import Database, migrate  # noqa: E402
from storage.repository import Repository  # noqa: E402
from storage.staff import StaffRepository  # noqa: E402
from tests.conftest import _fresh_postgres_schema  # noqa: E402
from tests.fakes.telegram_api import FakeBotAPI  # noqa: E402

SECRET = b"bench-helpdesk-secret-0123456789"
WORKERS = 4
COMMUNE = "16279"
VILLAGES = ("dong-hoa", "trung-chinh", "tay-son")
CLAIMERS = 3
AT_ONCE = 8
MARKER = 6
CITIZENS = 1_000_000  # citizens' Telegram ids start here, volunteers' at 2,000,000


class Worker:
    """One worker process's services, on its own database pool."""

    def __init__(self, url: str, engine: Engine, api: FakeBotAPI):
        self.db = Database(url)
        refs = UserRefs(SECRET)
        self.refs = refs
        staff = StaffRepository(self.db)
        self.staff = staff
        self.conversations = Conversations(
            engine, Repository(self.db), refs,
            area_of=staff.volunteer_commune, own_code=staff.own_code,
        )  # fmt: skip
        self.desk = StaffDesk(engine.config, engine.content, self.db, staff, refs, utcnow)
        self.helpdesk = HelpDesk(self.conversations, self.db)
        self.desk.helpdesk = self.helpdesk
        self.inbound = Inbound(self.conversations, self.desk, helpdesk=self.helpdesk)
        self.channel = TelegramChannel(
            self.inbound, engine.content, api.token, base_url=api.base_url, rate_limiter=False
        )
        self.helpdesk.attach({"telegram": self.channel})


async def run(requests: int, volunteers: int, messages: int, url: str) -> dict[str, Any]:
    config = load_config()
    engine = Engine(load_content(config.locale), config)
    async with AsyncExitStack() as stack:
        api = await stack.enter_async_context(FakeBotAPI())
        first = Database(url)
        await migrate(first)
        await first.dispose()
        workers = [Worker(url, engine, api) for _ in range(WORKERS)]
        for worker in workers:
            await worker.channel.start()
            stack.push_async_callback(worker.db.dispose)
            stack.push_async_callback(worker.channel.stop)
        w0 = workers[0]
        refs = w0.refs
        now = utcnow()
        # The requests, as the citizens' consent steps write them.
        citizens = [CITIZENS + n for n in range(requests)]

        def seed(conn: Any) -> None:
            for n, user in enumerate(citizens):
                ref = refs.ref("telegram", user)
                data = {
                    "kind": "chat", "commune": COMMUNE, "village": VILLAGES[n % len(VILLAGES)],
                    "provider": "vnpt", "phone": "android", "problem": "stuck",
                    "step": "cccd_front",
                }  # fmt: skip
                store.create(
                    conn, "telegram", ref, data, refs.seal("telegram", ref, str(user)), {}, now
                )

        await w0.db.run(seed)
        for n in range(volunteers):
            code = await w0.staff.create_invite(
                "volunteer", Scope("communes", (COMMUNE,)), created_by="cli", now=now
            )
            await w0.desk.handle("telegram", 2_000_000 + n, Start(code))
        ids = [int(r[0]) for r in await w0.db.run(_ids)]

        # Claims: three helpers per request, all at once, each through their own worker.
        async def claim(rid: int, k: int) -> tuple[int, int, bool]:
            helper = (rid * CLAIMERS + k) % volunteers
            worker = workers[helper % WORKERS]
            ref = refs.ref("telegram", 2_000_000 + helper)
            answer = await worker.helpdesk.claim("telegram", ref, Scope("all"), str(rid))
            return rid, helper, bool(answer) and answer[0].text.startswith("✅")

        started = time.monotonic()
        results = await asyncio.gather(*(claim(rid, k) for rid in ids for k in range(CLAIMERS)))
        claim_s = time.monotonic() - started
        won: dict[int, list[int]] = {}
        for rid, helper, ok in results:
            if ok:
                won.setdefault(rid, []).append(helper)
        owners = {int(r[0]): r[1] for r in await w0.db.run(_owners)}  # request -> volunteer_ref
        double = sum(1 for helpers in won.values() if len(helpers) > 1)
        for rid, helpers in won.items():
            if len(helpers) == 1 and owners.get(rid) != refs.ref(
                "telegram", 2_000_000 + helpers[0]
            ):
                double += 1
        unclaimed = len(ids) - len(won)
        for worker in workers:
            await worker.inbound.drain()

        # Relay: citizens' messages to their helpers.
        sem = asyncio.Semaphore(AT_ONCE)
        handed: dict[str, float] = {}
        per = max(1, messages // requests)

        async def relay(n: int) -> None:
            user = citizens[n % requests]
            marker = _marker(n)
            worker = workers[(n % requests) % WORKERS]
            async with sem:
                handed[marker] = time.monotonic()
                incoming = Incoming(
                    str(user), str(user), Text(f"bác hỏi cháu câu số {marker}"),
                    delivery_id=f"d{n}",
                )  # fmt: skip
                pending = worker.inbound.submit(worker.channel, incoming)
                if pending is not None:
                    await pending

        xacts = await w0.db.run(_transactions)
        started, cpu = time.monotonic(), time.process_time()
        # In rounds, so that one citizen's messages go one after another.
        for round_ in range(per):
            await asyncio.gather(*(relay(round_ * requests + i) for i in range(requests)))
        for worker in workers:
            await worker.inbound.drain()
        relay_s = time.monotonic() - started
        relay_cpu = time.process_time() - cpu
        await asyncio.sleep(1.0)  # PostgreSQL publishes its counters within a second
        xacts = await w0.db.run(_transactions) - xacts
        arrived: dict[str, float] = {}
        for call in api.calls_of("sendMessage"):
            text = str(call.params.get("text", ""))
            at = text.rfind("câu số m")
            if call.ok and at >= 0:
                marker = text[at + 7 : at + 7 + MARKER]
                arrived.setdefault(marker, call.at)
        latencies = sorted((arrived[m] - t) * 1000 for m, t in handed.items() if m in arrived)
        lost = len(handed) - len(latencies)
        left = await w0.db.run(lambda c: store.count(c))
        return {
            "requests": requests,
            "volunteers": volunteers,
            "claims": len(results),
            "claim_s": claim_s,
            "unclaimed": unclaimed,
            "double_claims": double,
            "messages": len(handed),
            "relay_s": relay_s,
            "lost": lost,
            "p50": statistics.median(latencies) if latencies else float("nan"),
            "p99": latencies[int(len(latencies) * 0.99) - 1] if latencies else float("nan"),
            "rows": left,
            # The bot's CPU (this process: the four workers and the stand-in) per message,
            # and the database's transactions per message (all of them: claims are over).
            "cpu_ms": relay_cpu * 1000 / len(handed),
            "xacts": xacts / len(handed),
        }


def _marker(n: int) -> str:
    """A message's marker in letters ("mbaaac"): digits would read as a one-time code, which
    the citizen's guard rightly keeps from the helper."""
    letters = ""
    for _ in range(MARKER - 1):
        n, r = divmod(n, 26)
        letters = "abcdefghijklmnopqrstuvwxyz"[r] + letters
    return "m" + letters


def _transactions(conn: Any) -> int:
    from sqlalchemy import text

    query = (
        "SELECT xact_commit + xact_rollback FROM pg_stat_database"
        " WHERE datname = current_database()"
    )
    return int(conn.execute(text(query)).scalar_one())


def _ids(conn: Any) -> list[Any]:
    from sqlalchemy import text

    return list(conn.execute(text("SELECT id FROM help_requests ORDER BY id")))


def _owners(conn: Any) -> list[Any]:
    from sqlalchemy import text

    return list(
        conn.execute(text("SELECT id, volunteer_ref FROM help_requests WHERE status='claimed'"))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    url = os.environ.get("TEST_POSTGRES_URL")
    if not url:
        sys.exit("set TEST_POSTGRES_URL (e.g. $(/work/main/.ci/postgres.sh) or .ci/postgres.sh)")
    sizes = (100, 20, 1_000) if args.quick else (1_000, 200, 10_000)
    # A throw-away database on the server, dropped afterwards (the tests' own helper).
    with contextlib.contextmanager(_fresh_postgres_schema)(url) as database:
        result = asyncio.run(run(*sizes, database))
    print(
        f"{result['claims']} claims of {result['requests']} requests by "
        f"{result['volunteers']} helpers over {WORKERS} workers in {result['claim_s']:.1f} s "
        f"({result['unclaimed']} unclaimed); {result['messages']} relayed in "
        f"{result['relay_s']:.1f} s ({result['messages'] / result['relay_s']:.0f}/s), "
        f"p50 {result['p50']:.1f} ms; per message {result['cpu_ms']:.1f} ms of CPU (this "
        f"process, the stand-in included) and {result['xacts']:.2f} transactions; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"requests={result['requests']} double_claims={result['double_claims']} "
        f"lost={result['lost']} relay_p99_ms={result['p99']:.0f} "
        f"cpu_ms_per_message={result['cpu_ms']:.1f}"
    )


if __name__ == "__main__":
    main()
