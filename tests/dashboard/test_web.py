"""The dashboard over real HTTP (aiohttp's test server, no browser): sign-in links and
sessions, role and scope on every request, CSRF, the audit log, the same figures, rules and
files as the chat. The browser tests (test_browser.py) show the same through Chromium.
"""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from openpyxl import load_workbook

from app.server import make_app
from bot.engine import Engine
from bot.model import Text
from bot.officials import WEB_LINK_TTL, Scope
from dashboard.web import COOKIE, Dashboard, csrf_token
from storage.database import Database
from storage.web import SESSION_IDLE, WebAccess
from tests.conftest import rows
from tests.handlers.test_staff import World, opted_in_and_reported

PUBLIC = "http://dash.example"


class Site:
    """The dashboard of a World, served over HTTP, and a browser-like client."""

    def __init__(self, world: World, server: TestServer, dashboard: Dashboard):
        self.world = world
        self.server = server
        self.dashboard = dashboard
        self.access = WebAccess(world.db)

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    def client(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def link(self, scope: Scope, **kw: Any) -> str:
        """A login token made as the CLI's web-link makes it."""
        return await self.access.create_link(
            scope, channel="cli", user_ref="cli", now=kw.get("now", self.world.now)
        )

    async def login(self, client: aiohttp.ClientSession, token: str) -> int:
        async with client.get(self.url(f"/dashboard/login?t={token}")) as page:
            assert page.status == 200
            assert token in await page.text()
        async with client.post(self.url("/dashboard/login"), data={"t": token}) as response:
            return response.status

    async def get(self, client: aiohttp.ClientSession, path: str) -> tuple[int, str]:
        async with client.get(self.url(path), allow_redirects=False) as response:
            return response.status, await response.text()

    def csrf(self, client: aiohttp.ClientSession) -> str:
        cookie = client.cookie_jar.filter_cookies(self.server.make_url("/dashboard"))[COOKIE]
        return csrf_token(cookie.value)


@pytest.fixture
async def site(db: Database, engine: Engine) -> AsyncIterator[Site]:
    world = World(db, engine.content, engine.understanding)
    world.desk.public_url = PUBLIC  # as app/runtime.py wires it from PUBLIC_URL
    dashboard = Dashboard(
        config=world.config,
        content=engine.content,
        desk=world.desk,
        public_url=PUBLIC,
        clock=lambda: world.now,
    )
    server = TestServer(make_app([], routes=dashboard.routes()))
    await server.start_server()
    try:
        yield Site(world, server, dashboard)
    finally:
        await server.close()


def values(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-key="([a-z_]+)" data-value="([^"]*)"', html))


async def test_a_link_signs_in_once_and_shows_the_figures_of_stats(site: Site) -> None:
    world = site.world
    await world.report(101, "nong cong", "dong hoa", "vnpt")
    await world.report(102, "hac thanh", "khu a", "misa")
    token = await site.link(Scope("communes", ("16279",)))
    async with site.client() as client:
        assert await site.login(client, token) == 200  # redirected to the overview
        status, html = await site.get(client, "/dashboard")
        _, villages = await site.get(client, "/dashboard/villages")
    assert status == 200
    expected = (await world.desk.report(Scope("communes", ("16279",)))).to_json()
    shown = values(html)
    for key in ("completed", "adults_present", "coverage", "target_people", "gap"):
        assert shown[key] == str(expected[key]), key
    assert shown["pace_per_day"] == str(expected["pace_per_day"])
    # The pages read only the parts of the figures they show: the same numbers.
    listed = re.findall(r'data-code="16279/([a-z0-9-]+)">.*?data-value="(\d+)"', villages, re.S)
    assert dict(listed) == {v["village"]: str(v["completed"]) for v in expected["by_village"]}
    assert "Xã Nông Cống" in html
    assert "<svg" in html, "the charts are in the page"
    async with site.client() as again:
        assert await site.login(again, token) == 403, "a link works once"
    stored = repr(await rows(world.db, "SELECT * FROM web_links"))
    stored += repr(await rows(world.db, "SELECT * FROM web_sessions"))
    assert token not in stored, "only hashes are kept"


async def test_an_expired_link_is_refused(site: Site) -> None:
    token = await site.link(Scope("all"), now=site.world.now - WEB_LINK_TTL - timedelta(1))
    async with site.client() as client:
        assert await site.login(client, token) == 403
        status, _ = await site.get(client, "/dashboard")
    assert status == 303
    audit = [a[0] for a in await rows(site.world.db, "SELECT action FROM audit")]
    assert audit == ["web_login_failed"]


