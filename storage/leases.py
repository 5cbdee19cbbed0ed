"""Leases: work that one process at a time must do, among workers sharing only the database.

The outbox sender (one global pace under Telegram's limits) and the daily retention run in
whichever worker holds their lease. A holder renews its lease well before it expires; one
that dies or hangs loses it when it expires, and another worker takes over. Taking and
renewing are one atomic statement (``INSERT .. ON CONFLICT DO UPDATE .. WHERE``), so two
workers can never both believe they hold it. A worker restarted on the same machine after a
crash takes its dead predecessor's lease at once instead of waiting for it to expire.
"""

from __future__ import annotations

import os
import secrets
import socket
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from storage.database import Database
from storage.models import Base

_leases = Base.metadata.tables["leases"]


def _dead_here(holder: str) -> bool:
    """Whether ``holder`` was a process on this machine that no longer runs."""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname()[:40] or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, someone else's
    return False


def holder_id() -> str:
    """This process, recognisably (host and pid) and uniquely (a restart is someone new)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"


class Leases:
    def __init__(self, db: Database, holder: str | None = None):
        self.db = db
        self.holder = holder or holder_id()
        self._insert = postgresql.insert if db.dialect == "postgresql" else sqlite.insert

    async def acquire(self, name: str, now: datetime, ttl: timedelta) -> bool:
        """Take or renew ``name`` until ``now + ttl``; False if someone else holds it."""
        insert = self._insert(_leases).values(name=name, holder=self.holder, expires_at=now + ttl)
        stmt = insert.on_conflict_do_update(
            index_elements=["name"],
            set_={"holder": insert.excluded.holder, "expires_at": insert.excluded.expires_at},
            where=(_leases.c.holder == self.holder) | (_leases.c.expires_at < now),
        ).returning(_leases.c.holder)
        got = await self.db.run(lambda conn: conn.execute(stmt).scalar_one_or_none())
        if got is None:
            return await self._take_from_the_dead(name, now, ttl)
        return bool(got == self.holder)

    async def _take_from_the_dead(self, name: str, now: datetime, ttl: timedelta) -> bool:
        """A holder on this machine whose process is gone (a crash, then a restart) need not
        be waited out: its lease is taken at once."""
        query = select(_leases.c.holder).where(_leases.c.name == name)
        holder = await self.db.run(lambda conn: conn.execute(query).scalar())
        if holder is None or not _dead_here(str(holder)):
            return False
        stmt = (
            update(_leases)
            .where(_leases.c.name == name, _leases.c.holder == holder)
            .values(holder=self.holder, expires_at=now + ttl)
        )
        return await self.db.run(lambda conn: bool(conn.execute(stmt).rowcount == 1))

    async def release(self, name: str) -> None:
        """Give ``name`` up at once (a clean shutdown), if held."""
        stmt = delete(_leases).where(_leases.c.name == name, _leases.c.holder == self.holder)
        await self.db.run(lambda conn: conn.execute(stmt))
