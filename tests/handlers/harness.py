"""Drive the real Telegram channel over HTTP, as a user would: a chat harness and fixture."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.engine import Engine
from bot.identity import UserRefs
from handlers.conversation import Conversations, utcnow
from handlers.helpdesk import HelpDesk
from handlers.inbound import Inbound
from handlers.pictures import Gallery
from handlers.staff import StaffDesk
from handlers.telegram import TelegramChannel
from storage.database import Database
from storage.repository import Repository
from storage.staff import StaffRepository
from tests.conftest import TEST_SECRET, Migrated
from tests.fakes.telegram_api import FakeBotAPI

#: Nine digits, as a Telegram id may have: tests look for it in everything stored and logged,
#: and a short one turned up by chance inside a timestamp's microseconds ("13:35:23.500161").
USER = 730_948_621


class Harness:
    """A user's side of the chat: send things, wait for the bot's whole answer."""

    def __init__(
        self, api: FakeBotAPI, engine: Engine, db: Database, gallery: Gallery | None = None
    ):
        self.api = api
        self.engine = engine
        self.db = db
        self.gallery = gallery
        self.channel: TelegramChannel | None = None
        self.presses = 0

    async def start_bot(self) -> None:
        refs = UserRefs(TEST_SECRET)
        staff = StaffRepository(self.db)
        conversations = Conversations(
            self.engine,
            Repository(self.db),
            refs,
            area_of=staff.volunteer_commune,
            own_code=staff.own_code,
        )
        desk = StaffDesk(self.engine.config, self.engine.content, self.db, staff, refs, utcnow)
        desk.helpdesk = HelpDesk(conversations, self.db)
        self.channel = TelegramChannel(
            Inbound(conversations, desk, helpdesk=desk.helpdesk),
            self.engine.content,
            self.api.token,
            base_url=self.api.base_url,
            poll_timeout=1,
            gallery=self.gallery,
        )
        desk.helpdesk.attach({self.channel.name: self.channel})
        await self.channel.start()

    async def stop_bot(self) -> None:
        assert self.channel is not None
        await self.channel.stop()
        self.channel = None

    async def answer(self, inject: Any, user: int = USER) -> list[dict[str, Any]]:
        """Inject an update (a callable returning its id) and return the bot's new messages."""
        before = len(self.api.sent(user))
        inject()
        await self.api.wait_for(lambda: len(self.api.sent(user)) > before, timeout=10)
        assert self.channel is not None
        await self.channel.inbound.drain()
        return self.api.sent(user)[before:]

    async def say(self, words: str, user: int = USER) -> list[dict[str, Any]]:
        return await self.answer(lambda: self.api.add_text(user, words), user)

    async def press(self, option_id: str, user: int = USER) -> list[dict[str, Any]]:
        """Press the button with this option id on the bot's last message."""
        data = button_data(self.api.sent(user)[-1], option_id)
        self.presses += 1
        return await self.answer(lambda: self.api.add_callback(user, data), user)


def buttons(message: dict[str, Any]) -> list[tuple[str, str]]:
    markup = message.get("reply_markup") or {}
    if isinstance(markup, str):
        markup = json.loads(markup)
    return [
        (b["text"], b["callback_data"]) for row in markup.get("inline_keyboard", []) for b in row
    ]


def button_data(message: dict[str, Any], option_id: str) -> str:
    for _, data in buttons(message):
        if data.split("|", 1)[1] == option_id:
            return data
    raise AssertionError(f"no button {option_id!r} in {buttons(message)}")


@pytest.fixture
async def harness(engine: Engine, tmp_path: Path, migrated: Migrated) -> AsyncIterator[Harness]:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    await migrated.ready(url)
    db = Database(url)
    async with FakeBotAPI() as api:
        h = Harness(api, engine, db)
        await h.start_bot()
        try:
            yield h
        finally:
            if h.channel is not None:
                await h.stop_bot()
            await db.dispose()
