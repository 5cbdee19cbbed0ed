"""How fast /stats is on a national-size SQLite database.

Generates a deployment serving all 3,321 communes (three villages each), then 1,000,000
completions, 10,000,000 analytics events and 20,000 volunteer-assisted completions spread
over them, straight into a fresh SQLite database made by the bot's own migrations. Then it
times the officials' /stats (the real code: queries, report, Vietnamese text) for one commune
and for one province, side by side with a single hand-written SQL statement computing the
same aggregates on the same database.

Usage: python bench/stats.py [--quick] [--keep DIR]
Last line: ``stats_ms=<x> sql_ms=<y> ratio=<x/y>`` (the province, the slower of the two).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vietnam_provinces import Ward  # noqa: E402

from bot.config import load_config  # noqa: E402
from bot.content import load_content  # noqa: E402
from bot.identity import UserRefs  # noqa: E402
from bot.officials import Scope  # noqa: E402
from bot.stats import render  # noqa: E402
from handlers.conversation import utcnow  # noqa: E402
from handlers.staff import StaffDesk  # noqa: E402
from storage.database import Database, migrate  # noqa: E402
from storage.staff import StaffRepository  # noqa: E402

PROVINCE = "38"  # Thanh Hoa: 166 communes
COMMUNE = "16279"
VILLAGES = ("thon-1", "thon-2", "thon-3")
PROVIDERS = ("vnpt", "viettel", "misa", "vneid")
STEPS = ("menu", "benefits_what", "ready", "choose_provider", "choose_phone", "store",
         "register", "cccd_front", "cccd_back", "face", "sign_request", "pin", "activation",
         "first_use", "report_consent")  # fmt: skip
TIME = "%Y-%m-%d %H:%M:%S.%f"


def write_config(path: Path) -> list[str]:
    """A deployment serving every commune; returns their codes."""
    codes = [str(int(w.code)) for w in Ward.iter_all()]
    lines = [
        "[deployment]",
        'name = "Bench"',
        'bot_username = "BenchBot"',
        "[links]",
        'allowed = ["t.me", "dichvucong.gov.vn"]',
    ]
    for p in PROVIDERS:
        kind = "vneid" if p == "vneid" else "app"
        lines += ["[[providers]]", f'id = "{p}"', f'name = "{p}"', f'kind = "{kind}"']
    for code in codes:
        lines += [
            "[[communes]]",
            f"code = {code}",
            "target = 0.5",
            "[communes.support]",
            'name = "UBND"',
        ]
        for v in VILLAGES:
            lines += [
                "[[communes.villages]]",
                f'id = "{v}"',
                f'name = "{v}"',
                "adults = 1200",
                "adults_present = 1000",
                "households = 500",
            ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return codes


def fill(db_path: Path, codes: list[str], completions: int, events: int) -> None:
    """Bulk-load synthetic data (plain sqlite3: this is set-up, not what is measured)."""
    rnd = random.Random(7)
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA synchronous=OFF")
    start = datetime(2026, 9, 1, tzinfo=UTC)
    users = max(completions, events // 8)

    def when() -> str:
        return (start + timedelta(seconds=rnd.randrange(86 * 86400))).strftime(TIME)

    def completion_rows() -> Iterator[tuple[object, ...]]:
        for n in range(completions):
            at = when()
            ref = f"u{n:09d}"
            referral = f"v_{n % 5000:05d}" if n % 7 == 0 else None
            yield ("telegram", ref, codes[n % len(codes)], VILLAGES[n % 3],
                   PROVIDERS[n % 4], n % 5 != 0, "self", referral, at, at)  # fmt: skip

    conn.executemany(
        "INSERT INTO completions (channel, user_ref, commune, village, provider, lives_here,"
        " source, referral, completed_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
        completion_rows(),
    )

    def event_rows() -> Iterator[tuple[object, ...]]:
        for n in range(events):
            user = rnd.randrange(users)
            commune = codes[user % len(codes)]
            roll = rnd.random()
            if roll < 0.1:
                kind, step, detail = "started", None, None
            elif roll < 0.13:
                kind, step, detail = "stuck", rnd.choice(STEPS[5:14]), None
            elif roll < 0.14:
                kind, step, detail = "referral", None, f"v_{user % 5000:05d}"
            elif roll < 0.2:
                kind, step, detail = "faq", None, "cost"
            else:
                kind, step, detail = "step", STEPS[min(int(rnd.expovariate(0.2)), 14)], None
            yield (when(), "telegram", f"u{user:09d}", kind, step, detail, commune)
            if n % 1_000_000 == 999_999:
                print(f"  {n + 1:,} events", file=sys.stderr, flush=True)

    conn.executemany(
        "INSERT INTO events (at, channel, user_ref, kind, step, detail, commune)"
        " VALUES (?,?,?,?,?,?,?)",
        event_rows(),
    )
    conn.executemany(
        "INSERT INTO assisted (volunteer, commune, village, provider, at) VALUES (?,?,?,?,?)",
        (
            (f"v_{n % 5000:05d}", codes[n % len(codes)], VILLAGES[n % 3], PROVIDERS[n % 4], when())
            for n in range(max(1, completions // 50))
        ),
    )
    conn.executemany(
        "INSERT INTO staff (channel, user_ref, role, scope, code, commune, created_at)"
        " VALUES (?,?,?,?,?,?,?)",
        (
            (
                "telegram",
                f"vol{n}",
                "volunteer",
                Scope("communes", (codes[n % len(codes)],)).to_json(),
                f"v_{n:05d}",
                codes[n % len(codes)],
                start.strftime(TIME),
            )
            for n in range(5000)
        ),
    )
    # The bot records each user's first arrival at each stage as it writes their events.
    conn.execute(
        "INSERT OR IGNORE INTO reached (channel, user_ref, stage, commune, at)"
        " SELECT channel, user_ref, CASE kind WHEN 'step' THEN 'step:' || step"
        " WHEN 'referral' THEN 'via:' || detail ELSE kind END, commune, min(at) FROM events"
        " WHERE kind IN ('started', 'step', 'completed', 'referral')"
        " GROUP BY channel, user_ref, kind, step, detail"
    )
    conn.commit()
    conn.execute("ANALYZE")
    conn.close()


def hand_written(db_path: Path, communes: list[str]) -> None:
    """The same aggregates as one SQL statement, straight on sqlite3."""
    marks = ",".join("?" * len(communes))
    sql = f"""
    SELECT 'village', commune, village, count(*) FROM completions
      WHERE commune IN ({marks}) GROUP BY commune, village
    UNION ALL SELECT 'provider', provider, '', count(*) FROM completions
      WHERE commune IN ({marks}) GROUP BY provider
    UNION ALL SELECT 'day', date(completed_at, '+420 minutes'), '', count(*) FROM completions
      WHERE commune IN ({marks}) GROUP BY 2
    UNION ALL SELECT 'avillage', commune, village, count(*) FROM assisted
      WHERE commune IN ({marks}) GROUP BY commune, village
    UNION ALL SELECT 'aprovider', provider, '', count(*) FROM assisted
      WHERE commune IN ({marks}) GROUP BY provider
    UNION ALL SELECT 'aday', date(at, '+420 minutes'), '', count(*) FROM assisted
      WHERE commune IN ({marks}) GROUP BY 2
    UNION ALL SELECT 'reached', stage, '', count(*) FROM reached
      WHERE commune IN ({marks}) GROUP BY stage
    UNION ALL SELECT 'stuck', step, '', count(*) FROM events
      WHERE commune IN ({marks}) AND kind = 'stuck' GROUP BY step
    UNION ALL SELECT 'stuck', step, '', sum(count) FROM daily_events
      WHERE commune IN ({marks}) AND kind = 'stuck' GROUP BY step
    UNION ALL SELECT 'helped', volunteer, '', count(*) FROM assisted
      WHERE commune IN ({marks}) GROUP BY volunteer
    UNION ALL SELECT 'done', referral, '', count(*) FROM completions
      WHERE commune IN ({marks}) AND referral IS NOT NULL GROUP BY referral
    """
    conn = sqlite3.connect(db_path)
    conn.execute(sql, communes * sql.count("IN (")).fetchall()
    conn.close()


def timed(call: Callable[[], None], repeat: int) -> float:
    """Median milliseconds of ``repeat`` calls (after one warm-up)."""
    call()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        call()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


async def measure(folder: Path, repeat: int) -> dict[str, tuple[float, float]]:
    config = load_config(folder / "config.toml")
    content = load_content("vi")
    db = Database(f"sqlite:///{folder / 'bench.db'}")
    desk = StaffDesk(config, content, db, StaffRepository(db), UserRefs(b"x" * 32), utcnow)
    results = {}
    for name, scope in (
        ("commune", Scope("communes", (COMMUNE,))),
        ("province", Scope("province", (PROVINCE,))),
    ):
        codes = [c.code for c in desk.communes(scope)]

        async def stats(scope: Scope = scope) -> str:
            return render(await desk.report(scope), config, content, desk.texts)

        await stats()  # warm-up
        runs = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            await stats()
            runs.append((time.perf_counter() - t0) * 1000)
        ours_ms = statistics.median(runs)
        sql_ms = await asyncio.to_thread(
            timed, functools.partial(hand_written, folder / "bench.db", codes), repeat
        )
        results[name] = (ours_ms, sql_ms)
        print(f"{name:>8} ({len(codes)} communes): /stats {ours_ms:7.1f} ms   "
              f"one SQL statement {sql_ms:7.1f} ms   ratio {ours_ms / sql_ms:4.2f}")  # fmt: skip
    await db.dispose()
    return results


async def prepare(folder: Path, completions: int, events: int) -> None:
    codes = write_config(folder / "config.toml")
    db = Database(f"sqlite:///{folder / 'bench.db'}")
    await migrate(db)
    await db.dispose()
    t0 = time.perf_counter()
    await asyncio.to_thread(fill, folder / "bench.db", codes, completions, events)
    size = (folder / "bench.db").stat().st_size / 1e6
    print(f"generated {completions:,} completions and {events:,} events over {len(codes):,}"
          f" communes in {time.perf_counter() - t0:.0f} s ({size:,.0f} MB)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 completions, 100,000 events")
    parser.add_argument("--keep", help="build (or reuse) the database in this folder")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    completions, events = (10_000, 100_000) if args.quick else (1_000_000, 10_000_000)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / "bench.db").exists():
            asyncio.run(prepare(folder, completions, events))
        os.environ.setdefault("BOT_ID_SECRET", "bench-secret-0123456789")
        results = asyncio.run(measure(folder, args.repeat))
    ours, sql = max(results.values(), key=lambda r: r[0])
    print(f"stats_ms={ours:.1f} sql_ms={sql:.1f} ratio={ours / sql:.2f}")


if __name__ == "__main__":
    main()
