"""Every channel the bot can speak on. Adding a channel: its module, and one line here.

The composition root builds whichever of these the environment configures for the mode it
runs in (handlers/channel.py, ``ChannelSpec.build``); nothing else names a channel.
"""

from __future__ import annotations

from handlers import telegram, terminal, web, zalo_bot, zalo_oa
from handlers.channel import ChannelSpec

CHANNELS: tuple[ChannelSpec, ...] = (
    telegram.SPEC,
    zalo_bot.SPEC,
    zalo_oa.SPEC,
    web.SPEC,
    terminal.SPEC,
)
