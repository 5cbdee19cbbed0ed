"""Wiring: settings + config + content + database -> the services, and the channels on them.

:func:`open_runtime` builds the services (engine, store, conversations, staff desk, help
desk, the one inbound path); :func:`started_channels` builds every channel of the registry that the
environment configures for the mode the process runs in, and starts them;
:func:`run_until_signalled` runs the background jobs (retention, the outbox) until SIGINT,
SIGTERM, or a channel asking to stop (the terminal's /quit).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from app.caches import MODEL_CACHE, PICTURE_CACHE
from app.id_secret import load_id_secret
from app.settings import Settings
from app.training import ModelCache, Training
from bot.config import Config, load_config
from bot.content import Content, load_content
from bot.engine import Engine
from bot.identity import UserRefs
from bot.model import Medium
from bot.pictures import load_pictures
from handlers.channel import Channel, Mode, Services
from handlers.conversation import Conversations, utcnow
from handlers.delivery import Deliverer
from handlers.helpdesk import HelpDesk
from handlers.inbound import Inbound
from handlers.outbox import OutboxWorker
from handlers.pictures import Gallery
from handlers.registry import CHANNELS
from handlers.staff import StaffDesk
from storage.database import TROUBLE, Database, migrate
from storage.inbox import Inbox
from storage.leases import Leases
from storage.outbox import OutboxStore
from storage.repository import Repository
from storage.staff import StaffRepository

RETENTION_EVERY = timedelta(days=1)
#: A lease lasts this long unless renewed (renewed every third of it).
LEASE_TTL = timedelta(seconds=30)

Job = Callable[[], Coroutine[Any, Any, None]]

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
    leases: Leases
    settings: Settings
    inbound: Inbound
    #: The install-step pictures (rendered when channels start: started_channels).
    gallery: Gallery
    helpdesk: HelpDesk
    #: Set to end the process (SIGINT/SIGTERM, or a channel's request).
    stop: asyncio.Event = field(default_factory=asyncio.Event)


def build_engine(config_path: Path) -> Engine:
    config = load_config(config_path)
    return Engine(load_content(config.locale), config)


@asynccontextmanager
async def open_runtime(settings: Settings, *, citizens: bool = True) -> AsyncIterator[Runtime]:
    """Load config and content, migrate the database, and yield the wired services.

    ``citizens=False`` for a command that reads no citizen's message (stats, export,
    invite...): the understanding of typed text is then not trained ahead."""
    # First: in production, no secret means no start.
    refs = UserRefs(load_id_secret(settings.id_secret, production=settings.production))
    engine = build_engine(settings.config_path)
    # Train the understanding of typed messages (3-7 s with scikit-learn's import) in a child
    # process while the channels start: not on the first citizen who types, and not in a
    # thread here, whose hold on the interpreter's lock slowed every reply meanwhile. A
    # command for officials skips it: spawning the child alone kept `stats` waiting ~3 s.
    training = Training(engine.understanding, ModelCache(MODEL_CACHE))
    if citizens:
        training.start()
    config = engine.config
    db = Database(settings.database_url)
    repo: Repository | None = None
    try:
        await migrate(db)
        single = config.communes[0].code if len(config.communes) == 1 else None
        repo = Repository(db, default_commune=single)
        staff = StaffRepository(db)
        conversations = Conversations(
            engine, repo, refs, area_of=staff.volunteer_commune, own_code=staff.own_code
        )
        desk = StaffDesk(
            config, engine.content, db, staff, refs, utcnow, public_url=settings.web_url
        )
        content = engine.content
        shown = {step.id: step.picture for step in content.install if step.picture}
        gallery = Gallery(
            lambda: load_pictures(content.locale, shown=shown, cache=PICTURE_CACHE),
            public_url=settings.public_url,
        )
        helpdesk = HelpDesk(conversations, db)
        desk.helpdesk = helpdesk
        yield Runtime(
            config=config,
            content=engine.content,
            engine=engine,
            repo=repo,
            conversations=conversations,
            staff=desk,
            db=db,
            leases=Leases(db),
            settings=settings,
            inbound=Inbound(conversations, desk, inbox=Inbox(db), helpdesk=helpdesk),
            gallery=gallery,
            helpdesk=helpdesk,
        )
    finally:
        training.close()
        if repo is not None:
            await repo.close()
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


async def with_lease(leases: Leases, name: str, job: Job, ttl: timedelta = LEASE_TTL) -> None:
    """Run ``job`` (a loop that runs until cancelled) only while this process holds lease
    ``name``: among several workers exactly one runs it, and another takes over within
    ``ttl`` if that one dies."""
    task: asyncio.Task[None] | None = None
    troubled = False  # said once per spell of store trouble, not every third of ``ttl``
    try:
        while True:
            try:
                held = await leases.acquire(name, utcnow(), ttl)
                if troubled:
                    log.info("lease %s: the store takes writes again", name)
                troubled = False
            except TROUBLE as exc:
                if not troubled:
                    log.warning("lease %s: could not renew (%s)", name, type(exc).__name__)
                troubled, held = True, False
            except Exception:
                log.exception("lease %s: could not renew", name)
                held = False
            if held and (task is None or task.done()):
                if task is not None and not task.cancelled() and task.exception():
                    log.error("%s stopped: %r; starting it again", name, task.exception())
                task = asyncio.create_task(job())
            elif not held and task is not None:
                log.info("lease %s: held elsewhere now; stopping here", name)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                task = None
            await asyncio.sleep(ttl.total_seconds() / 3)
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            with contextlib.suppress(Exception):
                await leases.release(name)


def outbox_job(
    runtime: Runtime, deliverers: Mapping[str, Deliverer], mediums: Mapping[str, Medium]
) -> Job:
    """The outbox worker (reminders, announcements) sending through ``deliverers``."""

    async def job() -> None:
        store = OutboxStore(runtime.db)
        holder = runtime.leases.holder
        worker = OutboxWorker(store, runtime.conversations, deliverers, holder, mediums=mediums)
        await worker.run()

    return job


@asynccontextmanager
async def started_channels(runtime: Runtime, mode: Mode) -> AsyncIterator[list[Channel]]:
    """Build and start every channel the environment configures for ``mode``; stop them
    (each finishing what it received) on the way out."""
    settings = runtime.settings
    services = Services(
        inbound=runtime.inbound,
        content=runtime.content,
        db=runtime.db,
        mode=mode,
        worker_index=settings.worker_index,
        request_stop=runtime.stop.set,
        gallery=runtime.gallery,
    )
    if mode != "interactive":
        # Rendered from now on, in a thread (the terminal preview: when it first shows one).
        runtime.gallery.start()
    built = [spec.build(settings.environment, services) for spec in CHANNELS]
    channels = [channel for channel in built if channel is not None]
    # The help desk writes to whichever channel each side of a request is on.
    runtime.helpdesk.attach({channel.name: channel for channel in channels})
    started: list[Channel] = []
    try:
        for channel in channels:
            await channel.start()
            started.append(channel)
        yield channels
    finally:
        for channel in reversed(started):
            await channel.stop()


async def run_until_signalled(runtime: Runtime, channels: Sequence[Channel] = ()) -> None:
    """Run retention and -- given channels to send through -- the outbox, the inbox's and
    the help desk's sweepers, each in whichever worker holds its lease, until SIGINT/SIGTERM
    or a channel's request to stop."""
    stop = runtime.stop
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    everything = [("retention", lambda: retention_daily(runtime))]
    deliverers: dict[str, Deliverer] = {channel.name: channel for channel in channels}
    if deliverers:
        mediums = {c.name: c.capabilities.medium(c.name) for c in channels}
        everything.append(("outbox", outbox_job(runtime, deliverers, mediums)))
        by_name = {channel.name: channel for channel in channels}
        everything.append(("inbox", lambda: runtime.inbound.sweep(by_name)))
        everything.append(("helpdesk", runtime.helpdesk.sweep))
    tasks = [asyncio.create_task(with_lease(runtime.leases, n, j)) for n, j in everything]
    try:
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
