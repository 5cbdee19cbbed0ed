"""Officials' charts as SVG: completions per day (or week) and coverage by area, drawn from a
:class:`~bot.stats.Report` -- the very figures of /stats. The chat's /chart sends them as one
PNG (rendered by resvg, as the install pictures are); the web dashboard puts the SVG in
the page.

Drawn here rather than with matplotlib: a two-panel matplotlib figure took 0.8-1.5 s on
this 2-core machine, several times the dashboard's whole 300 ms budget, and its SVG is
three times the size; these take about a millisecond. Every bar carries its number (a bar
of 1 next to a target of 1,838 would be invisible), the date axis spans the data and not
years, the title names the scope and the data's date, and the target is labelled on its
line instead of in a legend that could hide it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from xml.sax.saxutils import escape, quoteattr

from bot.stats import Area, Formatter, Report

WIDTH = 800
FONT = "DejaVu Sans, Verdana, Arial, sans-serif"
INK = "#1a1a1a"
MUTED = "#555555"
BAR = "#1d5fa8"
TARGET = "#b3261e"
GRID = "#d0d0d0"
#: Daily bars up to this many days; weekly bars beyond (a campaign of months).
MAX_DAILY_BARS = 31
#: The date axis shows at least this many days, ending on the report's date.
MIN_DAYS = 7
#: Areas in the coverage chart (lowest coverage first: those needing help).
MAX_AREAS = 20
#: Longest area name drawn in full (characters); longer ones are shortened with "…".
NAME_CHARS = 26


@dataclass(frozen=True, slots=True)
class Bin:
    """One bar of the progress chart: a day, or a week starting that day."""

    start: date
    days: int
    count: int


def bins(report: Report) -> list[Bin]:
    """Completions per day from the first completion (or a week back) to the report's day;
    per week (Monday to Sunday) when that is more than MAX_DAILY_BARS days."""
    counts = {date.fromisoformat(d): n for d, n in report.by_day.items()}
    end = report.day
    first = min(counts, default=end)
    start = min(first, end - timedelta(days=MIN_DAYS - 1))
    span = (end - start).days + 1
    if span <= MAX_DAILY_BARS:
        days = [start + timedelta(days=i) for i in range(span)]
        return [Bin(d, 1, counts.get(d, 0)) for d in days]
    monday = start - timedelta(days=start.weekday())
    weeks = []
    while monday <= end:
        n = sum(counts.get(monday + timedelta(days=i), 0) for i in range(7))
        weeks.append(Bin(monday, 7, n))
        monday += timedelta(days=7)
    return weeks


def _nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten at or above ``value`` (at least 1)."""
    if value <= 1:
        return 1
    power: int = 10 ** int(math.log10(value))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= value)


def _text(
    x: float,
    y: float,
    text: str,
    *,
    size: int = 14,
    anchor: str = "start",
    weight: str = "normal",
    fill: str = INK,
    css: str = "",
) -> str:
    extra = f' font-weight="{weight}"' if weight != "normal" else ""
    extra += f" class={quoteattr(css)}" if css else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
        f'fill="{fill}"{extra}>{escape(text)}</text>'
    )


def _svg(ident: str, title: str, height: float, body: Sequence[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height:.0f}" '
        f'width="{WIDTH}" height="{height:.0f}" role="img" aria-labelledby="{ident}-t" '
        f'font-family="{FONT}" class="chart" id="{ident}">'
        f'<title id="{ident}-t">{escape(title)}</title>'
        f'<rect width="{WIDTH}" height="{height:.0f}" fill="#ffffff"/>' + "".join(body) + "</svg>"
    )


