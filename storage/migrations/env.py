"""Alembic environment: runs on the connection storage.database.migrate() hands over, or, from
the alembic command line, on the database named by ``-x url=...`` (default: the local SQLite
file), e.g. ``alembic -x url=sqlite:///var/bot.db revision --autogenerate -m "..."``."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from storage.database import DEFAULT_URL, Database
from storage.models import Base

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_from_url() -> None:
    db = Database(context.get_x_argument(as_dictionary=True).get("url", DEFAULT_URL))
    try:
        await db.run(_run)
    finally:
        await db.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    asyncio.run(_run_from_url())
