"""Officials and volunteers: invites, scopes, figures checked against hand-counted data.

A three-commune deployment (two in Thanh Hoa, one in Ha Noi) is filled through the real
conversation engine -- citizens report completions, a volunteer's link brings people in,
the volunteer records people they helped -- and every figure is compared with what was done.
"""

from __future__ import annotations

import io
import json
import subprocess
import tomllib
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from PIL import Image

from bot.config import Config, parse_config
from bot.content import Content
from bot.engine import Engine, screen_key
from bot.identity import UserRefs
from bot.model import Choice, Input, OutMessage, Start, Text
from bot.officials import Scope
from bot.stats import Formatter
from bot.understanding import Understanding
from handlers import zalo_bot
from handlers.conversation import Conversations
from handlers.helpdesk import HelpDesk
from handlers.outbox import OutboxWorker
from handlers.staff import SCREEN, StaffDesk, StaffReply
from storage.database import Database
from storage.outbox import OutboxStore
from storage.repository import Repository
from storage.staff import FAILED_INVITES_PER_HOUR, StaffRepository
from tests.bot.test_links import FOREIGN
from tests.bot.test_printing import page_text, qr_codes, render
from tests.cli import run_bot
from tests.conftest import ROOT, T0, TEST_SECRET, rows
from tests.handlers.harness import USER, Harness, buttons

NOW = T0 + timedelta(days=30)


def three_communes() -> Config:
    raw = tomllib.loads((ROOT / "config.toml").read_text(encoding="utf-8"))
    nong_cong = raw["communes"][0]
    hac_thanh = {
        "code": 14797,
        "target": 0.4,
        "support": nong_cong["support"],
        "villages": [
            {"id": "kp-a", "name": "Khu A", "adults": 100, "adults_present": 80, "households": 40},
            {"id": "kp-b", "name": "Khu B", "adults": 10, "adults_present": 0, "households": 5},
        ],
    }
    hoan_kiem = {**hac_thanh, "code": 70, "villages": hac_thanh["villages"][:1]}
    raw["communes"] = [nong_cong, hac_thanh, hoan_kiem]
    return parse_config(raw)


class World:
    """The deployment, its database, and people acting in it."""

    def __init__(self, db: Database, content: Content, understanding: Understanding | None = None):
        self.config = three_communes()
        # The session's understanding, trained once (a new one trains again at the first
        # message it cannot match exactly: 3-9 s of a core).
        self.engine = Engine(content, self.config, understanding)
        self.db = db
        self.refs = UserRefs(TEST_SECRET)
        self.staff = StaffRepository(db)
        self.now = NOW
        self.repo = Repository(db)
        self.conversations = Conversations(
            self.engine, self.repo, self.refs, clock=lambda: self.now,
            area_of=self.staff.volunteer_commune, own_code=self.staff.own_code,
        )  # fmt: skip
        self.desk = StaffDesk(
            self.config, content, db, self.staff, self.refs, clock=lambda: self.now
        )
        self.helpdesk = HelpDesk(self.conversations, db, clock=lambda: self.now)
        self.desk.helpdesk = self.helpdesk

    async def citizen(self, user: int, *inputs: Input | str) -> None:
        """A citizen's inputs ("!option" presses a button of the current screen)."""
        for item in inputs:
            event: Input
            if isinstance(item, str) and item.startswith("!"):
                stored = await self.repo.load("telegram", self.refs.ref("telegram", user))
                assert stored is not None
                event = Choice(item[1:], screen_key(stored.state))
            elif isinstance(item, str):
                event = Text(item)
            else:
                event = item
            await self.conversations.handle("telegram", user, event)

    async def report(
        self, user: int, commune: str, village: str, provider: str, **kw: Any
    ) -> None:
        start: Input = Start(kw.get("via"))
        self.now = kw.get("at", self.now)
        await self.citizen(user, start, "!done", "!yes", commune, village, "!yes", provider)

    async def staff_says(self, user: int, event: Input) -> StaffReply | None:
        return await self.desk.handle("telegram", user, event)

    async def enrol(self, user: int, role: str, scope: Scope) -> str:
        code = await self.staff.create_invite(role, scope, created_by="cli", now=self.now)
        reply = await self.staff_says(user, Start(code))
        assert reply is not None
        return reply.messages[0].text


