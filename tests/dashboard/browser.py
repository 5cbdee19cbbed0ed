"""A real browser and a real server for the dashboard's browser tests.

Debian's Chromium (``/usr/bin/chromium``; ``.ci/run`` installs it) driven by Playwright for
Python with the system executable -- Playwright never downloads a browser here. One browser
for every browser test of a process (:func:`chromium`: the dashboard's and the web chat's),
each test in contexts of its own (their own cookies and storage). Under CI=true a missing
browser fails the tests instead of skipping them (as a missing PostgreSQL does). The server
is what ``python -m bot serve`` runs (app/server.py: :func:`~app.server.listening`), in a
thread of the test process, on a SQLite file filled through the real conversation engine
(tests/handlers/test_staff.py's World, the deployment of three communes).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import os
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from app.runtime import open_runtime
from app.server import listening
from app.settings import Settings
from bot.config import load_config
from bot.engine import Engine
from bot.model import Choice, Text
from bot.officials import Scope, web_login_url
from handlers.conversation import utcnow
from handlers.staff import SCREEN
from storage import helpdesk as store
from storage.database import Database, migrate
from storage.helpdesk import Member
from storage.web import WebAccess
from tests.conftest import ROOT
from tests.handlers.test_staff import World, opted_in_and_reported, three_communes

T = TypeVar("T")
CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 360, "height": 740}
SECRET = "browser-tests-secret-0123456789"
#: The two communes beside the demo's, as tests/handlers/test_staff.py's three_communes().
MORE_COMMUNES = """
[[communes]]
code = 14797
target = 0.4
[communes.support]
name = "Bộ phận Một cửa – UBND xã Nông Cống"
address = "Trụ sở UBND xã Nông Cống, tỉnh Thanh Hóa"
hours = "Thứ Hai đến Thứ Sáu, sáng 7:30–11:30, chiều 13:30–17:00"
phone = "0000 000 000 (số mẫu)"
[[communes.villages]]
id = "kp-a"
name = "Khu A"
adults = 100
adults_present = 80
households = 40
[[communes.villages]]
id = "kp-b"
name = "Khu B"
adults = 10
adults_present = 0
households = 5

[[communes]]
code = 70
target = 0.4
[communes.support]
name = "Bộ phận Một cửa – UBND xã Nông Cống"
address = "Trụ sở UBND xã Nông Cống, tỉnh Thanh Hóa"
hours = "Thứ Hai đến Thứ Sáu, sáng 7:30–11:30, chiều 13:30–17:00"
phone = "0000 000 000 (số mẫu)"
[[communes.villages]]
id = "kp-a"
name = "Khu A"
adults = 100
adults_present = 80
households = 40
"""


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to its end on a thread of its own: Playwright's synchronous API keeps an
    event loop running on this one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def chromium_or_skip() -> Path:
    """The system Chromium; required when CI=true."""
    if CHROMIUM.exists():
        return CHROMIUM
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {CHROMIUM} is missing: the browser tests must run in CI")
    pytest.skip("install Debian's chromium to run the browser tests")


#: The process's one Chromium and the loop Playwright runs it on: (browser, loop).
_CHROMIUM: list[tuple[Any, asyncio.AbstractEventLoop]] = []


@contextlib.contextmanager
def chromium(config: pytest.Config) -> Iterator[Any]:
    """The process's one Chromium, lent to one test: launched at the first browser test,
    closed when the session ends. Launching it (Playwright's driver and the browser) takes
    1.5-2.5 s; each module launched its own, and under ``pytest -n`` each worker that ran
    part of a module did.

    Playwright's synchronous API keeps its event loop running on this thread (switching to it
    in a greenlet while it waits), and while a loop is marked running here no other can run:
    the asynchronous tests, asyncio.run. So the loop is marked running only while a browser
    test holds the browser, as Playwright marks it after each call it makes."""
    executable = chromium_or_skip()
    if _CHROMIUM:
        browser, loop = _CHROMIUM[0]
        asyncio._set_running_loop(loop)
    else:
        from playwright.sync_api import sync_playwright

        playwright = sync_playwright().start()
        loop = asyncio.get_running_loop()  # Playwright's, on this thread
        browser = playwright.chromium.launch(executable_path=str(executable), args=FLAGS)
        _CHROMIUM.append((browser, loop))

        def close() -> None:
            asyncio._set_running_loop(loop)
            try:
                browser.close()
            finally:
                playwright.stop()  # its loop closed, none is marked running any more

        config.add_cleanup(close)
    try:
        yield browser
    finally:
        try:
            for context in browser.contexts:  # left open by a test that failed
                context.close()
        finally:
            asyncio._set_running_loop(None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    """The server of ``python -m bot serve`` on a filled database."""

    base: str
    folder: Path
    env: dict[str, str]
    volunteer: str

    @property
    def database_url(self) -> str:
        return self.env["DATABASE_URL"]

    def link(self, scope: Scope, *, age: timedelta = timedelta(0)) -> str:
        """A login link made now (or ``age`` ago), as the bot's /web makes one."""

        async def make() -> str:
            db = Database(self.database_url)
            try:
                token = await WebAccess(db).create_link(
                    scope, channel="cli", user_ref="cli", now=utcnow() - age
                )
            finally:
                await db.dispose()
            return web_login_url(self.base, token)

        return run_async(make())

    def cli(self, *args: str) -> str:
        """What ``python -m bot ARGS`` prints against this server's database and config:
        the CLI's own entry point, in this process (a new interpreter costs seconds)."""
        from app.cli import main

        saved = dict(os.environ)
        out = io.StringIO()
        try:
            os.environ.update(self.env)
            with contextlib.redirect_stdout(out), ThreadPoolExecutor(1) as pool:
                assert pool.submit(main, list(args)).result() == 0
        finally:
            os.environ.clear()
            os.environ.update(saved)
        return out.getvalue()


