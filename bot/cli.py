"""Command line: ``python -m bot run|chat|faq|migrate|check``.

- ``run``: start the configured channels (Telegram when ``TELEGRAM_BOT_TOKEN`` is set);
  with none configured, open the terminal chat.
- ``chat``: the terminal chat, on the same engine and database as the bots.
- ``faq [--json] [QUESTION]``: match a question to an FAQ topic (stdin: one per line).
- ``migrate``: bring the database (``DATABASE_URL``) up to date.
- ``retention``: fold events older than the retention period into daily totals, delete them
  and idle sessions (the running bot also does this once a day).
- ``check``: validate config.toml and the content, print a summary.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence

from bot.config import ConfigError, load_config
from bot.content import ContentError, load_content
from bot.faq import FaqMatcher


def _setup_logging() -> None:
    from bot.logs import configure

    configure(os.environ.get("LOG_LEVEL", "INFO"))


def _cmd_faq(args: argparse.Namespace) -> int:
    config = load_config()
    content = load_content(config.locale)
    matcher = FaqMatcher.from_content(content)

    def answer(question: str) -> None:
        match = matcher.match(question)
        if args.json:
            print(json.dumps({"topic": match.topic, "score": match.score}, ensure_ascii=False))
        elif match.topic:
            print(f"{match.topic} ({match.score:.2f})\n\n{content.faq[match.topic].answer}\n")
        else:
            print(f"- ({match.score:.2f})")

    if args.question:
        answer(" ".join(args.question))
    else:
        for line in sys.stdin:
            if line.strip():
                answer(line.strip())
                sys.stdout.flush()
    return 0


async def _chat() -> None:
    from handlers.runtime import open_runtime
    from handlers.terminal import chat

    async with open_runtime() as runtime:
        await chat(runtime.conversations)


def _tune_gc() -> None:
    """Move everything loaded at start (content, FAQ index, PTB) out of the collector's way:
    about 5 % more updates/s (bench/throughput.py)."""
    gc.collect()
    gc.freeze()


async def _telegram(token: str) -> None:
    from handlers.runtime import open_runtime, retention_daily
    from handlers.telegram import TelegramChannel

    async with open_runtime() as runtime:
        channel = TelegramChannel(runtime.conversations, runtime.content, token)
        await channel.start()
        _tune_gc()
        logging.getLogger("bot").info("Telegram bot running (long polling); Ctrl-C stops it")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        housekeeping = asyncio.create_task(retention_daily(runtime))
        try:
            await stop.wait()
        finally:
            housekeeping.cancel()
            await channel.stop()


async def _retention() -> None:
    from handlers.runtime import open_runtime, run_retention

    async with open_runtime() as runtime:
        print(json.dumps(await run_retention(runtime)))


async def _migrate() -> None:
    from storage.database import Database, migrate

    db = Database()
    try:
        await migrate(db)
    finally:
        await db.dispose()
    print(f"database is up to date: {db.safe_url()}")


def _cmd_check(_args: argparse.Namespace) -> int:
    config = load_config()
    content = load_content(config.locale)
    print(f"config: {config.name}")
    for commune in config.communes:
        print(
            f"  {commune.name} ({commune.province}, code {commune.code}): "
            f"{len(commune.villages)} villages, target {commune.target:.0%}"
        )
    print(f"  providers: {', '.join(p.name for p in config.providers)}")
    print(
        f"content/{content.locale}: {len(content.screens)} screens, "
        f"{len(content.install)} install steps, {len(content.faq)} FAQ topics"
    )
    return 0


def _cmd_run(_args: argparse.Namespace) -> int:
    token = os.environ.get("TELEGRAM_BOT_TOKEN")
    if token:
        _setup_logging()
        asyncio.run(_telegram(token))
    else:
        print("TELEGRAM_BOT_TOKEN is not set: opening the terminal chat (type /quit to leave).\n")
        asyncio.run(_chat())
    return 0


def _cmd_chat(_args: argparse.Namespace) -> int:
    asyncio.run(_chat())
    return 0


def _cmd_retention(_args: argparse.Namespace) -> int:
    _setup_logging()
    asyncio.run(_retention())
    return 0


def _cmd_migrate(_args: argparse.Namespace) -> int:
    _setup_logging()
    asyncio.run(_migrate())
    return 0


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="python -m bot", description=__doc__.split("\n")[0])
    sub = main.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="start the configured channels (terminal chat if none)")
    sub.add_parser("chat", help="terminal chat on the same engine and database")
    faq = sub.add_parser("faq", help="match a question to an FAQ topic")
    faq.add_argument("--json", action="store_true", help='print {"topic": ..., "score": ...}')
    faq.add_argument("question", nargs="*", help="the question (default: one per stdin line)")
    sub.add_parser("migrate", help="bring the database up to date")
    sub.add_parser("retention", help="apply the retention period to stored events")
    sub.add_parser("check", help="validate config.toml and the content")
    return main


COMMANDS = {
    "run": _cmd_run,
    "chat": _cmd_chat,
    "faq": _cmd_faq,
    "migrate": _cmd_migrate,
    "retention": _cmd_retention,
    "check": _cmd_check,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (ConfigError, ContentError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
