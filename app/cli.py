"""Command line: ``python -m bot run|serve|chat|faq|migrate|check|...`` (the entry point).

- ``run``: start the configured channels by polling (Telegram when ``TELEGRAM_BOT_TOKEN``
  is set, the Zalo Bot when ``ZALO_BOT_TOKEN`` is); with none configured, open the terminal
  chat.
- ``serve [--workers N]``: the web server (``PORT``, default 8080) for every configured
  channel and the officials' dashboard (/dashboard); with N > 1, N worker processes on the
  same port, sharing only the database.
- ``chat``: the terminal chat, on the same engine and database as the bots.
- ``faq [--json] [QUESTION]``: what a question is understood as, with the top candidates
  and their scores (stdin: one per line); ``--json``: ``{"topic": id or null, "score": x}``,
  plus ``"clarify": [ids]`` when the bot would ask back.
- ``migrate``: bring the database (``DATABASE_URL``) up to date.
- ``retention``: fold events older than the retention period into daily totals, delete them
  and idle sessions (the running bot also does this once a day).
- ``check``: validate config.toml and the content, print a summary.
- ``pictures [--out DIR]``: check and render the install-step pictures (to DIR/<id>.png).
- ``invite official --commune CODE | --province CODE | --all``, ``invite volunteer --commune
  CODE``: a one-time enrolment link (the scope is never implied); prints scope and expiry.
- ``stats [--commune CODE | --province CODE] [--json]``, ``export --csv FILE [--table
  villages|days] [--dialect excel|excel-vn]`` or ``export --xlsx FILE``, ``chart --out
  FILE.png|FILE.svg``: the officials' figures for a commune, a province or everything.
- ``web-link --commune CODE | --province CODE | --all``: a one-time login link to the web
  dashboard (valid 10 minutes), for the server's operator; its last line is the URL, on
  ``PUBLIC_URL`` or http://127.0.0.1:PORT.
- ``population import FILE.csv``: village figures (commune, village, adults, adults_present,
  households).
- ``poster --commune CODE [--volunteer CODE] --out FILE.pdf``: the A4 notice-board poster, its
  QR code to the commune's link or an enrolled volunteer's; ``stepcard --provider ID
  [--commune CODE] --out FILE.pdf``: the A4 install step card for door-to-door visits.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import errno
import gc
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from app.settings import Settings, prepare_process
from bot import officials, printing
from bot.config import Config, ConfigError, load_config
from bot.content import ContentError, check_typed, load_content
from bot.demo import content_warnings, demo_data
from bot.exports import DIALECTS
from bot.logs import configure
from bot.officials import Scope, deep_link
from bot.pictures import load_pictures

# The application's stack (app.runtime, app.server: the channels, the storage, numpy...) is
# imported by the commands that use it: a process that only supervises workers or migrates
# paid 2.5-3.5 s of CPU at its start for it (tests/storage/test_database.py starts three
# `migrate` at once; every `serve --workers N` one supervisor).
if TYPE_CHECKING:
    from handlers.channel import Mode


def _setup_logging(settings: Settings) -> None:
    configure(settings.log_level)


def _cmd_faq(settings: Settings, args: argparse.Namespace) -> int:
    """Read questions as a new user's first message would be read (no screen yet)."""
    from app.caches import MODEL_CACHE
    from app.training import ModelCache
    from bot.understanding import Answer, Clarify, Understanding

    config = load_config(settings.config_path)
    content = load_content(config.locale)
    understanding = Understanding.from_content(content)
    # The classifier the bot kept (var/models) when there is one: training it takes 1.5-3 s.
    ModelCache(MODEL_CACHE).install(understanding)

    def answer(question: str) -> None:
        reading = understanding.read(question)
        decision = reading.decision
        topic = decision.topic if isinstance(decision, Answer) else None
        if args.json:
            out: dict[str, object] = {"topic": topic, "score": reading.score}
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


def _tune_gc() -> None:
    """Move everything loaded at start (content, FAQ index, PTB) out of the collector's way:
    about 5 % more updates/s (bench/throughput.py)."""
    gc.collect()
    gc.freeze()


