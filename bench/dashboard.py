"""How fast and how heavy the officials' dashboard is on a national-size database.

The database of bench/stats.py (all 3,321 communes, 1,000,000 completions, 10,000,000 events,
20,000 assisted completions, 5,000 volunteers; ``--quick``: 10,000 and 100,000), served by
the real dashboard on the real aiohttp app, signed in with a one-time link for one province
(Thanh Hoa, 166 communes). It times the server's handling (a middleware's clock around the
handler: session and role checks, the figures' query, the report, the charts, the template,
the audit row) of the overview and the villages page, median of ``--repeat``, and weighs
each page with its stylesheet (the charts are inline SVG).

Usage: python bench/dashboard.py [--quick] [--keep DIR] [--repeat N]
Last line: ``overview_ms=<x> villages_ms=<y> page_kb=<z>`` (page_kb: the heavier page).
Targets: under 300 ms each, under 200 kB. The line before gives, measured in the same run,
the report alone and bench/stats.py's hand-written SQL statement: on a shared machine the
query's time varies several-fold, and these show what the dashboard adds to it.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402

from app.server import make_app  # noqa: E402
from bench.common import free_port  # noqa: E402
from bench.stats import PROVINCE, hand_written, prepare, timed  # noqa: E402
from bot.config import load_config  # noqa: E402
from bot.content import load_content  # noqa: E402
from bot.identity import UserRefs  # noqa: E402
from bot.officials import Scope  # noqa: E402
from dashboard.web import Dashboard  # noqa: E402
from handlers.conversation import utcnow  # noqa: E402
from handlers.staff import StaffDesk  # noqa: E402
from storage.database import Database  # noqa: E402
from storage.staff import StaffRepository  # noqa: E402
from storage.web import WebAccess  # noqa: E402

PAGES = {"overview": "/dashboard", "villages": "/dashboard/villages"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def measure(folder: Path, repeat: int) -> tuple[dict[str, float], dict[str, int]]:
    """Median server milliseconds of each page (and, for comparison on the same machine at
    the same moment, of the report alone and of one hand-written SQL statement computing
    the same aggregates), and each page's weight in bytes."""
    config = load_config(folder / "config.toml")
    content = load_content(config.locale)
    db = Database(f"sqlite:///{folder / 'bench.db'}")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    desk = StaffDesk(
        config, content, db, StaffRepository(db), UserRefs(b"x" * 32), utcnow, public_url=base
    )
    dashboard = Dashboard(config=config, content=content, desk=desk, public_url=base, clock=utcnow)
    app = make_app([], routes=dashboard.routes())
    spent: dict[str, list[float]] = {}

    @web.middleware
    async def timing(request: web.Request, handler: Handler) -> web.StreamResponse:
        t0 = time.perf_counter()
        response = await handler(request)
        spent.setdefault(request.path, []).append((time.perf_counter() - t0) * 1000)
        return response

    app.middlewares.append(timing)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    sizes: dict[str, int] = {}
    try:
        token = await WebAccess(db).create_link(
            Scope("province", (PROVINCE,)), channel="cli", user_ref="cli", now=utcnow()
        )
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            async with http.post(base + "/dashboard/login", data={"t": token}) as signed:
                assert signed.status == 200, signed.status
            async with http.get(base + "/dashboard/static/dashboard.css") as css:
                style = len(await css.read())
            for name, path in PAGES.items():
                for _ in range(repeat + 1):  # the first is a warm-up
                    async with http.get(base + path) as page:
                        assert page.status == 200, (path, page.status)
                        sizes[name] = len(await page.read()) + style
                spent[path] = spent[path][1:]
        scope = Scope("province", (PROVINCE,))
        reports = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            await desk.report(scope)
            reports.append((time.perf_counter() - t0) * 1000)
        codes = [c.code for c in desk.communes(scope)]
        sql = functools.partial(hand_written, folder / "bench.db", codes)
        extra = {
            "report": statistics.median(reports),
            "sql": await asyncio.to_thread(timed, sql, repeat),
        }
    finally:
        await runner.cleanup()
        await db.dispose()
    times = {name: statistics.median(spent[path]) for name, path in PAGES.items()}
    return {**times, **extra}, sizes


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
        times, sizes = asyncio.run(measure(folder, args.repeat))
    for name in PAGES:
        print(f"{name:>9} (province {PROVINCE}, 166 communes): {times[name]:7.1f} ms  "
              f"{sizes[name] / 1000:6.1f} kB with the stylesheet")  # fmt: skip
    print(f"   beside: the report alone (the /stats figures) {times['report']:.1f} ms, one "
          f"hand-written SQL statement of the same aggregates {times['sql']:.1f} ms")  # fmt: skip
    print(
        f"overview_ms={times['overview']:.1f} villages_ms={times['villages']:.1f} "
        f"page_kb={max(sizes.values()) / 1000:.1f}"
    )


if __name__ == "__main__":
    main()
