"""Officials' rules (bot/officials.py): scopes, announcement checks and limits, progress."""

from __future__ import annotations

import tomllib

import pytest

from bot import officials
from bot.config import Config, parse_config
from bot.content import load_staff_texts
from bot.officials import BROADCAST_LIMIT, BROADCASTS_PER_DAY, Refusal, Scope
from tests.conftest import ROOT

TEXTS = load_staff_texts("vi")


@pytest.fixture(scope="module")
def two_provinces() -> Config:
    """Nong Cong and Hac Thanh (Thanh Hoa, 38) and Hoan Kiem (Ha Noi)."""
    raw = tomllib.loads((ROOT / "config.toml").read_text(encoding="utf-8"))
    first = raw["communes"][0]
    village = {"id": "a", "name": "A", "adults": 1, "adults_present": 1, "households": 1}
    other = {"target": 0.4, "support": first["support"], "villages": [village]}
    raw["communes"] = [first, {**other, "code": 14797}, {**other, "code": 70}]
    return parse_config(raw)


def test_scopes_cover_their_communes(two_provinces: Config) -> None:
    def codes(scope: Scope) -> list[str]:
        return [c.code for c in officials.communes_in(two_provinces, scope)]

    assert codes(Scope("all")) == ["16279", "14797", "70"]
    assert codes(Scope("province", ("38",))) == ["16279", "14797"]
    assert codes(Scope("communes", ("70", "99999"))) == ["70"], "unserved codes are ignored"
    assert officials.covers(two_provinces, Scope("province", ("38",)), "14797")
    assert not officials.covers(two_provinces, Scope("province", ("38",)), "70")
    assert not officials.covers(two_provinces, Scope("all"), "99999")


def test_scope_names(two_provinces: Config) -> None:
    assert officials.scope_name(two_provinces, TEXTS, Scope("province", ("38",))) == (
        "Tỉnh Thanh Hóa"
    )
    both = officials.scope_name(two_provinces, TEXTS, Scope("communes", ("16279", "70")))
    assert both == "Xã Nông Cống, Phường Hoàn Kiếm"


def test_announcements_go_to_the_scope_or_everyone(two_provinces: Config) -> None:
    assert officials.announcement_communes(two_provinces, Scope("all")) is None
    province = officials.announcement_communes(two_provinces, Scope("province", ("38",)))
    assert province == ["16279", "14797"]


def test_announcement_text_checks(config: Config) -> None:
    assert officials.check_announcement("", config) == Refusal("broadcast_how")
    assert officials.check_announcement("Họp thôn 8 giờ", config) is None
    long = "a" * (BROADCAST_LIMIT + 1)
    refused = officials.check_announcement(long, config)
    assert refused == Refusal("broadcast_too_long", {"length": 1001, "limit": 1000})
    assert "1001" in refused.text(TEXTS)
    short_link = officials.check_announcement("Xem bit.ly/x và dichvucong.gov.vn", config)
    assert short_link == Refusal("broadcast_bad_link", {"links": "bit.ly/x"})
    assert officials.check_announcement("Xem https://dichvucong.gov.vn", config) is None


def test_announcement_limits() -> None:
    assert officials.check_audience(0, "Xã A") == Refusal("broadcast_nobody", {"scope": "Xã A"})
    assert officials.check_audience(1, "Xã A") is None
    assert officials.check_daily_limit(BROADCASTS_PER_DAY - 1) is None
    assert officials.check_daily_limit(BROADCASTS_PER_DAY) == Refusal(
        "broadcast_limit", {"limit": 3}
    )


def test_progress_counts_messages_in_doubt_as_sent() -> None:
    counts = {"sent": 5, "unknown": 1, "pending": 2, "sending": 1, "failed": 1}
    assert officials.progress(10, counts) == officials.Progress(10, 6, 3, 1)


def test_scope_round_trips_through_json() -> None:
    scope = Scope("communes", ("16279", "70"))
    assert Scope.from_json(scope.to_json()) == scope
    assert officials.deep_link("Bot", "inv_x") == "https://t.me/Bot?start=inv_x"
