"""Help requests end to end, on the platforms' stand-ins (issue 11).

A citizen on one platform and volunteers on another (Telegram and Zalo Bot, both ways round)
go through the real webhook servers and the one inbound path: the request with its consent,
the notification, two claims of which the first wins, a relayed exchange both ways, a
volunteer's "gửi mã OTP cho anh" held back, a citizen's code never passed on, the close as
"installed" and the consent to count it -- then the database is dumped and must hold no
relayed word, no chat address, landmark or phone number of the request. Also: escalation to
the commune's officials after half an hour of working time and the honest message after a
day; a home visit's phone number, readable only by the helper who takes it and forgotten
after 14 days; /xoadulieu closing and emptying a claimed request; and, on PostgreSQL, many
helpers on two workers pressing "Nhận giúp" at once -- one owner.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.engine import Engine, screen_key
from bot.identity import UserRefs
from bot.model import Choice, Start, Text
from bot.officials import Scope
from handlers.conversation import Conversations
from handlers.helpdesk import HelpDesk
from handlers.inbound import Inbound
from handlers.staff import StaffDesk
from storage import helpdesk as store
from storage.database import Database
from storage.inbox import Inbox
from storage.models import Base
from storage.repository import Repository
from storage.staff import StaffRepository
from tests.conftest import T0, TEST_SECRET, rows
from tests.fakes.zalo_api import image_event
from tests.handlers.test_channel_contract import (
    Driver,
    TelegramDriver,
    ZaloBotDriver,
    ZaloOADriver,
    _driver,
)

#: A Tuesday, 8:00 in Thanh Hoa: working hours.
MORNING = T0
NONG_CONG = Scope("communes", ("16279",))
CITIZEN, VOLUNTEER, OTHER, OFFICIAL = "81001", "81002", "81003", "81004"


class Desk:
    """One deployment with two channels running, a clock the test moves."""

    def __init__(self, db: Database, engine: Engine, stack: AsyncExitStack | None = None):
        self.stack = stack
        self.db = db
        self.engine = engine
        self.now = MORNING
        self.refs = UserRefs(TEST_SECRET)
        self.staff = StaffRepository(db)
        self.conversations = Conversations(
            engine, Repository(db), self.refs, clock=self.clock,
            area_of=self.staff.volunteer_commune, own_code=self.staff.own_code,
        )  # fmt: skip
        self.desk = StaffDesk(engine.config, engine.content, db, self.staff, self.refs, self.clock)
        self.helpdesk = HelpDesk(self.conversations, db, clock=self.clock)
        self.desk.helpdesk = self.helpdesk
        self.inbound = Inbound(
            self.conversations, self.desk, inbox=Inbox(db), helpdesk=self.helpdesk,
            clock=self.clock,
        )  # fmt: skip
        self.drivers: dict[str, Driver] = {}
        self.texts = self.desk.texts

    def clock(self) -> Any:
        return self.now

    async def open(self, *names: str) -> None:
        assert self.stack is not None
        for name in names:
            self.drivers[name] = await _driver(name, self.stack, self.inbound, self.engine)
        self.helpdesk.attach({d.channel.name: d.channel for d in self.drivers.values()})

    async def says(self, platform: str, user: str, text: str) -> None:
        self.now += timedelta(seconds=10)  # people take a while (and flood limits count)
        assert await self.drivers[platform].text(user, text) == 200
        await self.inbound.drain()

    async def press(self, platform: str, user: str, label: str) -> None:
        """Choose the option whose label holds ``label``, by typing its number (what works
        on every platform)."""
        labels = shown(self.drivers[platform], user)
        number = next(n for n, shown_label in enumerate(labels, 1) if label in shown_label)
        if platform == "zalo_oa":  # a tap on the OA's button comes back as its label
            await self.says(platform, user, labels[number - 1])
            return
        await self.says(platform, user, str(number))

    def heard(self, platform: str, user: str) -> list[str]:
        return self.drivers[platform].sent(user)

    async def enrol(self, platform: str, user: str, role: str) -> None:
        code = await self.staff.create_invite(role, NONG_CONG, created_by="cli", now=self.now)
        await self.says(platform, user, f"/start {code}")

    async def ask_for_chat(self, platform: str, user: str) -> None:
        """From the human-help screen: chat now, in Dong Hoa, agreed."""
        await self.says(platform, user, "/start")
        await self.says(platform, user, "gặp cán bộ")
        await self.press(platform, user, "Nhờ người giúp")
        await self.press(platform, user, "Nhắn tin")
        await self.press(platform, user, "Đông Hòa")
        await self.press(platform, user, "Đồng ý")

    async def dump(self) -> str:
        """Every row of every table, as text."""

        def read(conn: Any) -> str:
            out = []
            for table in Base.metadata.sorted_tables:
                out += [repr(tuple(row)) for row in conn.execute(select(table))]
            return "\n".join(out)

        return str(await self.db.run(read))


async def self_report(desk: Desk, platform: str, user: str) -> None:
    """The citizen reports their install themselves: Dong Hoa, lives here, VNPT."""
    await desk.says(platform, user, "/menu")
    await desk.press(platform, user, "Tôi đã cài xong")
    await desk.press(platform, user, "Đồng ý")
    # A picker whose answer is already known (the provider just installed) or that has one
    # choice is not shown: each is pressed only where it is asked.
    for label in ("Nông Cống", "Đông Hòa", "Có, đang sống", "VNPT"):
        if any(label in shown_label for shown_label in shown(desk.drivers[platform], user)):
            await desk.press(platform, user, label)


def shown(driver: Driver, user: str) -> list[str]:
    """The labels of the options last shown to ``user``: a Telegram keyboard, or the
    numbered lines of a platform without buttons."""
    if isinstance(driver, TelegramDriver):
        calls = sorted(
            (
                c
                for c in driver.api.calls_of("sendMessage")
                if c.ok and str(c.params.get("chat_id")) == user and c.params.get("reply_markup")
            ),
            key=lambda c: c.at,
        )
        markup = calls[-1].params["reply_markup"]
        markup = json.loads(markup) if isinstance(markup, str) else markup
        return [row[0]["text"] for row in markup["inline_keyboard"]]
    if isinstance(driver, ZaloOADriver):
        for body in reversed(driver.oa.sent(user)):
            payload = body["message"].get("attachment", {}).get("payload", {})
            if payload.get("buttons"):
                return [button["title"] for button in payload["buttons"]]
        return []
    for text in reversed(driver.sent(user)):
        found = re.findall(r"^\d+\. (.+)$", text, re.M)
        if found:
            return list(found)
    return []


@pytest.fixture
async def desk(db: Database, engine: Engine) -> AsyncIterator[Desk]:
    async with AsyncExitStack() as stack:
        world = Desk(db, engine, stack)
        yield world
        await world.inbound.drain()


async def _request_id(desk: Desk) -> int:
    ((found,),) = await rows(desk.db, "SELECT id FROM help_requests")
    return int(found)


@pytest.mark.parametrize(
    ("citizen_on", "helpers_on"), [("telegram", "zalo_bot"), ("zalo_bot", "telegram")]
)
async def test_a_request_is_claimed_relayed_guarded_and_closed_across_platforms(
    desk: Desk, citizen_on: str, helpers_on: str
) -> None:
    await desk.open(citizen_on, helpers_on)
    await desk.enrol(helpers_on, VOLUNTEER, "volunteer")
    await desk.enrol(citizen_on, OTHER, "volunteer")  # a second helper, on the other side
    assert desk.texts["enrolled_address"] in desk.heard(helpers_on, VOLUNTEER)[-1]

    await desk.ask_for_chat(citizen_on, CITIZEN)
    rid = await _request_id(desk)
    notice = desk.heard(helpers_on, VOLUNTEER)[-1]
    assert f"#{rid}" in notice
    assert "Thôn Đông Hòa (mẫu)" in notice
    assert CITIZEN not in notice, "the notice names nobody"
    assert f"#{rid}" in desk.heard(citizen_on, OTHER)[-1], "every volunteer of the commune"

    # Two claims: the first wins, the second is told it is taken.
    await desk.says(helpers_on, VOLUNTEER, f"/nhan {rid}")
    await desk.says(citizen_on, OTHER, f"/nhan {rid}")
    assert desk.texts["help_taken"].format(id=rid) in desk.heard(citizen_on, OTHER)[-1]
    assert "đã nhận giúp bạn" in desk.heard(citizen_on, CITIZEN)[-1]
    ((owner,),) = await rows(desk.db, "SELECT volunteer_channel FROM help_requests")
    assert owner == helpers_on

    # Relayed both ways, each side named by role only.
    await desk.says(citizen_on, CITIZEN, "Cháu ơi bác chụp mặt trước mãi không được")
    relayed = desk.heard(helpers_on, VOLUNTEER)[-1]
    assert "bác chụp mặt trước mãi không được" in relayed
    assert relayed.startswith("👤 Người dân (Thôn Đông Hòa (mẫu)")
    sealed = await desk.dump()
    assert "mãi không được" not in sealed, "in transit, a relayed message is sealed"
    await desk.says(helpers_on, VOLUNTEER, "Bác đặt thẻ lên nền tối rồi chụp lại nhé")
    answer = desk.heard(citizen_on, CITIZEN)[-1]
    assert answer.startswith("🙋 Tình nguyện viên hỗ trợ Thôn Đông Hòa (mẫu):")
    assert "nền tối" in answer

    # A helper asking for the code: not delivered, and told why.
    before = len(desk.heard(citizen_on, CITIZEN))
    await desk.says(helpers_on, VOLUNTEER, "gửi mã OTP cho anh")
    assert len(desk.heard(citizen_on, CITIZEN)) == before
    assert "KHÔNG được chuyển" in desk.heard(helpers_on, VOLUNTEER)[-1]
    # A citizen's code: warned, never passed on.
    told = len(desk.heard(helpers_on, VOLUNTEER))
    await desk.says(citizen_on, CITIZEN, "482913")
    assert len(desk.heard(helpers_on, VOLUNTEER)) == told
    assert "mã OTP" in " ".join(desk.heard(citizen_on, CITIZEN)[before:])

    # The helper closes as installed; the citizen agrees to count it.
    await desk.says(helpers_on, VOLUNTEER, f"/xong {rid} cai")
    assert "Chúc mừng" in " ".join(desk.heard(citizen_on, CITIZEN)[-2:])
    await desk.press(citizen_on, CITIZEN, "Đồng ý")
    assisted = await rows(desk.db, "SELECT request_id, village FROM assisted")
    assert assisted == [(rid, "dong-hoa")]

    # Counted once: as helped -- and, once the citizen also reports it, as their own only.
    report = (await desk.desk.report(NONG_CONG)).to_json()
    assert (report["completed_self"], report["completed_assisted"]) == (0, 1)
    await self_report(desk, citizen_on, CITIZEN)
    report = (await desk.desk.report(NONG_CONG)).to_json()
    assert (report["completed_self"], report["completed_assisted"]) == (1, 0)

    # After close: what the helper types is theirs again (a staff command, not relayed).
    await desk.says(helpers_on, VOLUNTEER, "còn ai cần giúp không")
    assert not any("còn ai" in text for text in desk.heard(citizen_on, CITIZEN))

    # The figures: /stats, and the command line's list (nothing personal).
    stats = await desk.helpdesk.stats(NONG_CONG)
    assert stats.startswith("Yêu cầu người giúp: 1 (đang chờ 0, đang giúp 0).")
    assert "Đã giúp cài xong: 1 (100%)" in stats
    (listed,) = await desk.helpdesk.requests(Scope("all"))
    assert listed == {
        "id": rid, "commune": "16279", "village": "dong-hoa", "kind": "chat",
        "status": "closed", "waited_s": 10,
    }  # fmt: skip

    # The dump after close: no relayed word, nothing sealed left of the request.
    dump = await desk.dump()
    for words in ("mãi không được", "nền tối", "gửi mã OTP", "482913"):
        assert words not in dump
    assert await rows(desk.db, "SELECT count(*) FROM help_messages") == [(0,)]
    assert await rows(
        desk.db, "SELECT address, landmark, phone, status, outcome FROM help_requests"
    ) == [(None, None, None, "closed", "installed")]


async def test_unclaimed_it_goes_to_the_officials_then_the_citizen_is_told(desk: Desk) -> None:
    await desk.open("telegram")
    await desk.enrol("telegram", OFFICIAL, "official")
    await desk.ask_for_chat("telegram", CITIZEN)
    rid = await _request_id(desk)
    official = len(desk.heard("telegram", OFFICIAL))
    desk.now += timedelta(minutes=20)
    await desk.helpdesk.sweep_once()
    assert len(desk.heard("telegram", OFFICIAL)) == official, "not yet: 30 minutes"
    desk.now += timedelta(minutes=11)
    await desk.helpdesk.sweep_once()
    escalated = desk.heard("telegram", OFFICIAL)[-1]
    assert escalated.startswith(f"⏰ Yêu cầu #{rid} đã chờ")
    # /hotro lists it, with its waiting time.
    await desk.says("telegram", OFFICIAL, "/hotro")
    assert f"#{rid}: Thôn Đông Hòa (mẫu)" in desk.heard("telegram", OFFICIAL)[-1]

    await desk.says("telegram", OFFICIAL, "/stats")
    assert (
        "Yêu cầu người giúp: 1 (đang chờ 1, đang giúp 0)" in desk.heard("telegram", OFFICIAL)[-1]
    )

    desk.now += timedelta(hours=24)
    await desk.helpdesk.sweep_once()
    honest = desk.heard("telegram", CITIZEN)[-1]
    assert honest.startswith("Xin lỗi bạn: đã một ngày mà chưa có ai nhận giúp.")
    assert "UBND xã Nông Cống" in honest, "given the support point"
    assert await rows(desk.db, "SELECT status, address FROM help_requests") == [("expired", None)]


async def test_escalation_waits_for_working_hours(desk: Desk) -> None:
    await desk.open("telegram")
    await desk.enrol("telegram", OFFICIAL, "official")
    desk.now = MORNING + timedelta(hours=11, minutes=50)  # 18:50 local: after hours
    await desk.ask_for_chat("telegram", CITIZEN)
    official = len(desk.heard("telegram", OFFICIAL))
    desk.now += timedelta(hours=2)
    await desk.helpdesk.sweep_once()
    assert len(desk.heard("telegram", OFFICIAL)) == official, "nobody is at work at night"
    desk.now = MORNING + timedelta(days=1, minutes=31)  # next morning, 8:31: 61 min open
    await desk.helpdesk.sweep_once()
    assert desk.heard("telegram", OFFICIAL)[-1].startswith("⏰")


async def test_a_home_visit_phone_is_sealed_shown_to_the_helper_and_forgotten(
    desk: Desk,
) -> None:
    await desk.open("telegram", "zalo_bot")
    await desk.enrol("zalo_bot", VOLUNTEER, "volunteer")
    await desk.says("telegram", CITIZEN, "/start")
    await desk.says("telegram", CITIZEN, "gặp cán bộ")
    await desk.press("telegram", CITIZEN, "Nhờ người giúp")
    await desk.press("telegram", CITIZEN, "đến nhà")
    await desk.press("telegram", CITIZEN, "Tây Sơn")
    await desk.press("telegram", CITIZEN, "Ngày mai")
    await desk.press("telegram", CITIZEN, "chiều")
    await desk.press("telegram", CITIZEN, "Đồng ý")
    assert await rows(desk.db, "SELECT status FROM help_requests") == [("draft",)]
    await desk.says("telegram", CITIZEN, "gần nhà văn hóa thôn")
    await desk.says("telegram", CITIZEN, "0912 345 678")
    rid = await _request_id(desk)
    dump = await desk.dump()
    assert "0912345678" not in dump, "sealed, never in the clear"
    assert "345 678" not in dump
    assert "nhà văn hóa" not in dump
    notice = desk.heard("zalo_bot", VOLUNTEER)[-1]
    assert "0912345678" not in notice, "volunteers told of it do not see the number"
    assert "buổi chiều ngày mai" in notice

    await desk.says("zalo_bot", VOLUNTEER, f"/nhan {rid}")
    claimed = " ".join(desk.heard("zalo_bot", VOLUNTEER)[-2:])
    assert "0912345678" in claimed, "the helper who takes it sees it"
    assert "gần nhà văn hóa thôn" in claimed

    desk.now += timedelta(days=15)
    await desk.helpdesk.sweep_once()
    assert await rows(desk.db, "SELECT status, landmark, phone FROM help_requests") == [
        ("claimed", None, None)
    ], "14 days at most, even while it is still open"


async def test_deleting_my_data_closes_and_empties_my_request(desk: Desk) -> None:
    await desk.open("telegram", "zalo_bot")
    await desk.enrol("zalo_bot", VOLUNTEER, "volunteer")
    await desk.ask_for_chat("telegram", CITIZEN)
    rid = await _request_id(desk)
    await desk.says("zalo_bot", VOLUNTEER, f"/nhan {rid}")
    await desk.says("telegram", CITIZEN, "bác đang ở bước chụp ảnh")
    await desk.says("telegram", CITIZEN, "/xoadulieu")
    await desk.press("telegram", CITIZEN, "Xóa")
    found = await rows(desk.db, "SELECT status, outcome, address, user_ref FROM help_requests")
    assert found == [("closed", "erased", None, found[0][3])]
    assert found[0][3] != desk.refs.ref("telegram", int(CITIZEN)), "linked to nobody"
    # The helper is told at once, in one line -- not only at their next message.
    await desk.helpdesk.drain()
    assert desk.heard("zalo_bot", VOLUNTEER)[-1] == desk.texts["help_erased_by_citizen"].format(
        id=rid
    )
    assert await rows(desk.db, "SELECT count(*) FROM help_messages") == [(0,)]
    # What they type next is theirs again: a staff command, relayed to nobody.
    told = len(desk.heard("telegram", CITIZEN))
    await desk.says("zalo_bot", VOLUNTEER, "bác còn đó không ạ")
    assert len(desk.heard("telegram", CITIZEN)) == told
    assert "bác còn đó" not in await desk.dump()


async def test_the_citizen_ending_the_chat_tells_the_helper_at_once(desk: Desk) -> None:
    await desk.open("telegram", "zalo_bot")
    await desk.enrol("zalo_bot", VOLUNTEER, "volunteer")
    await desk.ask_for_chat("telegram", CITIZEN)
    rid = await _request_id(desk)
    await desk.says("zalo_bot", VOLUNTEER, f"/nhan {rid}")
    await desk.says("telegram", CITIZEN, "kết thúc")
    await desk.press("telegram", CITIZEN, "Chưa xong")
    ended = desk.heard("zalo_bot", VOLUNTEER)[-1]
    assert ended.startswith(f"Người dân đã kết thúc trò chuyện (yêu cầu #{rid})")
    assert await rows(desk.db, "SELECT status, outcome FROM help_requests") == [
        ("closed", "not_yet")
    ]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_many_helpers_on_two_workers_one_owner(
    database_url: str, db: Database, engine: Engine
) -> None:
    """Twenty helpers press "Nhận giúp" at once, through two workers (two engines and
    pools on one PostgreSQL database): exactly one claim wins, and the citizen hears once."""
    first = Desk(db, engine)
    second_db = Database(database_url)
    try:
        second = Desk(second_db, engine)
        for n in range(20):
            code = await first.staff.create_invite(
                "volunteer", NONG_CONG, created_by="cli", now=first.now
            )
            reply = await first.desk.handle("telegram", 9000 + n, Start(code))
            assert reply is not None
        await first.conversations.handle("telegram", 1, Start(None))
        await first.conversations.handle("telegram", 1, Text("gặp cán bộ"))
        for choice in ("help", "chat", "i:dong-hoa", "send"):
            stored = await first.conversations.repo.load("telegram", first.refs.ref("telegram", 1))
            assert stored is not None
            choose = Choice(choice, screen_key(stored.state))
            await first.conversations.handle("telegram", 1, choose)
        rid = await _request_id(first)

        async def claim(n: int) -> tuple[Any, ...]:
            worker = first if n % 2 else second
            ref = worker.refs.ref("telegram", 9000 + n)
            return await worker.helpdesk.claim("telegram", ref, NONG_CONG, str(rid))

        answers = await asyncio.gather(*(claim(n) for n in range(20)))
        won = [a for a in answers if a and a[0].text.startswith("✅ Bạn đã nhận yêu cầu")]
        taken = first.texts["help_taken"].format(id=rid)
        assert len(won) == 1
        assert sum(1 for a in answers if a and a[0].text == taken) == 19
        told = await rows(db, "SELECT count(*) FROM help_messages")
        assert told[0][0] <= 1, "the citizen is told of one claim (sent, or still pending)"
    finally:
        await second_db.dispose()


async def test_the_citizen_reports_the_helper_or_cancels(desk: Desk) -> None:
    await desk.open("telegram", "zalo_bot")
    await desk.enrol("zalo_bot", VOLUNTEER, "volunteer")
    await desk.enrol("telegram", OFFICIAL, "official")
    await desk.ask_for_chat("telegram", CITIZEN)
    rid = await _request_id(desk)
    await desk.says("zalo_bot", VOLUNTEER, f"/nhan {rid}")
    await desk.press("telegram", CITIZEN, "Báo cáo người này")
    await desk.press("telegram", CITIZEN, "Báo cáo và dừng")
    assert "báo cán bộ xã" in desk.heard("telegram", CITIZEN)[-1]
    reported = desk.heard("telegram", OFFICIAL)[-1]
    assert reported.startswith(f"⚠️ Người dân báo cáo người giúp của yêu cầu #{rid}")
    assert desk.heard("zalo_bot", VOLUNTEER)[-1] == desk.texts["help_ended_by_report"].format(
        id=rid
    )
    assert await rows(desk.db, "SELECT status, outcome, reported FROM help_requests") == [
        ("closed", "reported", True)
    ]
    # Asking again, then cancelling before anyone takes it: nobody is told any more.
    await desk.press("telegram", CITIZEN, "Nhờ người giúp lần nữa")
    await desk.press("telegram", CITIZEN, "Nhắn tin")
    await desk.press("telegram", CITIZEN, "Đồng ý")
    await desk.press("telegram", CITIZEN, "Xem, hủy")
    await desk.press("telegram", CITIZEN, "Hủy yêu cầu")
    assert desk.heard("telegram", CITIZEN)[-1].startswith("Đã hủy yêu cầu.")
    statuses = await rows(desk.db, "SELECT status, address FROM help_requests ORDER BY id")
    assert statuses == [("closed", None), ("cancelled", None)]
    told = len(desk.heard("zalo_bot", VOLUNTEER))
    desk.now += timedelta(hours=1)
    await desk.helpdesk.sweep_once()
    assert len(desk.heard("zalo_bot", VOLUNTEER)) == told


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_new_helper_takes_two_requests_at_once(db: Database, engine: Engine) -> None:
    """A helper with no conversation yet taking two requests at the same moment: both
    transactions find no session to lock and both create one; the second must decide again
    on the first's, not fail (it raised "a locked step ended in CONFLICT")."""
    world = Desk(db, engine)
    code = await world.staff.create_invite("volunteer", NONG_CONG, created_by="cli", now=world.now)
    assert await world.desk.handle("telegram", 7000, Start(code)) is not None
    refs = world.refs

    def seed(conn: Any) -> None:
        for user in (1, 2):
            ref = refs.ref("telegram", user)
            data = {"kind": "chat", "commune": "16279", "village": "dong-hoa"}
            sealed = refs.seal("telegram", ref, str(user))
            store.create(conn, "telegram", ref, data, sealed, {}, world.now)

    await db.run(seed)
    ids = [int(r[0]) for r in await rows(db, "SELECT id FROM help_requests ORDER BY id")]
    helper = refs.ref("telegram", 7000)
    answers = await asyncio.gather(
        *(world.helpdesk.claim("telegram", helper, NONG_CONG, str(rid)) for rid in ids)
    )
    assert all(a[0].text.startswith("✅ Bạn đã nhận yêu cầu") for a in answers)
    assert await rows(db, "SELECT status FROM help_requests") == [("claimed",), ("claimed",)]


