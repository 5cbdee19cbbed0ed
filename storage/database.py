"""The database: ``DATABASE_URL`` -> a :class:`Database` that runs transactions for async code.

SQLite is the default (``sqlite:///var/bot.db``); PostgreSQL (asyncpg) works with the same
code. Callers hand :meth:`Database.run` a plain function of a SQLAlchemy
``Connection``; it runs in one transaction:

- on PostgreSQL, through the asyncpg driver (``AsyncConnection.run_sync``);
- on SQLite, on one connection owned by one thread of its own: the event loop never waits
  for the database, so a write lock held by another process (or a slow disk) delays only the
  steps that need the database -- /healthz and the webhooks' checks stay responsive, and a
  step that cannot be committed is not acknowledged. A step's transaction is a few
  statements on a local file, about 0.1 ms, and never waits for the disk: the journal is WAL
  with ``synchronous=NORMAL`` (commits do not fsync) and checkpoints -- the only writes that
  fsync -- run on a thread of their own with their own connection. Running the transactions
  inline on the event loop was about as fast (bench/throughput.py) but froze the whole
  process for up to the 5 s busy timeout whenever another process held the write lock;
  SQLAlchemy over aiosqlite cost about 0.3 ms *per statement* (several thread hops each).

Alembic migrations bring any database up to date at start-up, so a fresh URL just works.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import sqlite3
import stat
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy
import sqlalchemy.exc
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.folders import private_folder

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

DEFAULT_URL = "sqlite:///var/bot.db"
#: How often the SQLite write-ahead log is folded back into the database file -- or sooner,
#: after this many transactions (about 25 KB of log each), so the log stays small under load.
CHECKPOINT_EVERY = 2.0
CHECKPOINT_AFTER = 1_000
#: The log file is cut back to this size after a checkpoint (it never shrinks otherwise).
WAL_SIZE_LIMIT = 64 * 1024 * 1024
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: How long a SQLite transaction waits for another process's write lock before it fails.
LOCK_WAIT = 5.0
#: What a store in trouble raises (locked, read-only, full, unreachable): a step that meets
#: one may succeed later. (SQLite's own errors surface unwrapped from BEGIN IMMEDIATE.)
TROUBLE: tuple[type[BaseException], ...] = (
    sqlalchemy.exc.SQLAlchemyError,
    sqlite3.Error,
    OSError,
    ConnectionError,
)

T = TypeVar("T")
log = logging.getLogger(__name__)


def normalise_url(url: str) -> str:
    """The driver each dialect runs on: asyncpg for PostgreSQL, the standard library's sqlite3
    for SQLite (``sqlite+aiosqlite://``, an older spelling, is accepted and means the same)."""
    for plain, driver in (
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite+aiosqlite://", "sqlite://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url


class Database:
    """Runs transactions on SQLite or PostgreSQL for asyncio code."""

    def __init__(self, url: str = DEFAULT_URL, *, lock_wait: float = LOCK_WAIT):
        """``lock_wait``: how long a SQLite transaction waits for another process's write
        lock before it fails (the step is then not acknowledged and comes again)."""
        self.url = normalise_url(url)
        parsed = make_url(self.url)
        self.dialect = parsed.get_backend_name()
        self._sync: Engine | None = None
        self._async: AsyncEngine | None = None
        self._checkpointer: _Checkpointer | None = None
        self._conn: Connection | None = None
        self._thread: ThreadPoolExecutor | None = None
        if self.dialect == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                _private_sqlite_file(Path(parsed.database), self.safe_url())
                self._checkpointer = _Checkpointer(parsed.database)
            self._sync = sqlalchemy.create_engine(
                parsed, pool_size=1, max_overflow=0, hide_parameters=True
            )
            event.listen(self._sync, "connect", functools.partial(_sqlite_connect, lock_wait))
            event.listen(self._sync, "begin", _sqlite_begin_immediate)
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        else:
            # hide_parameters: an error's message (and so the log) never holds the values of
            # a statement -- user references, sealed addresses, whatever was bound.
            self._async = create_async_engine(
                self.url, pool_pre_ping=True, pool_size=10, max_overflow=0, hide_parameters=True
            )

    async def run(self, work: Callable[[Connection], T]) -> T:
        """Run ``work(connection)`` in one transaction, committed when it returns."""
        if self._async is not None:
            async with self._async.begin() as conn:
                return await conn.run_sync(work)
        assert self._thread is not None
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self._thread, self._run_here, work)
        if self._checkpointer is not None:
            self._checkpointer.wrote()
        return result

    def _run_here(self, work: Callable[[Connection], T]) -> T:
        """On the SQLite thread: one transaction on the one connection."""
        if self._conn is None:
            assert self._sync is not None
            # Kept for the process's life: no pool check-out and reset per transaction.
            self._conn = self._sync.connect()
        with self._conn.begin():
            result = work(self._conn)
        if self._checkpointer is not None:
            self._checkpointer.fold_tail(self._conn.connection.dbapi_connection)  # type: ignore[arg-type]
        return result

    async def dispose(self) -> None:
        if self._async is not None:
            await self._async.dispose()
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._close_here)
            self._thread.shutdown(wait=True)
            self._thread = None
        if self._checkpointer is not None:
            await self._checkpointer.close()
        if self._sync is not None:
            self._sync.dispose()

    def _close_here(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def can_commit(self, patience: float = 0.5) -> str | None:
        """Whether a write transaction can be committed now: None if so, else why not
        ("busy": not within ``patience`` seconds, e.g. another process holds SQLite's write
        lock; "unavailable": read-only, full, unreachable...). A row written and deleted
        again: the commit must write a page, as a step's does."""
        try:
            async with asyncio.timeout(patience):
                await self.run(_probe)
        except TimeoutError:
            return "busy"
        except TROUBLE:
            return "unavailable"
        return None

    def safe_url(self) -> str:
        """The URL without its password, for messages."""
        return make_url(self.url).render_as_string(hide_password=True)


class DatabaseUnavailable(Exception):
    """The database cannot be reached or opened (said in one line, with no password)."""


def _private_sqlite_file(path: Path, url: str) -> None:
    """Create the database file (and its folder, if missing) readable by its owner only:
    folder 0700, file 0600 whatever the umask. SQLite gives the -wal and -shm files it
    creates beside it the database file's mode. A database file left readable by others
    (by an earlier version) is made private."""
    try:
        private_folder(path.parent)
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as exc:
        raise DatabaseUnavailable(f"cannot create {url}: {exc.strerror or exc}") from exc
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        with contextlib.suppress(FileNotFoundError):
            if stat.S_IMODE(file.stat().st_mode) & 0o077:
                try:
                    file.chmod(0o600)
                except PermissionError:
                    log.warning("%s can be read by other users: chmod 600 it", file.name)


class _Checkpointer:
    """Folds SQLite's write-ahead log into the database file, mostly off the event loop.

    A checkpoint copies the log's pages into the database file; the log starts afresh (and
    so stops growing) only once a checkpoint has copied *every* page. Under steady writing
    a checkpoint in another thread never catches up: pages keep arriving while it copies.
    So the thread copies the bulk, and the writer itself copies the few pages left, between
    two of its transactions, where nothing can arrive meanwhile."""

    def __init__(self, path: str):
        self._path = path
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-checkpoint")
        self._conn: sqlite3.Connection | None = None
        self._writes = 0
        self._waiting: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        # A log left behind by a crash is folded in by the first commit (at start, that of
        # the migration check), before the log can grow further.
        self._tail_due = True

    def fold_tail(self, writer: sqlite3.Connection) -> None:
        """Called on the writer's thread after each of its commits, with its connection:
        copy the few pages a background checkpoint left, where nothing can arrive meanwhile."""
        if self._tail_due:
            busy, pages, copied = writer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            self._tail_due = bool(busy) or pages != copied

    def wrote(self) -> None:
        """Called on the event loop after each commit."""
        self._writes += 1
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._later())
        elif self._writes >= CHECKPOINT_AFTER and self._waiting is not None:
            self._waiting.set()  # a busy spell: do not wait for the timer

    async def _later(self) -> None:
        self._waiting = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._waiting.wait(), CHECKPOINT_EVERY)
        self._waiting = None
        if self._writes:
            self._writes = 0
            try:
                await asyncio.get_running_loop().run_in_executor(self._thread, self._checkpoint)
            except sqlite3.Error as exc:
                # A disk that refuses writes (full, read-only): the log keeps every page, and
                # the next commit schedules another try (at most one line per 2 s of writes).
                log.warning("sqlite: checkpoint failed (%s)", type(exc).__name__)
            self._tail_due = True

    def _checkpoint(self, mode: str = "PASSIVE") -> None:
        if self._conn is None:
            self._conn = sqlite3.connect(self._path, timeout=5)
        self._conn.execute(f"PRAGMA wal_checkpoint({mode})")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._finish)
        self._thread.shutdown(wait=True)

    def _finish(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._checkpoint("TRUNCATE")
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _sqlite_connect(lock_wait: float, dbapi_connection: Any, _record: Any) -> None:
    # The driver must not open transactions on its own: _sqlite_begin_immediate does.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets readers and the writer work at once; NORMAL is durable at each checkpoint and
    # safe against application crashes (only an OS crash can lose the last commits).
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={int(lock_wait * 1000)}")
    # Checkpoints (which fsync) are left to _Checkpointer, off the event loop.
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
    cursor.close()


def _sqlite_begin_immediate(connection: Connection) -> None:
    # Take the write lock when a transaction starts, so that a check made inside it (a
    # session's version, a delivery id) still holds when it writes, even if another process
    # uses the same file.
    connection.connection.dbapi_connection.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]


