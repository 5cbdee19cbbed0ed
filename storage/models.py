"""Database tables (SQLAlchemy 2): sessions, the event log, completions, seen deliveries.

What is stored is deliberately little: a keyed hash of the channel's user id (never the id
itself, a name or a phone number), the conversation state (screen ids and answers chosen
from our own lists), analytics events (kinds and ids, never typed text) and completions.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# 64-bit ids on PostgreSQL; SQLite only auto-increments a column declared INTEGER.
BigId = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class SessionRow(Base):
    """One user's conversation on one channel."""

    __tablename__ = "sessions"
    __table_args__ = (UniqueConstraint("channel", "user_ref"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(16))
    user_ref: Mapped[str] = mapped_column(String(64))
    step: Mapped[str] = mapped_column(String(64), default="")
    state: Mapped[str] = mapped_column(Text)  # JSON of bot.model.State
    version: Mapped[int] = mapped_column(Integer, default=1)
    stopped: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EventRow(Base):
    """Append-only analytics log (funnels, stuck points, FAQ topics asked)."""

    __tablename__ = "events"
    __table_args__ = (
        Index(None, "kind", "at"),
        Index(None, "channel", "user_ref"),
        Index(None, "commune", "kind", "step"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    channel: Mapped[str] = mapped_column(String(16))
    user_ref: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(24))
    step: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[str | None] = mapped_column(String(64), nullable=True)
    data: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON
    # The commune the user is counted for, once known (their report, or their volunteer's).
    commune: Mapped[str | None] = mapped_column(String(16), nullable=True)


class CompletionRow(Base):
    """A citizen's self-reported completion: at most one per user and channel."""

    __tablename__ = "completions"
    __table_args__ = (
        UniqueConstraint("channel", "user_ref"),
        # Covers every /stats figure read from completions (index-only scans per commune).
        Index(None, "commune", "village", "provider", "referral", "completed_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(16))
    user_ref: Mapped[str] = mapped_column(String(64))
    commune: Mapped[str] = mapped_column(String(16))
    village: Mapped[str] = mapped_column(String(64))
    provider: Mapped[str] = mapped_column(String(32))
    lives_here: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(16))
    referral: Mapped[str | None] = mapped_column(String(64), nullable=True)
    completed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DeliveryRow(Base):
    """Deliveries already applied (Telegram update_id, Zalo message_id): applied once.

    ``delivery_id`` is a keyed hash of the platform's id (some ids contain a user id);
    ``outgoing`` holds the step's replies and where they go, sealed, until they are sent --
    so that a step whose replies a crash cut off is answered after all (on the platform's
    redelivery, or by the sweeper) -- and is then emptied."""

    __tablename__ = "deliveries"
    __table_args__ = (Index(None, "at"), Index(None, "channel", "user_ref"))

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    delivery_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    user_ref: Mapped[str | None] = mapped_column(String(64), nullable=True)
    outgoing: Mapped[str | None] = mapped_column(Text, nullable=True)


class InboxRow(Base):
    """A webhook delivery made durable before it was acknowledged, until its step is
    committed (the row is deleted in the step's transaction). The payload -- who wrote
    what -- is sealed (AES-GCM under a key derived from BOT_ID_SECRET, bound to the row's
    channel and user reference)."""

    __tablename__ = "inbox"
    __table_args__ = (Index(None, "received_at"), Index(None, "channel", "user_ref"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(16))
    user_ref: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)


class DailyEventRow(Base):
    """Events older than the retention period, as daily totals linked to nobody."""

    __tablename__ = "daily_events"
    __table_args__ = (UniqueConstraint("day", "channel", "commune", "kind", "step", "detail"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    day: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD, local time of the deployment
    channel: Mapped[str] = mapped_column(String(16))
    commune: Mapped[str] = mapped_column(String(16), default="")
    kind: Mapped[str] = mapped_column(String(24))
    step: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[str] = mapped_column(String(64), default="")
    count: Mapped[int] = mapped_column(Integer)


class StaffRow(Base):
    """An official or a volunteer, enrolled by a one-time invite (no name, no phone)."""

    __tablename__ = "staff"
    __table_args__ = (UniqueConstraint("channel", "user_ref"), Index(None, "commune"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(16))
    user_ref: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))  # "official" | "volunteer"
    scope: Mapped[str] = mapped_column(Text)  # JSON: {"kind": ..., "codes": [...]}
    code: Mapped[str | None] = mapped_column(String(32), nullable=True, unique=True)
    commune: Mapped[str | None] = mapped_column(String(16), nullable=True)  # a volunteer's
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: Where the bot tells them of help requests: their chat, sealed (AES-GCM, as a
    #: citizen's reminder address), kept from enrolment until they delete their data.
    address: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: A volunteer's own village (they hear first of requests from it), if they said.
    village: Mapped[str | None] = mapped_column(String(64), nullable=True)


class InviteRow(Base):
    """A one-time enrolment code: only its hash is kept; it expires and works once."""

    __tablename__ = "invites"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64))  # "cli" or a staff user_ref
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AssistedRow(Base):
    """A completion a volunteer helped with, counted apart from self-reports.

    Recorded by the volunteer (/dagiup: linked to nobody), or -- with the citizen's consent --
    when a help request closes as installed: then linked to the citizen (``channel``,
    ``user_ref``, ``request_id``), so that it is never counted twice with their own report."""

    __tablename__ = "assisted"
    __table_args__ = (
        Index(None, "commune", "at"),
        Index(None, "volunteer", "at"),
        Index(None, "channel", "user_ref"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    volunteer: Mapped[str] = mapped_column(String(32))  # the volunteer's referral code
    commune: Mapped[str] = mapped_column(String(16))
    village: Mapped[str] = mapped_column(String(64))
    provider: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    channel: Mapped[str | None] = mapped_column(String(16), nullable=True)
    user_ref: Mapped[str | None] = mapped_column(String(64), nullable=True)
    request_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, unique=True)


class StaffButtonRow(Base):
    """A confirmation button given to a staff member (/dagiup's last step): it works once,
    for them only, and only if the bot issued it -- a replayed or made-up press counts
    nothing."""

    __tablename__ = "staff_buttons"
    __table_args__ = (Index(None, "created_at"),)

    token: Mapped[str] = mapped_column(String(16), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    user_ref: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    spent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AuditRow(Base):
    """Every action of an official or volunteer, and every enrolment attempt."""

    __tablename__ = "audit"
    __table_args__ = (Index(None, "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    channel: Mapped[str] = mapped_column(String(16))
    user_ref: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(String(200), nullable=True)


class PopulationRow(Base):
    """Imported population figures per village (override config.toml's)."""

    __tablename__ = "population"

    commune: Mapped[str] = mapped_column(String(16), primary_key=True)
    village: Mapped[str] = mapped_column(String(64), primary_key=True)
    adults: Mapped[int] = mapped_column(Integer)
    adults_present: Mapped[int] = mapped_column(Integer)
    households: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ReachedRow(Base):
    """The first time each user reached each stage (a screen, "started", "completed", or
    "via:<volunteer code>"): the funnel is a count of these, not a DISTINCT over events."""

    __tablename__ = "reached"
    __table_args__ = (Index(None, "commune", "stage"), Index(None, "at"))

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    user_ref: Mapped[str] = mapped_column(String(64), primary_key=True)
    stage: Mapped[str] = mapped_column(String(80), primary_key=True)
    commune: Mapped[str | None] = mapped_column(String(16), nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TokenRow(Base):
    """A channel's current API tokens (Zalo OA: the access token and the single-use refresh
    token), saved before they are used so that a restart never loses the only valid one."""

    __tablename__ = "channel_tokens"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    access_token: Mapped[str] = mapped_column(Text)
    refresh_token: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LeaseRow(Base):
    """Work that one process at a time must do (the outbox sender, retention): whoever holds
    an unexpired lease does it; a holder that dies loses it when it expires."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(String(80))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ContactRow(Base):
    """A citizen who agreed to receive messages (reminders, announcements): the only place a
    chat address is kept, sealed (AES-GCM) with a key derived from BOT_ID_SECRET. Each
    purpose has its own yes (``reminders``, ``announcements``); the row is deleted when both
    are off -- they say "dung", block the bot, or delete their data."""

    __tablename__ = "contacts"
    __table_args__ = (Index(None, "commune"),)

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    user_ref: Mapped[str] = mapped_column(String(64), primary_key=True)
    address: Mapped[str] = mapped_column(Text)  # sealed; see bot.identity.UserRefs.seal
    commune: Mapped[str | None] = mapped_column(String(16), nullable=True)
    opted_in_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: Said yes to reminders (storage/outbox.py plans them only for these).
    reminders: Mapped[bool] = mapped_column(Boolean, server_default=true())
    #: Said yes to the commune's announcements, on its own question (migration 0009).
    announcements: Mapped[bool] = mapped_column(Boolean, server_default=false())


class BroadcastRow(Base):
    """An official's announcement to the opted-in citizens of their scope."""

    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(Text)  # JSON, as staff.scope
    text: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64))  # the official's user_ref
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(12), default="draft")  # draft|queued|cancelled
    recipients: Mapped[int] = mapped_column(Integer, default=0)


class OutboxRow(Base):
    """One message to send later (a reminder, an announcement): sent once by the outbox
    worker. ``key`` is unique per message, so planning it twice inserts it once."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index(None, "status", "due_at"),
        Index(None, "channel", "user_ref"),
        Index(None, "broadcast_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(120), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # "reminder" | "broadcast"
    channel: Mapped[str] = mapped_column(String(16))
    user_ref: Mapped[str] = mapped_column(String(64))
    broadcast_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The messages, as decided when the row was claimed (JSON): a retry sends these again.
    payload: Mapped[str | None] = mapped_column(Text, nullable=True)
    # pending -> sending -> sent | unknown (in doubt after a crash: never sent again) |
    # failed (blocked, gone) | skipped (nothing to say any more) | cancelled ("dung")
    status: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class WebLinkRow(Base):
    """A one-time login link to the officials' web dashboard: only its token's hash is
    kept; it works once, for ten minutes."""

    __tablename__ = "web_links"
    __table_args__ = (Index(None, "expires_at"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    scope: Mapped[str] = mapped_column(Text)  # JSON, as staff.scope
    channel: Mapped[str] = mapped_column(String(16))  # whose link: a staff member, or "cli"
    user_ref: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class WebSessionRow(Base):
    """A signed-in browser of the dashboard: only the session id's hash is kept."""

    __tablename__ = "web_sessions"
    __table_args__ = (Index(None, "expires_at"),)

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    scope: Mapped[str] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(16))
    user_ref: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class HelpRequestRow(Base):
    """A citizen's request for a person (handlers/helpdesk.py): what they agreed to share,
    who took it, how it ended -- never their name, and their chat address, landmark and
    phone number only sealed (AES-GCM, bound to the citizen's reference) and only while it
    is open: all three are emptied when it closes, and the landmark and phone number after
    14 days whatever happens.

    ``status``: draft (a home visit whose optional details are being typed) -> open ->
    claimed -> closed | cancelled | expired. ``stage``: how far the notifications have
    gone (1 the village's volunteers, 2 the commune's, 3 its officials, 4 the citizen told
    nobody came); ``next_at``: when the next one is due."""

    __tablename__ = "help_requests"
    __table_args__ = (
        Index(None, "status", "next_at"),
        Index(None, "channel", "user_ref"),
        Index(None, "volunteer_channel", "volunteer_ref", "status"),
        Index(None, "commune", "created_at"),
        # One live request per citizen.
        Index(
            "uq_help_requests_live",
            "channel",
            "user_ref",
            unique=True,
            sqlite_where=text("status IN ('draft', 'open', 'claimed')"),
            postgresql_where=text("status IN ('draft', 'open', 'claimed')"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(16))
    user_ref: Mapped[str] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(Text, nullable=True)  # sealed
    commune: Mapped[str] = mapped_column(String(16))
    village: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8))  # chat | visit | point
    day: Mapped[str | None] = mapped_column(String(10), nullable=True)  # YYYY-MM-DD
    part: Mapped[str | None] = mapped_column(String(12), nullable=True)  # of the day
    step: Mapped[str | None] = mapped_column(String(64), nullable=True)
    provider: Mapped[str | None] = mapped_column(String(32), nullable=True)
    phone_type: Mapped[str | None] = mapped_column(String(16), nullable=True)
    problem: Mapped[str] = mapped_column(String(16))
    landmark: Mapped[str | None] = mapped_column(Text, nullable=True)  # sealed
    phone: Mapped[str | None] = mapped_column(Text, nullable=True)  # sealed
    status: Mapped[str] = mapped_column(String(12))
    stage: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    opened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    volunteer_channel: Mapped[str | None] = mapped_column(String(16), nullable=True)
    volunteer_ref: Mapped[str | None] = mapped_column(String(64), nullable=True)
    volunteer_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    #: The volunteer's request their typed messages go to: the one they touched last.
    focus_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    reported: Mapped[bool] = mapped_column(Boolean, default=False)


class HelpMessageRow(Base):
    """A message of a help request on its way (a relayed message, a notification, a
    notice): sealed for its recipient, deleted as soon as it is sent -- or found in doubt
    after a crash, or its request closed -- so that relayed words exist only in transit.

    ``pending`` -> ``sending`` (claimed just before its request leaves) -> deleted. A row
    found ``sending`` long after its claim was cut off by a crash: it is never sent again
    (it almost always arrived), as the outbox does with reminders."""

    __tablename__ = "help_messages"
    __table_args__ = (Index(None, "status", "created_at"), Index(None, "request_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(BigInteger)
    channel: Mapped[str] = mapped_column(String(16))  # the recipient's
    user_ref: Mapped[str] = mapped_column(String(64))  # the recipient's
    payload: Mapped[str] = mapped_column(Text)  # sealed {"to": chat, "messages": [...]}
    status: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
