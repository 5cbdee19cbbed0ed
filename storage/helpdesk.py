"""Help requests in the store: the requests, their messages in transit, the staff to tell.

Statements only -- each a plain function of a connection, so that the help desk
(handlers/helpdesk.py) composes a transition in one transaction with the conversations it
changes (storage/repository.py ``Repository.step_locked``). A citizen's own steps create a
request and fill its sealed details through the repository's effects (:func:`create`,
:func:`add_detail`, :func:`ready`, :func:`count_assisted`), in the step's transaction.

Lock order, the same everywhere so that two transactions never wait for each other in a
circle: the request row first (``FOR UPDATE``), then the citizen's session, then the
helper's. A citizen's own step locks their session and then touches only a request nobody
else can lock yet (a draft being filled in) or one that is over (counting a helped install).

What is sealed (AES-GCM, bound to the citizen's channel and reference, see
bot/identity.py): the citizen's chat address, a landmark, a phone number -- all three
emptied when the request ends (closed, cancelled, expired), and the last two after 14 days
in any case; and every message in transit, deleted once sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Row

from bot.helprequests import DETAILS_KEPT, DRAFT_WAIT, HelpFields
from storage.models import Base

_requests = Base.metadata.tables["help_requests"]
_messages = Base.metadata.tables["help_messages"]
_staff = Base.metadata.tables["staff"]
_assisted = Base.metadata.tables["assisted"]
_inbox = Base.metadata.tables["inbox"]
_audit = Base.metadata.tables["audit"]

LIVE = ("draft", "open", "claimed")
#: The payload of a message to a helper whose citizen deleted their data during the chat:
#: nothing sealed (their request number only); the help desk words it when it sends it.
ERASED_NOTICE = "erased"
#: Where the partial unique index allows one live request per citizen.
_LIVE_WHERE = text("status IN ('draft', 'open', 'claimed')")
#: A request's stages of notification (``stage`` column): nobody told yet, the village's
#: volunteers, the commune's, its officials, the citizen told that nobody came.
NOBODY, VILLAGE, COMMUNE, OFFICIALS, GIVEN_UP = 0, 1, 2, 3, 4


@dataclass(frozen=True, slots=True)
class Request:
    """A request as the help desk sees it (sealed fields still sealed)."""

    id: int
    channel: str
    user_ref: str
    address: str | None
    fields: HelpFields
    landmark: str | None
    phone: str | None
    status: str
    stage: int
    created_at: datetime
    opened_at: datetime | None
    claimed_at: datetime | None
    volunteer_channel: str | None
    volunteer_ref: str | None
    volunteer_code: str | None
    outcome: str | None

    @classmethod
    def of(cls, row: Row[Any]) -> Request:
        fields = HelpFields(
            kind=row.kind,
            commune=row.commune,
            village=row.village,
            day=row.day,
            part=row.part,
            step=row.step,
            provider=row.provider,
            phone=row.phone_type,
            problem=row.problem,
        )
        return cls(
            id=int(row.id),
            channel=row.channel,
            user_ref=row.user_ref,
            address=row.address,
            fields=fields,
            landmark=row.landmark,
            phone=row.phone,
            status=row.status,
            stage=int(row.stage),
            created_at=_aware(row.created_at),
            opened_at=_aware(row.opened_at) if row.opened_at else None,
            claimed_at=_aware(row.claimed_at) if row.claimed_at else None,
            volunteer_channel=row.volunteer_channel,
            volunteer_ref=row.volunteer_ref,
            volunteer_code=row.volunteer_code,
            outcome=row.outcome,
        )


@dataclass(frozen=True, slots=True)
class Member:
    """A volunteer or official to tell of a request: where (sealed), and who."""

    channel: str
    user_ref: str
    address: str
    role: str
    code: str | None


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message in transit, to be sealed for its recipient."""

    request_id: int
    channel: str
    user_ref: str
    payload: str


@dataclass(frozen=True, slots=True)
class InTransit:
    id: int
    request_id: int
    channel: str
    user_ref: str
    payload: str


