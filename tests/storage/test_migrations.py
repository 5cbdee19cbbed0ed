"""A start finds the schema's head without Alembic (storage.database.schema_head): that head
is Alembic's, and a database behind it is still brought up to it."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import text

from storage.database import Database, alembic_config, migrate, schema_head


def test_the_head_read_from_the_file_names_is_alembics() -> None:
    scripts = ScriptDirectory.from_config(alembic_config())
    assert scripts.get_heads() == [schema_head()]
    for script in scripts.walk_revisions():
        assert script.path is not None
        assert Path(script.path).name.startswith(f"{script.revision}_")


async def test_a_database_one_migration_behind_is_brought_up(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'bot.db'}")
    try:
        await migrate(db)

        def back_one(connection: object) -> None:
            cfg = alembic_config()
            cfg.attributes["connection"] = connection
            command.downgrade(cfg, "-1")

        await db.run(back_one)
        version = "SELECT version_num FROM alembic_version"
        assert await db.run(lambda c: c.execute(text(version)).scalar()) != schema_head()
        await migrate(db)
        assert await db.run(lambda c: c.execute(text(version)).scalar()) == schema_head()
    finally:
        await db.dispose()