@pytest.fixture
def world(db: Database, engine: Engine) -> World:
    return World(db, engine.content, engine.understanding)


async def test_invite_enrols_once_and_expires(world: World) -> None:
    code = await world.staff.create_invite("official", Scope("all"), created_by="cli", now=NOW)
    assert code.startswith("inv_")
    assert len(code) >= 24
    first = await world.staff_says(1, Start(code))
    assert first is not None
    assert "/stats" in first.messages[0].text
    again = await world.staff_says(2, Start(code))
    assert again is not None
    assert again.messages[0].text == world.desk.texts["invite_invalid"]
    old = await world.staff.create_invite("official", Scope("all"), created_by="cli", now=NOW)
    world.now = NOW + timedelta(days=4)
    late = await world.staff_says(3, Start(old))
    assert late is not None
    assert late.messages[0].text == world.desk.texts["invite_invalid"]
    stored = repr(await rows(world.db, "SELECT * FROM invites"))
    assert code not in stored, "only hashes are kept"
    assert old not in stored


async def test_guessing_invite_codes_is_cut_off(world: World) -> None:
    for n in range(FAILED_INVITES_PER_HOUR):
        await world.staff_says(7, Start(f"inv_guess{n}"))
    good = await world.staff.create_invite("official", Scope("all"), created_by="cli", now=NOW)
    reply = await world.staff_says(7, Start(good))
    assert reply is not None
    assert reply.messages[0].text == world.desk.texts["invite_invalid"]
    assert await world.staff.get("telegram", world.refs.ref("telegram", 7)) is None
    audit = await rows(world.db, "SELECT action FROM audit")
    assert [a[0] for a in audit].count("invite_failed") == FAILED_INVITES_PER_HOUR


async def test_nobody_else_sees_a_figure(world: World) -> None:
    await world.report(20, "nong cong", "dong hoa", "vnpt")
    assert await world.staff_says(9, Text("/stats")) is None, "not staff: not a staff command"
    outcome = await world.conversations.handle("telegram", 9, Text("/stats"))
    texts = " ".join(m.text for m in outcome.messages)
    assert world.engine.content.texts["unknown_command"] in texts
    await world.enrol(10, "volunteer", Scope("communes", ("16279",)))
    assert await world.staff_says(10, Text("/stats")) is None, "volunteers get no /stats"
    assert await world.staff_says(10, Text("/export")) is None


async def test_figures_match_what_happened(world: World) -> None:
    await world.enrol(1, "official", Scope("province", ("38",)))
    await world.enrol(2, "volunteer", Scope("communes", ("16279",)))
    volunteer = await world.staff.get("telegram", world.refs.ref("telegram", 2))
    assert volunteer is not None
    assert volunteer.code
    # Nong Cong: 3 self-reports (one via the volunteer's link), 1 assisted.
    await world.report(101, "nong cong", "dong hoa", "vnpt", at=NOW - timedelta(days=10))
    await world.report(102, "nong cong", "dong hoa", "viettel", via=volunteer.code, at=NOW)
    await world.report(103, "nong cong", "tay son", "vnpt", at=NOW)
    await world.citizen(104, Start(volunteer.code), "!install")  # came via link, not finished
    dagiup = await world.staff_says(2, Text("/dagiup"))
    assert dagiup is not None
    (village,) = [o.id for o in dagiup.messages[-1].options if o.id.endswith(":kp-1")]
    providers = await world.staff_says(2, Choice(village, SCREEN))
    assert providers is not None
    (misa,) = [o.id for o in providers.messages[-1].options if o.id.endswith(":misa")]
    done = await world.staff_says(2, Choice(misa, SCREEN))
    assert done is not None
    assert "Khu phố 1" in done.messages[0].text
    # Hac Thanh: 1 self-report; Hoan Kiem (Ha Noi, out of scope): 1.
    await world.report(105, "hac thanh", "khu a", "misa", at=NOW)
    await world.report(106, "hoan kiem", "khu a", "misa", at=NOW)

    report = (await world.desk.report(Scope("province", ("38",)))).to_json()
    assert report["completed"] == 5
    assert (report["completed_self"], report["completed_assisted"]) == (4, 1)
    assert report["adults_present"] == 3676 + 80
    assert report["coverage"] == round(5 / 3756, 4)
    assert report["target_people"] == 1838 + 32  # ceil(0.5 * 3676) + ceil(0.4 * 80)
    assert report["gap"] == 1870 - 5
    villages = {v["village"]: v for v in report["by_village"]}
    assert villages["dong-hoa"]["completed"] == 2
    assert villages["kp-1"]["completed"] == 1
    assert villages["kp-a"]["completed"] == 1
    assert villages["kp-b"]["coverage"] is None, "no adults present: no division by zero"
    assert report["by_village"][0]["coverage"] == 0.0, "lowest coverage first"
    assert report["by_provider"] == {"vnpt": 2, "misa": 2, "viettel": 1}
    assert report["by_volunteer"] == [
        {"volunteer": volunteer.code, "started": 2, "finished": 1, "helped": 1}
    ]
    # Pace: 4 completions in the last 7 days (the one 10 days ago does not count): too few
    # to project a date from.
    assert report["pace_per_day"] == round(4 / 7, 2)
    assert report["target_date"] is None
    assert report["target_date_withheld"] == "too_few"
    funnel = {f["step"]: f["reached"] for f in report["funnel"]}
    assert funnel["started"] == 5  # 101, 102, 103, 104, 105 (106 is in Ha Noi)
    assert funnel["ready"] == 1
    assert funnel["completed"] == 4