#: The probe's row, one per process (workers probing at once never wait for each other).
_PROBE_NAME = f"-probe-{os.getpid()}"
_PROBE_WRITE = sqlalchemy.text(
    "INSERT INTO leases (name, holder, expires_at) VALUES (:name, 'probe', CURRENT_TIMESTAMP)"
)
_PROBE_UNDO = sqlalchemy.text("DELETE FROM leases WHERE name = :name")


def _probe(conn: Connection) -> None:
    # A transaction that changes nothing commits without writing anything, so it succeeds on
    # a disk that refuses every write (full, read-only, immutable files), where every step
    # fails: bench/faults.py saw /healthz say "ok" through 10 s of it. Writing a row and
    # deleting it leaves the table as it was but makes the commit write its pages.
    conn.execute(_PROBE_WRITE, {"name": _PROBE_NAME})
    conn.execute(_PROBE_UNDO, {"name": _PROBE_NAME})


def alembic_config() -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def schema_head() -> str:
    """The newest migration's revision: each file in migrations/versions is named for its
    revision ("0009_announcement_consent.py" is "0009"), and each follows the one before
    (tests/storage/test_migrations.py holds Alembic's own reading to this)."""
    names = (p.name for p in (MIGRATIONS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))
    return max(name[:4] for name in names)


