"""Durable API tokens for channels that rotate them (the Zalo OA's OAuth tokens).

Both tokens are kept sealed (AES-GCM under a key derived from BOT_ID_SECRET, as the reminder
address): a copy of the database alone cannot speak as the OA. Rows written before tokens were
sealed are read once and written back sealed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from bot.identity import UserRefs
from storage.database import Database
from storage.models import Base

_tokens = Base.metadata.tables["channel_tokens"]
#: Marks a sealed value (older rows hold the token itself).
SEALED = "sealed:"
_SEAL_CHANNEL = "token"


@dataclass(frozen=True, slots=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_at: datetime


class TokenStoreError(Exception):
    """The stored tokens do not open (BOT_ID_SECRET changed since they were saved)."""


class TokenStore:
    def __init__(self, db: Database, refs: UserRefs):
        self.db = db
        self.refs = refs
        self._insert = postgresql.insert if db.dialect == "postgresql" else sqlite.insert

    async def load(self, name: str) -> Tokens | None:
        query = select(_tokens).where(_tokens.c.name == name)
        row = await self.db.run(lambda conn: conn.execute(query).first())
        if row is None:
            return None
        expires = row.expires_at
        if expires.tzinfo is None:  # SQLite hands back naive UTC times
            expires = expires.replace(tzinfo=UTC)
        tokens = Tokens(
            self._open(name, row.access_token), self._open(name, row.refresh_token), expires
        )
        if not row.access_token.startswith(SEALED):
            await self.save(name, tokens, row.updated_at)  # a row from before sealing
        return tokens

    def _open(self, name: str, stored: str) -> str:
        if not stored.startswith(SEALED):
            return stored
        opened = self.refs.unseal(_SEAL_CHANNEL, name, stored.removeprefix(SEALED))
        if opened is None:
            raise TokenStoreError(f"the stored {name} tokens do not open with this BOT_ID_SECRET")
        return opened

    def _seal(self, name: str, token: str) -> str:
        return SEALED + self.refs.seal(_SEAL_CHANNEL, name, token)

    async def save(self, name: str, tokens: Tokens, now: datetime) -> None:
        """Replace the stored tokens (committed when this returns)."""
        values = {
            "access_token": self._seal(name, tokens.access_token),
            "refresh_token": self._seal(name, tokens.refresh_token),
            "expires_at": tokens.expires_at,
            "updated_at": now,
        }
        stmt = (
            self._insert(_tokens)
            .values(name=name, **values)
            .on_conflict_do_update(index_elements=["name"], set_=values)
        )
        await self.db.run(lambda conn: conn.execute(stmt))