def _aware(value: datetime) -> datetime:
    """SQLite gives back naive datetimes (stored in UTC): made aware again."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _plain(row: Row[Any, *tuple[Any, ...]]) -> dict[str, Any]:
    """A row as a dict, its times aware."""
    return {
        key: _aware(value) if isinstance(value, datetime) else value
        for key, value in row._mapping.items()
    }


def _insert(conn: Connection) -> Any:
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


# --- a citizen's own steps (storage/repository.py's effects) -------------------------------


def create(
    conn: Connection,
    channel: str,
    user_ref: str,
    data: Mapping[str, Any],
    address: str | None,
    sealed: Mapping[str, str],
    now: datetime,
) -> None:
    """A new request, as the citizen agreed to it. A home visit is a draft while its
    optional details are typed (it opens when they are done, or after DRAFT_WAIT); anything
    else opens at once. A second live request of the same citizen is not created."""
    fields = HelpFields.from_data(data)
    draft = fields.kind == "visit"
    values = {
        "channel": channel,
        "user_ref": user_ref,
        "address": address,
        "commune": fields.commune,
        "village": fields.village,
        "kind": fields.kind,
        "day": fields.day,
        "part": fields.part,
        "step": fields.step,
        "provider": fields.provider,
        "phone_type": fields.phone,
        "problem": fields.problem,
        "landmark": sealed.get("landmark"),
        "phone": sealed.get("phone"),
        "status": "draft" if draft else "open",
        "stage": NOBODY,
        "next_at": now + DRAFT_WAIT if draft else now,
        "created_at": now,
        "opened_at": None if draft else now,
        "reported": False,
    }
    conn.execute(
        _insert(conn)(_requests)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["channel", "user_ref"], index_where=_LIVE_WHERE)
    )


def add_detail(conn: Connection, channel: str, user_ref: str, sealed: Mapping[str, str]) -> None:
    """A home visit's landmark or phone number, sealed, into the citizen's draft."""
    values = {k: v for k, v in sealed.items() if k in ("landmark", "phone")}
    if values:
        conn.execute(
            update(_requests)
            .where(_mine(channel, user_ref), _requests.c.status == "draft")
            .values(**values)
        )


def ready(conn: Connection, channel: str, user_ref: str, now: datetime) -> None:
    """The draft's details are done: it opens (the help desk tells the volunteers now)."""
    conn.execute(
        update(_requests)
        .where(_mine(channel, user_ref), _requests.c.status == "draft")
        .values(status="open", opened_at=now, next_at=now)
    )


def count_assisted(conn: Connection, channel: str, user_ref: str, now: datetime) -> None:
    """The citizen agreed to count the install their helper helped with: an assisted
    completion for that helper and village, linked to the request (once) and to the citizen
    (so that /stats never counts it twice with their own report)."""
    r = _requests.c
    request = conn.execute(
        select(r.id, r.commune, r.village, r.provider, r.volunteer_code)
        .where(_mine(channel, user_ref), r.outcome == "installed")
        .order_by(r.id.desc())
        .limit(1)
    ).first()
    if request is None:
        return
    conn.execute(
        _insert(conn)(_assisted)
        .values(
            volunteer=request.volunteer_code or "-",
            commune=request.commune,
            village=request.village,
            provider=request.provider or "unknown",
            at=now,
            channel=channel,
            user_ref=user_ref,
            request_id=request.id,
        )
        .on_conflict_do_nothing(index_elements=["request_id"])
    )


def erase(conn: Connection, channel: str, user_ref: str, now: datetime, erased: str) -> None:
    """/xoadulieu: the citizen's live requests end ("erased"), every request of theirs is
    emptied of what was sealed and linked to nobody, their messages in transit deleted;
    an assisted completion counted for their helper stays, linked to nobody."""
    r = _requests.c
    ids = [row.id for row in conn.execute(select(r.id).where(_mine(channel, user_ref)))]
    if ids:
        conn.execute(delete(_messages).where(_messages.c.request_id.in_(ids)))
    helped = conn.execute(
        select(r.id, r.volunteer_channel, r.volunteer_ref).where(
            _mine(channel, user_ref), r.status == "claimed", r.volunteer_ref.is_not(None)
        )
    ).all()
    for row in helped:  # their helper is told at once (not only at their next message)
        notice = Outgoing(row.id, row.volunteer_channel, row.volunteer_ref, ERASED_NOTICE)
        queue(conn, [notice], now)
    conn.execute(
        update(_requests)
        .where(_mine(channel, user_ref), r.status.in_(LIVE))
        .values(status="closed", outcome="erased", closed_at=now, next_at=None)
    )
    conn.execute(
        update(_requests)
        .where(_mine(channel, user_ref))
        .values(user_ref=erased, address=None, landmark=None, phone=None)
    )
    conn.execute(
        update(_assisted)
        .where(_assisted.c.channel == channel, _assisted.c.user_ref == user_ref)
        .values(channel=None, user_ref=None)
    )
    conn.execute(
        delete(_messages).where(_messages.c.channel == channel, _messages.c.user_ref == user_ref)
    )