async def _run_channels(settings: Settings, mode: Mode) -> bool:
    """Run the channels the environment configures for ``mode`` until told to stop; False
    if there are none."""
    from app.runtime import open_runtime, run_until_signalled, started_channels

    async with open_runtime(settings) as runtime, started_channels(runtime, mode) as channels:
        if not channels:
            return False
        if mode == "interactive":
            await runtime.stop.wait()  # the terminal's /quit
            return True
        _setup_logging(settings)
        _tune_gc()
        names = ", ".join(c.name for c in channels)
        logging.getLogger("bot").info("bot running (%s: %s); Ctrl-C stops it", mode, names)
        await run_until_signalled(runtime, channels)
        return True


async def _serve(settings: Settings) -> None:
    from app.runtime import open_runtime
    from app.server import serve

    async with open_runtime(settings) as runtime:
        _tune_gc()
        await serve(runtime)


async def _retention(settings: Settings) -> None:
    from app.runtime import open_runtime, run_retention

    async with open_runtime(settings, citizens=False) as runtime:
        print(json.dumps(await run_retention(runtime)))


async def _migrate(settings: Settings) -> None:
    from storage.database import Database, migrate

    db = Database(settings.database_url)
    try:
        await migrate(db)
    finally:
        await db.dispose()
    print(f"database is up to date: {db.safe_url()}")


def _cmd_check(settings: Settings, _args: argparse.Namespace) -> int:
    config = load_config(settings.config_path)
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
    for warning in content_warnings(config, content):
        print(f"warning: {warning}", file=sys.stderr)
    typed = check_typed(content)
    for problem in typed:
        print(f"error: {problem}", file=sys.stderr)
    # Example data must not reach citizens (a number that rings nowhere, a bot to search for
    # that does not exist): refused in production, a warning elsewhere.
    samples = demo_data(config)
    verdict = "refused" if settings.production else "warning"
    for problem in samples:
        print(f"{verdict}: {problem}", file=sys.stderr)
    if samples and settings.production:
        print(
            f"refused: {len(samples)} example values in {settings.config_path} "
            "(BOT_ENV=production); replace them with the deployment's own",
            file=sys.stderr,
        )
        return 1
    return 1 if typed else 0


def _cmd_pictures(settings: Settings, args: argparse.Namespace) -> int:
    """Check and render the install-step pictures; with --out, write them as PNG files."""
    config = load_config(settings.config_path)
    pictures = load_pictures(config.locale)
    out = Path(args.out) if args.out else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    for picture in pictures:
        where = ""
        if out is not None:
            (out / f"{picture.id}.png").write_bytes(picture.png)
            where = f" -> {out / f'{picture.id}.png'}"
        print(
            f"{picture.id}: {picture.width}x{picture.height} px, PNG {len(picture.png)} bytes, "
            f"SVG {len(picture.svg)} bytes, steps {', '.join(picture.steps)}{where}"
        )
    return 0


def _cmd_run(settings: Settings, _args: argparse.Namespace) -> int:
    if not asyncio.run(_run_channels(settings, "polling")):
        print("No channel is configured: opening the terminal chat (type /quit to leave).\n")
        asyncio.run(_run_channels(settings, "interactive"))
    return 0


def _cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from app.workers import Supervisor, die_with_supervisor, only_server_on

    _setup_logging(settings)
    if settings.supervisor_pid is not None:  # a worker of `serve --workers N`
        die_with_supervisor(settings.supervisor_pid)
        asyncio.run(_serve(settings))
        return 0
    with only_server_on(settings.port):
        if args.workers > 1:
            # Rendered once here into the cache the workers read: otherwise each worker renders
            # every picture at its start (about 1.2 s each, holding the interpreter), at once.
            from app.caches import warm_picture_cache

            warm_picture_cache()
            return Supervisor(settings, args.workers).run()
        asyncio.run(_serve(settings))
    return 0


def _cmd_chat(settings: Settings, _args: argparse.Namespace) -> int:
    asyncio.run(_run_channels(settings, "interactive"))
    return 0


class UsageError(Exception):
    """A mistake in the command line or its files: printed as one line, exit code 2."""


