"""Wiring: config + content + database -> a ready :class:`Conversations` service."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from bot.config import Config, load_config
from bot.content import Content, load_content
from bot.engine import Engine
from bot.identity import UserRefs, load_id_secret
from handlers.conversation import Conversations, utcnow
from handlers.staff import StaffDesk
from storage.database import Database, migrate
from storage.repository import Repository
from storage.staff import StaffRepository

RETENTION_EVERY = timedelta(days=1)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Runtime:
    config: Config
    content: Content
    engine: Engine
    repo: Repository
    conversations: Conversations
    staff: StaffDesk
    db: Database


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
    refs = UserRefs(id_secret or load_id_secret())  # first: production refuses to go on
    engine = build_engine(config_path)
    config = engine.config
    db = Database(database_url)
    try:
        await migrate(db)
        single = config.communes[0].code if len(config.communes) == 1 else None
        repo = Repository(db, default_commune=single)
        staff = StaffRepository(db)
        yield Runtime(
            config=config,
            content=engine.content,
            engine=engine,
            repo=repo,
            conversations=Conversations(engine, repo, refs, area_of=staff.volunteer_commune),
            staff=StaffDesk(config, engine.content, db, staff, refs, utcnow),
            db=db,
        )
    finally:
        await db.dispose()


async def run_retention(runtime: Runtime) -> dict[str, int]:
    """Apply the deployment's retention period once; returns what was folded or deleted."""
    config = runtime.config
    return await runtime.repo.retention(utcnow(), config.retention_months, config.timezone)


async def retention_daily(runtime: Runtime) -> None:
    """Apply the retention period now and then once a day, for as long as the bot runs."""
    while True:
        try:
            counts = await run_retention(runtime)
            log.info("retention: %s", counts)
        except Exception:
            log.exception("retention failed; will try again tomorrow")
        await asyncio.sleep(RETENTION_EVERY.total_seconds())
