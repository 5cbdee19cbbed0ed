"""Deployment settings from ``config.toml`` (or another file the application names).

The file says which communes this deployment serves (checked against the official post-2025
list), their villages and population figures, the providers on offer and each commune's support
point. Secrets never live here: they come from environment variables.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot import communes
from bot.links import TELEGRAM_NAME, LinkPolicy, ascii_domain, domain_problem, foreign_links
from bot.model import TOKEN_RE

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "config.toml"
PROVIDER_KINDS = ("app", "vneid")
#: A channel's name as the registry spells it ("telegram", "zalo_oa").
CHANNEL_NAME = re.compile(r"^[a-z][a-z0-9_]{0,15}$")


class ConfigError(ValueError):
    """The configuration file is missing something or contradicts the official lists."""


@dataclass(frozen=True, slots=True)
class Village:
    id: str
    name: str
    adults: int
    adults_present: int
    households: int


@dataclass(frozen=True, slots=True)
class SupportPoint:
    name: str
    address: str
    hours: str
    phone: str


@dataclass(frozen=True, slots=True)
class Commune:
    code: str
    name: str
    province: str
    province_code: str
    target: float
    support: SupportPoint
    villages: tuple[Village, ...]

    def village(self, village_id: str) -> Village | None:
        return next((v for v in self.villages if v.id == village_id), None)


@dataclass(frozen=True, slots=True)
class Provider:
    id: str
    name: str
    kind: str  # "app": the provider's own app; "vneid": registered inside VNeID
    app: str
    publisher: str
    site: str
    hotline: str


@dataclass(frozen=True, slots=True)
class Reminders:
    """Reminders to citizens who stopped mid-way and said yes to them."""

    #: Each reminder comes this long after the last thing that happened in the conversation
    #: (the citizen's last message, or the previous reminder). At most two.
    after: tuple[timedelta, ...] = (timedelta(days=1), timedelta(days=3))
    #: No message in these hours, deployment time (they wait until the end of them).
    quiet_from: time = time(21, 0)
    quiet_until: time = time(7, 0)


@dataclass(frozen=True, slots=True)
class Outbox:
    """Pace of reminders and announcements, under the platforms' limits."""

    messages_per_second: float = 25.0  # Telegram allows about 30 per second to everyone
    seconds_per_chat: float = 1.0  # ... and about 1 per second to one chat


@dataclass(frozen=True, slots=True)
class Helpdesk:
    """Who hears of a citizen's help request, and when (handlers/helpdesk.py)."""

    #: The volunteers of the citizen's village hear first; the commune's others this later.
    village_first: timedelta = timedelta(minutes=5)
    #: Unclaimed for this long *in working hours*, it goes to the commune's officials.
    escalate_after: timedelta = timedelta(minutes=30)
    #: Working hours, deployment time, on working days (Monday is 1).
    work_from: time = time(7, 30)
    work_until: time = time(17, 0)
    work_days: tuple[int, ...] = (1, 2, 3, 4, 5)
    #: Unclaimed for this long, the citizen is told honestly and given the support point.
    give_up_after: timedelta = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class Config:
    name: str
    locale: str
    bot_username: str
    resume_after: timedelta
    timezone: ZoneInfo
    providers: tuple[Provider, ...]
    communes: tuple[Commune, ...]
    retention_months: int = 12
    #: Domains the bot may link to (ASCII, lower case), each with its subdomains.
    allowed_links: tuple[str, ...] = ()
    #: Telegram channels (usernames) the bot may link to, besides itself.
    telegram_links: tuple[str, ...] = ()
    messages_per_minute: int = 20
    reminders: Reminders = Reminders()
    outbox: Outbox = Outbox()
    #: Channel name -> how people reach the bot there (a link, or what to search for), told
    #: to citizens to share with their family. Telegram's defaults to the bot's t.me link.
    ways_in: Mapping[str, str] = field(default_factory=dict)
    helpdesk: Helpdesk = Helpdesk()
    #: Where browsers reach this deployment's server (``https://...``, no trailing slash), if
    #: it is public: then the printed QR codes and a volunteer's link open the web chat
    #: (``/chat``, ``/chat?ref=CODE``), which works in Zalo's own browser; "" keeps Telegram's.
    web_url: str = ""

    def provider(self, provider_id: str) -> Provider | None:
        return next((p for p in self.providers if p.id == provider_id), None)

    def commune(self, code: str) -> Commune | None:
        return next((c for c in self.communes if c.code == code), None)

    @property
    def share_url(self) -> str:
        return f"https://t.me/{self.bot_username}" if self.bot_username else ""

    @property
    def chat_url(self) -> str:
        """The web chat's public link ("" if the deployment has no public web address)."""
        return f"{self.web_url}/chat" if self.web_url else ""

    def way_in(self, channel: str) -> str:
        """How people reach the bot on ``channel`` ("" if the config does not say; a chat
        with no channel name is Telegram's)."""
        channel = channel or "telegram"
        defaults = {"telegram": self.share_url, "web": self.chat_url}
        default = defaults.get(channel, "")
        return self.ways_in.get(channel, default)

    @property
    def links(self) -> LinkPolicy:
        """Where messages may link to: the allowed domains, the bot itself and the listed
        Telegram channels (bot.links)."""
        names = (self.bot_username, *self.telegram_links)
        own = urlsplit(self.web_url).hostname if self.web_url else None
        allowed = (*self.allowed_links, own) if own else self.allowed_links
        return LinkPolicy(allowed, frozenset(n.lower() for n in names if n))

    def link_allowed(self, host: str) -> bool:
        """Whether the bot may send a link to ``host`` (an allowed domain or a subdomain)."""
        return self.links.allows_host(host)


