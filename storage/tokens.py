"""Durable API tokens for channels that rotate them (the Zalo OA's OAuth tokens)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from storage.database import Database
from storage.models import Base

_tokens = Base.metadata.tables["channel_tokens"]


@dataclass(frozen=True, slots=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_at: datetime


class TokenStore:
    def __init__(self, db: Database):
        self.db = db
        self._insert = postgresql.insert if db.dialect == "postgresql" else sqlite.insert

    async def load(self, name: str) -> Tokens | None:
        query = select(_tokens).where(_tokens.c.name == name)
        row = await self.db.run(lambda conn: conn.execute(query).first())
        if row is None:
            return None
        expires = row.expires_at
        if expires.tzinfo is None:  # SQLite hands back naive UTC times
            expires = expires.replace(tzinfo=UTC)
        return Tokens(row.access_token, row.refresh_token, expires)

    async def save(self, name: str, tokens: Tokens, now: datetime) -> None:
        """Replace the stored tokens (committed when this returns)."""
        values = {
            "access_token": tokens.access_token,
            "refresh_token": tokens.refresh_token,
            "expires_at": tokens.expires_at,
            "updated_at": now,
        }
        stmt = (
            self._insert(_tokens)
            .values(name=name, **values)
            .on_conflict_do_update(index_elements=["name"], set_=values)
        )
        await self.db.run(lambda conn: conn.execute(stmt))
