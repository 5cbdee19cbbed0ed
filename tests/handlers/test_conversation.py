"""The service: engine + store, persisted before replying, deduplicated, pseudonymous."""

from __future__ import annotations

import asyncio

from bot.model import Choice, Start, Text
from handlers.conversation import Conversations
from tests.conftest import rows


async def dump(conversations: Conversations) -> str:
    """Every row of every table, as text."""
    out: list[str] = []
    for table in ("sessions", "events", "completions", "deliveries"):
        out.extend(
            repr(tuple(row)) for row in await rows(conversations.repo.db, f"SELECT * FROM {table}")
        )
    return "\n".join(out)


async def test_progress_survives_a_new_service(conversations: Conversations) -> None:
    for event in (Start(), Choice("install", "menu"), Choice("ok", "ready")):
        await conversations.handle("telegram", 42, event)
    # A restart: a new service object on the same database.
    fresh = Conversations(conversations.engine, conversations.repo, conversations.refs)
    outcome = await fresh.handle("telegram", 42, Start())
    assert "resume" in [o.id for o in outcome.messages[-1].options]


async def test_duplicate_delivery_is_answered_once(conversations: Conversations) -> None:
    await conversations.handle("telegram", 42, Start(), delivery_id="1")
    first = await conversations.handle("telegram", 42, Text("2"), delivery_id="2")
    again = await conversations.handle("telegram", 42, Text("2"), delivery_id="2")
    assert first.messages
    assert again.duplicate
    assert not again.messages


async def test_database_holds_no_user_id_or_typed_text(conversations: Conversations) -> None:
    user_id = 987654321
    typed = ["cai chu ky so co mat tien ko", "123456", "goi 0912345678", "xin chao ban"]
    await conversations.handle("telegram", user_id, Start())
    for line in typed:
        await conversations.handle("telegram", user_id, Text(line))
    contents = await dump(conversations)
    assert contents, "something was stored"
    assert str(user_id) not in contents
    for line in typed:
        assert line not in contents
    for fragment in ("123456", "0912345678", "mat tien"):
        assert fragment not in contents


async def test_concurrent_updates_for_one_user_are_all_applied(
    conversations: Conversations,
) -> None:
    """Even without ordering by the adapter, no update is lost (optimistic retries)."""
    await conversations.handle("telegram", 7, Start())
    questions = ["quen ma pin thi sao", "co mat tien khong", "cai mat bao lau", "vneid khac gi"]
    outcomes = await asyncio.gather(
        *(conversations.handle("telegram", 7, Text(q), delivery_id=q) for q in questions)
    )
    assert all(o.messages for o in outcomes)
    sql = "SELECT count(*) FROM events WHERE kind IN ('faq', 'faq_miss')"
    assert (await rows(conversations.repo.db, sql))[0][0] == 4


async def test_notice_needs_no_session(conversations: Conversations) -> None:
    assert conversations.notice("group_chat").text
    assert await dump(conversations) == ""
