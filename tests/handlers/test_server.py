"""The webhook server: Telegram's webhook over real HTTP, health check, secrets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from app.server import make_app
from bot.engine import Engine
from bot.identity import UserRefs
from handlers.conversation import Conversations
from handlers.inbound import Inbound
from handlers.telegram import TelegramChannel
from storage.database import Database
from storage.repository import Repository
from tests.conftest import TEST_SECRET, rows
from tests.fakes.telegram_api import FakeBotAPI, make_text_update

SECRET = "s3cret-Webhook_token"
USER = 6001


class Served:
    def __init__(self, api: FakeBotAPI, server: TestServer, db: Database):
        self.api = api
        self.server = server
        self.db = db
        self.next_id = 1

    async def post(self, update: dict[str, Any], secret: str = SECRET) -> int:
        if "update_id" not in update:
            update = {"update_id": self.next_id, **update}
            self.next_id += 1
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret}
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                self.server.make_url("/telegram/webhook"), json=update, headers=headers
            ) as response,
        ):
            return response.status


@pytest.fixture
async def served(engine: Engine, db: Database) -> AsyncIterator[Served]:
    conversations = Conversations(engine, Repository(db), UserRefs(TEST_SECRET))
    async with FakeBotAPI() as api:
        telegram = TelegramChannel(
            Inbound(conversations),
            engine.content,
            api.token,
            base_url=api.base_url,
            webhook_secret=SECRET,
            webhook_url="https://bot.example/telegram/webhook",
        )
        await telegram.start()
        server = TestServer(make_app([telegram]))
        await server.start_server()
        try:
            yield Served(api, server, db)
        finally:
            await server.close()
            await telegram.stop()


async def test_webhook_registered_with_its_secret(served: Served) -> None:
    (call,) = served.api.calls_of("setWebhook")
    assert call.params["url"] == "https://bot.example/telegram/webhook"
    assert call.params["secret_token"] == SECRET


async def test_webhook_answers_after_the_step_is_committed(served: Served) -> None:
    status = await served.post(make_text_update(USER, "/start"))
    assert status == 200
    # The answer came after the commit: the session is already stored.
    assert (await rows(served.db, "SELECT count(*) FROM sessions"))[0][0] == 1
    await served.api.wait_sent(USER, 1)


@pytest.mark.parametrize("secret", ["", "wrong", SECRET + "x"])
async def test_wrong_secret_is_refused_and_nothing_processed(served: Served, secret: str) -> None:
    assert await served.post(make_text_update(USER, "/start"), secret=secret) == 403
    assert await rows(served.db, "SELECT * FROM sessions") == []
    assert served.api.sent(USER) == []


async def test_same_update_twice_is_applied_once(served: Served) -> None:
    update = {"update_id": 77, **make_text_update(USER, "/start")}
    assert await served.post(update) == 200
    await served.api.wait_sent(USER, 1)
    assert await served.post(update) == 200
    assert (await rows(served.db, "SELECT count(*) FROM events WHERE kind = 'started'"))[0][0] == 1
    assert len(served.api.sent(USER)) == 1


async def test_health_and_absent_channels(served: Served) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(served.server.make_url("/healthz")) as response:
            assert await response.json() == {"ok": True, "channels": ["telegram"], "worker": 0}
        async with session.post(served.server.make_url("/zalo/bot/webhook"), json={}) as response:
            assert response.status == 404