async def test_wide_scope_lists_communes_and_single_commune_lists_villages(world: World) -> None:
    await world.report(101, "nong cong", "dong hoa", "vnpt")
    province = await world.desk.report(Scope("province", ("38",)))
    assert [a.code for a in province.communes] == ["14797", "16279"], "lowest coverage first"
    text = world.desk.texts
    from bot.stats import render

    wide = render(province, world.config, world.engine.content, text)
    assert text["by_commune"] in wide
    one = render(
        await world.desk.report(Scope("communes", ("16279",))),
        world.config,
        world.engine.content,
        text,
    )
    assert text["by_village"] in one
    assert "1/3.676" in one


async def test_zero_data_report(world: World) -> None:
    report = (await world.desk.report(Scope("communes", ("70",)))).to_json()
    assert report["completed"] == 0
    assert report["coverage"] == 0.0
    assert report["pace_per_day"] == 0
    assert report["target_date"] is None
    assert all(f["reached"] == 0 for f in report["funnel"])


async def test_export_opens_in_a_spreadsheet_with_vietnamese_intact(world: World) -> None:
    await world.enrol(1, "official", Scope("communes", ("16279",)))
    await world.report(101, "nong cong", "dong hoa", "vnpt")
    reply = await world.staff_says(1, Text("/export"))
    assert reply is not None
    (attachment,) = reply.attachments
    assert attachment.kind == "document"
    assert attachment.filename.endswith(".xlsx")
    book = load_workbook(io.BytesIO(attachment.data))
    villages = list(book["Theo thôn"].iter_rows(values_only=True))
    dong_hoa = next(r for r in villages if r[2] == "dong-hoa")
    assert dong_hoa == (16279, "Xã Nông Cống", "dong-hoa", "Thôn Đông Hòa (mẫu)",
                        980, 850, 430, 0.5, 425, 1, round(1 / 850, 4))  # fmt: skip
    days = list(book["Theo ngày"].iter_rows(values_only=True))
    assert days[0] == ("Mã xã", "Xã", "Mã thôn", "Thôn", "Ngày", "Nhà cung cấp", "Nguồn",
                       "Số người")  # fmt: skip
    assert days[1][1:] == ("Xã Nông Cống", "dong-hoa", "Thôn Đông Hòa (mẫu)",
                           datetime(2026, 12, 24), "VNPT SmartCA", "Tự báo", 1)  # fmt: skip