def load_config(path: Path = DEFAULT_CONFIG) -> Config:
    """Read and validate the deployment config; raise :class:`ConfigError` with a clear reason."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a text file in UTF-8 (byte {exc.start})") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return parse_config(raw, source=str(path))


def parse_config(raw: dict[str, Any], source: str = "config") -> Config:
    deployment = _table(raw, "deployment", source)
    providers = tuple(
        _provider(p, f"{source}: providers[{i}]") for i, p in enumerate(_list(raw, "providers"))
    )
    if not providers:
        raise ConfigError(f"{source}: at least one [[providers]] entry is needed")
    _unique([p.id for p in providers], f"{source}: provider ids")
    communes_ = tuple(
        _commune(c, f"{source}: communes[{i}]") for i, c in enumerate(_list(raw, "communes"))
    )
    if not communes_:
        raise ConfigError(f"{source}: at least one [[communes]] entry is needed")
    _unique([c.code for c in communes_], f"{source}: commune codes")
    hours = deployment.get("resume_after_hours", 6)
    if not isinstance(hours, int | float) or hours < 0:
        raise ConfigError(f"{source}: deployment.resume_after_hours must be a number >= 0")
    username = str(deployment.get("bot_username", "")).lstrip("@")
    try:
        timezone = ZoneInfo(str(deployment.get("timezone", "Asia/Ho_Chi_Minh")))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"{source}: deployment.timezone is not a known time zone") from exc
    retention = deployment.get("retention_months", 12)
    if not isinstance(retention, int) or not 1 <= retention <= 120:
        raise ConfigError(f"{source}: deployment.retention_months must be 1 to 120")
    allowed, telegram = _links(_table(raw, "links", source), f"{source}: links")
    per_minute = deployment.get("messages_per_minute", 20)
    if not isinstance(per_minute, int) or per_minute < 1:
        raise ConfigError(f"{source}: deployment.messages_per_minute must be a whole number >= 1")
    config = Config(
        name=str(deployment.get("name", "")),
        locale=str(deployment.get("locale", "vi")),
        bot_username=username,
        resume_after=timedelta(hours=hours),
        timezone=timezone,
        providers=providers,
        communes=communes_,
        retention_months=retention,
        allowed_links=allowed,
        telegram_links=telegram,
        messages_per_minute=per_minute,
        reminders=_reminders(raw.get("reminders", {}), f"{source}: reminders"),
        outbox=_outbox(raw.get("outbox", {}), f"{source}: outbox"),
        helpdesk=_helpdesk(raw.get("helpdesk", {}), f"{source}: helpdesk"),
        web_url=_web_url(deployment.get("web_url", ""), source),
    )
    config = replace(config, ways_in=_ways_in(raw.get("ways_in", {}), config, source))
    for provider in providers:
        host = urlsplit(provider.site).hostname or ""
        if provider.site and not config.link_allowed(host):
            raise ConfigError(
                f"{source}: provider {provider.id!r}: {provider.site!r} is not in [links] allowed"
            )
    if username and not TELEGRAM_NAME.match(username):
        raise ConfigError(f"{source}: deployment.bot_username {username!r} is not a username")
    return config


def _web_url(raw: Any, source: str) -> str:
    """The deployment's public web address: https (http only on this machine, for trying it
    out), a host, no query; kept without its trailing slash."""
    where = f"{source}: deployment.web_url"
    if not isinstance(raw, str):
        raise ConfigError(f'{where} must be a text such as "https://chukyso.example.vn"')
    url = raw.strip().rstrip("/")
    if not url:
        return ""
    parts = urlsplit(url)
    local = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and local):
        raise ConfigError(f"{where}: {url!r} must start with https://")
    if not parts.hostname or parts.query or parts.fragment or parts.username:
        raise ConfigError(f"{where}: {url!r} is not a plain web address (https://host)")
    return url


def _links(raw: dict[str, Any], where: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The allowed domains (each at or below a registrable domain, never a public suffix
    such as "com" or "gov.vn") and the Telegram channels."""
    allowed, telegram = raw.get("allowed", []), raw.get("telegram", [])
    if not isinstance(allowed, list) or not isinstance(telegram, list):
        raise ConfigError(f"{where}: allowed and telegram must be lists")
    domains = []
    for entry in allowed:
        problem = domain_problem(entry.strip()) if isinstance(entry, str) else "not text"
        if problem:
            raise ConfigError(f"{where}: allowed {entry!r}: {problem}")
        domains.append(ascii_domain(entry.strip()) or "")
    names = []
    for name in telegram:
        if not isinstance(name, str) or not TELEGRAM_NAME.match(name.strip().lstrip("@")):
            raise ConfigError(
                f"{where}: telegram {name!r} must be a channel's username (5-32 letters, "
                'digits or _), e.g. "UBNDXaNongCong"'
            )
        names.append(name.strip().lstrip("@"))
    return tuple(domains), tuple(names)