def _revision(connection: Connection) -> str | None:
    """The revision the database is at (None: never migrated)."""
    if not sqlalchemy.inspect(connection).has_table("alembic_version"):
        return None
    found = connection.execute(sqlalchemy.text("SELECT version_num FROM alembic_version"))
    versions = [str(v) for (v,) in found]
    return versions[0] if len(versions) == 1 else None


#: PostgreSQL advisory lock key held while migrating (any fixed number unique to us).
MIGRATION_LOCK = 0x43_4B_53_01


async def reachable(db: Database) -> None:
    """Raise :class:`DatabaseUnavailable` (one line, no password) if ``db`` cannot be
    connected to and queried: no server, a wrong host, password or database name, a file
    that cannot be opened."""
    try:
        await db.run(lambda conn: conn.execute(sqlalchemy.text("SELECT 1")))
    except (OSError, sqlalchemy.exc.DBAPIError) as exc:
        cause = getattr(exc, "orig", None) or exc
        reason = (str(cause).strip().splitlines() or [""])[0] or type(cause).__name__
        raise DatabaseUnavailable(f"cannot use the database {db.safe_url()}: {reason}") from exc


async def migrate(db: Database) -> None:
    """Bring the database up to the newest schema (idempotent). Workers starting together
    take turns: on PostgreSQL an advisory lock, on SQLite the write lock, serialises them,
    and whoever comes second finds nothing left to do."""

    await reachable(db)
    # Nearly every start finds the database up to date: then Alembic (and Mako and Pygments
    # with it) is not even imported, about 0.5 s of CPU of the ~3.4 s a worker's start costs.
    if await db.run(_revision) == schema_head():
        return

    def upgrade(connection: Connection) -> None:
        from alembic import command

        if connection.dialect.name == "postgresql":
            connection.execute(sqlalchemy.text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")

    await db.run(upgrade)
