"""A reminder run killed with SIGKILL half-way and restarted: no reminder is sent twice, and
every one is sent -- but for those in flight at the kill, which are marked "unknown" and never
sent again (Telegram cannot tell whether they arrived; most did: README, "Reminders and
announcements", says the trade-off and bench/faults.py measures it). The bot is a real process
(``python -m bot run``) talking to the Bot API stand-in; the stand-in answers slowly, so the
kill lands while requests are in flight -- the hardest moment: delivered, but not yet known to
be."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.engine import Engine
from bot.identity import UserRefs
from bot.model import Start, Text
from handlers.conversation import Conversations
from storage.database import Database
from storage.repository import Repository
from tests.conftest import ROOT, rows, shared_caches
from tests.fakes.telegram_api import FakeBotAPI

SECRET = "crash-test-secret-0123456789"
USERS = range(77_000, 77_040)


def no_quiet_hours(tmp: Path) -> Path:
    """The demo config, with no quiet hours (the test may run at any time of day) and the
    fastest pace allowed."""
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    text = text.replace('quiet_hours = ["21:00", "07:00"]', 'quiet_hours = ["00:00", "00:00"]')
    text = text.replace("messages_per_second = 25", "messages_per_second = 30")
    path = tmp / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


async def citizens_who_stopped_two_days_ago(engine: Engine, db: Database) -> None:
    then = datetime.now(UTC) - timedelta(days=2)
    conversations = Conversations(
        engine, Repository(db), UserRefs(SECRET.encode()), clock=lambda: then
    )
    for user in USERS:
        await conversations.handle("telegram", user, Start())
        for text in ("2", "1", "1", "1", "1"):  # ... "✅ Có, nhắc tôi": at step 1 of 9
            await conversations.handle("telegram", user, Text(text))


async def start_bot(
    api: FakeBotAPI, url: str, config: Path, cwd: Path
) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": url,
        "BOT_CONFIG": str(config),
        "BOT_ID_SECRET": SECRET,
        "TELEGRAM_BOT_TOKEN": api.token,
        "TELEGRAM_API_BASE_URL": api.base_url,
        "TELEGRAM_RATE_LIMITER": "off",
        "LOG_LEVEL": "WARNING",
    }
    for name in ("ZALO_BOT_TOKEN", "ZALO_OA_APP_ID"):
        env.pop(name, None)
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", cwd=shared_caches(cwd), env=env
    )


async def test_killed_half_way_and_restarted_sends_each_reminder_exactly_once(
    engine: Engine, db: Database, tmp_path: Path
) -> None:
    await citizens_who_stopped_two_days_ago(engine, db)
    config = no_quiet_hours(tmp_path)
    half = len(USERS) // 2

    def reminders() -> list[int]:
        return [int(s["chat_id"]) for s in api.sent() if str(s["text"]).startswith("🔔")]

    async with FakeBotAPI() as api:
        api.latency = 0.05  # each request stays in flight a while
        bot = await start_bot(api, db.url, config, tmp_path)
        try:
            await api.wait_for(lambda: len(reminders()) >= half, timeout=60)
            bot.send_signal(signal.SIGKILL)  # while a reminder is delivered but unanswered
            await bot.wait()
            killed_at = len(reminders())
            bot = await start_bot(api, db.url, config, tmp_path)
            for _ in range(1200):  # until every reminder has an outcome (60 s at most)
                if not await rows(
                    db, "SELECT id FROM outbox WHERE status IN ('pending', 'sending')"
                ):
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)  # a repeat, if any, would come now
        finally:
            if bot.returncode is None:
                bot.send_signal(signal.SIGTERM)
                await asyncio.wait_for(bot.wait(), 30)
    assert half <= killed_at < len(USERS)
    sent = reminders()
    assert len(sent) == len(set(sent)), "a reminder was sent twice"
    statuses = [s for (s,) in await rows(db, "SELECT status FROM outbox")]
    assert set(statuses) <= {"sent", "unknown"}
    assert len(statuses) == len(USERS)
    in_doubt = statuses.count("unknown")
    # Lost at most: those in doubt that had not arrived (the rest arrived exactly once).
    assert len(set(USERS) - set(sent)) <= in_doubt
    counted = await rows(db, "SELECT count(*) FROM events WHERE kind = 'reminder'")
    assert counted == [(len(USERS),)]
