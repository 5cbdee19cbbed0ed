"""A wired conversation service on a fresh database; a Telegram chat harness."""

from __future__ import annotations

import pytest

from bot.engine import Engine
from bot.identity import UserRefs
from handlers.conversation import Conversations
from storage.database import Database
from storage.repository import Repository
from tests.conftest import TEST_SECRET
from tests.handlers.harness import harness  # the fixture

__all__ = ["conversations", "harness"]


@pytest.fixture
def conversations(engine: Engine, db: Database) -> Conversations:
    return Conversations(engine, Repository(db), UserRefs(TEST_SECRET))
