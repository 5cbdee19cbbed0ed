"""Migrations and URLs: a fresh database of either kind is brought up to date."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from storage.database import Database, migrate, normalise_url
from storage.models import Base
from tests.conftest import ROOT


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
    assert set(Base.metadata.tables) | {"alembic_version"} == tables


async def test_migrations_match_the_models(db: Database) -> None:
    """What the migrations build is what storage/models.py declares (no forgotten column,
    index or constraint)."""

    def differences(conn: Connection) -> list[object]:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        return list(compare_metadata(context, Base.metadata))

    assert await db.run(differences) == []


async def test_migrating_twice_is_harmless(database_url: str) -> None:
    db = Database(database_url)
    try:
        await migrate(db)
        await migrate(db)
    finally:
        await db.dispose()


def test_workers_starting_together_migrate_once(database_url: str) -> None:
    """Several worker processes starting at once on a fresh database all come up."""
    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "bot", "migrate"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=60)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
