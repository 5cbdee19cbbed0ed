"""Officials' figures (bot/stats.py) from hand-made counts: the projection is only shown when
the pace behind it means something, and the funnel keeps the two routes apart."""

from __future__ import annotations

from datetime import date, timedelta

from bot.config import Config
from bot.content import Content, load_staff_texts
from bot.stats import (
    PACE_MIN_COMPLETIONS,
    PACE_MIN_DAYS,
    Formatter,
    RawStats,
    Report,
    build_report,
    funnel_lines,
    population,
    render,
    stage_titles,
)

DAY = date(2026, 11, 24)
TEXTS = load_staff_texts("vi")


def report_of(config: Config, content: Content, per_day: dict[int, int], **raw: object) -> Report:
    """Nong Cong's report on DAY with ``per_day``: days ago -> completions that day."""
    by_day = {((DAY - timedelta(days=ago)).isoformat(), "self"): n for ago, n in per_day.items()}
    total = sum(per_day.values())
    stats = RawStats(by_village={("16279", "dong-hoa", "self"): total}, by_day=by_day)
    for key, value in raw.items():
        setattr(stats, key, value)
    return build_report(
        stats,
        scope_name="Xã Nông Cống",
        communes=config.communes,
        figures=population(config.communes, {}),
        content=content,
        today=DAY,
        provider_routes={p.id: p.kind for p in config.providers},
    )


def test_one_completion_projects_nothing(config: Config, content: Content) -> None:
    report = report_of(config, content, {0: 1})
    assert report.eta is None, "one a week used to promise the target in 2062"
    assert report.projection_withheld == "too_few"
    assert report.to_json()["target_date"] is None
    line = render(report, config, content, TEXTS)
    assert "Chưa đủ số liệu để ước tính" in line
    assert f"ít nhất {PACE_MIN_COMPLETIONS} người" in line


def test_a_batch_on_one_day_is_not_a_pace(config: Config, content: Content) -> None:
    report = report_of(config, content, {1: 30})
    assert report.pace_days == 1 < PACE_MIN_DAYS
    assert report.eta is None


def test_a_steady_pace_projects_a_date(config: Config, content: Content) -> None:
    # 14 a day for a week: 98 in 7 days; the gap is 1838 - 98 = 1740 -> 125 days.
    report = report_of(config, content, dict.fromkeys(range(7), 14))
    assert report.pace == 14
    assert report.projection_withheld is None
    assert report.eta == DAY + timedelta(days=125)
    assert "ngày 29/03/2027" in render(report, config, content, TEXTS)


def test_a_pace_too_slow_for_a_year_warns_instead(config: Config, content: Content) -> None:
    # 12 in a week over 4 days: 1.7 a day; 1826 more would take about 1,065 days.
    report = report_of(config, content, {0: 3, 1: 3, 2: 3, 3: 3})
    assert report.projection_withheld == "too_far"
    assert report.eta is None
    assert "hơn 1 năm" in render(report, config, content, TEXTS)


def test_the_funnel_keeps_the_routes_apart(config: Config, content: Content) -> None:
    reached = {
        ("started", ""): 40,
        ("step", "ready"): 30,
        ("step", "store"): 25,
        ("step", "register"): 15,
        ("step", "cccd_front"): 12,
        ("step", "vneid_login"): 8,
        ("step", "face"): 14,
    }
    providers = {("vnpt", "self"): 5, ("vneid", "self"): 2, ("vneid", "volunteer"): 4}
    report = report_of(config, content, {}, reached=reached, by_provider=providers)
    app = dict(report.routes["app"])
    vneid = dict(report.routes["vneid"])
    assert "vneid_login" not in app
    assert "register" not in vneid
    assert (app["register"], vneid["vneid_login"]) == (15, 8)
    assert (app["completed"], vneid["completed"]) == (5, 2), "self-reported, by provider kind"
    assert {"store", "first_use"} <= report.shared_steps
    assert "face" not in report.shared_steps, "in VNeID, the screen leads after the menu"
    assert "register" not in report.shared_steps
    routes = report.to_json()["funnel_by_route"]
    assert routes["vneid"][1] == {"step": "vneid_login", "reached": 8, "shared": False}
    assert routes["app"][0] == {"step": "store", "reached": 25, "shared": True}
    lines = funnel_lines(report, stage_titles(content, TEXTS), Formatter("vi", TEXTS))
    head, app_line, vneid_line, note = lines
    assert head.endswith("Bắt đầu 40 → Xem lợi ích 0 → Chuẩn bị 30")
    assert "Đăng ký, OTP 15" in app_line
    assert "VNeID" not in app_line.split(":", 1)[1]
    assert "Đăng nhập VNeID 8" in vneid_line
    assert "Đăng ký, OTP" not in vneid_line
    assert "Quét mặt 14" in app_line
    assert "Cài ứng dụng* 25" in app_line
    assert note.startswith("(*")
