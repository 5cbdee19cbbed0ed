"""The webhook server (``python -m bot serve``): one aiohttp app for every configured channel.

Routes: ``/telegram/webhook``, ``/zalo/bot/webhook``, ``/zalo/oa/webhook`` and ``/healthz``.
Each webhook checks its platform's secret or signature first and answers 403 on a mismatch,
having processed nothing. Channels are configured by environment variables:

- Telegram: ``TELEGRAM_BOT_TOKEN`` and ``TELEGRAM_WEBHOOK_SECRET`` (registered with
  Telegram at start when ``TELEGRAM_WEBHOOK_URL``, the public base URL, is set);
- Zalo Bot Platform: ``ZALO_BOT_TOKEN`` and ``ZALO_BOT_WEBHOOK_SECRET``;
- Zalo OA: ``ZALO_OA_APP_ID``, ``ZALO_OA_SECRET_KEY``, ``ZALO_OA_ACCESS_TOKEN``,
  ``ZALO_OA_REFRESH_TOKEN`` (see handlers/zalo_oa.py).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

from app.runtime import Runtime, run_until_signalled
from bot.config import ConfigError
from handlers.delivery import Deliverer
from handlers.telegram import DEFAULT_API_BASE_URL as DEFAULT_TELEGRAM_API
from handlers.telegram import TelegramChannel
from handlers.zalo_bot import DEFAULT_API_BASE_URL as DEFAULT_ZALO_BOT_API
from handlers.zalo_bot import ZaloBotChannel
from handlers.zalo_oa import OASettings, ZaloOAChannel
from storage.tokens import TokenStore

log = logging.getLogger(__name__)
OFF = ("off", "0", "false", "no")


@dataclass
class Channels:
    telegram: TelegramChannel | None = None
    zalo_bot: ZaloBotChannel | None = None
    zalo_oa: ZaloOAChannel | None = None
    names: list[str] = field(default_factory=list)

    def deliverers(self) -> dict[str, Deliverer]:
        """The running channels, by the channel name stored with each user."""
        found: dict[str, Deliverer | None] = {
            "telegram": self.telegram,
            "zalo_bot": self.zalo_bot,
            "zalo_oa": self.zalo_oa,
        }
        return {name: channel for name, channel in found.items() if channel is not None}


def make_app(channels: Channels, worker: int = 0) -> web.Application:
    """The aiohttp application routing each webhook to its channel."""
    app = web.Application(client_max_size=1 << 20)

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "channels": channels.names, "worker": worker})

    async def absent(_request: web.Request) -> web.Response:
        return web.Response(status=404)

    app.router.add_get("/healthz", health)
    app.router.add_post(
        "/telegram/webhook", channels.telegram.webhook if channels.telegram else absent
    )
    app.router.add_post(
        "/zalo/bot/webhook", channels.zalo_bot.webhook if channels.zalo_bot else absent
    )
    app.router.add_post(
        "/zalo/oa/webhook", channels.zalo_oa.webhook if channels.zalo_oa else absent
    )
    return app


@asynccontextmanager
async def started_channels(runtime: Runtime) -> AsyncIterator[Channels]:
    """Start every channel the environment configures (webhook mode); stop them after."""
    settings = runtime.settings
    env = settings.environment
    channels = Channels()
    if env.get("TELEGRAM_BOT_TOKEN"):
        secret = env.get("TELEGRAM_WEBHOOK_SECRET")
        if not secret:
            raise ConfigError("the Telegram webhook needs TELEGRAM_WEBHOOK_SECRET")
        channels.telegram = TelegramChannel(
            runtime.conversations,
            runtime.content,
            env["TELEGRAM_BOT_TOKEN"],
            staff=runtime.staff,
            webhook_secret=secret,
            base_url=env.get("TELEGRAM_API_BASE_URL") or DEFAULT_TELEGRAM_API,
            rate_limiter=env.get("TELEGRAM_RATE_LIMITER", "on").lower() not in OFF,
        )
        base = env.get("TELEGRAM_WEBHOOK_URL", "").rstrip("/")
        register = base and settings.worker_index == 0  # once, not once per worker
        await channels.telegram.start(webhook_url=f"{base}/telegram/webhook" if register else "")
        channels.names.append("telegram")
    if env.get("ZALO_BOT_TOKEN"):
        secret = env.get("ZALO_BOT_WEBHOOK_SECRET")
        if not secret:
            raise ConfigError("the Zalo Bot webhook needs ZALO_BOT_WEBHOOK_SECRET")
        channels.zalo_bot = ZaloBotChannel(
            runtime.conversations,
            env["ZALO_BOT_TOKEN"],
            webhook_secret=secret,
            base_url=env.get("ZALO_BOT_API_BASE_URL") or DEFAULT_ZALO_BOT_API,
        )
        await channels.zalo_bot.start()
        channels.names.append("zalo_bot")
    try:
        oa = OASettings.from_env(env)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    if oa is not None:
        channels.zalo_oa = ZaloOAChannel(runtime.conversations, oa, TokenStore(runtime.db))
        await channels.zalo_oa.start()
        channels.names.append("zalo_oa")
    try:
        yield channels
    finally:
        for channel in (channels.telegram, channels.zalo_bot, channels.zalo_oa):
            if channel is not None:
                await channel.stop()


async def serve(runtime: Runtime) -> None:
    """Run the webhook server until SIGINT/SIGTERM."""
    settings = runtime.settings
    port = settings.port
    async with started_channels(runtime) as channels:
        app = make_app(channels, settings.worker_index)
        runner = web.AppRunner(app, access_log=None)  # URLs may hold tokens
        await runner.setup()
        site = web.TCPSite(
            runner,
            host=settings.host,
            port=port,
            # The kernel spreads connections over the workers.
            reuse_port=settings.several_workers,
        )
        await site.start()
        log.info("serving %s on port %d", ", ".join(channels.names) or "no channel", port)
        try:
            await run_until_signalled(runtime, channels.deliverers())
        finally:
            await runner.cleanup()