def _scope(args: argparse.Namespace, config: Config) -> Scope:
    """The scope the options name, checked against the deployment."""
    served = ", ".join(f"{c.code} ({c.name})" for c in config.communes[:10])
    if len(config.communes) > 10:
        served += f" and {len(config.communes) - 10} more"
    if getattr(args, "commune", None):
        code = str(args.commune).strip()
        if config.commune(code) is None:
            raise UsageError(f"commune {code} is not served by this deployment: {served}")
        return Scope("communes", (code,))
    if getattr(args, "province", None):
        raw = str(args.province).strip()
        if not raw.isdigit():
            raise UsageError(f"a province code is a number (like 38), not {raw!r}")
        scope = Scope("province", (str(int(raw)),))
        if not officials.communes_in(config, scope):
            provinces = sorted({c.province_code for c in config.communes}, key=int)
            raise UsageError(
                f"no commune of province {raw} is served by this deployment "
                f"(its provinces: {', '.join(provinces)})"
            )
        return scope
    return Scope("all")


async def _write(path: Path, data: bytes) -> None:
    try:
        await asyncio.to_thread(path.write_bytes, data)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    print(f"written: {path}")


async def _staff_command(settings: Settings, args: argparse.Namespace) -> int:
    from app.runtime import open_runtime
    from bot.charts import chart_png, chart_svg
    from bot.stats import render
    from handlers import helpdesk
    from handlers.conversation import utcnow

    async with open_runtime(settings, citizens=False) as runtime:
        desk = runtime.staff
        scope = _scope(args, runtime.config)
        if args.command == "invite":
            if args.role == "volunteer" and scope.kind != "communes":
                raise UsageError("a volunteer invite needs --commune")
            now = utcnow()
            ttl = timedelta(days=args.days)
            code = await desk.staff.create_invite(
                args.role, scope, created_by="cli", now=now, ttl=ttl
            )
            await desk.staff.audit("cli", "cli", "invite", f"{args.role} {scope.to_json()}", now)
            expires = (now + ttl).astimezone(runtime.config.timezone)
            print(f"{args.role} invite for: {_scope_label(runtime.config, scope)}")
            print(
                f"one use, expires {expires:%Y-%m-%d %H:%M} ({runtime.config.timezone.key}); "
                "send this link to the person, who opens it in Telegram:"
            )
            print(deep_link(runtime.config.bot_username, code))
        elif args.command == "web-link":
            now = utcnow()
            token = await desk.web.create_link(scope, channel="cli", user_ref="cli", now=now)
            await desk.staff.audit("cli", "cli", "web_link", scope.to_json(), now)
            expires = (now + officials.WEB_LINK_TTL).astimezone(runtime.config.timezone)
            print(f"dashboard login for: {_scope_label(runtime.config, scope)}")
            print(
                f"one use, expires {expires:%Y-%m-%d %H:%M} ({runtime.config.timezone.key}); "
                "open it in a browser:"
            )
            print(officials.web_login_url(settings.web_url, token))
        elif args.command == "stats":
            report = await desk.report(scope)
            if args.json:
                helped = await helpdesk.figures(runtime.db, runtime.config, scope)
                printed = {**report.to_json(), "help_desk": helped.to_json()}
                print(json.dumps(printed, ensure_ascii=False, indent=2))
            else:
                print(render(report, runtime.config, runtime.content, desk.texts))
        elif args.command == "requests":
            found = await runtime.helpdesk.requests(scope)
            if args.json:
                print(json.dumps(found, ensure_ascii=False, indent=2))
            else:
                print("id\tcommune\tvillage\tkind\tstatus\twaited_s")
                for r in found:
                    print(
                        "\t".join(
                            str(r[k])
                            for k in ("id", "commune", "village", "kind", "status", "waited_s")
                        )
                    )
        elif args.command == "export":
            if args.xlsx:
                await _write(Path(args.xlsx), await desk.export_xlsx(scope))
            else:
                data = await desk.export_csv(scope, args.table, args.dialect)
                await _write(Path(args.csv), data)
        elif args.command == "chart":
            report = await desk.report(scope)
            out = Path(args.out)
            if out.suffix.lower() == ".svg":
                data = chart_svg(report, desk.texts, runtime.content.locale).encode("utf-8")
            else:
                data = chart_png(report, desk.texts, runtime.content.locale)
            await _write(out, data)
        return 0


