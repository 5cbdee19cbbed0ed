"""A wired conversation service on a fresh database."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.engine import Engine
from bot.identity import UserRefs
from handlers.conversation import Conversations
from storage.repository import Repository
from tests.conftest import TEST_SECRET


@pytest.fixture
def conversations(engine: Engine, db: AsyncEngine) -> Conversations:
    return Conversations(engine, Repository(db), UserRefs(TEST_SECRET))