def progress_svg(
    report: Report, texts: Mapping[str, str], locale: str = "vi", ident: str = "progress"
) -> str:
    """Completions per day (or week) with the number on each bar, over a date axis that
    spans the data, titled with the scope and the date of the figures."""
    f = Formatter(locale, texts)
    data = bins(report)
    weekly = data[0].days == 7
    title = texts["chart_title"].format(scope=report.scope, date=f.day(report.day))
    summary = texts["chart_summary"].format(
        completed=f.n(report.completed), target=f.n(report.target_people), gap=f.n(report.gap)
    )
    left, right, top, plot_h = 56.0, WIDTH - 16.0, 92.0, 220.0
    bottom = top + plot_h
    body = [
        _text(16, 28, title, size=18, weight="bold"),
        _text(16, 52, summary, size=14, fill=MUTED),
        _text(16, 76, texts["chart_weekly" if weekly else "chart_daily"], size=14),
    ]
    ceiling = _nice_ceiling(max((b.count for b in data), default=0))
    for value in (0, ceiling // 2, ceiling) if ceiling >= 2 else (0, ceiling):
        y = bottom - plot_h * value / ceiling
        body.append(f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="{GRID}"/>')
        body.append(_text(left - 6, y + 5, f.n(value), size=13, anchor="end", fill=MUTED))
    slot = (right - left) / len(data)
    bar_w = min(48.0, max(2.0, slot * 0.7))
    label_every = max(1, math.ceil(len(data) / 8))
    for i, b in enumerate(data):
        x = left + i * slot + (slot - bar_w) / 2
        h = plot_h * b.count / ceiling
        if b.count:
            h = max(h, 2.0)  # a bar of one stays visible next to hundreds
            body.append(
                f'<rect x="{x:.1f}" y="{bottom - h:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}" fill="{BAR}" class="bar"/>'
            )
            body.append(
                _text(
                    x + bar_w / 2,
                    bottom - h - 5,
                    f.n(b.count),
                    size=13,
                    anchor="middle",
                    css="value",
                )
            )
        if i % label_every == 0 or i == len(data) - 1:
            body.append(
                _text(
                    x + bar_w / 2,
                    bottom + 20,
                    f.short_day(b.start),
                    size=13,
                    anchor="middle",
                    fill=MUTED,
                    css="tick",
                )
            )
    years = sorted({data[0].start.year, report.day.year})
    axis = texts["chart_axis"].format(years="–".join(str(y) for y in years))
    body.append(f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="{INK}"/>')
    body.append(
        _text(
            (left + right) / 2, bottom + 44, axis, size=13, anchor="middle", fill=MUTED, css="axis"
        )
    )
    return _svg(ident, f"{title}. {summary}", bottom + 56, body)


def coverage_svg(
    report: Report, texts: Mapping[str, str], locale: str = "vi", ident: str = "coverage"
) -> str:
    """Coverage of adults present by area, lowest first, each bar with its share and its
    count, and the target as a labelled line."""
    f = Formatter(locale, texts)
    wide = len(report.communes) > 1
    areas: list[Area] = list(report.communes if wide else report.villages)[:MAX_AREAS]
    title = texts["chart_coverage_communes" if wide else "chart_coverage"].format(
        scope=report.scope, date=f.day(report.day)
    )
    name_w, row_h, top = 230.0, 26.0, 76.0
    left, right = 16.0 + name_w, WIDTH - 190.0
    bottom = top + row_h * max(1, len(areas))
    target_x = left + (right - left) * min(1.0, report.target_share)
    target = texts["chart_target"].format(target=f.pct(report.target_share))
    body = [
        _text(16, 28, title, size=18, weight="bold"),
        _text(target_x, top - 12, target, size=13, anchor="middle", fill=TARGET, css="target"),
    ]
    for fraction in (0.0, 0.5, 1.0):
        x = left + (right - left) * fraction
        body.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" stroke="{GRID}"/>')
        body.append(_text(x, bottom + 18, f.pct(fraction), size=13, anchor="middle", fill=MUTED))
    for i, area in enumerate(areas):
        y = top + i * row_h
        name = area.name if len(area.name) <= NAME_CHARS else area.name[: NAME_CHARS - 1] + "…"
        body.append(_text(left - 8, y + 18, name, size=14, anchor="end"))
        share = area.coverage
        w = (right - left) * min(1.0, share or 0.0)
        if area.completed:
            w = max(w, 2.0)
            body.append(
                f'<rect x="{left}" y="{y + 5:.1f}" width="{w:.1f}" height="{row_h - 10:.1f}" '
                f'fill="{BAR}" class="bar"/>'
            )
        value = texts["chart_area_value"].format(
            coverage=f.pct(share), completed=f.n(area.completed), present=f.n(area.adults_present)
        )
        body.append(_text(left + w + 6, y + 18, value, size=13, css="value"))
    body.append(
        f'<line x1="{target_x:.1f}" y1="{top - 6}" x2="{target_x:.1f}" y2="{bottom}" '
        f'stroke="{TARGET}" stroke-width="2" stroke-dasharray="6 4"/>'
    )
    return _svg(ident, title, bottom + 30, body)


def chart_svg(report: Report, texts: Mapping[str, str], locale: str = "vi") -> str:
    """Both charts, one above the other (the chat's /chart picture)."""
    upper = progress_svg(report, texts, locale, "progress")
    lower = coverage_svg(report, texts, locale, "coverage")
    h1 = float(upper.split('height="', 1)[1].split('"', 1)[0])
    h2 = float(lower.split('height="', 1)[1].split('"', 1)[0])
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {h1 + h2:.0f}">'
        f'<rect width="{WIDTH}" height="{h1 + h2:.0f}" fill="#ffffff"/>'
        f'<g>{upper}</g><g transform="translate(0 {h1:.0f})">{lower}</g></svg>'
    )


def chart_png(report: Report, texts: Mapping[str, str], locale: str = "vi") -> bytes:
    """Both charts as one PNG, 1,000 pixels wide (readable on a phone, zoomed)."""
    from bot.pictures import render_png

    png, _, _ = render_png(chart_svg(report, texts, locale).encode("utf-8"), width=1000)
    return png