def help_requests(conn: Any, world: World, code: str) -> None:
    """Help requests of Nong Cong: the volunteer took three (one installed, one not yet,
    one still in its chat), an official one, and one waits."""
    volunteer = Member("telegram", world.refs.ref("telegram", 900), "-", "volunteer", code)
    official = Member("telegram", world.refs.ref("telegram", 901), "-", "official", None)
    plan = [
        (107, volunteer, 10, "installed"),
        (108, volunteer, 20, "not_yet"),
        (109, volunteer, 4, None),
        (110, official, 30, "installed"),
        (111, None, 0, None),
    ]
    for user, helper, minutes, outcome in plan:
        ref = world.refs.ref("telegram", user)
        opened = world.now - timedelta(minutes=40)
        data = {"kind": "chat", "commune": "16279", "village": "dong-hoa"}
        store.create(conn, "telegram", ref, data, None, {}, opened)
        request = store.live_of(conn, "telegram", ref)
        assert request is not None
        if helper is not None:
            assert store.claim(conn, request.id, helper, opened + timedelta(minutes=minutes))
        if outcome is not None:
            store.end(conn, request.id, "closed", outcome, world.now)


def config_file(folder: Path, web_url: str = "") -> Path:
    """The World's deployment; ``web_url``: its public web address (the web chat's QR codes
    and shared link point there)."""
    path = folder / "config.toml"
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    if web_url:
        text = text.replace("[deployment]\n", f'[deployment]\nweb_url = "{web_url}"\n', 1)
    path.write_text(text + MORE_COMMUNES, encoding="utf-8")
    config = load_config(path)
    assert config.web_url == web_url
    assert replace(config, web_url="") == three_communes(), (
        "the server's deployment is the World's"
    )
    return path


async def fill(database_url: str, engine: Engine) -> str:
    """Citizens and a volunteer of Nong Cong and Hac Thanh, through the real engine (and the
    session's understanding: a new one would train again, 3-9 s of a core)."""
    db = Database(database_url)
    try:
        await migrate(db)
        world = World(db, engine.content, engine.understanding)
        world.now = utcnow() - timedelta(days=2)
        await world.enrol(900, "volunteer", Scope("communes", ("16279",)))
        member = await world.staff.get("telegram", world.refs.ref("telegram", 900))
        assert member is not None
        assert member.code is not None
        await world.report(101, "nong cong", "dong hoa", "vnpt")
        await world.report(102, "nong cong", "tay son", "viettel", via=member.code)
        world.now = utcnow() - timedelta(hours=1)
        await world.report(103, "nong cong", "dong hoa", "vneid")
        await world.report(104, "hac thanh", "khu a", "misa")
        await opted_in_and_reported(world, 105, "nong cong", "tay son")
        # The volunteer helped one, through /dagiup's buttons (a made-up press counts nothing).
        dagiup = await world.staff_says(900, Text("/dagiup"))
        assert dagiup is not None
        (village,) = [o.id for o in dagiup.messages[-1].options if o.id.endswith(":kp-1")]
        providers = await world.staff_says(900, Choice(village, SCREEN))
        assert providers is not None
        (misa,) = [o.id for o in providers.messages[-1].options if o.id.endswith(":misa")]
        await world.staff_says(900, Choice(misa, SCREEN))
        await world.citizen(106, "/start", "!install")  # started, not finished
        await db.run(functools.partial(help_requests, world=world, code=member.code))
        return member.code
    finally:
        await db.dispose()


