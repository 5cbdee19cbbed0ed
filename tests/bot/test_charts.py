"""The officials' charts (bot/charts.py): a date axis that spans the data, a number on every
bar, a title with the scope and the date, the target labelled where no legend can hide it."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date, timedelta

from bot.charts import bins, chart_png, coverage_svg, progress_svg
from bot.config import Config
from bot.content import Content, load_staff_texts
from bot.stats import MAX_LINES, RawStats, Report, build_report, population

DAY = date(2026, 11, 24)
TEXTS = load_staff_texts("vi")
NS = "{http://www.w3.org/2000/svg}"


def one_day(config: Config, content: Content, days: dict[date, int] | None = None) -> Report:
    days = days or {DAY: 1}
    raw = RawStats(
        by_village={("16279", "dong-hoa", "self"): sum(days.values())},
        by_day={(d.isoformat(), "self"): n for d, n in days.items()},
    )
    return build_report(
        raw,
        scope_name="Xã Nông Cống",
        communes=config.communes,
        figures=population(config.communes, {}),
        content=content,
        today=DAY,
    )


def texts_of(svg: str, css: str) -> list[str]:
    root = ET.fromstring(svg)
    return [t.text or "" for t in root.iter(f"{NS}text") if t.get("class") == css]


def test_one_day_of_data_spans_a_week_not_years(config: Config, content: Content) -> None:
    report = one_day(config, content)
    data = bins(report)
    assert [b.start for b in data] == [DAY - timedelta(days=6 - i) for i in range(7)]
    svg = progress_svg(report, TEXTS)
    ticks = texts_of(svg, "tick")
    assert ticks[0] == "18/11"
    assert ticks[-1] == "24/11"
    assert texts_of(svg, "axis") == ["Ngày (năm 2026)"], "the year is said"


def test_every_bar_has_its_number(config: Config, content: Content) -> None:
    report = one_day(config, content, {DAY: 1, DAY - timedelta(days=2): 12})
    svg = progress_svg(report, TEXTS)
    assert texts_of(svg, "value") == ["12", "1"]
    root = ET.fromstring(svg)
    bars = [r for r in root.iter(f"{NS}rect") if r.get("class") == "bar"]
    assert len(bars) == 2
    assert min(float(b.get("height", 0)) for b in bars) >= 2, "a bar of 1 stays visible"


def test_the_title_names_the_scope_and_the_date(config: Config, content: Content) -> None:
    svg = progress_svg(one_day(config, content), TEXTS)
    title = ET.fromstring(svg).find(f"{NS}title")
    assert title is not None
    assert title.text is not None
    assert title.text.startswith("Xã Nông Cống: số người cài xong — số liệu ngày 24/11/2026")
    assert "Mục tiêu: 1.838 người" in title.text


def test_a_long_campaign_has_weekly_bars(config: Config, content: Content) -> None:
    start = DAY - timedelta(days=90)
    report = one_day(config, content, {start: 3, DAY: 2})
    data = bins(report)
    assert all(b.days == 7 for b in data)
    assert data[0].start.weekday() == 0
    assert sum(b.count for b in data) == 5
    assert len(data) <= 15


def test_coverage_bars_carry_share_and_count_and_the_target_is_above_them(
    config: Config, content: Content
) -> None:
    svg = coverage_svg(one_day(config, content), TEXTS)
    values = texts_of(svg, "value")
    assert "0,1 % (1/850)" in values
    assert len(values) == len(config.communes[0].villages) <= MAX_LINES
    root = ET.fromstring(svg)
    (target,) = [t for t in root.iter(f"{NS}text") if t.get("class") == "target"]
    assert target.text == "Mục tiêu 50,0 %"
    first_row = min(float(r.get("y", 0)) for r in root.iter(f"{NS}rect") if r.get("class"))
    assert float(target.get("y", 0)) < first_row, "the label sits above the bars"
    assert root.find(f"{NS}g[@class='legend']") is None


def test_the_chat_picture_is_a_png(config: Config, content: Content) -> None:
    png = chart_png(one_day(config, content), TEXTS)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert 10_000 < len(png) < 200_000
