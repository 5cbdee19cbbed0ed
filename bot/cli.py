"""Command line: ``python -m bot run|chat|faq|migrate|check``.

- ``run``: start the configured channels by polling (Telegram when ``TELEGRAM_BOT_TOKEN``
  is set, the Zalo Bot when ``ZALO_BOT_TOKEN`` is); with none configured, open the terminal
  chat.
- ``serve [--workers N]``: the webhook server (``PORT``, default 8080) for every configured
  channel; with N > 1, N worker processes on the same port, sharing only the database.
- ``chat``: the terminal chat, on the same engine and database as the bots.
- ``faq [--json] [QUESTION]``: what a question is understood as, with the top candidates
  and their scores (stdin: one per line); ``--json``: ``{"topic": id or null, "score": x}``,
  plus ``"clarify": [ids]`` when the bot would ask back.
- ``migrate``: bring the database (``DATABASE_URL``) up to date.
- ``retention``: fold events older than the retention period into daily totals, delete them
  and idle sessions (the running bot also does this once a day).
- ``check``: validate config.toml and the content, print a summary.
- ``invite official --commune CODE | --province CODE | --all``, ``invite volunteer --commune
  CODE``: a one-time enrolment link.
- ``stats [--commune CODE] [--json]``, ``export --csv FILE``, ``chart --out FILE.png``: the
  officials' figures for a commune or the whole deployment.
- ``population import FILE.csv``: village figures (commune, village, adults, adults_present,
  households).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.config import ConfigError, load_config
from bot.content import ContentError, load_content


def _setup_logging() -> None:
    from bot.logs import configure

    configure(os.environ.get("LOG_LEVEL", "INFO"))


def _cmd_faq(args: argparse.Namespace) -> int:
    """Read questions as a new user's first message would be read (no screen yet)."""
    from bot.understanding import Answer, Clarify, Understanding

    config = load_config()
    content = load_content(config.locale)
    understanding = Understanding.from_content(content)

    def answer(question: str) -> None:
        reading = understanding.read(question)
        decision = reading.decision
        topic = decision.topic if isinstance(decision, Answer) else None
        if args.json:
            out: dict[str, Any] = {"topic": topic, "score": reading.score}
            if isinstance(decision, Clarify):
                out["clarify"] = [c.removeprefix("faq:") for c in decision.candidates]
            print(json.dumps(out, ensure_ascii=False))
            return
        print(f"{decision} ({reading.score:.2f}, {reading.how})")
        for candidate in reading.candidates:
            print(f"  {candidate.reaction:28} {candidate.score:.3f}")
        if reading.nearest:
            print(f"  nearest example: {reading.nearest}")
        if reading.scam:
            print("  scam signs: yes")
        if topic:
            print(f"\n{content.faq[topic].answer}")
        print()

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


async def _polling(token: str | None, zalo_token: str | None) -> None:
    from handlers.runtime import open_runtime, run_until_signalled
    from handlers.telegram import TelegramChannel
    from handlers.zalo_bot import ZaloBotChannel

    async with open_runtime() as runtime:
        channels: dict[str, TelegramChannel | ZaloBotChannel] = {}
        if token:
            telegram = TelegramChannel(
                runtime.conversations, runtime.content, token, staff=runtime.staff
            )
            await telegram.start()
            channels["telegram"] = telegram
        if zalo_token:
            zalo = ZaloBotChannel(runtime.conversations, zalo_token)
            await zalo.start(polling=True)
            channels["zalo_bot"] = zalo
        _tune_gc()
        logging.getLogger("bot").info("bot running (polling); Ctrl-C stops it")
        try:
            await run_until_signalled(runtime, dict(channels))
        finally:
            for channel in channels.values():
                await channel.stop()


async def _serve(port: int) -> None:
    from handlers.runtime import open_runtime
    from handlers.server import serve

    async with open_runtime() as runtime:
        _tune_gc()
        await serve(runtime, port)


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
    zalo_token = os.environ.get("ZALO_BOT_TOKEN")
    if token or zalo_token:
        _setup_logging()
        asyncio.run(_polling(token, zalo_token))
    else:
        print("TELEGRAM_BOT_TOKEN is not set: opening the terminal chat (type /quit to leave).\n")
        asyncio.run(_chat())
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    _setup_logging()
    if args.workers > 1:
        from handlers.workers import Supervisor

        return Supervisor(args.workers).run()
    asyncio.run(_serve(int(os.environ.get("PORT", "8080"))))
    return 0


def _cmd_chat(_args: argparse.Namespace) -> int:
    asyncio.run(_chat())
    return 0


def _scope(args: argparse.Namespace) -> Any:
    from storage.staff import Scope

    if getattr(args, "commune", None):
        return Scope("communes", (str(args.commune),))
    if getattr(args, "province", None):
        return Scope("province", (str(int(args.province)),))
    return Scope("all")