async def test_chart_renders(world: World) -> None:
    await world.enrol(1, "official", Scope("communes", ("16279",)))
    await world.report(101, "nong cong", "dong hoa", "vnpt")
    reply = await world.staff_says(1, Text("/chart"))  # warnings (e.g. missing glyphs) fail
    assert reply is not None
    (attachment,) = reply.attachments
    assert attachment.kind == "photo"
    assert attachment.data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(attachment.data) > 10_000


async def test_volunteer_link_qr_and_own_figures(world: World) -> None:
    await world.enrol(2, "volunteer", Scope("communes", ("16279",)))
    reply = await world.staff_says(2, Text("/link"))
    assert reply is not None
    code = (await world.staff.get("telegram", world.refs.ref("telegram", 2))).code  # type: ignore[union-attr]
    link = f"https://t.me/{world.config.bot_username}?start={code}"
    assert link in reply.messages[0].text
    qr, poster = reply.attachments
    assert qr.data.startswith(b"\x89PNG")
    # The A4 poster for the village board, its QR code the volunteer's own link.
    assert poster.kind == "document"
    assert poster.filename.endswith(".pdf")
    assert qr_codes(render(poster.data)) == [link]
    assert "Xã Nông Cống" in page_text(poster.data)
    await world.report(101, "nong cong", "dong hoa", "vnpt", via=code)
    await world.report(102, "nong cong", "dong hoa", "vnpt", via="v_someoneelse")
    mine = await world.staff_says(2, Text("/mystats"))
    assert mine is not None
    assert mine.messages[0].text == world.desk.texts["mystats"].format(
        code=code, started="1", finished="1", helped="0"
    )


async def test_with_a_public_web_address_the_volunteers_qr_code_opens_the_web_chat(
    world: World,
) -> None:
    """config.toml's deployment.web_url: a citizen with only Zalo scans the volunteer's code
    and lands in the web chat (which opens in Zalo's own browser), their code in the link."""
    world.desk.config = replace(world.config, web_url="https://chukyso.example.vn")
    await world.enrol(2, "volunteer", Scope("communes", ("16279",)))
    code = (await world.staff.get("telegram", world.refs.ref("telegram", 2))).code  # type: ignore[union-attr]
    reply = await world.staff_says(2, Text("/link"))
    assert reply is not None
    link = f"https://chukyso.example.vn/chat?ref={code}"
    assert link in reply.messages[0].text
    assert "quét mã QR bằng Zalo" in reply.messages[0].text
    qr, poster = reply.attachments
    assert qr_codes(Image.open(io.BytesIO(qr.data))) == [link], "the QR code sent to them"
    assert qr_codes(render(poster.data)) == [link], "and their poster's"
    assert "t.me" not in page_text(poster.data)


async def test_first_touch_attribution_counts_for_the_volunteers_commune(world: World) -> None:
    await world.enrol(2, "volunteer", Scope("communes", ("14797",)))
    code = (await world.staff.get("telegram", world.refs.ref("telegram", 2))).code  # type: ignore[union-attr]
    await world.citizen(300, Start(code), "!install", Start("v_other"))
    report = (await world.desk.report(Scope("communes", ("14797",)))).to_json()
    assert {f["step"]: f["reached"] for f in report["funnel"]}["ready"] == 1
    elsewhere = (await world.desk.report(Scope("communes", ("16279",)))).to_json()
    assert {f["step"]: f["reached"] for f in elsewhere["funnel"]}["ready"] == 0


async def test_official_actions_are_audited(world: World) -> None:
    await world.enrol(1, "official", Scope("communes", ("16279",)))
    await world.staff_says(1, Text("/stats"))
    invite = await world.staff_says(1, Text("/moi_tnv"))
    assert invite is not None
    assert "start=inv_" in invite.messages[0].text
    actions = [r[0] for r in await rows(world.db, "SELECT action FROM audit ORDER BY id")]
    assert actions == ["enrolled", "stats", "moi_tnv"]


def test_vietnamese_number_formats(content: Content) -> None:
    f = Formatter("vi", {"no_value": "—"})
    assert f.n(1608) == "1.608"
    assert f.pct(0.437) == "43,7 %"
    assert f.pct(None) == "—"
    assert f.day(datetime(2026, 11, 24).date()) == "24/11/2026"


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "BOT_ID_SECRET": TEST_SECRET.decode(),
    }
    return run_bot(args, env={**_env(), **env})


