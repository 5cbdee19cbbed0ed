"""Officials' web sign-in: one-time login links and browser sessions.

A login link carries a random token (144 bits) that works once, within ten minutes; a
session id (192 bits) lives in an HttpOnly cookie. Only SHA-256 hashes of both are stored:
someone who reads the database cannot sign in with what they find there. A session remembers
whose it is (the staff member's channel and keyed user hash, or "cli" for a link the server's
operator printed) and the scope it was opened for; the dashboard checks the member's role
and scope again on every request.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from bot.officials import WEB_LINK_TTL, Scope
from storage.database import Database
from storage.models import Base

_links = Base.metadata.tables["web_links"]
_sessions = Base.metadata.tables["web_sessions"]

#: A session ends this long after sign-in, whatever happens (a working day).
SESSION_TTL = timedelta(hours=8)
#: ... or after this long without a request (a computer left open in the office).
SESSION_IDLE = timedelta(hours=1)
#: last_seen is written at most this often (not on every page).
TOUCH_EVERY = timedelta(minutes=1)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class WebSession:
    """A signed-in browser: whose it is and the scope its link was made for."""

    channel: str
    user_ref: str
    scope: Scope
    created_at: datetime
    expires_at: datetime


class WebAccess:
    """Reads and writes of login links and sessions."""

    def __init__(self, db: Database):
        self.db = db

    async def create_link(
        self,
        scope: Scope,
        *,
        channel: str,
        user_ref: str,
        now: datetime,
        ttl: timedelta = WEB_LINK_TTL,
    ) -> str:
        """A new one-time login token (returned once, stored only as a hash)."""
        token = secrets.token_urlsafe(18)
        row = {
            "token_hash": _hash(token),
            "scope": scope.to_json(),
            "channel": channel,
            "user_ref": user_ref,
            "created_at": now,
            "expires_at": now + ttl,
        }
        await self.db.run(lambda conn: conn.execute(insert(_links), row))
        return token

    async def redeem(self, token: str, now: datetime) -> tuple[str, WebSession] | None:
        """Use a login token once: a new session id and its session, or None when the
        token is unknown, used or expired."""

        def work(conn: Connection) -> tuple[str, WebSession] | None:
            claimed = conn.execute(
                update(_links)
                .where(
                    _links.c.token_hash == _hash(token),
                    _links.c.used_at.is_(None),
                    _links.c.expires_at > now,
                )
                .values(used_at=now)
                .returning(_links.c.scope, _links.c.channel, _links.c.user_ref)
            ).first()
            if claimed is None:
                return None
            session_id = secrets.token_urlsafe(24)
            session = WebSession(
                channel=claimed.channel,
                user_ref=claimed.user_ref,
                scope=Scope.from_json(claimed.scope),
                created_at=now,
                expires_at=now + SESSION_TTL,
            )
            conn.execute(
                insert(_sessions).values(
                    id_hash=_hash(session_id),
                    channel=session.channel,
                    user_ref=session.user_ref,
                    scope=claimed.scope,
                    created_at=now,
                    expires_at=session.expires_at,
                    last_seen=now,
                )
            )
            return session_id, session

        return await self.db.run(work)

    async def session(self, session_id: str, now: datetime) -> WebSession | None:
        """The live session with this id (None: unknown, ended, expired or idle too long)."""
        key = _hash(session_id)

        def work(conn: Connection) -> WebSession | None:
            row = conn.execute(select(_sessions).where(_sessions.c.id_hash == key)).first()
            if row is None or row.ended_at is not None:
                return None
            expires, seen = _aware(row.expires_at), _aware(row.last_seen)
            if expires <= now or seen + SESSION_IDLE <= now:
                return None
            if now - seen >= TOUCH_EVERY:
                conn.execute(
                    update(_sessions).where(_sessions.c.id_hash == key).values(last_seen=now)
                )
            return WebSession(
                channel=row.channel,
                user_ref=row.user_ref,
                scope=Scope.from_json(row.scope),
                created_at=_aware(row.created_at),
                expires_at=expires,
            )

        return await self.db.run(work)

    async def end(self, session_id: str, now: datetime) -> None:
        """Log out: the session id stops working at once."""
        stmt = (
            update(_sessions)
            .where(_sessions.c.id_hash == _hash(session_id), _sessions.c.ended_at.is_(None))
            .values(ended_at=now)
        )
        await self.db.run(lambda conn: conn.execute(stmt))


def _aware(value: datetime) -> datetime:
    """SQLite hands back naive UTC times: make them comparable again."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