async def _staff_command(args: argparse.Namespace) -> int:
    from handlers.conversation import utcnow
    from handlers.runtime import open_runtime
    from handlers.staff import deep_link

    async with open_runtime() as runtime:
        desk = runtime.staff
        scope = _scope(args)
        if not desk.communes(scope):
            print(f"error: no commune of this deployment is in {scope}", file=sys.stderr)
            return 2
        if args.command == "invite":
            if args.role == "volunteer" and scope.kind != "communes":
                print("error: a volunteer invite needs --commune", file=sys.stderr)
                return 2
            code = await desk.staff.create_invite(
                args.role, scope, created_by="cli", now=utcnow(), ttl=timedelta(days=args.days)
            )
            await desk.staff.audit("cli", "cli", "invite", f"{args.role} {scope}", utcnow())
            print(deep_link(runtime.config.bot_username, code))
        elif args.command == "stats":
            report = await desk.report(scope)
            if args.json:
                print(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
            else:
                from bot.stats import render

                print(render(report, runtime.config, runtime.content, desk.texts))
        elif args.command == "export":
            await asyncio.to_thread(Path(args.csv).write_bytes, await desk.export_csv(scope))
            print(f"written: {args.csv}")
        elif args.command == "chart":
            from bot.charts import chart_png

            png = chart_png(await desk.report(scope), desk.texts)
            await asyncio.to_thread(Path(args.out).write_bytes, png)
            print(f"written: {args.out}")
        return 0


async def _population_import(path: Path) -> int:
    import csv

    from handlers.conversation import utcnow
    from handlers.runtime import open_runtime

    async with open_runtime() as runtime:
        rows = []
        with path.open(encoding="utf-8-sig", newline="") as handle:
            for number, line in enumerate(csv.DictReader(handle), start=2):
                commune = runtime.config.commune(str(line.get("commune", "")).strip())
                village = (
                    commune.village(str(line.get("village", "")).strip()) if commune else None
                )
                if village is None or commune is None:
                    print(f"error: {path}:{number}: unknown commune/village", file=sys.stderr)
                    return 2
                try:
                    figures = {k: int(line[k]) for k in ("adults", "adults_present", "households")}
                except (KeyError, TypeError, ValueError):
                    print(
                        f"error: {path}:{number}: figures must be whole numbers", file=sys.stderr
                    )
                    return 2
                if figures["adults_present"] > figures["adults"] or min(figures.values()) < 0:
                    print(f"error: {path}:{number}: impossible figures", file=sys.stderr)
                    return 2
                rows.append({"commune": commune.code, "village": village.id, **figures})
        count = await runtime.staff.staff.import_population(rows, utcnow())
        print(f"imported {count} villages")
        return 0


def _cmd_staff(args: argparse.Namespace) -> int:
    return asyncio.run(_staff_command(args))


def _cmd_population(args: argparse.Namespace) -> int:
    return asyncio.run(_population_import(Path(args.file)))


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
    serve = sub.add_parser("serve", help="webhook server: Telegram, Zalo Bot, Zalo OA (PORT)")
    serve.add_argument(
        "--workers", type=int, default=1, help="worker processes sharing the port (default 1)"
    )
    faq = sub.add_parser("faq", help="what a question is understood as (FAQ topic or other)")
    faq.add_argument(
        "--json", action="store_true", help='print {"topic": ..., "score": ..., "clarify": [...]}'
    )
    faq.add_argument("question", nargs="*", help="the question (default: one per stdin line)")
    sub.add_parser("migrate", help="bring the database up to date")
    sub.add_parser("retention", help="apply the retention period to stored events")
    sub.add_parser("check", help="validate config.toml and the content")

    def scoped(parser: argparse.ArgumentParser, *, wide: bool = True) -> None:
        group = parser.add_mutually_exclusive_group(required=not wide)
        group.add_argument("--commune", help="official commune code, e.g. 16279")
        if wide:
            group.add_argument("--province", help="official province code, e.g. 38")
            group.add_argument("--all", action="store_true", help="the whole deployment")

    invite = sub.add_parser("invite", help="a one-time enrolment link for staff")
    invite.add_argument("role", choices=["official", "volunteer"])
    scoped(invite)
    invite.add_argument("--days", type=int, default=3, help="valid for this many days")
    stats = sub.add_parser("stats", help="coverage, targets, funnel (default: everything)")
    scoped(stats)
    stats.add_argument("--json", action="store_true")
    export = sub.add_parser("export", help="completions as a spreadsheet (CSV)")
    scoped(export)
    export.add_argument("--csv", required=True, help="the file to write")
    chart = sub.add_parser("chart", help="a PNG chart of progress")
    scoped(chart)
    chart.add_argument("--out", required=True, help="the PNG file to write")
    pop = sub.add_parser("population", help="village population figures")
    pop_sub = pop.add_subparsers(dest="action", required=True)
    pop_import = pop_sub.add_parser("import", help="import commune,village,adults,... CSV")
    pop_import.add_argument("file")
    return main


COMMANDS = {
    "run": _cmd_run,
    "chat": _cmd_chat,
    "serve": _cmd_serve,
    "faq": _cmd_faq,
    "migrate": _cmd_migrate,
    "retention": _cmd_retention,
    "check": _cmd_check,
    "invite": _cmd_staff,
    "stats": _cmd_staff,
    "export": _cmd_staff,
    "chart": _cmd_staff,
    "population": _cmd_population,
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