def _ways_in(raw: Any, config: Config, source: str) -> dict[str, str]:
    """Channel -> how people reach the bot there: any link in it must be allowed."""
    where = f"{source}: ways_in"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a table of channel = text")
    ways: dict[str, str] = {}
    for channel, text in raw.items():
        if not CHANNEL_NAME.match(str(channel)):
            raise ConfigError(f"{where}: {channel!r} is not a channel's name (e.g. zalo_oa)")
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(f"{where}.{channel}: must be a text (a link, or what to search)")
        if bad := foreign_links(text, config.links):
            raise ConfigError(f"{where}.{channel}: {', '.join(bad)} is not in [links] allowed")
        ways[str(channel)] = text.strip()
    return ways


def _helpdesk(raw: Any, where: str) -> Helpdesk:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a table")

    def minutes(key: str, default: float, most: float) -> timedelta:
        value = raw.get(key, default)
        if not isinstance(value, int | float) or not 0 <= value <= most:
            raise ConfigError(f"{where}: {key} must be a number of minutes from 0 to {most:g}")
        return timedelta(minutes=value)

    hours = raw.get("working_hours", ["07:30", "17:00"])
    try:
        start, end = (time.fromisoformat(str(t)) for t in hours)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f'{where}: working_hours must be two times, e.g. ["07:30", "17:00"]'
        ) from exc
    days = raw.get("working_days", [1, 2, 3, 4, 5])
    if (
        start >= end
        or not isinstance(days, list)
        or not days
        or not all(isinstance(d, int) and 1 <= d <= 7 for d in days)
    ):
        raise ConfigError(
            f"{where}: working hours must start before they end, on working_days 1 (Monday) "
            "to 7 (Sunday)"
        )
    give_up = raw.get("give_up_hours", 24)
    if not isinstance(give_up, int | float) or not 1 <= give_up <= 24 * 7:
        raise ConfigError(f"{where}: give_up_hours must be 1 to 168")
    return Helpdesk(
        village_first=minutes("village_first_minutes", 5, 24 * 60),
        escalate_after=minutes("escalate_minutes", 30, 24 * 60),
        work_from=start,
        work_until=end,
        work_days=tuple(sorted(set(days))),
        give_up_after=timedelta(hours=give_up),
    )