def test_cli_invite_needs_a_scope_and_says_scope_and_expiry(tmp_path: Path) -> None:
    implied = _cli(tmp_path, "invite", "official")
    assert implied.returncode == 2, "no scope: no invite for everything by default"
    assert "--commune --province --all is required" in implied.stderr
    run = _cli(tmp_path, "invite", "official", "--commune", "16279", "--days", "2")
    assert run.returncode == 0
    *lines, link = run.stdout.strip().splitlines()
    assert link.startswith("https://t.me/TroLyChuKySoDemoBot?start=inv_")
    assert "Xã Nông Cống (16279)" in lines[0]
    assert "expires 20" in lines[1]
    assert "(Asia/Ho_Chi_Minh)" in lines[1]
    stats = _cli(tmp_path, "stats", "--json")
    data = json.loads(stats.stdout)
    for key in ("scope", "completed", "adults_present", "coverage", "target", "by_village",
                "by_provider", "funnel", "funnel_by_route"):  # fmt: skip
        assert key in data
    assert data["scope"] == "Xã Nông Cống", "a one-commune deployment is named by its commune"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("stats", "--commune", "99999"), "commune 99999 is not served by this deployment"),
        (("stats", "--province", "x"), "a province code is a number"),
        (("export", "--csv", "/nonexistent/x.csv"), "cannot write /nonexistent/x.csv"),
        (("chart", "--out", "/nonexistent/x.png"), "cannot write /nonexistent/x.png"),
    ],
)
def test_cli_mistakes_are_one_line(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    run = _cli(tmp_path, *args)
    assert run.returncode == 2
    assert run.stderr.startswith("error: " + message)
    assert run.stderr.count("\n") == 1, run.stderr
    assert "Traceback" not in run.stderr


def test_cli_export_writes_excel_files(tmp_path: Path) -> None:
    out = tmp_path / "vn.csv"
    assert _cli(tmp_path, "export", "--csv", str(out), "--dialect", "excel-vn").returncode == 0
    header = out.read_bytes().decode("utf-8-sig").splitlines()[0]
    assert header.startswith("Mã xã;Xã;Mã thôn;Thôn;Người trưởng thành;")
    book = tmp_path / "all.xlsx"
    assert _cli(tmp_path, "export", "--province", "38", "--xlsx", str(book)).returncode == 0
    assert load_workbook(book).sheetnames == ["Theo thôn", "Theo ngày"]


def test_cli_population_import(tmp_path: Path) -> None:
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "BOT_ID_SECRET": TEST_SECRET.decode(),
    }
    table = tmp_path / "pop.csv"
    table.write_text(
        "commune,village,adults,adults_present,households\n16279,dong-hoa,1000,900,450\n",
        encoding="utf-8-sig",
    )
    imported = run_bot(["population", "import", str(table)], env={**_env(), **env})
    assert imported.returncode == 0, imported.stderr
    stats = run_bot(["stats", "--json"], env={**_env(), **env})
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["adults_present"] == 3676 - 850 + 900
    table.write_text("commune,village,adults,adults_present,households\n16279,nowhere,1,1,1\n")
    bad = run_bot(["population", "import", str(table)], env={**_env(), **env})
    assert bad.returncode == 2


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k not in ("BOT_CONFIG", "DATABASE_URL")}


async def test_a_stage_counts_each_person_once(world: World) -> None:
    await world.citizen(400, Start(), "!install", "quay lai", "!install", "quay lai", "!install")
    report = (await world.desk.report(Scope("all"))).to_json()
    assert {f["step"]: f["reached"] for f in report["funnel"]}["ready"] == 1
    one = (await world.desk.report(Scope("communes", ("16279",)))).to_json()
    assert {f["step"]: f["reached"] for f in one["funnel"]}["ready"] == 0, "not attributed"
    stages = await rows(world.db, "SELECT stage FROM reached ORDER BY stage")
    assert [s[0] for s in stages] == ["started", "step:menu", "step:ready"]


