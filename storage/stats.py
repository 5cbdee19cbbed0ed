"""The raw figures behind /stats, /export and /chart, for a set of communes.

One statement of grouped parts, each an index-only scan per commune: completions and
assisted completions, first-reached stages (the funnel: a plain count, no DISTINCT), "stuck"
events, requests for a person. The arithmetic -- coverage, targets, pace, the funnel -- is
done in bot/stats.py.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import String, and_, cast, func, literal, or_, select, union_all
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from bot.stats import RawStats
from storage.database import Database
from storage.models import Base
from storage.writes import writes_for

_completions = Base.metadata.tables["completions"]
_assisted = Base.metadata.tables["assisted"]
_events = Base.metadata.tables["events"]
_daily = Base.metadata.tables["daily_events"]
_reached = Base.metadata.tables["reached"]

#: The parts a page that shows only coverage by area needs (the dashboard's village table):
#: completions and assisted completions by village. The funnel's part alone (``reached``)
#: costs 128 ms of a province's ~250 on the national bench database.
AREA_PARTS = frozenset({"village", "avillage"})
#: ... and the pace and the chart over time too (the dashboard's overview).
PROGRESS_PARTS = AREA_PARTS | {"day", "aday"}


async def collect(
    db: Database,
    communes: list[str],
    tz: ZoneInfo,
    *,
    everyone: bool = False,
    parts: frozenset[str] | None = None,
    bursts_since: datetime | None = None,
) -> RawStats:
    """Everything /stats needs about ``communes``: one statement, one round trip.

    ``everyone``: also count people not (yet) attributed to any commune in the funnel (for
    the whole deployment). ``parts``: only these figures (tags of :func:`_statement`, e.g.
    AREA_PARTS); the others stay empty. ``bursts_since``: also when each volunteer recorded
    assisted completions since then (a second, small statement), to flag bursts."""
    raw = RawStats()
    if not communes:
        return raw
    query = _statement(communes, tz, writes_for(db.dialect).local_day, everyone, parts)
    times = (
        select(_assisted.c.volunteer, _assisted.c.at)
        .where(_assisted.c.commune.in_(communes), _assisted.c.at >= bursts_since)
        .order_by(_assisted.c.volunteer, _assisted.c.at)
        if bursts_since is not None
        else None
    )

    def work(conn: Connection) -> tuple[list[Any], list[Any]]:
        found = list(conn.execute(query).all())
        return found, list(conn.execute(times).all()) if times is not None else []

    found, assisted = await db.run(work)
    for volunteer, at in assisted:
        raw.assisted_at.setdefault(volunteer, []).append(at)
    stuck: dict[str, int] = defaultdict(int)
    human: dict[str, int] = defaultdict(int)
    for tag, a, b, n in found:
        count = int(n)
        if tag in ("village", "avillage"):
            raw.by_village[(a, b, "self" if tag == "village" else "volunteer")] = count
        elif tag in ("provider", "aprovider"):
            raw.by_provider[(a, "self" if tag == "provider" else "volunteer")] = count
        elif tag in ("day", "aday"):
            raw.by_day[(a, "self" if tag == "day" else "volunteer")] = count
        elif tag == "reached":
            if a.startswith("via:"):
                raw.started_via[a[4:]] = count
            elif a.startswith("step:"):
                raw.reached[("step", a[5:])] = count
            else:
                raw.reached[(a, "")] = count
        elif tag == "stuck":
            stuck[a or ""] += count
        elif tag == "human":
            human[a or ""] += count
        elif tag == "done":
            raw.finished_via[a] = count
        elif tag == "helped":
            raw.helped_by[a] = count
    raw.stuck = dict(stuck)
    raw.help_requests = dict(human)
    return raw


def _statement(
    communes: list[str],
    tz: ZoneInfo,
    local_day: Callable[[Any, ZoneInfo], Any],
    everyone: bool,
    parts: frozenset[str] | None = None,
) -> Any:
    """Each figure is a grouped SELECT tagged with what it counts; all joined by UNION ALL.
    Every part is served by an index on (commune, ...)."""
    done = _completions.c.commune.in_(communes)
    # An install a helper helped with through a help request is linked to the citizen: if
    # they also reported it themselves, it counts once, as their own report.
    reported_too = (
        select(literal(1))
        .where(
            _completions.c.channel == _assisted.c.channel,
            _completions.c.user_ref == _assisted.c.user_ref,
        )
        .exists()
    )
    helped = and_(_assisted.c.commune.in_(communes), ~reported_too)
    seen: ColumnElement[bool] = _events.c.commune.in_(communes)
    reached: ColumnElement[bool] = _reached.c.commune.in_(communes)
    if everyone:
        seen = or_(seen, _events.c.commune.is_(None))
        reached = or_(reached, _reached.c.commune.is_(None))
    none = literal("", String)

    def part(tag: str, a: Any, b: Any, count: Any, where: Any, *group: Any) -> Any:
        if parts is not None and tag not in parts:
            return None
        return (
            select(
                literal(tag, String).label("tag"),
                cast(a, String).label("a"),
                cast(b, String).label("b"),
                count.label("n"),
            )
            .where(*where)
            .group_by(*group)
        )

    c, x, e, d, r = _completions.c, _assisted.c, _events.c, _daily.c, _reached.c
    day, aday = local_day(c.completed_at, tz), local_day(x.at, tz)
    one = func.count()
    return union_all(
        *_present(
            part("village", c.commune, c.village, one, [done], c.commune, c.village),
            part("provider", c.provider, none, one, [done], c.provider),
            part("day", day, none, one, [done], day),
            part("done", c.referral, none, one, [done, c.referral.is_not(None)], c.referral),
            part("avillage", x.commune, x.village, one, [helped], x.commune, x.village),
            part("aprovider", x.provider, none, one, [helped], x.provider),
            part("aday", aday, none, one, [helped], aday),
            part("helped", x.volunteer, none, one, [helped], x.volunteer),
            part("reached", r.stage, none, one, [reached], r.stage),
            part("stuck", e.step, none, one, [seen, e.kind == "stuck"], e.step),
            part(
                "stuck",
                d.step,
                none,
                func.sum(d.count),
                [d.commune.in_(communes), d.kind == "stuck"],
                d.step,
            ),
            # "Talk to a person" pressed (the help requests volunteers and officials answer).
            part("human", e.step, none, one, [seen, e.kind == "human"], e.step),
            part(
                "human",
                d.step,
                none,
                func.sum(d.count),
                [d.commune.in_(communes), d.kind == "human"],
                d.step,
            ),
        )
    )


def _present(*selects: Any) -> list[Any]:
    return [s for s in selects if s is not None]


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
