"""A help chat's relay killed with SIGKILL half-way and restarted (issue 11: "kill -9 during
a relay loses no message and repeats none").

``python -m bot serve`` is a real process on SQLite, talking to the Bot API stand-in, which
answers slowly so that the kill lands while a relayed message is in flight. A citizen types
forty messages to their helper, one after another, as Telegram delivers them (each retried
until it is acknowledged, as Telegram does). Every acknowledged message must reach the helper
exactly once after the restart; and once the helper closes the request, nothing of the chat
is left in the database."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.engine import Engine, screen_key
from bot.model import Choice, Start, Text
from storage.database import Database
from tests.conftest import ROOT, TEST_SECRET, rows, shared_caches
from tests.fakes.telegram_api import FakeBotAPI, make_text_update
from tests.handlers.test_helpdesk import NONG_CONG, Desk, _request_id
from tests.handlers.test_serve_workers import free_port

SECRET = "relay-crash-webhook-secret"
CITIZEN, HELPER = 61_001, 61_002
MESSAGES = 40


async def serve(api: FakeBotAPI, url: str, port: int, cwd: Path) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "DATABASE_URL": url,
        "BOT_ID_SECRET": TEST_SECRET.decode(),
        "TELEGRAM_BOT_TOKEN": api.token,
        "TELEGRAM_API_BASE_URL": api.base_url,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "TELEGRAM_RATE_LIMITER": "off",
        "LOG_LEVEL": "ERROR",
    }
    for name in ("ZALO_BOT_TOKEN", "ZALO_OA_APP_ID", "TELEGRAM_WEBHOOK_URL"):
        env.pop(name, None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "serve", cwd=shared_caches(cwd), env=env
    )
    # Up when it answers (importing the stack and training the understanding: seconds).
    async with asyncio.timeout(90):
        while True:
            try:
                async with (
                    aiohttp.ClientSession() as http,
                    http.get(f"http://127.0.0.1:{port}/healthz") as response,
                ):
                    if response.status == 200:
                        return proc
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)


async def post(port: int, update: dict[str, Any]) -> int:
    """One webhook delivery: its status, or 0 if the server was gone."""
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"http://127.0.0.1:{port}/telegram/webhook", json=update, headers=headers
            ) as response,
        ):
            return response.status
    except (aiohttp.ClientError, TimeoutError):
        return 0


def said(i: int) -> str:
    return f"tin thu {i:02d} cua bac"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_relay_killed_mid_way_delivers_each_acknowledged_message_once(
    engine: Engine, db: Database, tmp_path: Path
) -> None:
    # Before the server: a helper enrolled, a citizen's chat request, taken by the helper.
    desk = Desk(db, engine)
    # A minute ago: the claim's notices, which the claiming worker would have sent at once
    # (nothing here sends them), are then rows a crash left behind (LEFT_BEHIND: 10 s), sent
    # by the server as it starts; made just now, the restarted server waited out their 10 s.
    desk.now = datetime.now(UTC) - timedelta(minutes=1)
    code = await desk.staff.create_invite("volunteer", NONG_CONG, created_by="cli", now=desk.now)
    assert await desk.desk.handle("telegram", HELPER, Start(code)) is not None
    await desk.conversations.handle("telegram", CITIZEN, Start(None))
    await desk.conversations.handle("telegram", CITIZEN, Text("gặp cán bộ"))
    for choice in ("help", "chat", "i:dong-hoa", "send"):
        stored = await desk.conversations.repo.load("telegram", desk.refs.ref("telegram", CITIZEN))
        assert stored is not None
        await desk.conversations.handle(
            "telegram", CITIZEN, Choice(choice, screen_key(stored.state))
        )
    rid = await _request_id(desk)
    helper = desk.refs.ref("telegram", HELPER)
    (answer, *_) = await desk.helpdesk.claim("telegram", helper, NONG_CONG, str(rid))
    assert answer.text.startswith("✅ Bạn đã nhận yêu cầu")

    port = free_port()
    updates = [
        {"update_id": 500 + i, **make_text_update(CITIZEN, said(i))} for i in range(MESSAGES)
    ]
    acknowledged: set[int] = set()

    def relayed() -> list[str]:
        return [t for t in api.sent_texts(HELPER) if "tin thu" in t]

    async def citizen_types(upto: int) -> None:
        for i in range(upto):
            while i not in acknowledged:
                if await post(port, updates[i]) == 200:
                    acknowledged.add(i)
                else:
                    await asyncio.sleep(0.1)  # Telegram retries a delivery not acknowledged

    async with FakeBotAPI() as api:
        api.latency = 0.05  # each send stays in flight a while: the kill lands in one
        bot = await serve(api, db.url, port, tmp_path)
        try:
            typing = asyncio.create_task(citizen_types(MESSAGES))
            await api.wait_for(lambda: len(relayed()) >= MESSAGES // 2, timeout=60)
            bot.send_signal(signal.SIGKILL)
            await bot.wait()
            killed_at = len(relayed())
            bot = await serve(api, db.url, port, tmp_path)
            async with asyncio.timeout(120):
                await typing
            # Until nothing is left to send (a row a crash left pending goes within ~15 s).
            for _ in range(900):
                if not await rows(
                    db,
                    "SELECT id FROM help_messages WHERE status = 'pending'"
                    " UNION ALL SELECT id FROM inbox",
                ):
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)  # a repeat, if any, would come now
            assert MESSAGES // 2 <= killed_at < MESSAGES, "killed mid-way"
            got = relayed()
            for i in range(MESSAGES):
                assert sum(said(i) in t for t in got) == 1, f"message {i}"
            assert len(got) == MESSAGES

            # The helper closes: nothing of the chat is kept -- not even a row the kill left
            # "sending" (in doubt, never sent again; in the runs so far, the claim's notice
            # to the citizen, which the first server's sweeper was sending when it died).
            close = {"update_id": 900, **make_text_update(HELPER, f"/xong {rid} cai")}
            assert await post(port, close) == 200
            for _ in range(600):  # closed, its notices sent and gone: within a second (30 s)
                closed = await rows(db, "SELECT status FROM help_requests") == [("closed",)]
                if closed and not await rows(db, "SELECT id FROM help_messages"):
                    break
                await asyncio.sleep(0.05)
            assert await rows(db, "SELECT count(*) FROM help_messages") == [(0,)]
            dump = await rows(db, "SELECT * FROM inbox")
            assert not any("tin thu" in repr(r) for r in dump)
            assert await rows(db, "SELECT status, outcome, address FROM help_requests") == [
                ("closed", "installed", None)
            ]
        finally:
            if bot.returncode is None:
                bot.send_signal(signal.SIGTERM)
                await asyncio.wait_for(bot.wait(), 30)