async def test_a_typed_volunteer_code_counts_like_the_link(world: World) -> None:
    await world.enrol(2, "volunteer", Scope("communes", ("14797",)))
    code = (await world.staff.get("telegram", world.refs.ref("telegram", 2))).code  # type: ignore[union-attr]
    assert code is not None
    assert code.startswith("V")
    assert len(code) == 7
    await world.citizen(500, Text("xin chao"), Text(f"ma {code.lower()}"), "!install")
    stored = await world.repo.load("telegram", world.refs.ref("telegram", 500))
    assert stored is not None
    assert stored.state.referral == code
    assert stored.state.answers["area"] == "14797"


ZALO = zalo_bot.CAPABILITIES.medium(zalo_bot.CHANNEL)


async def zalo_says(world: World, user: int, text: str) -> str:
    """What the bot answers a citizen on Zalo Bot (its messages, as one text)."""
    outcome = await world.conversations.handle("zalo_bot", user, Text(text), medium=ZALO)
    return "\n\n".join(m.text for m in outcome.messages)


async def referral_of(world: World, user: int) -> str | None:
    stored = await world.repo.load("zalo_bot", world.refs.ref("zalo_bot", user))
    assert stored is not None
    return stored.state.referral


async def volunteer_code(world: World, user: int) -> str:
    await world.enrol(user, "volunteer", Scope("communes", ("16279",)))
    member = await world.staff.get("telegram", world.refs.ref("telegram", user))
    assert member is not None
    assert member.code is not None
    return member.code


async def test_a_volunteer_code_typed_alone_is_confirmed_in_one_line(world: World) -> None:
    code = await volunteer_code(world, 2)
    texts = world.engine.content.texts
    answer = await zalo_says(world, 600, code.lower())
    assert texts["code_known"].format(code=code) in answer
    assert "KHÔNG BAO GIỜ" in answer, "a first message is greeted too"
    assert await referral_of(world, 600) == code


async def test_a_code_after_the_greeting_is_confirmed_not_welcomed_back(world: World) -> None:
    code = await volunteer_code(world, 2)
    texts = world.engine.content.texts
    await zalo_says(world, 601, "xin chào")
    answer = await zalo_says(world, 601, f"Mã {code}")
    assert answer.startswith(texts["code_known"].format(code=code))
    assert texts["welcome_back"] not in answer
    assert await referral_of(world, 601) == code


async def test_a_mistyped_code_is_not_kept_and_the_right_one_then_counts(world: World) -> None:
    code = await volunteer_code(world, 2)
    texts = world.engine.content.texts
    wrong = "V" + code[1:][::-1] if code[1:][::-1] != code[1:] else "VZZZZZZ"
    await zalo_says(world, 602, "xin chào")
    answer = await zalo_says(world, 602, f"ma {wrong}")
    assert answer.startswith(texts["code_unknown"].format(code=wrong))
    assert await referral_of(world, 602) is None
    await zalo_says(world, 602, f"ma {code}")
    assert await referral_of(world, 602) == code
    other = await volunteer_code(world, 3)
    answer = await zalo_says(world, 602, f"ma {other}")
    assert answer.startswith(texts["code_kept"].format(code=code)), "the first kept wins"
    assert await referral_of(world, 602) == code


async def test_a_word_that_only_looks_like_a_code_is_just_text(world: World) -> None:
    await zalo_says(world, 603, "xin chào")
    answer = await zalo_says(world, 603, "VANXONG")
    assert world.engine.content.texts["code_unknown"].split("{")[0] not in answer


async def test_link_tells_a_volunteer_what_zalo_citizens_type(world: World) -> None:
    code = await volunteer_code(world, 2)
    reply = await world.staff_says(2, Text("/link"))
    assert reply is not None
    told = reply.messages[0].text
    assert f"mã {code}" in told
    assert world.config.way_in("zalo_bot") in told