def _scope_label(config: Config, scope: Scope) -> str:
    """The scope for an operator: names and codes ("Xa Nong Cong (16279)")."""
    if scope.kind == "all":
        return f"the whole deployment ({len(config.communes)} communes)"
    communes = officials.communes_in(config, scope)
    if scope.kind == "province":
        return f"{communes[0].province} (province {scope.codes[0]}, {len(communes)} communes)"
    return ", ".join(f"{c.name} ({c.code})" for c in communes)


async def _population_import(settings: Settings, path: Path) -> int:
    from app.runtime import open_runtime
    from handlers.conversation import utcnow

    async with open_runtime(settings, citizens=False) as runtime:
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


def _cmd_staff(settings: Settings, args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_staff_command(settings, args))
    except UsageError as exc:
        return _fail(str(exc))


def _cmd_population(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_population_import(settings, Path(args.file)))


def _cmd_retention(settings: Settings, _args: argparse.Namespace) -> int:
    _setup_logging(settings)
    asyncio.run(_retention(settings))
    return 0


def _cmd_migrate(settings: Settings, _args: argparse.Namespace) -> int:
    _setup_logging(settings)
    asyncio.run(_migrate(settings))
    return 0


# --- printed materials (bot/printing.py does the work) -------------------------------------


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _unwritable(path: Path) -> str | None:
    """Why ``path`` cannot be written, said before the PDF is drawn (1-1.5 s of a core for
    a poster): a mistyped folder is told at once. Writing may still fail (_write_pdf)."""
    if path.is_dir():
        return f"cannot write {path}: {os.strerror(errno.EISDIR)}"
    if not path.parent.is_dir():
        return f"cannot write {path}: {os.strerror(errno.ENOENT)}"
    return None


def _write_pdf(path: Path, data: bytes) -> int:
    try:
        path.write_bytes(data)
    except OSError as exc:
        return _fail(f"cannot write {path}: {exc.strerror or exc}")
    print(f"written: {path}")
    return 0


async def _volunteer_commune(settings: Settings, code: str) -> str | None:
    """The commune of the enrolled volunteer with this code (the database of DATABASE_URL)."""
    from storage.database import Database, migrate
    from storage.staff import StaffRepository

    db = Database(settings.database_url)
    try:
        await migrate(db)
        return await StaffRepository(db).volunteer_commune(code)
    finally:
        await db.dispose()


def _cmd_poster(settings: Settings, args: argparse.Namespace) -> int:
    config = load_config(settings.config_path)
    content = load_content(config.locale)
    texts = printing.load_print_texts(content)
    commune = config.commune(str(args.commune).strip())
    if commune is None:
        served = ", ".join(f"{c.code} ({c.name})" for c in config.communes)
        return _fail(f"commune {args.commune} is not served by this deployment: {served}")
    if problem := _unwritable(Path(args.out)):
        return _fail(problem)
    try:
        if args.volunteer:
            code = str(args.volunteer).strip().upper()
            if not re.fullmatch(r"V[A-Z0-9]{6}", code):
                return _fail(f"{args.volunteer!r} is not a volunteer code (like VK7M2QX)")
            from sqlalchemy.exc import SQLAlchemyError

            try:
                found = asyncio.run(_volunteer_commune(settings, code))
            except (SQLAlchemyError, OSError) as exc:
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                return _fail(f"cannot read the volunteers from the database: {reason}")
            if found is None:
                return _fail(f"{code} is not the code of an enrolled volunteer")
            if found != commune.code:
                return _fail(f"volunteer {code} belongs to commune {found}, not {commune.code}")
            link = printing.volunteer_link(config, code)
        else:
            code, link = None, printing.commune_link(config)
        pdf = printing.poster_pdf(content, texts, config, commune, link, code)
    except printing.PrintError as exc:
        return _fail(str(exc))
    return _write_pdf(Path(args.out), pdf)