def _reminders(raw: Any, where: str) -> Reminders:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a table")
    hours = raw.get("after_hours", [24, 72])
    if (
        not isinstance(hours, list)
        or len(hours) > 2
        or not all(isinstance(h, int | float) and h > 0 for h in hours)
    ):
        raise ConfigError(f"{where}: after_hours must list at most two numbers of hours > 0")
    quiet = raw.get("quiet_hours", ["21:00", "07:00"])
    try:
        start, end = (time.fromisoformat(str(t)) for t in quiet)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f'{where}: quiet_hours must be two times, e.g. ["21:00", "07:00"]'
        ) from exc
    return Reminders(tuple(timedelta(hours=h) for h in hours), start, end)


def _outbox(raw: Any, where: str) -> Outbox:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a table")
    rate = raw.get("messages_per_second", 25)
    if not isinstance(rate, int | float) or not 0 < rate <= 30:
        raise ConfigError(f"{where}: messages_per_second must be above 0 and at most 30")
    per_chat = raw.get("seconds_per_chat", 1)
    if not isinstance(per_chat, int | float) or per_chat < 1:
        raise ConfigError(f"{where}: seconds_per_chat must be at least 1")
    return Outbox(float(rate), float(per_chat))


def _entry_id(raw: Any, where: str) -> str:
    """The ``id`` of a table entry: short, safe in button data and URLs."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a table")
    entry_id = _str(raw, "id", where)
    if not TOKEN_RE.match(entry_id):
        raise ConfigError(
            f"{where}: id {entry_id!r} may use only letters, digits, '_', '-' (32 at most)"
        )
    return entry_id


def _provider(raw: Any, where: str) -> Provider:
    pid = _entry_id(raw, where)
    kind = str(raw.get("kind", "app"))
    if kind not in PROVIDER_KINDS:
        raise ConfigError(f"{where}: kind must be one of {PROVIDER_KINDS}, not {kind!r}")
    name = _str(raw, "name", where)
    return Provider(
        id=pid,
        name=name,
        kind=kind,
        app=str(raw.get("app", name)),
        publisher=str(raw.get("publisher", "")),
        site=str(raw.get("site", "")),
        hotline=str(raw.get("hotline", "")),
    )


def _commune(raw: Any, where: str) -> Commune:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a table")
    code = str(raw.get("code", "")).strip()
    official = communes.by_code(code)
    if official is None:
        raise ConfigError(
            f"{where}: commune code {code!r} is not in the official list of "
            f"{communes.count()} communes (vietnam-provinces)"
        )
    name = raw.get("name")
    if name is not None and not communes.same_name(str(name), official.name):
        raise ConfigError(
            f"{where}: code {code} is {official.name!r} ({official.province}), "
            f"not {name!r}: check the code"
        )
    target = raw.get("target", 0.5)
    if not isinstance(target, int | float) or not 0 < target <= 1:
        raise ConfigError(f"{where}: target must be a share between 0 and 1, e.g. 0.5")
    support = raw.get("support")
    if not isinstance(support, dict):
        raise ConfigError(f"{where}: a [communes.support] table is needed")
    villages = tuple(
        _village(v, f"{where}.villages[{i}]") for i, v in enumerate(raw.get("villages", []))
    )
    if not villages:
        raise ConfigError(f"{where}: at least one [[communes.villages]] entry is needed")
    _unique([v.id for v in villages], f"{where}: village ids")
    return Commune(
        code=official.code,
        name=official.name,
        province=official.province,
        province_code=official.province_code,
        target=float(target),
        support=SupportPoint(
            name=_str(support, "name", f"{where}.support"),
            address=str(support.get("address", "")),
            hours=str(support.get("hours", "")),
            phone=str(support.get("phone", "")),
        ),
        villages=villages,
    )


def _village(raw: Any, where: str) -> Village:
    vid = _entry_id(raw, where)
    figures = {}
    for key in ("adults", "adults_present", "households"):
        value = raw.get(key, 0)
        if not isinstance(value, int) or value < 0:
            raise ConfigError(f"{where}: {key} must be a whole number >= 0")
        figures[key] = value
    if figures["adults_present"] > figures["adults"]:
        raise ConfigError(f"{where}: adults_present cannot exceed adults")
    return Village(id=vid, name=_str(raw, "name", where), **figures)


def _table(raw: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = raw.get(key)
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: a [{key}] table is needed")
    return value


def _list(raw: dict[str, Any], key: str) -> list[Any]:
    value = raw.get(key, [])
    return value if isinstance(value, list) else []


def _str(raw: dict[str, Any], key: str, where: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: {key} is required")
    return value.strip()


def _unique(values: list[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ConfigError(f"{what}: {value!r} appears twice")
        seen.add(value)
