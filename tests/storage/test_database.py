"""Migrations and URLs: a fresh database of either kind is brought up to date."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

import storage.database
from storage.database import Database, migrate, normalise_url
from storage.models import Base
from tests.conftest import ROOT


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("sqlite:///var/bot.db", "sqlite:///var/bot.db"),
        ("sqlite+aiosqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_urls_name_the_driver_each_dialect_runs_on(url: str, expected: str) -> None:
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


def _put(key: int, value: bytes, conn: Connection) -> None:
    conn.execute(text("INSERT OR REPLACE INTO blobs VALUES (:k, :v)"), {"k": key, "v": value})


def _size(path: Path) -> int:
    return path.stat().st_size


async def _write_steadily(db: Database, count: int, wal: Path) -> float:
    """`count` transactions of 8 KB one after another; the largest log size seen, in MB."""
    blob = os.urandom(8_000)
    largest = 0
    for i in range(count):
        await db.run(partial(_put, i % 500, blob))
        await asyncio.sleep(0)  # as between two updates of a busy bot
        if i % 100 == 0:
            largest = max(largest, _size(wal))
    return largest / 1e6


async def test_sqlite_log_stays_small_under_steady_writing(tmp_path: Path) -> None:
    """Under writing that never pauses, the log is still folded in and started afresh (it
    grew without end when checkpoints ran only beside the writer)."""
    path = tmp_path / "bot.db"
    db = Database(f"sqlite:///{path}")
    try:
        await db.run(lambda c: c.execute(text("CREATE TABLE blobs (id INTEGER PRIMARY KEY, v)")))
        largest = await _write_steadily(db, 12_000, tmp_path / "bot.db-wal")  # ~100 MB of log
    finally:
        await db.dispose()
    assert largest < 50


async def test_sqlite_log_left_by_a_crash_is_folded_in_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A log that starts afresh is cut back to this size; so a small file shows it did.
    monkeypatch.setattr(storage.database, "WAL_SIZE_LIMIT", 1_000_000)
    path, wal = tmp_path / "bot.db", tmp_path / "bot.db-wal"
    crashed = (
        "import os, sqlite3, sys\n"
        "conn = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "conn.execute('PRAGMA journal_mode=WAL'); conn.execute('PRAGMA wal_autocheckpoint=0')\n"
        # No fsync per commit (2,000 of them: 10 s of waiting on a busy disk); a process
        # that dies leaves the same log either way, only a machine that dies would not.
        "conn.execute('PRAGMA synchronous=OFF')\n"
        "conn.execute('CREATE TABLE blobs (id INTEGER PRIMARY KEY, v)')\n"
        "for i in range(2000):\n"
        "    conn.execute('INSERT INTO blobs VALUES (?, ?)', (i, os.urandom(8000)))\n"
        "os._exit(0)  # no checkpoint on the way out, as after SIGKILL\n"
    )
    subprocess.run([sys.executable, "-c", crashed, str(path)], check=True)  # noqa: ASYNC221
    assert _size(wal) > 16_000_000
    db = Database(f"sqlite:///{path}")
    try:
        for i in range(2):  # the first folds the log in, the second starts it afresh
            await db.run(partial(_put, i, b"new"))
        assert _size(wal) <= 1_000_000
        count = text("SELECT count(*) FROM blobs")
        assert await db.run(lambda c: c.execute(count).scalar()) == 2000
    finally:
        await db.dispose()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_sqlite_files_are_private(tmp_path: Path) -> None:
    """The folder the bot creates is 0700, the database and its -wal/-shm 0600, whatever the
    umask (here the usual 022, which would make them readable by every user)."""
    old = os.umask(0o022)
    try:
        path = tmp_path / "var" / "bot.db"
        db = Database(f"sqlite:///{path}")
        await migrate(db)
        await db.run(lambda c: c.execute(text("SELECT count(*) FROM sessions")))
        files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
        assert all(f.exists() for f in files)
        assert [mode(f) for f in files] == [0o600] * 3
        assert mode(path.parent) == 0o700
        await db.dispose()
    finally:
        os.umask(old)


def loosen(database: Path, folder: Path) -> None:
    """As an earlier version left them: readable by every user."""
    database.chmod(0o644)
    folder.chmod(0o755)


async def test_an_existing_world_readable_database_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    db = Database(f"sqlite:///{path}")
    await migrate(db)
    await db.dispose()
    loosen(path, tmp_path)
    db = Database(f"sqlite:///{path}")
    await migrate(db)
    await db.dispose()
    assert mode(path) == 0o600
    assert mode(tmp_path) == 0o755, "a folder the bot did not create is left alone"


async def test_a_failing_statement_logs_no_parameter(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """SQLAlchemy puts a failing statement's parameters in its message ("[parameters: ...]"),
    which then lands in the log: a user reference, an address, a code typed by mistake."""
    db = Database(database_url)
    await migrate(db)
    secret = "0912345678-SENTINEL"
    insert = text("INSERT INTO sessions (no_such_column) VALUES (:value)")
    try:
        with pytest.raises(DBAPIError) as caught:
            await db.run(lambda c: c.execute(insert, {"value": secret}))
        logging.getLogger("bot").error("step failed", exc_info=caught.value)
    finally:
        await db.dispose()
    assert "no_such_column" in caplog.text
    assert secret not in caplog.text


async def test_a_store_whose_disk_refuses_writes_is_not_reported_healthy(tmp_path: Path) -> None:
    """A disk that refuses every write (full, read-only, immutable files) still lets SQLite
    take the write lock and commit a transaction that changes nothing; so a probe that wrote
    nothing said "ok" while every step failed (bench/faults.py: /healthz answered 200 during
    10 s of read-only files, while 317 deliveries got 503). Here the writes are refused as on
    a full disk: the probing process may write files no larger than 0 bytes."""
    path = tmp_path / "bot.db"
    db = Database(f"sqlite:///{path}")
    try:
        await migrate(db)
    finally:
        await db.dispose()
    probing = (
        "import asyncio, resource, sys\n"
        "from storage.database import Database\n"
        "async def main():\n"
        "    db = Database(sys.argv[1])\n"
        "    print(await db.can_commit(), flush=True)\n"
        "    resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))\n"
        "    print(await db.can_commit(), flush=True)\n"
        "    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)\n"
        "    print(await db.can_commit(), flush=True)\n"
        "    await db.dispose()\n"
        "asyncio.run(main())\n"
    )
    done = await asyncio.create_subprocess_exec(
        sys.executable, "-c", probing, f"sqlite:///{path}", cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
    )  # fmt: skip
    out, _ = await done.communicate()
    assert out.decode().split() == ["None", "unavailable", "None"]


async def test_a_checkpoint_the_disk_refuses_is_logged_not_left_unretrieved(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """bench/faults.py made the database files immutable for 10 s: the background checkpoint
    failed with "disk I/O error" and its task died with the exception unretrieved (a traceback
    in the log, and no checkpoint tried again). Here every checkpoint fails: the path is a
    folder, which SQLite cannot open."""
    checkpointer = storage.database._Checkpointer(str(tmp_path))
    checkpointer.wrote()
    await asyncio.sleep(0)  # the task waits for the timer now...
    for _ in range(storage.database.CHECKPOINT_AFTER):
        checkpointer.wrote()  # ...and a busy spell ends the wait
    task = checkpointer._task
    assert task is not None
    with caplog.at_level(logging.WARNING, logger="storage.database"):
        await asyncio.wait_for(task, 10)
    assert "checkpoint failed (OperationalError)" in caplog.text
    checkpointer.wrote()  # the next commit schedules another
    assert checkpointer._task is not task
    await checkpointer.close()
