"""Issue 12, item 1: a volunteer cannot inflate the official figures.

The audit replayed the "assisted completion" button 30 times (31 counted), redelivered one
staff update three times with the same update_id (three rows), and had a volunteer open
their own link and report (counted as "started via your link"). Each case here failed on the
code before the fix; so did 40 concurrent /chart from one official (all 40 drawn), and a
burst of assisted completions no person could do in an hour went unnoticed.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.engine import Engine
from bot.model import Choice, Start, Text
from bot.officials import ASSISTED_PER_HOUR, Scope
from handlers.staff import HEAVY_PER_MINUTE, SCREEN, StaffReply
from storage.database import Database
from tests.conftest import rows
from tests.handlers.test_staff import World

VOLUNTEER = 2
OFFICIAL = 1


@pytest.fixture
def world(db: Database, engine: Engine) -> World:
    return World(db, engine.content, engine.understanding)


async def _assist(world: World, user: int = VOLUNTEER, **kw: str) -> StaffReply:
    """/dagiup, then the first village and the first provider offered: the final reply."""
    start = await world.desk.handle("telegram", user, Text("/dagiup"), **kw)  # type: ignore[arg-type]
    assert start is not None
    village = start.messages[-1].options[0].id
    providers = await world.staff_says(user, Choice(village, SCREEN))
    assert providers is not None
    final = providers.messages[-1].options[0].id
    done = await world.staff_says(user, Choice(final, SCREEN))
    assert done is not None
    return done


async def _assisted(db: Database) -> int:
    return int((await rows(db, "SELECT count(*) FROM assisted"))[0][0])


async def test_a_replayed_confirmation_button_counts_once(world: World) -> None:
    await world.enrol(VOLUNTEER, "volunteer", Scope("communes", ("16279",)))
    start = await world.staff_says(VOLUNTEER, Text("/dagiup"))
    assert start is not None
    village = start.messages[-1].options[0].id
    providers = await world.staff_says(VOLUNTEER, Choice(village, SCREEN))
    assert providers is not None
    final = providers.messages[-1].options[0].id
    first = await world.staff_says(VOLUNTEER, Choice(final, SCREEN))
    assert first is not None
    assert first.messages[0].text.startswith("✅")
    for _ in range(30):
        world.now += timedelta(minutes=3)  # slowly enough for the rate limit
        again = await world.staff_says(VOLUNTEER, Choice(final, SCREEN))
        assert again is not None
        assert again.messages[0].text == world.desk.texts["assist_spent"]
    assert await _assisted(world.db) == 1
    report = (await world.desk.report(Scope("communes", ("16279",)))).to_json()
    assert report["completed_assisted"] == 1


async def test_a_made_up_confirmation_button_counts_nothing(world: World) -> None:
    await world.enrol(VOLUNTEER, "volunteer", Scope("communes", ("16279",)))
    for forged in ("as:kp-1:misa", "as:AAAAAAAA:kp-1:misa", "as:x:y:z:w"):
        reply = await world.staff_says(VOLUNTEER, Choice(forged, SCREEN))
        assert reply is not None
        assert reply.messages == () or reply.messages[0].text == world.desk.texts["assist_spent"]
    assert await _assisted(world.db) == 0


async def test_a_redelivered_staff_update_is_applied_once(world: World) -> None:
    await world.enrol(OFFICIAL, "official", Scope("communes", ("16279",)))
    await world.enrol(VOLUNTEER, "volunteer", Scope("communes", ("16279",)))
    answers = [
        await world.desk.handle("telegram", OFFICIAL, Text("/stats"), delivery_id="update-77")
        for _ in range(3)
    ]
    assert answers[0] is not None
    assert answers[0].messages, "answered the first time"
    assert answers[1] == answers[2] == StaffReply(), "the same update again: nothing more"
    audit = await rows(world.db, "SELECT count(*) FROM audit WHERE action = 'stats'")
    assert audit[0][0] == 1
    # A volunteer's confirmation delivered three times (one press, redelivered): one row.
    start = await world.staff_says(VOLUNTEER, Text("/dagiup"))
    assert start is not None
    providers = await world.staff_says(VOLUNTEER, Choice(start.messages[-1].options[0].id, SCREEN))
    assert providers is not None
    final = Choice(providers.messages[-1].options[0].id, SCREEN)
    for _ in range(3):
        await world.desk.handle("telegram", VOLUNTEER, final, delivery_id="update-78")
    assert await _assisted(world.db) == 1
    # Not a staff command: the delivery is left for the citizen conversation to apply.
    citizen = await world.desk.handle("telegram", 50, Text("xin chào"), delivery_id="update-79")
    assert citizen is None
    outcome = await world.conversations.handle(
        "telegram", 50, Text("xin chào"), delivery_id="update-79"
    )
    assert not outcome.duplicate


async def test_a_volunteer_opening_their_own_link_is_not_their_referral(world: World) -> None:
    await world.enrol(VOLUNTEER, "volunteer", Scope("communes", ("16279",)))
    member = await world.staff.get("telegram", world.refs.ref("telegram", VOLUNTEER))
    assert member is not None
    assert member.code
    await world.report(VOLUNTEER, "nong cong", "dong hoa", "vnpt", via=member.code)
    await world.citizen(VOLUNTEER, Text(f"ma {member.code}"))
    report = (await world.desk.report(Scope("communes", ("16279",)))).to_json()
    assert report["by_volunteer"] == [
        {"volunteer": member.code, "started": 0, "finished": 0, "helped": 0}
    ]
    assert report["completed_self"] == 1, "their own report still counts, as a citizen's"
    # Someone else's link still counts for them.
    await world.report(30, "nong cong", "dong hoa", "vnpt", via=member.code)
    report = (await world.desk.report(Scope("communes", ("16279",)))).to_json()
    assert report["by_volunteer"][0]["started"] == 1


async def test_staff_commands_are_rate_limited(world: World) -> None:
    await world.enrol(OFFICIAL, "official", Scope("communes", ("16279",)))
    replies = await asyncio.gather(
        *(world.staff_says(OFFICIAL, Text("/chart")) for _ in range(40))
    )
    charts = [r for r in replies if r is not None and r.attachments]
    assert len(charts) == HEAVY_PER_MINUTE
    slow = [r for r in replies if r is not None and r.messages and not r.attachments]
    assert [m.messages[0].text for m in slow] == [world.desk.texts["staff_slow_down"]]
    world.now += timedelta(minutes=1, seconds=1)
    later = await world.staff_says(OFFICIAL, Text("/chart"))
    assert later is not None
    assert later.attachments, "a minute later it works again"


async def test_an_unusual_burst_of_assisted_completions_is_flagged(world: World) -> None:
    await world.enrol(OFFICIAL, "official", Scope("communes", ("16279",)))
    await world.enrol(VOLUNTEER, "volunteer", Scope("communes", ("16279",)))
    member = await world.staff.get("telegram", world.refs.ref("telegram", VOLUNTEER))
    assert member is not None
    # A plausible day: one every 20 minutes.
    for _ in range(ASSISTED_PER_HOUR + 2):
        await _assist(world)
        world.now += timedelta(minutes=20)
    report = (await world.desk.report(Scope("communes", ("16279",)))).to_json()
    assert report["assisted_bursts"] == []
    stats = await world.staff_says(OFFICIAL, Text("/stats"))
    assert stats is not None
    assert "⚠️" not in stats.messages[0].text
    # Then more in one hour than a person can help.
    for _ in range(ASSISTED_PER_HOUR + 3):
        await _assist(world)
        world.now += timedelta(minutes=5)
    report = (await world.desk.report(Scope("communes", ("16279",)))).to_json()
    assert report["assisted_bursts"] == [
        {"volunteer": member.code, "most_in_an_hour": ASSISTED_PER_HOUR + 3}
    ]
    world.now += timedelta(minutes=1)
    stats = await world.staff_says(OFFICIAL, Text("/stats"))
    assert stats is not None
    flagged = world.desk.texts["burst_line"].format(
        code=member.code, count=ASSISTED_PER_HOUR + 3, limit=ASSISTED_PER_HOUR
    )
    assert flagged in stats.messages[0].text


async def test_an_invite_still_enrols_through_the_guard(world: World) -> None:
    """The delivery and rate checks do not get in the way of enrolment or citizens."""
    text = await world.enrol(OFFICIAL, "official", Scope("communes", ("16279",)))
    assert "/stats" in text
    await world.citizen(40, Start(), "!install")
    assert await world.staff_says(40, Text("/stats")) is None
