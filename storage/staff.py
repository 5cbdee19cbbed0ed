"""Officials and volunteers: one-time invites, enrolment, scopes, assisted completions, audit.

Nobody becomes staff by typing a command. An invite code is random (144 bits), shown once,
stored only as a hash, expires, and works once. Staff are known by the same keyed hash of
their channel id as citizens: no name, no phone number. Every staff action and every failed
enrolment attempt is written to the audit log.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from bot.officials import ROLES, SCOPE_KINDS, Scope
from storage.database import Database
from storage.models import Base
from storage.writes import writes_for

_staff = Base.metadata.tables["staff"]
_invites = Base.metadata.tables["invites"]
_assisted = Base.metadata.tables["assisted"]
_audit = Base.metadata.tables["audit"]
_population = Base.metadata.tables["population"]
_buttons = Base.metadata.tables["staff_buttons"]

INVITE_PREFIX = "inv_"
#: Volunteer codes: "V" and six letters or digits that cannot be mistaken for one another,
#: short enough to read aloud and type ("ma VK7M2QX") where no link can carry them (Zalo).
VOLUNTEER_PREFIX = "V"
VOLUNTEER_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
INVITE_TTL = timedelta(days=3)
#: Failed enrolment attempts allowed per user per hour before they are ignored.
FAILED_INVITES_PER_HOUR = 5
#: A confirmation button works for this long after it was given (then /dagiup again).
BUTTON_TTL = timedelta(days=1)
#: Letters of a button's token: 8 of 32 (40 bits), bound to the member it was given to.
BUTTON_LENGTH = 8


@dataclass(frozen=True, slots=True)
class Staff:
    role: str
    scope: Scope
    code: str | None  # a volunteer's referral code (their personal link)
    user_ref: str = ""
    channel: str = ""
    #: Their chat, sealed (None: enrolled before addresses were kept; kept at next command).
    address: str | None = None
    village: str | None = None


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


class StaffRepository:
    """Reads and writes of staff data."""

    def __init__(self, db: Database):
        self.db = db
        self._insert = postgresql.insert if db.dialect == "postgresql" else sqlite.insert

    async def create_invite(
        self,
        role: str,
        scope: Scope,
        *,
        created_by: str,
        now: datetime,
        ttl: timedelta = INVITE_TTL,
    ) -> str:
        """A new one-time invite code (returned once, stored only as a hash)."""
        if role not in ROLES or scope.kind not in SCOPE_KINDS:
            raise ValueError(f"bad invite: {role} {scope}")
        code = INVITE_PREFIX + secrets.token_urlsafe(18)
        row = {
            "code_hash": _hash(code),
            "role": role,
            "scope": scope.to_json(),
            "created_by": created_by,
            "created_at": now,
            "expires_at": now + ttl,
        }
        await self.db.run(lambda conn: conn.execute(insert(_invites), row))
        return code

    async def redeem(
        self, channel: str, user_ref: str, code: str, now: datetime, *, address: str | None = None
    ) -> Staff | None:
        """Enrol the user with this invite, if it is valid, unused and not expired.
        ``address``: their chat, sealed, for telling them of help requests."""

        def work(conn: Connection) -> Staff | None:
            failed = conn.execute(
                select(func.count())
                .select_from(_audit)
                .where(
                    _audit.c.channel == channel,
                    _audit.c.user_ref == user_ref,
                    _audit.c.action == "invite_failed",
                    _audit.c.at > now - timedelta(hours=1),
                )
            ).scalar_one()
            if failed >= FAILED_INVITES_PER_HOUR:
                return None  # too many tries: ignored (and not even checked)
            claimed = conn.execute(
                update(_invites)
                .where(
                    _invites.c.code_hash == _hash(code),
                    _invites.c.used_at.is_(None),
                    _invites.c.expires_at > now,
                )
                .values(used_at=now)
                .returning(_invites.c.role, _invites.c.scope)
            ).first()
            if claimed is None:
                _log(conn, channel, user_ref, "invite_failed", None, now)
                return None
            scope = Scope.from_json(claimed.scope)
            code_ = (
                VOLUNTEER_PREFIX + "".join(secrets.choice(VOLUNTEER_ALPHABET) for _ in range(6))
                if claimed.role == "volunteer"
                else None
            )
            values = {
                "role": claimed.role,
                "scope": claimed.scope,
                "code": code_,
                "commune": scope.codes[0] if code_ and scope.codes else None,
                "created_at": now,
                "address": address,
            }
            conn.execute(
                self._insert(_staff)
                .values(channel=channel, user_ref=user_ref, **values)
                .on_conflict_do_update(index_elements=["channel", "user_ref"], set_=values)
            )
            _log(conn, channel, user_ref, "enrolled", f"{claimed.role} {scope.to_json()}", now)
            return Staff(claimed.role, scope, code_, user_ref, channel)

        return await self.db.run(work)

    async def get(self, channel: str, user_ref: str) -> Staff | None:
        s = _staff.c
        query = select(s.role, s.scope, s.code, s.address, s.village).where(
            s.channel == channel, s.user_ref == user_ref
        )
        row = await self.db.run(lambda conn: conn.execute(query).first())
        if row is None:
            return None
        scope = Scope.from_json(row.scope)
        return Staff(row.role, scope, row.code, user_ref, channel, row.address, row.village)

    async def begin(
        self,
        channel: str,
        user_ref: str,
        action: str,
        detail: str | None,
        now: datetime,
        *,
        delivery: str | None = None,
    ) -> bool:
        """Start a staff action: audit it, and -- given the (keyed) id of the delivery that
        carries it -- record that delivery, in one transaction. False if that delivery was
        seen before (a platform's redelivery: the action is not applied again). Only staff
        actions are recorded here, so a citizen's delivery id is never taken."""
        writes = writes_for(self.db.dialect)

        def work(conn: Connection) -> bool:
            if delivery is not None:
                row = {
                    "channel": channel,
                    "delivery_id": delivery,
                    "at": now,
                    "user_ref": user_ref,
                    "outgoing": None,
                }
                if not writes.claim(conn, [row]):
                    return False
            _log(conn, channel, user_ref, action, detail, now)
            return True

        return await self.db.run(work)

    async def set_address(self, channel: str, user_ref: str, address: str) -> None:
        """Keep (or renew) a member's sealed chat address."""
        stmt = (
            update(_staff)
            .where(_staff.c.channel == channel, _staff.c.user_ref == user_ref)
            .values(address=address)
        )
        await self.db.run(lambda conn: conn.execute(stmt))

    async def own_code(self, channel: str, user_ref: str) -> str | None:
        """The referral code of this user, if they are a volunteer (their own link must not
        count for them)."""
        query = select(_staff.c.code).where(
            _staff.c.channel == channel, _staff.c.user_ref == user_ref
        )
        code: str | None = await self.db.run(lambda conn: conn.execute(query).scalar())
        return code

    async def issue_button(self, channel: str, user_ref: str, kind: str, now: datetime) -> str:
        """A confirmation button's token: it works once, for this member only."""
        token = "".join(secrets.choice(VOLUNTEER_ALPHABET) for _ in range(BUTTON_LENGTH))
        row = {
            "token": token,
            "channel": channel,
            "user_ref": user_ref,
            "kind": kind,
            "created_at": now,
        }

        def work(conn: Connection) -> None:
            conn.execute(delete(_buttons).where(_buttons.c.created_at < now - BUTTON_TTL))
            conn.execute(insert(_buttons), row)

        await self.db.run(work)
        return token

    async def volunteer_commune(self, code: str) -> str | None:
        """The commune of the volunteer whose referral code this is."""
        query = select(_staff.c.commune).where(
            _staff.c.code == code.upper(), _staff.c.role == "volunteer"
        )
        commune: str | None = await self.db.run(lambda conn: conn.execute(query).scalar())
        return commune

    async def volunteers(self, communes: Iterable[str]) -> dict[str, str]:
        """Referral code -> commune of every volunteer of these communes."""
        query = select(_staff.c.code, _staff.c.commune).where(
            _staff.c.role == "volunteer", _staff.c.commune.in_(list(communes))
        )
        rows = await self.db.run(lambda conn: conn.execute(query).all())
        return {row.code: row.commune for row in rows if row.code}

    async def record_assisted(
        self,
        volunteer: str,
        commune: str,
        village: str,
        provider: str,
        now: datetime,
        *,
        button: tuple[str, str, str] | None = None,
    ) -> bool:
        """Record one assisted completion. ``button``: (channel, user_ref, token) of the
        confirmation button pressed -- spent in the same transaction; False (nothing
        recorded) if it was spent before, expired, or never given to this member."""
        row = {
            "volunteer": volunteer,
            "commune": commune,
            "village": village,
            "provider": provider,
            "at": now,
        }

        def work(conn: Connection) -> bool:
            if button is not None:
                channel, user_ref, token = button
                spent = conn.execute(
                    update(_buttons)
                    .where(
                        _buttons.c.token == token,
                        _buttons.c.channel == channel,
                        _buttons.c.user_ref == user_ref,
                        _buttons.c.spent_at.is_(None),
                        _buttons.c.created_at > now - BUTTON_TTL,
                    )
                    .values(spent_at=now)
                )
                if spent.rowcount != 1:
                    return False
            conn.execute(insert(_assisted), row)
            return True

        return await self.db.run(work)

    async def audit(
        self, channel: str, user_ref: str, action: str, detail: str | None, now: datetime
    ) -> None:
        await self.db.run(lambda conn: _log(conn, channel, user_ref, action, detail, now))

    async def import_population(self, rows: list[dict[str, Any]], now: datetime) -> int:
        """Replace the figures of these villages (rows: commune, village, adults,
        adults_present, households)."""
        if not rows:
            return 0
        stmt = self._insert(_population).values([{**r, "updated_at": now} for r in rows])
        stmt = stmt.on_conflict_do_update(
            index_elements=["commune", "village"],
            set_={
                c: getattr(stmt.excluded, c)
                for c in ("adults", "adults_present", "households", "updated_at")
            },
        )
        await self.db.run(lambda conn: conn.execute(stmt))
        return len(rows)

    async def population(
        self, communes: Iterable[str]
    ) -> dict[tuple[str, str], tuple[int, int, int]]:
        """Imported figures: (commune, village) -> (adults, adults_present, households)."""
        query = select(_population).where(_population.c.commune.in_(list(communes)))
        rows = await self.db.run(lambda conn: conn.execute(query).all())
        return {(r.commune, r.village): (r.adults, r.adults_present, r.households) for r in rows}


def _log(
    conn: Connection, channel: str, user_ref: str, action: str, detail: str | None, now: datetime
) -> None:
    conn.execute(
        insert(_audit).values(
            at=now, channel=channel, user_ref=user_ref, action=action, detail=(detail or "")[:200]
        )
    )
