"""Wiring: config + content + database -> a ready :class:`Conversations` service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from bot.config import Config, load_config
from bot.content import Content, load_content
from bot.engine import Engine
from bot.identity import UserRefs, load_id_secret
from handlers.conversation import Conversations
from storage.database import Database, migrate
from storage.repository import Repository


@dataclass(frozen=True, slots=True)
class Runtime:
    config: Config
    content: Content
    engine: Engine
    repo: Repository
    conversations: Conversations


def build_engine(config_path: Path | None = None) -> Engine:
    config = load_config(config_path)
    return Engine(load_content(config.locale), config)


@asynccontextmanager
async def open_runtime(
    *,
    config_path: Path | None = None,
    database_url: str | None = None,
    id_secret: bytes | None = None,
) -> AsyncIterator[Runtime]:
    """Load config and content, migrate the database, and yield the wired service."""
    engine = build_engine(config_path)
    db = Database(database_url)
    try:
        await migrate(db)
        repo = Repository(db)
        refs = UserRefs(id_secret or load_id_secret())
        yield Runtime(
            config=engine.config,
            content=engine.content,
            engine=engine,
            repo=repo,
            conversations=Conversations(engine, repo, refs),
        )
    finally:
        await db.dispose()
