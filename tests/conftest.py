"""Shared fixtures: the real content and demo config, a fixed clock, databases."""

from __future__ import annotations

import functools
import gc
import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

if TYPE_CHECKING:
    from bot.config import Config
    from bot.content import Content
    from bot.engine import Engine
    from bot.pictures import Pictures
    from storage.database import Database


def pytest_configure(config: pytest.Config) -> None:
    """The test suite wires channels itself, as the application does: the same process
    switches, in every process that runs tests. The bot's own modules are imported where they
    are used: xdist's controller, which runs none, loads this file too, and importing them
    there (1.4 s of a core) delayed the start of the workers."""
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        return
    from app.settings import prepare_process

    prepare_process()


# Property-based tests (Hypothesis): bounded, so the suite stays fast; under CI the same
# examples every run (derandomized, no example database), elsewhere new ones each run.
hypothesis_settings.register_profile(
    "ci",
    max_examples=100,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
hypothesis_settings.register_profile("dev", max_examples=100, deadline=None)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") == "true" else "dev")

ROOT = Path(__file__).resolve().parent.parent
#: 08:00 in Vietnam (UTC+7).
T0 = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
TEST_SECRET = b"test-secret-0123456789abcdef"


@pytest.fixture(scope="session")
def config() -> Config:
    from bot.config import load_config

    return load_config(ROOT / "config.toml")


@functools.cache
def _content() -> Content:
    """The content, loaded once per process (the fixture and :func:`caches` share it, and so
    the understanding built from it: 1.2 s)."""
    from bot.content import load_content

    return load_content("vi")


@pytest.fixture(scope="session")
def content() -> Content:
    return _content()


@pytest.fixture(scope="session")
def engine(content: Content, config: Config, caches: Path) -> Engine:
    """The engine, its classifier read from the shared cache (:func:`caches`) rather than
    trained again in each process (1.5-3 s with scikit-learn's import)."""
    from app.training import ModelCache
    from bot.engine import Engine

    engine = Engine(content, config)
    if not engine.understanding.ready:
        ModelCache(caches / "models").install(engine.understanding)
    _kept_for_the_session()
    return engine


def _kept_for_the_session() -> None:
    """Set aside from the garbage collector what exists now: the session's content, engine
    and imports, alive until the end. A full collection walked them again and again (250,000
    objects; the channel contract spent 4.7 s in full collections, 1.9 s once set aside).
    Young objects are collected after 10,000 allocations rather than 700: a test allocates in
    bursts that mostly die together (contract, staff and Zalo tests: 2.7 s -> 1.2 s in the
    collector, 1,600 -> 360 young collections)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


#: The caches of the repository's own ``var/`` (what ``make run`` from the repository uses):
#: trained classifiers and rendered pictures, each under a key of everything it depends on.
SHARED_VAR = ROOT / "var"


def _fill_caches(content: Content) -> None:
    """Train the classifier and render the pictures into :data:`SHARED_VAR` unless they are
    there already, once for every process of the session (a lock: xdist's workers start
    together). Each server a test starts in a folder of its own would otherwise train
    (3-7 s of a core, in a child) and render (2.5 s) again: :func:`shared_caches`."""
    import fcntl

    from app.training import ModelCache
    from bot.classifier import fit
    from bot.folders import private_folder
    from bot.pictures import load_pictures
    from bot.understanding import Understanding

    private_folder(SHARED_VAR)
    with open(SHARED_VAR / ".caches.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        understanding = Understanding.from_content(content)
        models = ModelCache(SHARED_VAR / "models")
        key = ModelCache.key(understanding.fingerprint())
        if models.load(key) is None:
            models.save(key, fit(*understanding.training))
        shown = {s.id: s.picture for s in content.install if s.picture}
        load_pictures(content.locale, shown=shown, cache=SHARED_VAR / "pictures")


@pytest.fixture(scope="session", autouse=True)
def caches() -> Path:
    """:data:`SHARED_VAR`, filled (:func:`_fill_caches`). Not from the ``content`` fixture:
    a test may give a parameter that name."""
    _fill_caches(_content())
    _kept_for_the_session()
    return SHARED_VAR


def shared_caches(folder: Path) -> Path:
    """Make ``folder/var`` (the var/ of a process started in ``folder``) use the session's
    caches of trained classifiers and rendered pictures; its database and identity secret
    stay its own. Returns ``folder``."""
    from app.caches import MODEL_CACHE, PICTURE_CACHE
    from bot.folders import private_folder

    var = folder / MODEL_CACHE.parent
    private_folder(var)
    for cache in (MODEL_CACHE, PICTURE_CACHE):
        link = folder / cache
        if not link.exists():
            link.symlink_to(SHARED_VAR / cache.name, target_is_directory=True)
    return folder


@pytest.fixture(scope="session")
def pictures(content: Content, caches: Path) -> Pictures:
    """The install-step pictures, read from the shared cache (rendering them: about 2.5 s)."""
    from bot.pictures import load_pictures

    shown = {s.id: s.picture for s in content.install if s.picture}
    return load_pictures("vi", shown=shown, cache=caches / "pictures")


def postgres_url() -> str | None:
    """The PostgreSQL server for tests (``TEST_POSTGRES_URL``); required when CI=true."""
    url = os.environ.get("TEST_POSTGRES_URL")
    if not url and os.environ.get("CI") == "true":
        pytest.fail("CI=true but TEST_POSTGRES_URL is not set: PostgreSQL tests must run in CI")
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, migrated: Migrated
) -> Iterator[str]:
    """A fresh, empty database of each kind (for a test that asks for :func:`db` too, the
    migrated one that fixture gives)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    url = postgres_url()
    if url is None:
        pytest.skip("set TEST_POSTGRES_URL to run PostgreSQL tests")
    import asyncio

    # `db` empties it to the migrated tables itself: emptying it of tables first would only
    # make that fixture migrate again (0.1-0.3 s).
    asyncio.run(migrated.postgres(url, tables="db" not in request.fixturenames))
    yield migrated.postgres_url


def _fresh_postgres_schema(url: str) -> Iterator[str]:
    """A throw-away database on the server ``url``, dropped afterwards (bench/helpdesk.py)."""
    import asyncio
    import uuid

    import asyncpg
    from sqlalchemy.engine import make_url

    base = make_url(url)
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def db(database_url: str, migrated: Migrated) -> AsyncIterator[Database]:
    """A migrated, empty database (:class:`Migrated`: SQLite a copy of a file migrated once
    per process, PostgreSQL the process's database emptied of rows). Migrating each test's
    database took 0.1-0.3 s of CPU, on hundreds of tests."""
    from storage.database import Database

    await migrated.ready(database_url)
    database = Database(database_url)
    try:
        yield database
    finally:
        await database.dispose()


async def migrated_sqlite_file(url: str) -> None:
    """Migrate the SQLite database ``url`` and close it with its log folded in (a checkpoint
    when the last connection closes: the file alone holds everything)."""
    from storage.database import Database, migrate

    database = Database(url)
    try:
        await migrate(database)
    finally:
        await database.dispose()


class Migrated:
    """Each test's database, empty or migrated, made quickly. SQLite: a copy of a file migrated
    once per process. PostgreSQL: one database per process, emptied for each test -- its
    tables dropped, or (migrated) its rows removed; creating a database for each test took
    0.4 s of waiting on the server (``CREATE DATABASE``, on 186 tests)."""

    def __init__(self, folder: Path):
        self._folder = folder
        self._sqlite: Path | None = None
        self._admin = ""
        self._name = ""  # this process's PostgreSQL database
        self._url = ""
        self._head: tuple[str, str] | None = None  # its tables and version when migrated

    @property
    def postgres_url(self) -> str:
        return self._url

    async def postgres(self, server: str, *, tables: bool) -> None:
        """This process's PostgreSQL database on ``server`` (made the first time), with no
        connection left from an earlier test, and no table if ``tables``."""
        import uuid

        import asyncpg
        from sqlalchemy.engine import make_url

        base = make_url(server)
        if not self._name:
            self._admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
            self._name = f"t_{uuid.uuid4().hex[:12]}"
            await self._sql(f'CREATE DATABASE "{self._name}"')
        self._url = base.set(database=self._name).render_as_string(hide_password=False)
        # A server a test killed may leave its connections (and their locks) a moment.
        await self._sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            f" WHERE datname = '{self._name}' AND pid <> pg_backend_pid()"
        )
        if tables:
            conn = await asyncpg.connect(self._own())
            try:
                await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
            finally:
                await conn.close()

    async def ready(self, url: str) -> None:
        """The database ``url`` migrated and empty."""
        import shutil

        from sqlalchemy.engine import make_url

        target = make_url(url)
        if target.get_backend_name() == "sqlite":
            if self._sqlite is None:
                template = self._folder / "migrated.db"
                await migrated_sqlite_file(f"sqlite:///{template}")
                self._sqlite = template
            assert target.database  # a file: the fixture's, not yet opened
            shutil.copyfile(self._sqlite, target.database)
            os.chmod(target.database, 0o600)
            return
        await self._empty_migrated(url)

    async def _empty_migrated(self, url: str) -> None:
        """The process's database migrated and without rows: emptied if a test left it
        migrated (tables and version as after migrating), else dropped and migrated again."""
        import asyncpg

        from storage.database import Database, migrate

        conn = await asyncpg.connect(self._own())
        try:
            shape = await self._shape(conn)
            if shape is not None and shape == self._head:
                # DELETE, not TRUNCATE: 20 ms instead of 200 (TRUNCATE gives each of the 22
                # tables new files), on 186 tests. Foreign keys are not checked meanwhile
                # (replica role), so the order does not matter; counters start again at 1.
                tables = [t for t in shape[0].split(",") if t != "alembic_version"]
                sequences = await conn.fetch(
                    "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'"
                )
                await conn.execute(
                    "SET session_replication_role = replica; "
                    + "".join(f'DELETE FROM "{t}"; ' for t in tables)
                    + "".join(f'ALTER SEQUENCE "{s}" RESTART; ' for (s,) in sequences)
                    + "SET session_replication_role = DEFAULT"
                )
                return
            await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        finally:
            await conn.close()
        database = Database(url)
        try:
            await migrate(database)
        finally:
            await database.dispose()
        conn = await asyncpg.connect(self._own())
        try:
            self._head = await self._shape(conn)
        finally:
            await conn.close()

    @staticmethod
    async def _shape(conn: Any) -> tuple[str, str] | None:
        tables: str | None = await conn.fetchval(
            "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables"
            " WHERE schemaname = 'public'"
        )
        if not tables or "alembic_version" not in tables.split(","):
            return None
        version: str | None = await conn.fetchval("SELECT max(version_num) FROM alembic_version")
        return (tables, version or "")

    def _own(self) -> str:
        from sqlalchemy.engine import make_url

        return make_url(self._admin).set(database=self._name).render_as_string(hide_password=False)

    async def _sql(self, sql: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(self._admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def close(self) -> None:
        if self._name:
            await self._sql(f'DROP DATABASE IF EXISTS "{self._name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Migrated]:
    import asyncio

    templates = Migrated(tmp_path_factory.mktemp("migrated"))
    yield templates
    asyncio.run(templates.close())


async def rows(db: Database, sql: str) -> list[Any]:
    """The rows of a raw SQL query (for assertions)."""
    from sqlalchemy import text

    return await db.run(lambda conn: list(conn.execute(text(sql)).all()))


#: Modules whose tests start servers, browsers or other processes, the longest first (their
#: durations with `--durations`). They are collected first, so that under
#: `pytest -n auto --dist worksteal` (make test) they start early and the other worker takes
#: the quick tests meanwhile, instead of one of them starting last and running alone.
SLOW_FIRST = (
    "tests/handlers/test_helpdesk_crash.py",
    "tests/handlers/test_outbox_crash.py",
    "tests/handlers/test_serve_workers.py",
    "tests/app/test_training.py",
    "tests/dashboard/test_browser.py",
    "tests/handlers/test_web_browser.py",
    "tests/app/test_connections.py",
    "tests/storage/test_database.py",
    "tests/app/test_nginx.py",
    "tests/handlers/test_workers.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {path: i for i, path in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(SLOW_FIRST)))


def pytest_runtest_teardown(item: pytest.Item) -> None:
    """Let go of the test's web application. aiohttp keeps the middleware chain of every
    (handler, applications) pair it served in a process-wide cache of 1,024 entries, meant
    for a server's one application: each test's application stayed alive with all it holds
    (its database, loop, channels), about 3,200 objects a test, and every full collection of
    the garbage walked them all again (channel contract: 300,000 objects after 25 tests,
    626,000 after 125; 0.4-1.5 s per collection). home-assistant/supervisor#7196 clears it
    the same way; the name is private, hence getattr."""
    import aiohttp.web_app

    cached = getattr(aiohttp.web_app, "_cached_build_middleware", None)
    if cached is not None:
        cached.cache_clear()
