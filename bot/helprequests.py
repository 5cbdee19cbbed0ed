"""Help requests, the pure part: what a request shares, and when its notifications are due.

A citizen who asks for a person is shown exactly what will be shared before they agree --
the village, the step they are on, the provider and phone type they chose, what they need
-- and volunteers are told word for word the same lines (:func:`summary`), built from the
same :class:`HelpFields` (from the conversation's answers, or from the stored request).

Timing (config ``[helpdesk]``): the volunteers of the citizen's village hear first, the
commune's other volunteers a few minutes later; unclaimed for half an hour *of working time*
(:func:`after_working`) it goes to the commune's officials; after a day the citizen is told
honestly that nobody came and given the support point.
"""

from __future__ import annotations

import statistics
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from babel.dates import format_date

from bot.config import Config, Helpdesk
from bot.content import Content
from bot.model import State

KINDS = ("chat", "visit", "point")
PARTS = ("morning", "afternoon", "evening")
#: What a citizen needs, from where they asked: stuck on a step, no smartphone, or anything.
PROBLEMS = ("stuck", "no_smartphone", "other")
#: A home visit waits this long for its optional details (a landmark, a phone number) before
#: it opens without them.
DRAFT_WAIT = timedelta(minutes=10)
#: A landmark or phone number is kept at most this long, whatever happens (issue 11).
DETAILS_KEPT = timedelta(days=14)
#: The longest landmark kept (one short phrase: "gan nha van hoa thon").
LANDMARK_LIMIT = 100
#: What a request stores of a typed phone number: its digits only.
PHONE_DIGITS = frozenset("0123456789")


@dataclass(frozen=True, slots=True)
class HelpFields:
    """What a help request shares (never a name, an account or a number)."""

    kind: str
    commune: str
    village: str
    day: str | None  # YYYY-MM-DD, for a visit or the support point
    part: str | None
    step: str | None  # the install step they were on
    provider: str | None
    phone: str | None  # the phone's kind: android | iphone
    problem: str

    def to_data(self) -> dict[str, str]:
        """As an event's data (absent fields left out)."""
        return {k: v for k, v in _items(self) if v is not None}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> HelpFields:
        def get(key: str) -> str | None:
            value = data.get(key)
            return str(value) if value not in (None, "") else None

        return cls(
            kind=str(data.get("kind") or "chat"),
            commune=str(data.get("commune") or ""),
            village=str(data.get("village") or "unknown"),
            day=get("day"),
            part=get("part"),
            step=get("step"),
            provider=get("provider"),
            phone=get("phone"),
            problem=str(data.get("problem") or "other"),
        )


def _items(fields: HelpFields) -> list[tuple[str, str | None]]:
    return [(name, getattr(fields, name)) for name in HelpFields.__slots__]


def fields_from_state(state: State, config: Config, now: datetime) -> HelpFields:
    """The request a citizen's answers describe (the help form's, and what they chose on
    the way: provider, phone)."""
    answers = state.answers
    kind = answers.get("help_kind", "chat")
    day: str | None = None
    if kind != "chat" and answers.get("help_day"):
        local = now.astimezone(config.timezone).date()
        if answers["help_day"] == "tomorrow":
            local += timedelta(days=1)
        day = local.isoformat()
    return HelpFields(
        kind=kind if kind in KINDS else "chat",
        commune=answers.get("help_commune", ""),
        village=answers.get("help_village", "unknown"),
        day=day,
        part=answers.get("help_time") if kind != "chat" else None,
        step=answers.get("help_step") or None,
        provider=answers.get("provider"),
        phone=answers.get("phone"),
        problem=answers.get("help_problem", "other"),
    )


def summary(fields: HelpFields, content: Content, config: Config, today: date) -> str:
    """The lines a request shares, as the citizen agrees to them and volunteers read them."""
    t = content.templates
    unknown = t["help_unknown"]
    commune = config.commune(fields.commune)
    village = commune.village(fields.village) if commune else None
    provider = config.provider(fields.provider or "")
    lines = [
        t["help_line_place"].format(
            village=village.name if village else unknown,
            commune=commune.name if commune else unknown,
        ),
        t["help_line_kind"].format(
            kind=t[f"help_kind_{fields.kind}"].format(when=when(fields, content, config, today))
        ),
    ]
    step = content.install_step(fields.step or "")
    if step is not None:
        values = {
            "app": provider.app if provider else unknown,
            "provider": provider.name if provider else unknown,
        }
        title = string.Formatter().vformat(step.title, (), _Blank(values))
        lines.append(t["help_line_step"].format(step=title))
    else:
        lines.append(t["help_line_nostep"])
    phone = t.get(f"help_phone_{fields.phone}", unknown) if fields.phone else unknown
    lines.append(
        t["help_line_device"].format(provider=provider.name if provider else unknown, phone=phone)
    )
    lines.append(t["help_line_problem"].format(problem=t[f"help_problem_{fields.problem}"]))
    return "\n".join(lines)