def _cmd_stepcard(settings: Settings, args: argparse.Namespace) -> int:
    config = load_config(settings.config_path)
    content = load_content(config.locale)
    texts = printing.load_print_texts(content)
    provider = config.provider(str(args.provider).strip())
    if provider is None:
        known = ", ".join(p.id for p in config.providers)
        return _fail(f"unknown provider {args.provider!r}: one of {known}")
    commune = config.communes[0] if len(config.communes) == 1 else None
    if args.commune:
        commune = config.commune(str(args.commune).strip())
        if commune is None:
            served = ", ".join(f"{c.code} ({c.name})" for c in config.communes)
            return _fail(f"commune {args.commune} is not served by this deployment: {served}")
    if problem := _unwritable(Path(args.out)):
        return _fail(problem)
    try:
        pdf = printing.step_card_pdf(content, texts, config, provider, commune)
    except printing.PrintError as exc:
        return _fail(str(exc))
    return _write_pdf(Path(args.out), pdf)


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
    pictures = sub.add_parser("pictures", help="check and render the install-step pictures")
    pictures.add_argument("--out", help="write each picture as OUT/<id>.png")

    def scoped(parser: argparse.ArgumentParser, *, required: bool = False) -> None:
        group = parser.add_mutually_exclusive_group(required=required)
        group.add_argument("--commune", help="official commune code, e.g. 16279")
        group.add_argument("--province", help="official province code, e.g. 38")
        group.add_argument("--all", action="store_true", help="the whole deployment")

    invite = sub.add_parser("invite", help="a one-time enrolment link for staff")
    invite.add_argument("role", choices=["official", "volunteer"])
    scoped(invite, required=True)
    invite.add_argument("--days", type=int, default=3, help="valid for this many days")
    web_link = sub.add_parser("web-link", help="a one-time login link to the web dashboard")
    scoped(web_link, required=True)
    stats = sub.add_parser("stats", help="coverage, targets, funnel (default: everything)")
    scoped(stats)
    stats.add_argument("--json", action="store_true")
    requests = sub.add_parser("requests", help="help requests: id, commune, village, kind...")
    scoped(requests)
    requests.add_argument("--json", action="store_true")
    export = sub.add_parser("export", help="coverage by village, completions by day (CSV, XLSX)")
    scoped(export)
    target = export.add_mutually_exclusive_group(required=True)
    target.add_argument("--csv", help="write one table as CSV to this file")
    target.add_argument("--xlsx", help="write both tables as an Excel workbook to this file")
    export.add_argument(
        "--table",
        choices=["villages", "days"],
        default="villages",
        help="CSV: coverage by village (default) or completions by day",
    )
    export.add_argument(
        "--dialect",
        choices=list(DIALECTS),
        default="excel",
        help='CSV: "excel" (",", decimal point) or "excel-vn" (";", decimal comma)',
    )
    chart = sub.add_parser("chart", help="a chart of progress (PNG, or SVG by the file name)")
    scoped(chart)
    chart.add_argument("--out", required=True, help="the .png or .svg file to write")
    pop = sub.add_parser("population", help="village population figures")
    pop_sub = pop.add_subparsers(dest="action", required=True)
    pop_import = pop_sub.add_parser("import", help="import commune,village,adults,... CSV")
    pop_import.add_argument("file")
    poster = sub.add_parser("poster", help="an A4 poster (PDF) for the village notice board")
    poster.add_argument("--commune", required=True, help="official commune code, e.g. 16279")
    poster.add_argument("--volunteer", help="QR code to this volunteer's link, e.g. VK7M2QX")
    poster.add_argument("--out", required=True, help="the PDF file to write")
    card = sub.add_parser("stepcard", help="an A4 install step card (PDF) for one provider")
    card.add_argument("--provider", required=True, help="provider id from config.toml")
    card.add_argument("--commune", help="official commune code (its support point)")
    card.add_argument("--out", required=True, help="the PDF file to write")
    return main


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "run": _cmd_run,
    "chat": _cmd_chat,
    "serve": _cmd_serve,
    "faq": _cmd_faq,
    "migrate": _cmd_migrate,
    "retention": _cmd_retention,
    "check": _cmd_check,
    "pictures": _cmd_pictures,
    "invite": _cmd_staff,
    "web-link": _cmd_staff,
    "stats": _cmd_staff,
    "export": _cmd_staff,
    "requests": _cmd_staff,
    "chart": _cmd_staff,
    "population": _cmd_population,
    "poster": _cmd_poster,
    "stepcard": _cmd_stepcard,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        prepare_process()
        return COMMANDS[args.command](settings, args)
    except (ConfigError, ContentError, _database_unavailable()) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _database_unavailable() -> type[Exception]:
    """storage.database's DatabaseUnavailable, imported only once an error is being handled
    (it brings SQLAlchemy)."""
    from storage.database import DatabaseUnavailable

    return DatabaseUnavailable
