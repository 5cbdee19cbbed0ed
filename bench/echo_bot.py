"""A bare python-telegram-bot echo bot: the baseline for bench/throughput.py.

Usage: python bench/echo_bot.py BASE_URL TOKEN [--like-bot]

Plain, it replies with the text it got. With ``--like-bot`` it replies with a message shaped
like the real bot's (the same screens: Vietnamese text and four inline buttons), so that the
comparison isolates what the bot does per update from what it sends.
"""

from __future__ import annotations

import sys

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions, Update
from telegram.ext import Application, ContextTypes, MessageHandler, filters

from bot.config import load_config
from bot.content import load_content
from bot.engine import Engine
from bot.model import State


def _screens() -> dict[str, tuple[str, InlineKeyboardMarkup]]:
    """The two screens the benchmark script alternates between, rendered once."""
    engine = Engine(load_content(), load_config())
    shaped = {}
    for text, step in (("2", "ready"), ("quay lại", "menu")):
        message = engine.render(State(screen=step))[-1]
        keyboard = InlineKeyboardMarkup(
            [
                [InlineKeyboardButton(o.label, callback_data=f"{step}|{o.id}")]
                for o in message.options
            ]
        )
        shaped[text] = (message.text, keyboard)
    return shaped


def main() -> None:
    base_url, token = sys.argv[1], sys.argv[2]
    like_bot = "--like-bot" in sys.argv[3:]
    screens = _screens() if like_bot else {}
    no_preview = LinkPreviewOptions(is_disabled=True)

    async def echo(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        if message is None or message.text is None:
            return
        if like_bot and message.text in screens:
            text, keyboard = screens[message.text]
            await message.reply_text(text, reply_markup=keyboard, link_preview_options=no_preview)
        else:
            await message.reply_text(message.text)

    app = Application.builder().token(token).base_url(base_url).build()
    app.add_handler(MessageHandler(filters.TEXT, echo))
    app.run_polling(poll_interval=0.0, timeout=10)


if __name__ == "__main__":
    main()
