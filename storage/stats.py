"""The raw figures behind /stats, /export and /chart, for a set of communes.

A handful of grouped queries, each served by an index (completions by commune and time,
events by commune, kind, step and user); the arithmetic -- coverage, targets, pace, the
funnel -- is done in bot/stats.py on what these return.
"""

from __future__ import annotations

from collections import defaultdict
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from bot.stats import RawStats
from storage.database import Database
from storage.models import Base
from storage.writes import writes_for

_completions = Base.metadata.tables["completions"]
_assisted = Base.metadata.tables["assisted"]
_events = Base.metadata.tables["events"]
_daily = Base.metadata.tables["daily_events"]

FUNNEL_KINDS = ("started", "step", "completed")


async def collect(db: Database, communes: list[str], tz: ZoneInfo) -> RawStats:
    """Everything /stats needs about ``communes``, in one read transaction."""
    writes = writes_for(db.dialect)

    def work(conn: Connection) -> RawStats:
        raw = RawStats()
        if not communes:
            return raw
        where = _completions.c.commune.in_(communes)
        awhere = _assisted.c.commune.in_(communes)
        day = writes.local_day(_completions.c.completed_at, tz)
        aday = writes.local_day(_assisted.c.at, tz)
        for table, cond, when, source in (
            (_completions, where, day, "self"),
            (_assisted, awhere, aday, "volunteer"),
        ):
            village = (table.c.commune, table.c.village)
            for commune, village_, n in conn.execute(
                select(*village, func.count()).where(cond).group_by(*village)
            ):
                raw.by_village[(commune, village_, source)] = n
            provider = select(table.c.provider, func.count()).where(cond)
            for provider_, n in conn.execute(provider.group_by(table.c.provider)):
                raw.by_provider[(provider_, source)] = n
            for day_, n in conn.execute(select(when, func.count()).where(cond).group_by(when)):
                raw.by_day[(day_, source)] = n
        helped = (
            select(_assisted.c.volunteer, func.count())
            .where(_assisted.c.commune.in_(communes))
            .group_by(_assisted.c.volunteer)
        )
        raw.helped_by = dict(conn.execute(helped).all())

        in_scope = _events.c.commune.in_(communes)
        funnel = (
            select(_events.c.kind, _events.c.step, func.count(_events.c.user_ref.distinct()))
            .where(in_scope, _events.c.kind.in_(FUNNEL_KINDS))
            .group_by(_events.c.kind, _events.c.step)
        )
        raw.reached = {(kind, step or ""): n for kind, step, n in conn.execute(funnel)}
        stuck: dict[str, int] = defaultdict(int)
        live = (
            select(_events.c.step, func.count())
            .where(in_scope, _events.c.kind == "stuck")
            .group_by(_events.c.step)
        )
        old = (
            select(_daily.c.step, func.sum(_daily.c.count))
            .where(_daily.c.commune.in_(communes), _daily.c.kind == "stuck")
            .group_by(_daily.c.step)
        )
        for step, n in [*conn.execute(live), *conn.execute(old)]:
            stuck[step or ""] += int(n)
        raw.stuck = dict(stuck)
        via = (
            select(_events.c.detail, func.count(_events.c.user_ref.distinct()))
            .where(in_scope, _events.c.kind == "referral")
            .group_by(_events.c.detail)
        )
        raw.started_via = {code: n for code, n in conn.execute(via) if code}
        finished = (
            select(_completions.c.referral, func.count())
            .where(where, _completions.c.referral.is_not(None))
            .group_by(_completions.c.referral)
        )
        raw.finished_via = dict(conn.execute(finished).all())
        return raw

    return await db.run(work)


async def export_rows(
    db: Database, communes: list[str], tz: ZoneInfo
) -> list[tuple[str, str, str, str, str, int]]:
    """(commune, village, date, provider, source, count) for a spreadsheet: no personal data."""
    writes = writes_for(db.dialect)

    def work(conn: Connection) -> list[tuple[str, str, str, str, str, int]]:
        rows: list[tuple[str, str, str, str, str, int]] = []
        for table, when, source in (
            (_completions, _completions.c.completed_at, "self"),
            (_assisted, _assisted.c.at, "volunteer"),
        ):
            day = writes.local_day(when, tz)
            keys = (table.c.commune, table.c.village, day, table.c.provider)
            query = select(*keys, func.count()).where(table.c.commune.in_(communes))
            for commune, village, day_, provider, n in conn.execute(query.group_by(*keys)):
                rows.append((commune, village, day_, provider, source, n))
        return sorted(rows)

    return await db.run(work)