def _mine(channel: str, user_ref: str) -> Any:
    return and_(_requests.c.channel == channel, _requests.c.user_ref == user_ref)


# --- the help desk's transitions ------------------------------------------------------------


def lock(conn: Connection, request_id: int) -> Request | None:
    """The request, locked until the transaction ends."""
    row = conn.execute(
        select(_requests).where(_requests.c.id == request_id).with_for_update()
    ).first()
    return Request.of(row) if row is not None else None


def live_of(conn: Connection, channel: str, user_ref: str) -> Request | None:
    """The citizen's live request (locked)."""
    row = conn.execute(
        select(_requests)
        .where(_mine(channel, user_ref), _requests.c.status.in_(LIVE))
        .with_for_update()
    ).first()
    return Request.of(row) if row is not None else None


def helping(conn: Connection, channel: str, user_ref: str) -> Request | None:
    """The claimed request a helper's typed messages go to: the one they touched last
    (locked)."""
    r = _requests.c
    row = conn.execute(
        select(_requests)
        .where(r.volunteer_channel == channel, r.volunteer_ref == user_ref, r.status == "claimed")
        .order_by(r.focus_at.desc(), r.id.desc())
        .limit(1)
        .with_for_update()
    ).first()
    return Request.of(row) if row is not None else None


def claimed_by(conn: Connection, channel: str, user_ref: str) -> list[Request]:
    r = _requests.c
    rows = conn.execute(
        select(_requests)
        .where(r.volunteer_channel == channel, r.volunteer_ref == user_ref, r.status == "claimed")
        .order_by(r.claimed_at)
    )
    return [Request.of(row) for row in rows]


def claim(conn: Connection, request_id: int, member: Member, now: datetime) -> bool:
    """Take an open request for ``member``: True if this claim won (the first)."""
    result = conn.execute(
        update(_requests)
        .where(_requests.c.id == request_id, _requests.c.status == "open")
        .values(
            status="claimed",
            claimed_at=now,
            focus_at=now,
            next_at=None,
            volunteer_channel=member.channel,
            volunteer_ref=member.user_ref,
            volunteer_code=member.code,
        )
    )
    return bool(result.rowcount == 1)


def focus(conn: Connection, request_id: int, now: datetime) -> None:
    """The helper's typed messages go to this request now."""
    conn.execute(update(_requests).where(_requests.c.id == request_id).values(focus_at=now))


def end(
    conn: Connection, request_id: int, status: str, outcome: str | None, now: datetime
) -> None:
    """The request ends: what was sealed is emptied and its messages in transit deleted --
    those being sent too (their sender's own deletion then finds nothing; one a kill -9
    left "sending" would otherwise outlive the request until the sweeper's IN_DOUBT)."""
    conn.execute(
        update(_requests)
        .where(_requests.c.id == request_id)
        .values(
            status=status,
            outcome=outcome,
            closed_at=now,
            next_at=None,
            address=None,
            landmark=None,
            phone=None,
        )
    )
    conn.execute(delete(_messages).where(_messages.c.request_id == request_id))


def reported(conn: Connection, request_id: int) -> None:
    conn.execute(update(_requests).where(_requests.c.id == request_id).values(reported=True))


def advance(conn: Connection, request_id: int, stage: int, next_at: datetime | None) -> None:
    conn.execute(
        update(_requests).where(_requests.c.id == request_id).values(stage=stage, next_at=next_at)
    )


def due(conn: Connection, now: datetime, limit: int) -> list[int]:
    """Requests whose next notification (or opening, or giving up) is due."""
    r = _requests.c
    rows = conn.execute(
        select(r.id)
        .where(r.status.in_(("draft", "open")), r.next_at <= now)
        .order_by(r.next_at)
        .limit(limit)
    )
    return [int(row.id) for row in rows]