class Recorder:
    """Stands in for a messaging platform: records what the outbox delivers."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def deliver(self, chat: str, messages: Sequence[OutMessage]) -> None:
        self.sent.extend((chat, m.text) for m in messages)


async def opted_in_and_reported(
    world: World, user: int, commune: str, village: str, announcements: str = "!yes"
) -> None:
    """Says yes to reminders, then ``announcements`` to announcements, then reports."""
    await world.citizen(user, Start(), "!install", "!ok", "!i:vnpt", "!android", "!yes")
    await world.citizen(user, announcements)
    await world.citizen(user, "menu")
    await world.citizen(user, "!done", "!yes", commune, village, "!yes", "!i:vnpt")


async def test_an_announcement_is_previewed_confirmed_and_sent_to_the_scope(world: World) -> None:
    await world.enrol(1, "official", Scope("province", ("38",)))
    await opted_in_and_reported(world, 201, "nong cong", "dong hoa")
    await opted_in_and_reported(world, 202, "hac thanh", "khu a")
    await opted_in_and_reported(world, 203, "hoan kiem", "khu a")  # Ha Noi: not in scope
    await world.report(204, "nong cong", "tay son", "vnpt")  # never said yes to messages
    # Yes to reminders is not yes to announcements (consent per purpose): not a recipient.
    await opted_in_and_reported(world, 205, "nong cong", "dong hoa", announcements="!no")
    ((reminders, announcements),) = await rows(
        world.db, "SELECT reminders, announcements FROM contacts WHERE commune = '16279' "
        "AND announcements = false"
    )  # fmt: skip
    assert (bool(reminders), bool(announcements)) == (True, False)

    how = await world.staff_says(1, Text("/thongbao"))
    assert how is not None
    assert "/thongbao Sáng Chủ nhật" in how.messages[0].text
    bad = await world.staff_says(1, Text("/thongbao Cài tại bit.ly/abc nhé"))
    assert bad is not None
    assert "bit.ly" in bad.messages[0].text
    assert await rows(world.db, "SELECT count(*) FROM broadcasts") == [(0,)]

    text = "Chủ nhật 8 giờ, Nhà văn hóa thôn có cán bộ giúp cài chữ ký số."
    preview = await world.staff_says(1, Text(f"/thongbao {text}"))
    assert preview is not None
    announcement, ask = preview.messages
    assert text in announcement.text
    assert "dừng" in announcement.text
    assert " 2 người" in ask.text
    send, _cancel = ask.options
    queued = await world.staff_says(1, Choice(send.id, SCREEN))
    assert queued is not None
    assert " 2 người" in queued.messages[0].text
    again = await world.staff_says(1, Choice(send.id, SCREEN))
    assert again is not None
    assert again.messages[0].text.startswith("Thông báo này đã gửi đi rồi"), "sends once"
    progress = await world.staff_says(1, Text("/tiendo"))
    assert progress is not None
    assert "đã gửi 0, đang chờ 2" in progress.messages[0].text

    platform = Recorder()
    worker = OutboxWorker(
        OutboxStore(world.db),
        world.conversations,
        {"telegram": platform},
        "w",
        clock=lambda: world.now,
    )
    await worker.send_due()
    await worker.drain()
    assert sorted(address for address, _ in platform.sent) == ["201", "202"]
    assert all(sent == announcement.text for _, sent in platform.sent)
    progress = await world.staff_says(1, Text("/tiendo"))
    assert progress is not None
    assert "đã gửi 2, đang chờ 0" in progress.messages[0].text
    audit = [a[0] for a in await rows(world.db, "SELECT action FROM audit")]
    assert audit.count("thongbao") == 3
    assert audit.count("bc") == 2


async def test_announcements_are_few_and_only_for_officials(world: World) -> None:
    await world.enrol(1, "official", Scope("communes", ("16279",)))
    await world.enrol(2, "volunteer", Scope("communes", ("16279",)))
    await opted_in_and_reported(world, 201, "nong cong", "dong hoa")
    assert await world.staff_says(2, Text("/thongbao Xin chào")) is None
    for n in range(3):
        preview = await world.staff_says(1, Text(f"/thongbao Tin số {n}"))
        assert preview is not None
        await world.staff_says(1, Choice(preview.messages[1].options[0].id, SCREEN))
    refused = await world.staff_says(1, Text("/thongbao Tin số 4"))
    assert refused is not None
    assert "Mỗi ngày chỉ gửi được 3" in refused.messages[0].text
    world.now += timedelta(days=1, minutes=1)
    allowed = await world.staff_says(1, Text("/thongbao Tin ngày mai"))
    assert allowed is not None
    assert len(allowed.messages) == 2


@pytest.mark.parametrize(("link", "piece"), FOREIGN)
async def test_an_announcement_with_a_foreign_link_is_refused(
    world: World, link: str, piece: str
) -> None:
    await world.enrol(1, "official", Scope("communes", ("16279",)))
    await opted_in_and_reported(world, 201, "nong cong", "dong hoa")
    refused = await world.staff_says(1, Text(f"/thongbao Bà con vào {link} để cài nhé"))
    assert refused is not None
    assert refused.messages[0].text.startswith("Thông báo có đường link không phải")
    assert await rows(world.db, "SELECT count(*) FROM broadcasts") == [(0,)]


async def test_an_announcement_may_link_to_the_bot_and_official_sites(world: World) -> None:
    await world.enrol(1, "official", Scope("communes", ("16279",)))
    await opted_in_and_reported(world, 201, "nong cong", "dong hoa")
    text = "Xem dichvucong.gov.vn và https://t.me/TroLyChuKySoDemoBot, hỏi @TroLyChuKySoDemoBot"
    preview = await world.staff_says(1, Text(f"/thongbao {text}"))
    assert preview is not None
    assert len(preview.messages) == 2


async def opted_in_on_telegram(harness: Harness, user: int) -> None:
    """A citizen who agreed to reminders and announcements and reported from Xa Nong Cong,
    through Telegram."""
    await harness.answer(lambda: harness.api.add_command(user, "/start"), user)
    for option in ("install", "ok", "i:vnpt", "android", "yes", "yes"):
        await harness.press(option, user)
    await harness.say("menu", user)
    # One commune: it is not asked; nor the provider just installed.
    for step in ("!done", "!yes", "dong hoa", "!yes"):
        if step.startswith("!"):
            await harness.press(step[1:], user)
        else:
            await harness.say(step, user)


async def test_cancel_spends_the_announcement_and_its_send_button(harness: Harness) -> None:
    """The audit: after "Huy" on a preview, its "Gui" still queued the announcement."""
    api = harness.api
    await opted_in_on_telegram(harness, 701)
    code = await StaffRepository(harness.db).create_invite(
        "official", Scope("communes", ("16279",)), created_by="cli", now=datetime.now(UTC)
    )
    await harness.answer(lambda: api.add_command(USER, "/start", code))
    preview = await harness.say("/thongbao Tối nay họp thôn")
    ask = preview[-1]
    (send,) = [data for _, data in buttons(ask) if data.split("|")[1].startswith("bc:")]
    (cancel,) = [data for _, data in buttons(ask) if data.split("|")[1].startswith("bcx:")]

    cancelled = await harness.answer(lambda: api.add_callback(USER, cancel))
    assert cancelled[-1]["text"] == "Đã hủy, không gửi."
    spent = await harness.answer(lambda: api.add_callback(USER, send))
    assert "đã hủy" in spent[-1]["text"]
    assert await rows(harness.db, "SELECT count(*) FROM outbox") == [(0,)]
    assert await rows(harness.db, "SELECT status FROM broadcasts") == [("cancelled",)]

    # The other way round: once sent, "Huy" on the same preview cannot take it back silently.
    preview = await harness.say("/thongbao Sáng mai họp thôn")
    ask = preview[-1]
    (send,) = [data for _, data in buttons(ask) if data.split("|")[1].startswith("bc:")]
    (cancel,) = [data for _, data in buttons(ask) if data.split("|")[1].startswith("bcx:")]
    queued = await harness.answer(lambda: api.add_callback(USER, send))
    assert "Đang gửi tới 1 người" in queued[-1]["text"]
    late = await harness.answer(lambda: api.add_callback(USER, cancel))
    assert "đã gửi" in late[-1]["text"]
    again = await harness.answer(lambda: api.add_callback(USER, send))
    assert "đã gửi" in again[-1]["text"]
    assert await rows(harness.db, "SELECT count(*) FROM outbox WHERE kind = 'broadcast'") == [(1,)]
