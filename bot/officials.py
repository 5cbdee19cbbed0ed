"""Officials' rules: what a scope covers and is called, the limits and checks of an
announcement, how far one has got, the links staff are given.

Pure: config, texts and counts in; decisions and texts out. The chat's staff desk
(handlers/staff.py) and the web dashboard both apply these, so the two can never disagree
about who sees which commune or what may be sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from bot.config import Commune, Config
from bot.links import foreign_links

ROLES = ("official", "volunteer")
SCOPE_KINDS = ("communes", "province", "all")
#: An announcement is short (characters): about three phone screens.
BROADCAST_LIMIT = 1000
#: Announcements an official may send in any 24 hours: citizens asked for help, not news.
BROADCASTS_PER_DAY = 3
#: A web login link works once, within this time: long enough to open it on a computer,
#: short enough that a forwarded or photographed link is soon worthless.
WEB_LINK_TTL = timedelta(minutes=10)
#: Assisted completions one volunteer can plausibly record in any hour. An install takes about
#: 15 minutes with a helper beside the citizen (domain.md), so four an hour is already brisk,
#: and six leaves room for a group session at the commune hall; more is flagged for officials
#: to check (issue 12: one volunteer's button replayed 30 times counted 31).
ASSISTED_PER_HOUR = 6
#: Bursts are looked for over this many recent days (older ones have been seen already).
BURST_DAYS = 30
#: Where the dashboard lives on the bot's web server, and its login page.
DASHBOARD_PATH = "/dashboard"
LOGIN_PATH = DASHBOARD_PATH + "/login"


@dataclass(frozen=True, slots=True)
class Scope:
    """What an official may see: some communes, a province, or the whole deployment.

    A volunteer's scope is their one commune."""

    kind: str
    codes: tuple[str, ...] = ()

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind, "codes": list(self.codes)})

    @classmethod
    def from_json(cls, text: str) -> Scope:
        data = json.loads(text)
        return cls(kind=str(data["kind"]), codes=tuple(str(c) for c in data.get("codes", [])))


def communes_in(config: Config, scope: Scope) -> tuple[Commune, ...]:
    """The deployment's communes within ``scope``."""
    if scope.kind == "all":
        return config.communes
    if scope.kind == "province":
        return tuple(c for c in config.communes if c.province_code in scope.codes)
    return tuple(c for c in config.communes if c.code in scope.codes)


def covers(config: Config, scope: Scope, commune: str) -> bool:
    """Whether ``scope`` includes the commune with this code (served by the deployment)."""
    return any(c.code == commune for c in communes_in(config, scope))


def scope_name(config: Config, texts: Mapping[str, str], scope: Scope) -> str:
    """What a scope is called in titles: the commune's or province's name; the whole
    deployment is named by its one commune when it has only one."""
    communes = communes_in(config, scope)
    if scope.kind == "all" and len(communes) == 1:
        return communes[0].name
    if scope.kind == "all":
        return texts["scope_all"].format(count=len(communes))
    if scope.kind == "province" and communes:
        return texts["scope_province"].format(name=communes[0].province)
    return ", ".join(c.name for c in communes)


def announcement_communes(config: Config, scope: Scope) -> list[str] | None:
    """The communes an announcement goes to (None: everyone the deployment serves)."""
    return None if scope.kind == "all" else [c.code for c in communes_in(config, scope)]


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why something an official asked for is not done: a text of staff.toml and its values."""

    key: str
    values: Mapping[str, object] = field(default_factory=dict)

    def text(self, texts: Mapping[str, str]) -> str:
        return texts[self.key].format(**self.values)


def check_announcement(text: str, config: Config) -> Refusal | None:
    """What is wrong with the text of an announcement, if anything: nothing written, too
    long, or a link to a site the deployment does not allow (short links included)."""
    if not text.strip():
        return Refusal("broadcast_how")
    if len(text) > BROADCAST_LIMIT:
        return Refusal("broadcast_too_long", {"length": len(text), "limit": BROADCAST_LIMIT})
    if links := foreign_links(text, config.links):
        return Refusal("broadcast_bad_link", {"links": ", ".join(links)})
    return None


def check_audience(recipients: int, scope: str) -> Refusal | None:
    """An announcement needs somebody to read it."""
    return Refusal("broadcast_nobody", {"scope": scope}) if recipients == 0 else None


def check_daily_limit(sent_today: int) -> Refusal | None:
    """At most :data:`BROADCASTS_PER_DAY` announcements per official in 24 hours."""
    if sent_today >= BROADCASTS_PER_DAY:
        return Refusal("broadcast_limit", {"limit": BROADCASTS_PER_DAY})
    return None


def announcement_message(texts: Mapping[str, str], scope: str, text: str) -> str:
    """The message citizens receive: who sends it, the text, and how to stop them."""
    return texts["broadcast_message"].format(scope=scope, text=text)


@dataclass(frozen=True, slots=True)
class Progress:
    """How far an announcement has got."""

    total: int
    sent: int
    waiting: int
    failed: int


def progress(total: int, counts: Mapping[str, int]) -> Progress:
    """``counts``: outbox rows by status. A message in doubt after a crash ("unknown") is
    never sent again, so it counts as sent."""
    sent = counts.get("sent", 0) + counts.get("unknown", 0)
    waiting = counts.get("pending", 0) + counts.get("sending", 0)
    return Progress(total=total, sent=sent, waiting=waiting, failed=total - sent - waiting)


def deep_link(bot_username: str, payload: str) -> str:
    """A Telegram link that opens the bot with ``/start payload``."""
    return f"https://t.me/{bot_username}?start={payload}"


def web_login_url(public_url: str, token: str) -> str:
    """The one-time login link of the web dashboard, on the server at ``public_url``."""
    return f"{public_url.rstrip('/')}{LOGIN_PATH}?t={token}"
