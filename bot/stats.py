"""Officials' figures: coverage against adults present, targets, pace, funnel -- and their
Vietnamese rendering, JSON form and spreadsheet rows.

Pure: it takes the raw counts (storage/stats.py), the deployment's population figures and
the date, and returns a :class:`Report`. Coverage counts completions against the adults
*present*, as the Cam Linh campaign report recommends, with the all-residents and household
figures beside it. Self-reported and volunteer-recorded completions are shown apart: one
person may be in both, and the report says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import pairwise
from typing import Any

from babel.dates import format_date
from babel.numbers import format_decimal, format_percent

from bot.config import Commune, Config
from bot.content import Content
from bot.officials import ASSISTED_PER_HOUR

PACE_DAYS = 7
#: A projection of the date the target is reached is shown only when the pace behind it
#: means something: at least PACE_MIN_COMPLETIONS completions in the last PACE_DAYS days,
#: spread over at least PACE_MIN_DAYS different days (not one evening's batch of entries),
#: and a date at most PROJECTION_MAX_DAYS away (beyond a year it is not a forecast but a
#: warning that the pace must change). One completion a week used to promise the target
#: in 2062.
PACE_MIN_COMPLETIONS = 10
PACE_MIN_DAYS = 3
PROJECTION_MAX_DAYS = 365
#: Funnel stages besides the install steps: (stage id, event kind, event step).
HEAD = (
    ("started", "started", ""),
    ("benefits", "step", "benefits_what"),
    ("ready", "step", "ready"),
)
TAIL = (("completed", "completed", ""),)
#: Lines listed in a chat message (the JSON and the spreadsheet have them all).
MAX_LINES = 15


@dataclass
class RawStats:
    """Counts read from the store for a set of communes (see storage/stats.py)."""

    # completions by source: "self" (reported by the citizen), "volunteer" (assisted)
    by_village: dict[tuple[str, str, str], int] = field(
        default_factory=dict
    )  # commune, village, source
    by_provider: dict[tuple[str, str], int] = field(default_factory=dict)  # provider, source
    by_day: dict[tuple[str, str], int] = field(default_factory=dict)  # YYYY-MM-DD, source
    # (kind, step) -> distinct users who reached it
    reached: dict[tuple[str, str], int] = field(default_factory=dict)
    # install step -> "stuck" reports
    stuck: dict[str, int] = field(default_factory=dict)
    # screen ("" outside the steps) -> times a citizen asked to talk to a person
    help_requests: dict[str, int] = field(default_factory=dict)
    # volunteer code -> people who started through their link / finished / were helped
    started_via: dict[str, int] = field(default_factory=dict)
    finished_via: dict[str, int] = field(default_factory=dict)
    helped_by: dict[str, int] = field(default_factory=dict)
    # volunteer code -> when they recorded assisted completions (the last BURST_DAYS)
    assisted_at: dict[str, list[datetime]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Area:
    """A village (or, for wide scopes, a commune) with its figures."""

    code: str
    name: str
    completed: int
    adults_present: int
    adults: int
    households: int

    @property
    def coverage(self) -> float | None:
        return _share(self.completed, self.adults_present)


@dataclass(frozen=True, slots=True)
class Report:
    scope: str
    day: date
    completed_self: int
    completed_assisted: int
    adults_present: int
    adults: int
    households: int
    target_share: float
    target_people: int
    pace: float  # completions per day over the last PACE_DAYS days
    #: Days of the last PACE_DAYS with at least one completion.
    pace_days: int
    villages: tuple[Area, ...]
    communes: tuple[Area, ...]
    by_provider: Mapping[str, int]
    volunteers: tuple[tuple[str, int, int, int], ...]  # code, started, finished, helped
    funnel: tuple[tuple[str, int], ...]
    stuck: Mapping[str, int]
    by_day: Mapping[str, int] = field(default_factory=dict)
    #: The stage after which most people stop, on the main path, and how many stop there.
    worst_step: tuple[str, int] | None = None
    #: The install steps of each route ("app", "vneid") with how many reached each; the
    #: last stage is "completed": completions reported with a provider of that route.
    routes: Mapping[str, tuple[tuple[str, int], ...]] = field(default_factory=dict)
    #: Install steps that both routes go through: their counts are for both together.
    shared_steps: frozenset[str] = frozenset()
    #: Where citizens asked to talk to a person (screen -> times; "" outside any screen).
    help_requests: Mapping[str, int] = field(default_factory=dict)
    #: Volunteers who recorded more assisted completions in one hour than a person can do
    #: (bot.officials.ASSISTED_PER_HOUR), with the most they recorded in any hour.
    bursts: tuple[tuple[str, int], ...] = ()

    @property
    def completed(self) -> int:
        return self.completed_self + self.completed_assisted

    @property
    def coverage(self) -> float | None:
        return _share(self.completed, self.adults_present)

    @property
    def gap(self) -> int:
        return max(0, self.target_people - self.completed)

    @property
    def projection_withheld(self) -> str | None:
        """Why no target date is projected: "reached", "no_target", "too_few" (the pace is
        not meaningful yet, see PACE_MIN_COMPLETIONS) or "too_far"; None when it is."""
        if self.target_people == 0:
            return "no_target"
        if self.gap == 0:
            return "reached"
        recent = self.pace * PACE_DAYS
        if recent < PACE_MIN_COMPLETIONS or self.pace_days < PACE_MIN_DAYS:
            return "too_few"
        if self.gap / self.pace > PROJECTION_MAX_DAYS:
            return "too_far"
        return None

    @property
    def eta(self) -> date | None:
        """When the target is reached at the current pace (None: see projection_withheld)."""
        if self.projection_withheld is not None:
            return None
        return self.day + timedelta(days=math.ceil(self.gap / self.pace))

    def to_json(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "date": self.day.isoformat(),
            "completed": self.completed,
            "completed_self": self.completed_self,
            "completed_assisted": self.completed_assisted,
            "adults_present": self.adults_present,
            "adults": self.adults,
            "households": self.households,
            "coverage": _round(self.coverage),
            "coverage_all_adults": _round(_share(self.completed, self.adults)),
            "coverage_households": _round(_share(self.completed, self.households)),
            "target": self.target_share,
            "target_people": self.target_people,
            "gap": self.gap,
            "pace_per_day": round(self.pace, 2),
            "target_date": self.eta.isoformat() if self.eta else None,
            "target_date_withheld": self.projection_withheld,
            "by_village": [
                {
                    "commune": a.code.split("/")[0],
                    "village": a.code.split("/")[-1],
                    "name": a.name,
                    "completed": a.completed,
                    "adults_present": a.adults_present,
                    "coverage": _round(a.coverage),
                }
                for a in self.villages
            ],
            "by_commune": [
                {
                    "commune": a.code,
                    "name": a.name,
                    "completed": a.completed,
                    "adults_present": a.adults_present,
                    "coverage": _round(a.coverage),
                }
                for a in self.communes
            ],
            "by_provider": dict(self.by_provider),
            "by_volunteer": [
                {"volunteer": code, "started": s, "finished": f, "helped": h}
                for code, s, f, h in self.volunteers
            ],
            "funnel": [{"step": step, "reached": n} for step, n in self.funnel],
            "funnel_by_route": {
                route: [
                    {"step": step, "reached": n, "shared": step in self.shared_steps}
                    for step, n in stages
                ]
                for route, stages in self.routes.items()
            },
            "most_stop_after": self.worst_step[0] if self.worst_step else None,
            "stuck": dict(self.stuck),
            "help_requests": dict(self.help_requests),
            "assisted_bursts": [
                {"volunteer": code, "most_in_an_hour": n} for code, n in self.bursts
            ],
        }


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole > 0 else None


def _round(value: float | None) -> float | None:
    return round(value, 4) if value is not None else None


def population(
    communes: tuple[Commune, ...], imported: Mapping[tuple[str, str], tuple[int, int, int]]
) -> dict[tuple[str, str], tuple[int, int, int]]:
    """(commune, village) -> (adults, adults_present, households): imported figures win."""
    figures = {
        (c.code, v.id): (v.adults, v.adults_present, v.households)
        for c in communes
        for v in c.villages
    }
    for key, value in imported.items():
        if key in figures:
            figures[key] = value
    return figures


def build_report(
    raw: RawStats,
    *,
    scope_name: str,
    communes: tuple[Commune, ...],
    figures: Mapping[tuple[str, str], tuple[int, int, int]],
    content: Content,
    today: date,
    volunteers: Mapping[str, str] | None = None,
    provider_routes: Mapping[str, str] | None = None,
) -> Report:
    """The figures of ``communes`` on ``today`` (the deployment's local date).
    ``provider_routes``: provider id -> route ("app", "vneid"), for the funnel per route."""
    done: dict[tuple[str, str], list[int]] = {}
    for (commune, village, source), n in raw.by_village.items():
        slot = done.setdefault((commune, village), [0, 0])
        slot[0 if source == "self" else 1] += n
    villages: list[Area] = []
    by_commune: list[Area] = []
    for c in communes:
        mine = []
        for v in c.villages:
            adults, present, households = figures.get((c.code, v.id), (0, 0, 0))
            self_, assisted = done.get((c.code, v.id), [0, 0])
            mine.append(
                Area(f"{c.code}/{v.id}", v.name, self_ + assisted, present, adults, households)
            )
        unknown = done.get((c.code, "unknown"))
        if unknown:
            mine.append(
                Area(f"{c.code}/unknown", content.labels["unknown"], sum(unknown), 0, 0, 0)
            )
        villages += mine
        by_commune.append(
            Area(
                c.code,
                c.name,
                sum(a.completed for a in mine),
                sum(a.adults_present for a in mine),
                sum(a.adults for a in mine),
                sum(a.households for a in mine),
            )
        )
    present = sum(a.adults_present for a in by_commune)
    target_people = sum(
        math.ceil(c.target * a.adults_present) for c, a in zip(communes, by_commune, strict=True)
    )
    by_day: dict[str, int] = {}
    for (day, _source), n in raw.by_day.items():
        by_day[day] = by_day.get(day, 0) + n
    recent = {(today - timedelta(days=i)).isoformat() for i in range(PACE_DAYS)}
    pace = sum(n for day, n in by_day.items() if day in recent) / PACE_DAYS
    providers: dict[str, int] = {}
    for (provider, _source), n in raw.by_provider.items():
        providers[provider] = providers.get(provider, 0) + n
    stages = funnel(raw, content)
    routes, shared = route_funnels(raw, content, provider_routes or {})
    codes = sorted(set(volunteers or {}) | set(raw.started_via) | set(raw.helped_by))
    codes = [c for c in codes if volunteers is None or c in volunteers]
    return Report(
        scope=scope_name,
        day=today,
        completed_self=sum(n for (_, _, s), n in raw.by_village.items() if s == "self"),
        completed_assisted=sum(n for (_, _, s), n in raw.by_village.items() if s != "self"),
        adults_present=present,
        adults=sum(a.adults for a in by_commune),
        households=sum(a.households for a in by_commune),
        target_share=round(target_people / present, 4) if present else _single_target(communes),
        target_people=target_people,
        pace=pace,
        pace_days=sum(1 for day, n in by_day.items() if day in recent and n > 0),
        villages=tuple(sorted(villages, key=_lowest_first)),
        communes=tuple(sorted(by_commune, key=_lowest_first)),
        by_provider=dict(sorted(providers.items(), key=lambda kv: -kv[1])),
        volunteers=tuple(
            (c, raw.started_via.get(c, 0), raw.finished_via.get(c, 0), raw.helped_by.get(c, 0))
            for c in codes
        ),
        funnel=stages,
        worst_step=worst_step(stages, content),
        stuck={s.id: raw.stuck[s.id] for s in content.install if raw.stuck.get(s.id)},
        by_day=dict(sorted(by_day.items())),
        routes=routes,
        shared_steps=shared,
        help_requests=dict(sorted(raw.help_requests.items())),
        bursts=bursts(raw.assisted_at),
    )


def most_in_an_hour(times: Sequence[datetime]) -> int:
    """The most of ``times`` that fall within any one hour (a sliding window)."""
    ordered = sorted(times)
    most = start = 0
    for end, moment in enumerate(ordered):
        while moment - ordered[start] >= timedelta(hours=1):
            start += 1
        most = max(most, end - start + 1)
    return most


def bursts(assisted_at: Mapping[str, Sequence[datetime]]) -> tuple[tuple[str, int], ...]:
    """Volunteers who recorded more assisted completions in an hour than a person can help
    with, and the most they recorded in one hour; the most first."""
    peaks = [
        (code, peak)
        for code, times in assisted_at.items()
        if (peak := most_in_an_hour(times)) > ASSISTED_PER_HOUR
    ]
    return tuple(sorted(peaks, key=lambda p: (-p[1], p[0])))


def worst_step(stages: tuple[tuple[str, int], ...], content: Content) -> tuple[str, int] | None:
    """Where the biggest number of people stop, along readiness -> the provider-app route
    -> completed (benefits are optional, the VNeID route is the smaller one)."""
    main = {"ready", "completed", *(s.id for s in content.install_steps("app"))}
    path = [(s, n) for s, n in stages if s in main]
    drops = [(a[0], a[1] - b[1]) for a, b in pairwise(path) if a[1] > b[1]]
    return max(drops, key=lambda d: d[1]) if drops else None


def _single_target(communes: tuple[Commune, ...]) -> float:
    return communes[0].target if len(communes) == 1 else 0.0


def _lowest_first(area: Area) -> tuple[float, str]:
    coverage = area.coverage
    return (coverage if coverage is not None else math.inf, area.name)


def funnel(raw: RawStats, content: Content) -> tuple[tuple[str, int], ...]:
    """Distinct users who reached each stage: started, benefits, readiness, every install
    step in walkthrough order, completed."""
    stages = [*HEAD, *(("step:" + s.id, "step", s.id) for s in content.install), *TAIL]
    return tuple(
        (stage.removeprefix("step:"), raw.reached.get((kind, step), 0))
        for stage, kind, step in stages
    )


def route_funnels(
    raw: RawStats, content: Content, kinds: Mapping[str, str]
) -> tuple[dict[str, tuple[tuple[str, int], ...]], frozenset[str]]:
    """The install steps of each route apart, and the steps both routes share.

    A step's count is of people who reached it, whatever their route: the store records the
    screens people reach, not their route, so a shared step (installing the app, the face
    check...) is counted once for both and says so. A route's completions are the
    self-reported completions with one of its providers."""
    routes = ("app", "vneid")
    steps = {route: [s.id for s in content.install_steps(route)] for route in routes}
    shared = frozenset(steps["app"]) & frozenset(steps["vneid"])
    done: dict[str, int] = dict.fromkeys(routes, 0)
    for (provider, source), n in raw.by_provider.items():
        kind = kinds.get(provider)
        if source == "self" and kind in done:
            done[kind] += n
    chains = {
        route: (
            *((step, raw.reached.get(("step", step), 0)) for step in steps[route]),
            ("completed", done[route]),
        )
        for route in routes
    }
    return chains, shared


# --- Vietnamese (or any locale's) rendering ---------------------------------------------


class Formatter:
    """Numbers, shares and dates the way the locale writes them (1.608 — 43,7 % — 24/11/2026)."""

    def __init__(self, locale: str, texts: Mapping[str, str]):
        self.locale = locale
        self.texts = texts

    def n(self, value: float) -> str:
        return format_decimal(value, locale=self.locale)

    def pct(self, value: float | None) -> str:
        if value is None:
            return self.texts["no_value"]
        return format_percent(value, "#,##0.0 %", locale=self.locale)

    def day(self, value: date) -> str:
        return format_date(value, self.texts.get("date_format", "dd/MM/yyyy"), locale=self.locale)

    def short_day(self, value: date) -> str:
        """A day without its year (chart ticks: the year is said once, on the axis)."""
        return format_date(value, self.texts.get("short_date_format", "dd/MM"), locale=self.locale)


def render(report: Report, config: Config, content: Content, texts: Mapping[str, str]) -> str:
    """The /stats message."""
    f = Formatter(content.locale, texts)
    lines = [
        texts["title"].format(scope=report.scope, date=f.day(report.day)),
        texts["coverage"].format(
            completed=f.n(report.completed),
            present=f.n(report.adults_present),
            coverage=f.pct(report.coverage),
        ),
        texts["coverage_more"].format(
            adults=f.n(report.adults),
            coverage_all=f.pct(_share(report.completed, report.adults)),
            households=f.n(report.households),
            coverage_households=f.pct(_share(report.completed, report.households)),
        ),
    ]
    if report.gap == 0 and report.target_people > 0:
        lines.append(texts["target_reached"].format(target=f.pct(report.target_share)))
    else:
        lines.append(
            texts["target_gap"].format(target=f.pct(report.target_share), gap=f.n(report.gap))
        )
    if (pace := pace_text(report, f)) is not None:
        lines.append(pace)
    lines.append(
        texts["sources"].format(
            self=f.n(report.completed_self), assisted=f.n(report.completed_assisted)
        )
    )
    wide = len(report.communes) > 1
    areas = report.communes if wide else report.villages
    lines.append("")
    lines.append(texts["by_commune" if wide else "by_village"])
    for area in areas[:MAX_LINES]:
        lines.append(
            texts["area_line"].format(
                name=area.name,
                completed=f.n(area.completed),
                present=f.n(area.adults_present),
                coverage=f.pct(area.coverage),
            )
        )
    if len(areas) > MAX_LINES:
        lines.append(texts["more_lines"].format(count=f.n(len(areas) - MAX_LINES)))
    if report.by_provider:
        names = {p.id: p.name for p in config.providers} | {"unknown": content.labels["unknown"]}
        parts = [f"{names.get(p, p)} {f.n(n)}" for p, n in report.by_provider.items()]
        lines += ["", texts["by_provider"] + " " + "; ".join(parts)]
    if report.volunteers:
        lines += ["", texts["by_volunteer"]]
        for code, started, finished, helped in report.volunteers[:MAX_LINES]:
            lines.append(
                texts["volunteer_line"].format(
                    code=code, started=f.n(started), finished=f.n(finished), helped=f.n(helped)
                )
            )
    for code, count in report.bursts:
        lines.append(
            texts["burst_line"].format(code=code, count=f.n(count), limit=f.n(ASSISTED_PER_HOUR))
        )
    titles = stage_titles(content, texts)
    lines += ["", texts["funnel"], *funnel_lines(report, titles, f)]
    worst = report.worst_step
    if worst:
        lines.append(texts["worst_step"].format(step=titles[worst[0]], count=f.n(worst[1])))
    if report.stuck:
        parts = [f"{titles[s]} {f.n(n)}" for s, n in report.stuck.items()]
        lines.append(texts["stuck"] + " " + "; ".join(parts))
    return "\n".join(lines)


def pace_text(report: Report, f: Formatter) -> str | None:
    """The pace of the last PACE_DAYS days and the projected date, or why there is none
    (None once the target is reached)."""
    texts = f.texts
    pace = f.n(round(report.pace, 1))
    withheld = report.projection_withheld
    if report.eta:
        return texts["pace_eta"].format(pace=pace, eta=f.day(report.eta))
    if withheld == "too_few":
        return texts["pace_too_few"].format(
            pace=pace, days=PACE_DAYS, least=PACE_MIN_COMPLETIONS, spread=PACE_MIN_DAYS
        )
    if withheld == "too_far":
        return texts["pace_too_far"].format(pace=pace)
    if withheld == "no_target":
        return texts["pace_none"].format(pace=pace)
    return None


def funnel_lines(report: Report, titles: Mapping[str, str], f: Formatter) -> list[str]:
    """The funnel as lines: the stages before choosing a way, then each route's steps apart
    (a step both routes share is marked, its count being for both)."""
    texts = f.texts
    head = {s for s, _, _ in HEAD}
    lines = [
        texts["funnel_head"]
        + " "
        + " → ".join(f"{titles[s]} {f.n(n)}" for s, n in report.funnel if s in head)
    ]
    for route, stages in report.routes.items():
        chain = " → ".join(
            f"{titles[s]}{texts['shared_mark'] if s in report.shared_steps else ''} {f.n(n)}"
            for s, n in stages
        )
        lines.append(texts[f"funnel_{route}"] + " " + chain)
    if report.shared_steps:
        lines.append(texts["funnel_shared"])
    return lines


def stage_titles(content: Content, texts: Mapping[str, str]) -> dict[str, str]:
    stages = [*(s for s, _, _ in HEAD), *(s.id for s in content.install), *(s for s, _, _ in TAIL)]
    return {stage: texts.get(f"stage_{stage}", stage) for stage in stages}
