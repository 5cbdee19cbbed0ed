"""The environment, read once into typed settings; malformed values are one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.httplimits import HttpLimits
from app.settings import DEFAULT_DATABASE_URL, Settings
from bot.config import DEFAULT_CONFIG, ConfigError, load_config
from tests.conftest import ROOT


def test_an_empty_environment_gives_the_local_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.config_path == DEFAULT_CONFIG
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert (settings.port, settings.host, settings.workers) == (8080, "0.0.0.0", 1)
    assert settings.id_secret is None
    assert not settings.production
    assert not settings.several_workers


def test_bot_config_names_another_file(tmp_path: Path) -> None:
    other = tmp_path / "other.toml"
    other.write_text(
        (ROOT / "config.toml").read_text(encoding="utf-8").replace("Demo –", "Other –"),
        encoding="utf-8",
    )
    settings = Settings.from_env({"BOT_CONFIG": str(other)})
    assert load_config(settings.config_path).name.startswith("Other –")


def test_workers_and_production_are_read() -> None:
    settings = Settings.from_env(
        {"BOT_WORKERS": "4", "BOT_WORKER_INDEX": "2", "BOT_ENV": " Production ", "PORT": "9000"}
    )
    assert (settings.workers, settings.worker_index, settings.port) == (4, 2, 9000)
    assert settings.several_workers
    assert settings.production


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PORT": "eighty"}, "PORT must be a whole number"),
        ({"PORT": "70000"}, "PORT must be between 1 and 65535"),
        ({"BOT_WORKERS": "0"}, "BOT_WORKERS must be between 1"),
        ({"HTTP_HEADER_TIMEOUT": "five"}, "HTTP_HEADER_TIMEOUT must be a number of seconds"),
        ({"HTTP_BODY_TIMEOUT": "0"}, "HTTP_BODY_TIMEOUT must be between 0.1 and 300"),
        ({"HTTP_MAX_CONNECTIONS": "2"}, "HTTP_MAX_CONNECTIONS must be between 8"),
    ],
)
def test_malformed_values_are_one_line_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        Settings.from_env(env)
    assert "\n" not in str(caught.value)


def test_the_webhook_servers_limits_are_read() -> None:
    env = {"HTTP_HEADER_TIMEOUT": "2.5", "HTTP_BODY_TIMEOUT": "7", "HTTP_MAX_CONNECTIONS": "64"}
    settings = Settings.from_env({**env, "HTTP_KEEPALIVE_TIMEOUT": "30"})
    assert settings.http == HttpLimits(
        max_connections=64, header_timeout=2.5, body_timeout=7.0, keepalive_timeout=30.0
    )
    assert Settings.from_env({}).http == HttpLimits()


def test_the_environment_is_kept_for_channels_and_workers() -> None:
    env = {"TELEGRAM_BOT_TOKEN": "1:abc", "OTHER": "x"}
    assert Settings.from_env(env).environment == env


def test_public_url_is_where_login_links_point() -> None:
    assert Settings.from_env({"PORT": "9000"}).web_url == "http://127.0.0.1:9000"
    public = Settings.from_env({"PUBLIC_URL": "https://cks.example.gov.vn/"})
    assert public.web_url == "https://cks.example.gov.vn"
    with pytest.raises(ConfigError, match="PUBLIC_URL must start with https://"):
        Settings.from_env({"PUBLIC_URL": "cks.example.gov.vn"})