def open_draft(conn: Connection, request_id: int, now: datetime) -> None:
    conn.execute(
        update(_requests)
        .where(_requests.c.id == request_id, _requests.c.status == "draft")
        .values(status="open", opened_at=now, next_at=now)
    )


def forget_old_details(conn: Connection, now: datetime) -> int:
    """Landmarks and phone numbers older than 14 days are deleted, whatever happened."""
    r = _requests.c
    result = conn.execute(
        update(_requests)
        .where(
            r.created_at < now - DETAILS_KEPT, or_(r.landmark.is_not(None), r.phone.is_not(None))
        )
        .values(landmark=None, phone=None)
    )
    return int(result.rowcount)


# --- who is told ----------------------------------------------------------------------------


def members(
    conn: Connection, commune: str, *, role: str, village: str | None = None
) -> list[Member]:
    """The staff of ``role`` with a chat address who serve ``commune`` (volunteers: of it,
    and of ``village`` if given; officials: whose scope holds it -- their communes, else
    their province, else the whole deployment: the scope is matched in Python)."""
    s = _staff.c
    query = select(s.channel, s.user_ref, s.address, s.role, s.code, s.scope, s.village).where(
        s.role == role, s.address.is_not(None)
    )
    if role == "volunteer":
        query = query.where(s.commune == commune)
        if village is not None:
            query = query.where(s.village == village)
    return [
        Member(row.channel, row.user_ref, row.address, row.role, row.code)
        for row in conn.execute(query)
    ]


def officials_scopes(conn: Connection) -> list[tuple[Member, str]]:
    """Every official with a chat address, and their scope (JSON)."""
    s = _staff.c
    rows = conn.execute(
        select(s.channel, s.user_ref, s.address, s.role, s.code, s.scope).where(
            s.role == "official", s.address.is_not(None)
        )
    )
    return [(Member(r.channel, r.user_ref, r.address, r.role, r.code), r.scope) for r in rows]


def member(conn: Connection, channel: str, user_ref: str) -> Member | None:
    s = _staff.c
    row = conn.execute(
        select(s.channel, s.user_ref, s.address, s.role, s.code).where(
            s.channel == channel, s.user_ref == user_ref
        )
    ).first()
    if row is None or row.address is None:
        return None
    return Member(row.channel, row.user_ref, row.address, row.role, row.code)


def set_village(conn: Connection, channel: str, user_ref: str, village: str) -> None:
    conn.execute(
        update(_staff)
        .where(_staff.c.channel == channel, _staff.c.user_ref == user_ref)
        .values(village=village)
    )


# --- messages in transit --------------------------------------------------------------------


def queue(conn: Connection, items: Sequence[Outgoing], now: datetime) -> list[int]:
    """Messages to send, in order; their ids."""
    ids = []
    for item in items:
        result = conn.execute(
            insert(_messages)
            .values(
                request_id=item.request_id,
                channel=item.channel,
                user_ref=item.user_ref,
                payload=item.payload,
                status="pending",
                created_at=now,
            )
            .returning(_messages.c.id)
        )
        ids.append(int(result.scalar_one()))
    return ids


def take(conn: Connection, message_id: int, now: datetime) -> InTransit | None:
    """Claim a pending message just before it is sent (None: taken or deleted already)."""
    m = _messages.c
    row = conn.execute(
        update(_messages)
        .where(m.id == message_id, m.status == "pending")
        .values(status="sending", claimed_at=now)
        .returning(m.id, m.request_id, m.channel, m.user_ref, m.payload)
    ).first()
    if row is None:
        return None
    return InTransit(int(row.id), int(row.request_id), row.channel, row.user_ref, row.payload)


def done(conn: Connection, ids: Iterable[int]) -> None:
    """Sent (or given up): the message is deleted -- its words existed only in transit."""
    conn.execute(delete(_messages).where(_messages.c.id.in_(list(ids))))


def put_back(conn: Connection, message_id: int) -> None:
    """Certainly not sent (no connection, flood control): pending again."""
    conn.execute(
        update(_messages)
        .where(_messages.c.id == message_id)
        .values(status="pending", claimed_at=None)
    )


