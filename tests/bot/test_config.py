"""Config loading: the demo deployment, and clear errors for broken files."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from bot.config import ConfigError, load_config, parse_config
from tests.conftest import ROOT


def demo() -> dict[str, Any]:
    return tomllib.loads((ROOT / "config.toml").read_text(encoding="utf-8"))


def test_demo_config_is_a_real_commune() -> None:
    config = load_config(ROOT / "config.toml")
    (commune,) = config.communes
    assert (commune.code, commune.name, commune.province) == ("16279", "Xã Nông Cống", "Thanh Hóa")
    assert sum(v.adults_present for v in commune.villages) == 3676
    assert sum(v.households for v in commune.villages) == 1849
    assert [p.id for p in config.providers] == ["vnpt", "viettel", "misa", "vneid"]
    assert config.share_url == "https://t.me/TroLyChuKySoDemoBot"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c["communes"][0].update(code=99999), "not in the official list"),
        (lambda c: c["communes"][0].update(name="Xã Khác"), "check the code"),
        (lambda c: c["communes"][0].update(target=1.5), "target"),
        (lambda c: c["communes"][0]["villages"][0].update(adults_present=99999), "exceed"),
        (lambda c: c["communes"][0]["villages"][1].update(id="dong-hoa"), "appears twice"),
        (lambda c: c["providers"][0].update(kind="sms"), "kind"),
        (lambda c: c["providers"][0].update(id="bad id!"), "may use only"),
        (lambda c: c.update(providers=[]), "at least one"),
        (lambda c: c["deployment"].update(timezone="Mars/Olympus"), "time zone"),
        (lambda c: c["communes"][0].pop("support"), "support"),
        (lambda c: c["ways_in"].update(zalo_oa="https://zalo-ckso.top/x"), "not in \\[links\\]"),
        (lambda c: c["ways_in"].update({"Zalo OA": "x"}), "not a channel's name"),
        (lambda c: c["ways_in"].update(zalo_bot=""), "must be a text"),
    ],
)
def test_config_errors_are_clear(change: Any, message: str) -> None:
    raw = demo()
    change(raw)
    with pytest.raises(ConfigError, match=message):
        parse_config(raw)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")


def test_commune_name_may_be_typed_without_accents() -> None:
    raw = demo()
    raw["communes"][0]["name"] = "xa nong cong"
    assert parse_config(raw).communes[0].name == "Xã Nông Cống"


def test_reminders_and_outbox_pace_are_read_and_checked() -> None:
    config = load_config(ROOT / "config.toml")
    assert [d.total_seconds() / 3600 for d in config.reminders.after] == [24, 72]
    assert config.outbox.messages_per_second == 25
    for section, bad in [
        ("reminders", {"after_hours": [24, 72, 120]}),  # never more than two
        ("reminders", {"quiet_hours": ["21h", "7h"]}),
        ("outbox", {"messages_per_second": 40}),  # above Telegram's limit
        ("outbox", {"seconds_per_chat": 0.5}),
    ]:
        with pytest.raises(ConfigError, match=section):
            parse_config({**demo(), section: bad})


def test_each_channel_has_its_own_way_in() -> None:
    config = load_config(ROOT / "config.toml")
    assert config.way_in("telegram") == config.way_in("") == "https://t.me/TroLyChuKySoDemoBot"
    assert "t.me" not in config.way_in("zalo_bot")
    assert "Zalo" in config.way_in("zalo_oa")
    assert config.way_in("web") == "", "not configured: the content says what to do instead"