def serve(folder: Path, engine: Engine) -> Iterator[Served]:
    """What ``python -m bot serve`` runs with this environment, in a thread of this process
    (no signal handlers, no background jobs: they are not what these tests are about). A
    process of its own took 3-4 s to start (an interpreter, the application's imports, the
    content) and 3.9 s of CPU, for each module."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "ZALO_"))},
        "DATABASE_URL": f"sqlite:///{folder / 'bot.db'}",
        # A public address as a name ("localhost"): the bot links to no bare IP address.
        "BOT_CONFIG": str(config_file(folder, f"http://localhost:{port}")),
        "BOT_ID_SECRET": SECRET,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("PUBLIC_URL", None)
    volunteer = run_async(fill(env["DATABASE_URL"], engine))
    settings = Settings.from_env(env)
    listening_now = threading.Event()
    stop: list[Callable[[], object]] = []

    async def run() -> None:
        async with open_runtime(settings) as runtime, listening(runtime):
            loop = asyncio.get_running_loop()
            stop.append(lambda: loop.call_soon_threadsafe(runtime.stop.set))
            listening_now.set()
            await runtime.stop.wait()

    with ThreadPoolExecutor(1, thread_name_prefix="serve") as pool:
        server = pool.submit(asyncio.run, run())
        deadline = time.monotonic() + 60
        while not listening_now.wait(0.05):
            if server.done():
                server.result()  # raises what stopped it
                raise RuntimeError("the server stopped before it listened")
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not listen within 60 s")
        try:
            yield Served(f"http://127.0.0.1:{port}", folder, env, volunteer)
        finally:
            stop[0]()
            server.result(timeout=30)


def screenshots_folder(fallback: Path) -> Path:
    """``SCREENSHOTS=docs/screenshots`` keeps the set shown in the README; else a tmp dir."""
    folder = Path(os.environ.get("SCREENSHOTS") or fallback)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


#: Every visible element with text of its own, outside the SVG charts: its font size, and
#: the contrast of its colour with the background it is drawn on (WCAG's formula).
TEXT_STYLES = """
() => {
  const lum = (rgb) => {
    const [r, g, b] = rgb.map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const parse = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c.length >= 3 && (c.length === 3 || c[3] > 0)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const out = [];
  for (const el of document.body.querySelectorAll('*')) {
    if (el.closest('svg')) continue;
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own) continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0 || r.right < 0) continue;
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden') continue;
    const fg = parse(style.color).slice(0, 3);
    const [a, b] = [lum(fg), lum(background(el))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    out.push({text: el.textContent.trim().slice(0, 40), tag: el.tagName,
              size: parseFloat(style.fontSize), bold: parseInt(style.fontWeight) >= 700,
              contrast: Math.round(ratio * 100) / 100});
  }
  return out;
}
"""

#: Form fields without a label (a <label for>, an enclosing <label>, or aria-label).
UNLABELLED = """
() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
  .filter((el) => !(el.id && document.querySelector(`label[for="${el.id}"]`))
                  && !el.closest('label') && !el.getAttribute('aria-label'))
  .map((el) => el.name || el.id)
"""


def figures(page: Any) -> dict[str, str]:
    """The overview's figures: data-key -> data-value."""
    found: dict[str, str] = page.eval_on_selector_all(
        "dd[data-key]", "els => Object.fromEntries(els.map(e => [e.dataset.key, e.dataset.value]))"
    )
    return found