def notices(conn: Connection, limit: int) -> list[int]:
    """Pending notices to helpers (:data:`ERASED_NOTICE`), oldest first."""
    m = _messages.c
    rows = conn.execute(
        select(m.id)
        .where(m.status == "pending", m.payload == ERASED_NOTICE)
        .order_by(m.id)
        .limit(limit)
    )
    return [int(row.id) for row in rows]


def hold(conn: Connection, message_id: int) -> int:
    """The platform takes nothing for this message's recipient until they write again: the
    message waits, "held". Returns how many of theirs are held now (1: the first)."""
    m = _messages.c
    row = conn.execute(
        update(_messages)
        .where(m.id == message_id)
        .values(status="held", claimed_at=None)
        .returning(m.channel, m.user_ref)
    ).first()
    if row is None:
        return 0
    held = select(func.count()).where(
        m.channel == row.channel, m.user_ref == row.user_ref, m.status == "held"
    )
    return int(conn.execute(held).scalar_one())


def unhold(conn: Connection, channel: str, user_ref: str) -> list[int]:
    """The recipient wrote again: what was held for them is pending again, oldest first."""
    m = _messages.c
    rows = conn.execute(
        update(_messages)
        .where(m.channel == channel, m.user_ref == user_ref, m.status == "held")
        .values(status="pending")
        .returning(m.id)
    )
    return sorted(int(row.id) for row in rows)


def left_behind(conn: Connection, before: datetime, limit: int) -> list[int]:
    """Pending messages a crash (or a failed send) left, oldest first."""
    m = _messages.c
    rows = conn.execute(
        select(m.id)
        .where(m.status == "pending", m.created_at < before)
        .order_by(m.id)
        .limit(limit)
    )
    return [int(row.id) for row in rows]


def in_doubt(conn: Connection, before: datetime) -> int:
    """Messages claimed for sending before ``before`` and still here: their sender died
    mid-send. Never sent again (a repeat is worse than a message that almost certainly
    arrived); deleted."""
    m = _messages.c
    result = conn.execute(delete(_messages).where(m.status == "sending", m.claimed_at < before))
    return int(result.rowcount)


# --- reading --------------------------------------------------------------------------------


def listing(
    conn: Connection, communes: Sequence[str] | None, statuses: Sequence[str]
) -> list[dict[str, Any]]:
    """Requests of ``communes`` (None: all) in these states, oldest first: no personal data."""
    r = _requests.c
    query = select(
        r.id,
        r.commune,
        r.village,
        r.kind,
        r.status,
        r.created_at,
        r.opened_at,
        r.claimed_at,
        r.closed_at,
        r.volunteer_code,
        r.outcome,
    ).where(r.status.in_(list(statuses)))
    if communes is not None:
        query = query.where(r.commune.in_(list(communes)))
    return [_plain(row) for row in conn.execute(query.order_by(r.id))]


def figures(conn: Connection, communes: Sequence[str]) -> list[dict[str, Any]]:
    """What /stats counts of the requests of ``communes`` (not drafts)."""
    r = _requests.c
    query = select(
        r.status, r.outcome, r.opened_at, r.claimed_at, r.volunteer_code, r.volunteer_ref
    ).where(r.commune.in_(list(communes)), r.status != "draft")
    return [_plain(row) for row in conn.execute(query)]


def count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(_requests)).scalar_one())


def waiting(conn: Connection, communes: Sequence[str], limit: int = 50) -> list[Request]:
    """The open requests of ``communes``, oldest first."""
    r = _requests.c
    rows = conn.execute(
        select(_requests)
        .where(r.commune.in_(list(communes)), r.status == "open")
        .order_by(r.opened_at, r.id)
        .limit(limit)
    )
    return [Request.of(row) for row in rows]


def inbox_done(conn: Connection, inbox_id: int) -> None:
    """The inbox row of the delivery a transition came from: done with."""
    conn.execute(delete(_inbox).where(_inbox.c.id == inbox_id))


def audit(
    conn: Connection, channel: str, user_ref: str, action: str, detail: str, now: datetime
) -> None:
    conn.execute(
        insert(_audit).values(
            at=now, channel=channel, user_ref=user_ref, action=action, detail=detail[:200]
        )
    )