async def test_a_volunteer_sends_a_picture_a_citizen_never_does(desk: Desk) -> None:
    """A volunteer on Zalo Bot sends a screenshot (with a caption) to a citizen on Telegram:
    passed on by Zalo's address of it, the caption checked like any message; nothing of it
    stays in the store. The citizen's photo goes nowhere (the usual warning), and a helper's
    picture that asks for the card through its caption is held back."""
    await desk.open("telegram", "zalo_bot")
    await desk.enrol("zalo_bot", VOLUNTEER, "volunteer")
    await desk.ask_for_chat("telegram", CITIZEN)
    rid = await _request_id(desk)
    await desk.says("zalo_bot", VOLUNTEER, f"/nhan {rid}")
    zalo = desk.drivers["zalo_bot"]
    assert isinstance(zalo, ZaloBotDriver)
    telegram = desk.drivers["telegram"]
    assert isinstance(telegram, TelegramDriver)

    screenshot = "https://photo-stal.zadn.vn/test/man-hinh-dung.jpg"
    event = image_event(VOLUNTEER, photo_url=screenshot, caption="Bác bấm nút xanh này nhé")
    assert await zalo._event(event) == 200
    await desk.inbound.drain()
    (sent,) = [c for c in telegram.api.calls_of("sendPhoto") if c.ok]
    assert sent.params["photo"] == screenshot
    assert str(sent.params["chat_id"]) == CITIZEN
    caption = str(sent.params["caption"])
    assert caption.startswith("🙋 Tình nguyện viên hỗ trợ Thôn Đông Hòa (mẫu):")
    assert "nút xanh" in caption
    assert screenshot not in await desk.dump(), "sent and gone: no trace of it is kept"
    assert await rows(desk.db, "SELECT count(*) FROM help_messages") == [(0,)]

    # A caption asking for the card: the picture is held back like such a message.
    event = image_event(VOLUNTEER, caption="bác chụp mặt trước căn cước gửi cháu")
    assert await zalo._event(event) == 200
    await desk.inbound.drain()
    assert len([c for c in telegram.api.calls_of("sendPhoto") if c.ok]) == 1
    assert "KHÔNG được chuyển" in desk.heard("zalo_bot", VOLUNTEER)[-1]

    # The citizen's photo: deleted, warned about, never passed on.
    told = len(desk.heard("zalo_bot", VOLUNTEER))
    assert await telegram.photo(CITIZEN) == 200
    await desk.inbound.drain()
    assert len(desk.heard("zalo_bot", VOLUNTEER)) == told
    assert not any(c.params.get("photo") for c in zalo.api.calls_of("sendPhoto"))
    assert telegram.deleted(CITIZEN)


