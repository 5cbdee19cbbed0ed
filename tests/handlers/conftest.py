"""A wired conversation service on a fresh database."""

from __future__ import annotations

import pytest

from bot.engine import Engine
from bot.identity import UserRefs
from handlers.conversation import Conversations
from storage.database import Database
from storage.repository import Repository
from tests.conftest import TEST_SECRET


@pytest.fixture
def conversations(engine: Engine, db: Database) -> Conversations:
    return Conversations(engine, Repository(db), UserRefs(TEST_SECRET))