async def test_no_session_is_sent_to_ask_for_a_link(site: Site) -> None:
    async with site.client() as client:
        for path in ("/dashboard", "/dashboard/villages", "/dashboard/download/chu-ky-so.xlsx"):
            async with client.get(site.url(path), allow_redirects=False) as response:
                assert response.status == 303
                assert response.headers["Location"] == "/dashboard/signin"
        status, html = await site.get(client, "/dashboard/signin")
    assert status == 200
    assert "/web" in html


async def test_a_commune_outside_the_scope_is_forbidden(site: Site) -> None:
    async with site.client() as client:
        await site.login(client, await site.link(Scope("communes", ("16279",))))
        for path in (
            "/dashboard?commune=14797",
            "/dashboard/villages?commune=70",
            "/dashboard/download/theo-thon.csv?commune=14797",
            "/dashboard/download/ap-phich-14797.pdf",
        ):
            status, _ = await site.get(client, path)
            assert status == 403, path
    async with site.client() as client:
        await site.login(client, await site.link(Scope("province", ("38",))))
        status, html = await site.get(client, "/dashboard?commune=14797")
        assert status == 200, "in the province"
        assert "Phường Hạc Thành" in html
        status, _ = await site.get(client, "/dashboard?commune=70")
        assert status == 403, "Ha Noi is another province"


async def test_the_cookie_is_httponly_strict_and_secure_behind_https(site: Site) -> None:
    site.dashboard.secure = True  # as with PUBLIC_URL=https://...
    token = await site.link(Scope("all"))
    async with (
        site.client() as client,
        client.post(
            site.url("/dashboard/login"), data={"t": token}, allow_redirects=False
        ) as response,
    ):
        cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Secure" in cookie
    assert "Path=/dashboard" in cookie
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


async def test_sessions_end_by_logout_idleness_and_removal(site: Site) -> None:
    world = site.world
    async with site.client() as client:
        await site.login(client, await site.link(Scope("all")))
        async with client.post(site.url("/dashboard/logout"), data={"csrf": "x"}) as refused:
            assert refused.status == 403, "no CSRF token, no logout"
        async with client.post(
            site.url("/dashboard/logout"), data={"csrf": site.csrf(client)}
        ) as out:
            assert out.status == 200
        status, _ = await site.get(client, "/dashboard")
        assert status == 303
    async with site.client() as client:
        await site.login(client, await site.link(Scope("all")))
        world.now += SESSION_IDLE + timedelta(minutes=1)
        status, _ = await site.get(client, "/dashboard")
        assert status == 303, "idle too long"
    # An official signed in from the bot is out once no longer an official.
    await world.enrol(1, "official", Scope("communes", ("16279",)))
    reply = await world.staff_says(1, Text("/web"))
    assert reply is not None
    (link,) = re.findall(r"http://dash\.example/dashboard/login\?t=\S+", reply.messages[0].text)
    async with site.client() as client:
        assert await site.login(client, link.split("t=")[1]) == 200
        assert (await site.get(client, "/dashboard"))[0] == 200
        await world.db.run(lambda c: c.exec_driver_sql("DELETE FROM staff"))
        assert (await site.get(client, "/dashboard"))[0] == 303


async def test_web_command_is_for_officials_only(site: Site) -> None:
    world = site.world
    await world.enrol(2, "volunteer", Scope("communes", ("16279",)))
    assert await world.staff_says(2, Text("/web")) is None
    assert await world.staff_says(3, Text("/web")) is None, "not staff: not a command"
    await world.enrol(1, "official", Scope("province", ("38",)))
    reply = await world.staff_says(1, Text("/web"))
    assert reply is not None
    assert "10 phút" in reply.messages[0].text
    sessions = await rows(world.db, "SELECT scope, channel FROM web_links")
    assert sessions == [('{"kind": "province", "codes": ["38"]}', "telegram")]


