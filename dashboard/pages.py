"""What each page shows, from a :class:`~bot.stats.Report`: the figures already formatted
the Vietnamese way, each beside its raw value (``data-value`` in the page, the same number
``python -m bot stats --json`` prints), sorted tables, bars, the weekly summary.

Pure: no request, no database. The templates only lay these out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from bot.config import Config
from bot.content import Content
from bot.helprequests import HelpFigures
from bot.stats import PACE_DAYS, Area, Formatter, Report, stage_titles

#: Columns the village table can be sorted by, and the default: lowest coverage first.
SORTS = ("coverage", "name", "completed", "present", "gap")
#: Areas listed on the overview and the weekly report as needing help most.
LOWEST = 5
REPORT_LOWEST = 8
REPORT_VOLUNTEERS = 5


@dataclass(frozen=True, slots=True)
class Figure:
    """One headline number: its JSON key, its label, how it reads, its raw value."""

    key: str
    label: str
    text: str
    value: str


@dataclass(frozen=True, slots=True)
class Row:
    """A line of the village (or commune) table."""

    code: str
    name: str
    completed: int
    present: int
    coverage: float | None
    target: float
    gap: int
    completed_text: str
    present_text: str
    coverage_text: str
    gap_text: str

    @property
    def bar(self) -> float:
        """The coverage bar's length in percent of its box (0-100)."""
        return round(100 * min(1.0, self.coverage or 0.0), 1)

    @property
    def target_mark(self) -> float:
        return round(100 * min(1.0, self.target), 1)


def headline(report: Report, f: Formatter, texts: Mapping[str, str]) -> list[Figure]:
    """The overview's figures, keyed as in ``stats --json``."""
    data = report.to_json()
    eta = report.eta
    if eta is not None:
        projection = f.day(eta)
    elif report.projection_withheld == "reached":
        projection = texts["projection_reached"]
    else:
        projection = f.texts["no_value"]
    return [
        Figure("completed", texts["completed"], f.n(report.completed), str(data["completed"])),
        Figure(
            "adults_present",
            texts["adults_present"],
            f.n(report.adults_present),
            str(data["adults_present"]),
        ),
        Figure("coverage", texts["coverage"], f.pct(report.coverage), str(data["coverage"])),
        Figure(
            "target_people",
            texts["target"],
            texts["target_value"].format(
                share=f.pct(report.target_share), people=f.n(report.target_people)
            ),
            str(data["target_people"]),
        ),
        Figure(
            "gap", texts["gap"], texts["people"].format(count=f.n(report.gap)), str(data["gap"])
        ),
        Figure(
            "pace_per_day",
            texts["pace"],
            texts["pace_value"].format(pace=f.n(data["pace_per_day"])),
            str(data["pace_per_day"]),
        ),
        Figure("target_date", texts["projection"], projection, str(data["target_date"] or "")),
    ]


def areas(report: Report) -> tuple[bool, tuple[Area, ...]]:
    """(wide, areas): communes for a scope of several, else the commune's villages."""
    wide = len(report.communes) > 1
    return wide, report.communes if wide else report.villages


def rows(
    report: Report, config: Config, f: Formatter, sort: str = "coverage", descending: bool = False
) -> list[Row]:
    """The areas of ``report`` as table rows, sorted by ``sort`` (one of SORTS)."""
    _, listed = areas(report)
    index = {c.code: c for c in config.communes}  # a national deployment has 3,321
    out = []
    for area in listed:
        commune = index.get(area.code.split("/")[0])
        target = commune.target if commune else 0.0
        gap = max(0, math.ceil(target * area.adults_present) - area.completed)
        out.append(
            Row(
                code=area.code,
                name=area.name,
                completed=area.completed,
                present=area.adults_present,
                coverage=area.coverage,
                target=target,
                gap=gap,
                completed_text=f.n(area.completed),
                present_text=f.n(area.adults_present),
                coverage_text=f.pct(area.coverage),
                gap_text=f.n(gap),
            )
        )
    keys = {
        "coverage": lambda r: (r.coverage if r.coverage is not None else math.inf, r.name),
        "name": lambda r: (r.name.casefold(), r.code),
        "completed": lambda r: (r.completed, r.name),
        "present": lambda r: (r.present, r.name),
        "gap": lambda r: (r.gap, r.name),
    }
    out.sort(key=keys.get(sort, keys["coverage"]), reverse=descending)
    return out


@dataclass(frozen=True, slots=True)
class Stage:
    step: str
    title: str
    reached: int
    text: str
    bar: float
    shared: bool
    stuck: str


def funnel(report: Report, content: Content, f: Formatter) -> dict[str, list[Stage]]:
    """The stages before choosing a way ("head"), then each route's steps ("app",
    "vneid"), with bars relative to the people who started."""
    titles = stage_titles(content, f.texts)
    started = max(1, report.funnel[0][1] if report.funnel else 1)
    head = {"started", "benefits", "ready"}

    def stage(step: str, n: int, shared: bool) -> Stage:
        stuck = report.stuck.get(step, 0)
        return Stage(
            step,
            titles.get(step, step),
            n,
            f.n(n),
            round(100 * min(1.0, n / started), 1),
            shared,
            f.n(stuck) if stuck else "",
        )

    chains = {"head": [stage(s, n, False) for s, n in report.funnel if s in head]}
    for route, stages in report.routes.items():
        chains[route] = [stage(s, n, s in report.shared_steps) for s, n in stages]
    return chains


@dataclass(frozen=True, slots=True)
class Week:
    """The weekly report's comparison: the last 7 days against the 7 before."""

    start: str
    end: str
    this_week: str
    last_week: str
    this_value: int
    last_value: int


def week(report: Report, f: Formatter) -> Week:
    days = dict(report.by_day)

    def total(first: int, last: int) -> int:
        return sum(
            days.get((report.day - timedelta(days=i)).isoformat(), 0) for i in range(first, last)
        )

    now, before = total(0, PACE_DAYS), total(PACE_DAYS, 2 * PACE_DAYS)
    return Week(
        start=f.day(report.day - timedelta(days=PACE_DAYS - 1)),
        end=f.day(report.day),
        this_week=f.n(now),
        last_week=f.n(before),
        this_value=now,
        last_value=before,
    )


def top_volunteers(
    report: Report, limit: int = REPORT_VOLUNTEERS
) -> list[tuple[str, int, int, int]]:
    """The volunteers who helped most (recorded help, then finished through their link)."""
    ranked = sorted(report.volunteers, key=lambda v: (-v[3], -v[2], -v[1], v[0]))
    return [v for v in ranked if v[1] or v[2] or v[3]][:limit]


def help_desk(found: HelpFigures, texts: Mapping[str, str], median: str, f: Formatter) -> str:
    """The help requests' line of the volunteers page: the figures /stats gives."""
    share = f.pct(found.resolved_share) if found.resolved_share is not None else "-"
    return texts["help_desk_text"].format(
        requests=f.n(found.count),
        open=f.n(found.open),
        claimed=f.n(found.claimed),
        taken=f.n(found.taken),
        ended=f.n(found.ended),
        installed=f.n(found.resolved),
        share=share,
        median=median,
    )
