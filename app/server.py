"""The webhook server (``python -m bot serve``): one aiohttp app for every configured channel.

Each channel of the registry that the environment configures mounts its own routes (its
webhook checks the platform's secret or signature first and answers 403 on a mismatch,
having processed nothing: handlers/webhook.py); the officials' dashboard mounts its pages
under /dashboard; the install-step pictures are served at /pictures (handlers/pictures.py:
Zalo fetches them from PUBLIC_URL); ``/healthz`` says which channels run in this worker.
Connections that deliver no request are closed after a deadline and their number is capped
(app/connections.py); in production the server listens on 127.0.0.1 behind a reverse
proxy (docs/deploy/). This module names no channel: see handlers/registry.py.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from aiohttp import web

from app.connections import ConnectionGuard, GuardedSite, body_deadline, quiet_storms
from app.httplimits import DEFAULT_LIMITS, HttpLimits
from app.runtime import Runtime, run_until_signalled, started_channels
from dashboard.web import Dashboard
from handlers.channel import Channel, Route
from handlers.conversation import utcnow
from storage.database import Database

log = logging.getLogger(__name__)
#: Largest request body accepted (webhook deliveries are a few kilobytes).
MAX_BODY = 1 << 20


def make_app(
    channels: Sequence[Channel],
    *,
    worker: int = 0,
    store: Database | None = None,
    limits: HttpLimits = DEFAULT_LIMITS,
    guard: ConnectionGuard | None = None,
    routes: Sequence[Route] = (),
) -> web.Application:
    """The aiohttp application routing each webhook to its channel, and ``routes`` (the
    dashboard's). ``/healthz`` also says
    whether ``store`` can commit now (503 if not: nothing would be acknowledged). Every
    request body is read within ``limits.body_timeout``; served through a
    :class:`GuardedSite`, the connection ``guard`` learns when each request comes and goes."""
    middleware = guard.middleware if guard is not None else body_deadline(limits.body_timeout)
    app = web.Application(client_max_size=MAX_BODY, middlewares=[middleware])
    names = [channel.name for channel in channels]

    async def health(_request: web.Request) -> web.Response:
        problem = await store.can_commit() if store is not None else None
        body = {"ok": problem is None, "channels": names, "worker": worker}
        if problem is not None:
            return web.json_response({**body, "store": problem}, status=503)
        return web.json_response(body)

    app.router.add_get("/healthz", health)
    for route in [*(r for channel in channels for r in channel.routes()), *routes]:
        app.router.add_route(route.method, route.path, route.handler)
    return app


@asynccontextmanager
async def serving(
    app: web.Application,
    guard: ConnectionGuard,
    host: str,
    port: int,
    *,
    reuse_port: bool = False,
) -> AsyncIterator[GuardedSite]:
    """``app`` listening on ``host``:``port`` through ``guard`` until the block ends."""
    quiet_storms()
    runner = web.AppRunner(app, access_log=None)  # URLs may hold tokens
    await runner.setup()
    try:
        site = GuardedSite(runner, host, port, guard, reuse_port=reuse_port)
        await site.start()
        yield site
    finally:
        await runner.cleanup()


async def serve(runtime: Runtime) -> None:
    """Run the webhook server until SIGINT/SIGTERM."""
    async with listening(runtime) as channels:
        await run_until_signalled(runtime, channels)


@asynccontextmanager
async def listening(runtime: Runtime) -> AsyncIterator[list[Channel]]:
    """Every configured channel started, and they, the dashboard and the pictures served on
    the settings' host and port, until the block ends: :func:`serve` without its signal
    handlers and background jobs (which only the main thread can install), so that a test
    can run the same server in a thread of its own process (tests/dashboard/browser.py)."""
    settings = runtime.settings
    dashboard = Dashboard(
        config=runtime.config,
        content=runtime.content,
        desk=runtime.staff,
        public_url=settings.web_url,
        clock=utcnow,
    )
    async with started_channels(runtime, "webhook") as channels:
        limits = settings.http
        guard = ConnectionGuard(limits)
        app = make_app(
            channels,
            worker=settings.worker_index,
            store=runtime.db,
            limits=limits,
            guard=guard,
            routes=[*dashboard.routes(), *runtime.gallery.routes()],
        )
        # The kernel spreads connections over the workers (reuse_port).
        async with serving(
            app, guard, settings.host, settings.port, reuse_port=settings.several_workers
        ):
            names = ", ".join(c.name for c in channels) or "no channel"
            # The address is left out: the log masks runs of digits, an IP address among them.
            log.info(
                "serving %s and the dashboard on port %d (at most %d connections)",
                names,
                settings.port,
                guard.cap,
            )
            yield channels