def when(fields: HelpFields, content: Content, config: Config, today: date) -> str:
    """When a visit (or the trip to the support point) is wanted: "buoi chieu ngay mai
    (25/11/2026)"; empty for a chat."""
    if fields.day is None:
        return ""
    t = content.templates
    day = date.fromisoformat(fields.day)
    relative = {today: "today", today + timedelta(days=1): "tomorrow"}.get(day)
    return (
        t["help_when"]
        .format(
            time=t.get(f"help_time_{fields.part}", "") if fields.part else "",
            day=t[f"help_day_{relative}"] if relative else "",
            date=format_date(day, "dd/MM/yyyy", locale=content.locale),
        )
        .replace("  ", " ")
        .strip()
    )


def village_name(fields: HelpFields, content: Content, config: Config) -> str:
    commune = config.commune(fields.commune)
    village = commune.village(fields.village) if commune else None
    return (
        village.name
        if village
        else (commune.name if commune else content.templates["help_unknown"])
    )


def after_working(start: datetime, span: timedelta, rules: Helpdesk, tz: Any) -> datetime:
    """The moment ``span`` of working time (working hours, working days, deployment time)
    has passed since ``start``: a request made at 16:50 escalates at 8:00 + 20 minutes the
    next working day, one made on Saturday on Monday morning."""
    local = start.astimezone(tz)
    left = span
    day = local.date()
    for _ in range(400):  # a year of days: enough for any config (at least one working day)
        if day.isoweekday() in rules.work_days:
            opens = datetime.combine(day, rules.work_from, tzinfo=tz)
            closes = datetime.combine(day, rules.work_until, tzinfo=tz)
            begin = max(opens, local)
            if begin < closes:
                if begin + left <= closes:
                    return (begin + left).astimezone(UTC)
                left -= closes - begin
        day += timedelta(days=1)
    return (start + span).astimezone(UTC)


def phone_digits(text: str) -> str:
    """The digits of a typed phone number ("+84 912 345 678" -> "84912345678")."""
    return "".join(ch for ch in text if ch in PHONE_DIGITS)


class _Blank(dict[str, str]):
    """Placeholders a step's title may hold that the summary does not know: left empty."""

    def __missing__(self, key: str) -> str:
        return ""


@dataclass(frozen=True, slots=True)
class HelpFigures:
    """What /stats says of help requests (drafts not counted: nobody was told of them)."""

    count: int
    open: int
    claimed: int
    #: Median seconds from opening to claim, of the claimed ones (None: none claimed).
    median_claim_s: float | None
    #: Closed as installed, and its share of those that ended (not cancelled by the citizen).
    resolved: int
    resolved_share: float | None
    #: (helper's code, or None for an official) -> (claimed, installed), most claimed first.
    by_helper: tuple[tuple[str | None, int, int], ...]
    #: Taken by someone (whatever became of them since), and ended (closed or expired).
    taken: int = 0
    ended: int = 0

    def to_json(self) -> dict[str, Any]:
        """The same figures for ``stats --json`` and the dashboard's volunteers page."""
        return {
            "requests": self.count,
            "open": self.open,
            "claimed": self.claimed,
            "taken": self.taken,
            "ended": self.ended,
            "installed": self.resolved,
            "installed_share": self.resolved_share,
            "median_claim_s": self.median_claim_s,
            "by_helper": [
                {"volunteer": code, "taken": taken, "installed": installed}
                for code, taken, installed in self.by_helper
            ],
        }


def figures(rows: Sequence[Mapping[str, Any]]) -> HelpFigures:
    """The figures of requests given as rows with status, outcome, opened_at, claimed_at and
    volunteer_code/volunteer_ref."""
    waits = sorted(
        (r["claimed_at"] - r["opened_at"]).total_seconds()
        for r in rows
        if r["claimed_at"] is not None and r["opened_at"] is not None
    )
    ended = [r for r in rows if r["status"] in ("closed", "expired")]
    resolved = sum(1 for r in ended if r["outcome"] == "installed")
    helpers: dict[str | None, list[int]] = {}
    for r in rows:
        if r["volunteer_ref"] is None:
            continue
        counts = helpers.setdefault(r["volunteer_code"], [0, 0])
        counts[0] += 1
        counts[1] += r["outcome"] == "installed"
    return HelpFigures(
        count=len(rows),
        open=sum(1 for r in rows if r["status"] == "open"),
        claimed=sum(1 for r in rows if r["status"] == "claimed"),
        median_claim_s=statistics.median(waits) if waits else None,
        resolved=resolved,
        resolved_share=resolved / len(ended) if ended else None,
        by_helper=tuple(
            (code, c[0], c[1])
            for code, c in sorted(helpers.items(), key=lambda kv: (-kv[1][0], str(kv[0])))
        ),
        taken=sum(1 for r in rows if r["volunteer_ref"] is not None),
        ended=len(ended),
    )


def waited_s(row: Mapping[str, Any], now: datetime) -> int:
    """How long a request waited for someone: until claimed, else until it ended, else
    until now (a draft has not started waiting)."""
    start = row["opened_at"]
    if start is None:
        return 0
    end = row["claimed_at"] or row["closed_at"] or now
    return max(0, int((end - start).total_seconds()))
