"""The web server (``python -m bot serve``): one aiohttp app for every configured channel and
the officials' dashboard.

Each channel of the registry that the environment configures mounts its own routes (its
webhook checks the platform's secret or signature first and answers 403 on a mismatch,
having processed nothing); the dashboard mounts its pages under /dashboard; ``/healthz``
says which channels run in this worker. This module names no channel: see
handlers/registry.py.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from aiohttp import web

from app.runtime import Runtime, run_until_signalled, started_channels
from dashboard.web import Dashboard
from handlers.channel import Channel, Route
from handlers.conversation import utcnow

log = logging.getLogger(__name__)
#: Largest request body accepted (webhook deliveries are a few kilobytes).
MAX_BODY = 1 << 20


def make_app(
    channels: Sequence[Channel], *, worker: int = 0, routes: Sequence[Route] = ()
) -> web.Application:
    """The aiohttp application routing each webhook to its channel; ``routes``: more
    (the dashboard's)."""
    app = web.Application(client_max_size=MAX_BODY)
    names = [channel.name for channel in channels]

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "channels": names, "worker": worker})

    app.router.add_get("/healthz", health)
    for route in [*(r for channel in channels for r in channel.routes()), *routes]:
        app.router.add_route(route.method, route.path, route.handler)
    return app


async def serve(runtime: Runtime) -> None:
    """Run the webhook server until SIGINT/SIGTERM."""
    settings = runtime.settings
    dashboard = Dashboard(
        config=runtime.config,
        content=runtime.content,
        desk=runtime.staff,
        public_url=settings.web_url,
        clock=utcnow,
    )
    async with started_channels(runtime, "webhook") as channels:
        app = make_app(channels, worker=settings.worker_index, routes=dashboard.routes())
        runner = web.AppRunner(app, access_log=None)  # URLs may hold tokens
        await runner.setup()
        site = web.TCPSite(
            runner,
            host=settings.host,
            port=settings.port,
            # The kernel spreads connections over the workers.
            reuse_port=settings.several_workers,
        )
        await site.start()
        names = ", ".join(c.name for c in channels) or "no channel"
        log.info("serving %s and the dashboard on port %d", names, settings.port)
        try:
            await run_until_signalled(runtime, channels)
        finally:
            await runner.cleanup()