async def test_announcements_follow_the_chat_rules_with_csrf(site: Site) -> None:
    world = site.world
    await opted_in_and_reported(world, 201, "nong cong", "dong hoa")
    await opted_in_and_reported(world, 202, "hac thanh", "khu a")
    async with site.client() as client:
        await site.login(client, await site.link(Scope("communes", ("16279",))))
        page = site.url("/dashboard/announcements")
        async with client.post(page, data={"text": "Họp thôn", "csrf": "forged"}) as forged:
            assert forged.status == 403
        csrf = site.csrf(client)
        async with client.post(page, data={"text": "Cài tại bit.ly/abc", "csrf": csrf}) as bad:
            assert bad.status == 422
            assert "bit.ly" in await bad.text()
        assert await rows(world.db, "SELECT count(*) FROM broadcasts") == [(0,)]
        text = "Chủ nhật 8 giờ, Nhà văn hóa thôn có cán bộ giúp cài."
        async with client.post(page, data={"text": text, "csrf": csrf}) as preview:
            html = await preview.text()
        assert text in html
        assert "1 người" in html, "only the opted-in citizen of Nong Cong"
        (draft,) = re.findall(r'name="draft" value="(\d+)"', html)
        send = site.url("/dashboard/announcements/send")
        async with client.post(send, data={"draft": draft, "csrf": csrf}) as sent:
            assert "Đang gửi tới 1 người" in await sent.text()
        async with client.post(send, data={"draft": draft, "csrf": csrf}) as twice:
            assert "đã được gửi rồi" in await twice.text()
    queued = await rows(world.db, "SELECT count(*) FROM outbox WHERE kind = 'broadcast'")
    assert queued == [(1,)]
    audit = [a[0] for a in await rows(world.db, "SELECT action FROM audit ORDER BY id")]
    assert audit.count("web_announce_preview") == 2
    assert audit.count("web_announce_send") == 2
    assert "web_csrf_refused" in audit
    assert audit[0] == "web_login"


async def test_downloads_are_the_chat_files(site: Site) -> None:
    world = site.world
    await world.report(101, "nong cong", "dong hoa", "vnpt")
    async with site.client() as client:
        await site.login(client, await site.link(Scope("communes", ("16279",))))
        async with client.get(site.url("/dashboard/download/chu-ky-so.xlsx")) as xlsx:
            book = load_workbook(io.BytesIO(await xlsx.read()))
            assert "attachment" in xlsx.headers["Content-Disposition"]
        async with client.get(site.url("/dashboard/download/theo-thon.csv")) as csv:
            text = (await csv.read()).decode("utf-8-sig")
        async with client.get(site.url("/dashboard/download/ap-phich-16279.pdf")) as poster:
            assert (await poster.read()).startswith(b"%PDF")
        async with client.get(site.url("/dashboard/download/cac-buoc-vneid.pdf")) as card:
            assert (await card.read()).startswith(b"%PDF")
        status, _ = await site.get(client, "/dashboard/download/other.txt")
        assert status == 404
    dong_hoa = next(r for r in book["Theo thôn"].iter_rows(values_only=True) if r[2] == "dong-hoa")
    assert dong_hoa[9] == 1
    assert text.splitlines()[0].startswith("Mã xã;Xã;"), "Excel with Vietnamese settings"
    audit = [a[0] for a in await rows(world.db, "SELECT action FROM audit")]
    assert audit.count("web_download") == 5


async def test_every_page_renders_for_a_province(site: Site) -> None:
    world = site.world
    await world.enrol(2, "volunteer", Scope("communes", ("16279",)))
    await world.report(101, "nong cong", "dong hoa", "vnpt")
    async with site.client() as client:
        await site.login(client, await site.link(Scope("province", ("38",))))
        pages = ("", "/villages?sort=name&order=desc", "/funnel", "/volunteers",
                 "/announcements", "/downloads", "/report", "/villages?commune=16279")  # fmt: skip
        for path in pages:
            status, html = await site.get(client, "/dashboard" + path)
            assert status == 200, path
            assert "Traceback" not in html
        status, html = await site.get(client, "/dashboard/villages?sort=name")
    names = re.findall(r'<th scope="row"><a href="[^"]+">([^<]+)</a>', html)
    assert names == ["Phường Hạc Thành", "Xã Nông Cống"]


async def test_the_volunteers_page_flags_an_unusual_burst(site: Site) -> None:
    """Issue 12: more assisted completions in an hour than a person can do are flagged."""
    from bot.officials import ASSISTED_PER_HOUR
    from tests.handlers.test_staff_guard import VOLUNTEER, _assist

    world = site.world
    await world.enrol(VOLUNTEER, "volunteer", Scope("communes", ("16279",)))
    member = await world.staff.get("telegram", world.refs.ref("telegram", VOLUNTEER))
    assert member is not None
    token = await site.link(Scope("communes", ("16279",)))
    async with site.client() as client:
        assert await site.login(client, token) == 200
        _, calm = await site.get(client, "/dashboard/volunteers")
        for _ in range(ASSISTED_PER_HOUR + 1):
            await _assist(world)
            world.now += timedelta(minutes=4)
        _, flagged = await site.get(client, "/dashboard/volunteers")
    assert 'role="alert"' not in calm
    assert 'class="error" role="alert"' in flagged
    assert f"{member.code} ghi nhận {ASSISTED_PER_HOUR + 1} người" in flagged
