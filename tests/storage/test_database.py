"""Migrations and URLs: a fresh database of either kind is brought up to date."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from storage.database import Database, migrate, normalise_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("sqlite:///var/bot.db", "sqlite+aiosqlite:///var/bot.db"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
    ],
)
def test_plain_urls_get_the_async_driver(url: str, expected: str) -> None:
    assert normalise_url(url) == expected


async def test_migrations_create_every_table(db: Database) -> None:
    tables = await db.run(lambda c: set(inspect(c).get_table_names()))
    assert {"sessions", "events", "completions", "deliveries", "alembic_version"} <= tables


async def test_migrating_twice_is_harmless(database_url: str) -> None:
    db = Database(database_url)
    try:
        await migrate(db)
        await migrate(db)
    finally:
        await db.dispose()