async def test_a_telegram_picture_cannot_reach_a_citizen_on_zalo(desk: Desk) -> None:
    """Telegram's file addresses hold the bot's token: a helper's Telegram picture is never
    handed to Zalo; the helper is told to say it in words."""
    await desk.open("zalo_bot", "telegram")
    await desk.enrol("telegram", VOLUNTEER, "volunteer")
    await desk.ask_for_chat("zalo_bot", CITIZEN)
    rid = await _request_id(desk)
    await desk.says("telegram", VOLUNTEER, f"/nhan {rid}")
    heard = len(desk.heard("zalo_bot", CITIZEN))
    assert await desk.drivers["telegram"].photo(VOLUNTEER) == 200
    await desk.inbound.drain()
    assert len(desk.heard("zalo_bot", CITIZEN)) == heard
    assert desk.heard("telegram", VOLUNTEER)[-1] == desk.texts["relay_no_picture"]


@pytest.mark.parametrize(
    ("citizen_on", "helper_on"), [("zalo_oa", "zalo_bot"), ("telegram", "zalo_oa")]
)
async def test_outside_zalo_oas_window_messages_wait_and_the_other_side_is_told(
    desk: Desk, citizen_on: str, helper_on: str
) -> None:
    """Zalo OA takes nothing for someone who has not written for 7 days (-230): the chat
    goes on, what is said to them waits, the other side is told once what happens -- and it
    all arrives, in order, when they write again."""
    await desk.open(citizen_on, helper_on)
    await desk.enrol(helper_on, VOLUNTEER, "volunteer")
    await desk.ask_for_chat(citizen_on, CITIZEN)
    rid = await _request_id(desk)
    await desk.says(helper_on, VOLUNTEER, f"/nhan {rid}")
    oa = desk.drivers["zalo_oa"]
    assert isinstance(oa, ZaloOADriver)
    quiet, speaker, speaker_on = (
        (CITIZEN, VOLUNTEER, helper_on)
        if citizen_on == "zalo_oa"
        else (VOLUNTEER, CITIZEN, citizen_on)
    )
    oa.oa.outside_window(quiet)
    before = len(desk.heard(speaker_on, speaker))
    await desk.says(speaker_on, speaker, "Bác mở ứng dụng ra nhé")
    await desk.says(speaker_on, speaker, "Rồi bấm nút Đăng nhập")
    told = desk.heard(speaker_on, speaker)[before:]
    expected = (
        desk.texts["relay_held_citizen"].format(id=rid)
        if quiet == CITIZEN
        else desk.engine.content.templates["relay_held_helper"]
    )
    assert told == [expected], "told once, honestly"
    assert await rows(desk.db, "SELECT status FROM help_requests") == [("claimed",)]
    assert await rows(desk.db, "SELECT status, count(*) FROM help_messages GROUP BY status") == [
        ("held", 2)
    ]
    assert "Đăng nhập" not in await desk.dump(), "held sealed"

    oa.oa.inside_window(quiet)
    heard = len(desk.heard("zalo_oa", quiet))
    await desk.says("zalo_oa", quiet, "tôi đây")
    arrived = desk.heard("zalo_oa", quiet)[heard:]
    assert len(arrived) == 2
    assert "ứng dụng ra" in arrived[0], "in order"
    assert "Đăng nhập" in arrived[1]
    assert "tôi đây" in desk.heard(speaker_on, speaker)[-1]
    assert await rows(desk.db, "SELECT count(*) FROM help_messages") == [(0,)]
