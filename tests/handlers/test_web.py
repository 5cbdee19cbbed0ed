"""The web chat over HTTP, as a browser without JavaScript uses it (the page, its forms) and
as chat.js does (the same forms, answered with JSON): who a person is, what is stored, what
is refused, and how the page looks to the engine's messages. The real browser is in
tests/handlers/test_web_browser.py."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse, FormData
from aiohttp.test_utils import TestClient, TestServer

from app.server import make_app
from bot.config import Config
from bot.content import Content
from bot.engine import Engine
from bot.identity import UserRefs
from bot.links import LinkPolicy
from bot.pictures import Pictures
from handlers.conversation import Conversations
from handlers.inbound import Inbound
from handlers.pictures import Gallery
from handlers.web import COOKIE, PER_ADDRESS, WebChannel
from handlers.webpage import load_webchat_texts, paragraphs
from storage.database import Database, migrate
from storage.inbox import Inbox
from storage.repository import Repository
from tests.conftest import TEST_SECRET, rows

VOLUNTEER = "VK7M2QX"


@dataclass
class Form:
    action: str
    fields: dict[str, str] = field(default_factory=dict)
    #: (name, value, label) of each submit button.
    buttons: list[tuple[str, str, str]] = field(default_factory=list)


class _Page(HTMLParser):
    """A page's forms and the texts of its messages (new ones, and those shown again)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self.messages: list[tuple[str, bool]] = []  # (text, shown again)
        self.images: list[dict[str, str]] = []
        self._button: tuple[str, str] | None = None
        self._label: list[str] = []
        self._text: list[str] | None = None
        self._again = False
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(a.get("action", "")))
        elif tag == "input" and self.forms and a.get("name"):
            self.forms[-1].fields[a["name"]] = a.get("value", "")
        elif tag == "button" and a.get("type") == "submit" and self.forms:
            self._button, self._label = (a.get("name", ""), a.get("value", "")), []
        elif tag == "img":
            self.images.append(a)
        elif tag == "article":
            self._again = "again" in a.get("class", "").split()
        elif tag == "div" and a.get("class") == "text":
            self._text, self._depth = [], 1
        elif self._text is not None:
            self._depth += tag != "br"
            self._text.append("\n" if tag == "br" else "\n\n" if tag == "p" and self._text else "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "button" and self._button is not None:
            self.forms[-1].buttons.append((*self._button, "".join(self._label).strip()))
            self._button = None
        elif self._text is not None and tag != "br":
            self._depth -= 1
            if not self._depth:
                self.messages.append(("".join(self._text), self._again))
                self._text = None

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self._label.append(data)
        if self._text is not None:
            self._text.append(data)


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


class Browser:
    """A phone's browser with JavaScript off: it follows the page's own forms."""

    def __init__(self, client: TestClient[Any, Any]):
        self.client = client
        self.html = ""
        self.status = 0
        self.page = _Page()

    async def _load(self, response: ClientResponse) -> None:
        self.status = response.status
        self.html = await response.text()
        self.page = parse(self.html)

    async def open(self, path: str = "/chat") -> None:
        await self._load(await self.client.get(path))

    def form_with(self, value: str) -> tuple[Form, tuple[str, str, str]]:
        for form in self.page.forms:
            for button in form.buttons:
                if value in (button[1], button[2]):
                    return form, button
        raise AssertionError(f"no button {value!r}: {[f.buttons for f in self.page.forms]}")

    async def press(self, value: str, **headers: str) -> None:
        """Press the button with this value (an option id) or this label."""
        form, (name, button_value, _) = self.form_with(value)
        data = {**form.fields, name: button_value}
        await self._load(await self.client.post(form.action, data=data, headers=headers))

    async def ask(self, question: str) -> None:
        form = next(f for f in self.page.forms if "text" in f.fields)
        data = {**form.fields, "text": question}
        await self._load(await self.client.post(form.action, data=data))

    @property
    def said(self) -> list[str]:
        """The bot's new messages on this page."""
        return [text for text, again in self.page.messages if not again]

    @property
    def cookie(self) -> str:
        jar = self.client.session.cookie_jar.filter_cookies(self.client.make_url("/chat"))
        return jar[COOKIE].value if COOKIE in jar else ""


@dataclass
class Site:
    client: TestClient[Any, Any]
    db: Database
    refs: UserRefs
    channel: WebChannel

    def browser(self) -> Browser:
        return Browser(self.client)

    async def count(self, table: str, where: str = "1 = 1") -> int:
        return int((await rows(self.db, f"SELECT count(*) FROM {table} WHERE {where}"))[0][0])


async def _site(
    engine: Engine, tmp_path: Path, pictures: Pictures | None = None, **options: Any
) -> AsyncIterator[Site]:
    db = Database(f"sqlite:///{tmp_path / 'web.db'}")
    await migrate(db)
    refs = UserRefs(TEST_SECRET)
    inbound = Inbound(Conversations(engine, Repository(db), refs), inbox=Inbox(db))
    gallery = Gallery.of(pictures) if pictures is not None else None
    channel = WebChannel(inbound, gallery=gallery, **options)
    routes = gallery.routes() if gallery else ()
    async with TestClient(TestServer(make_app([channel], routes=routes))) as client:
        yield Site(client, db, refs, channel)
        await inbound.drain()
    await db.dispose()


@pytest.fixture
async def site(engine: Engine, tmp_path: Path, pictures: Pictures) -> AsyncIterator[Site]:
    async for made in _site(engine, tmp_path, pictures):
        yield made


# --- who a person is ------------------------------------------------------------------------


async def test_opening_the_page_counts_nobody_and_keeps_nothing(site: Site) -> None:
    response = await site.client.get("/chat")
    cookie = response.cookies[COOKIE]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"
    assert cookie["path"] == "/chat"
    assert re.fullmatch(r"[A-Za-z0-9_-]{32}", cookie.value), "a random id, nothing else"
    browser = site.browser()
    for _ in range(3):  # a link preview, a prefetch, a person who only looks
        await browser.open(f"/chat?ref={VOLUNTEER}")
        assert browser.status == 200
    assert await site.count("sessions") == 0
    assert await site.count("events") == 0
    assert await site.count("inbox") == 0
    form, _ = browser.form_with("▶️ Bắt đầu")
    assert form.fields["ref"] == VOLUNTEER


@pytest.mark.parametrize("ref", ["<script>", "0912345678", "VK7M2Q0", "inv_abc"])
async def test_a_ref_the_bot_did_not_issue_is_never_on_the_page(site: Site, ref: str) -> None:
    browser = site.browser()
    await browser.open(f"/chat?ref={ref}")
    assert ref not in browser.html
    form, _ = browser.form_with("▶️ Bắt đầu")
    assert "ref" not in form.fields


async def test_starting_keeps_the_hashed_id_and_the_volunteer_once(site: Site) -> None:
    browser = site.browser()
    await browser.open(f"/chat?ref={VOLUNTEER}")
    await browser.press("▶️ Bắt đầu")
    assert browser.status == 200
    assert "KHÔNG BAO GIỜ" in browser.said[0], "the privacy promise first (with the greeting)"
    session = browser.cookie
    [(ref, state)] = await rows(site.db, "SELECT user_ref, state FROM sessions")
    assert ref == site.refs.ref("web", session)
    assert session not in state
    for table in ("sessions", "events", "deliveries", "inbox"):
        assert session not in repr(await rows(site.db, f"SELECT * FROM {table}")), table
    await browser.press("📱 Hướng dẫn cài từng bước")
    await browser.open(f"/chat?ref={VOLUNTEER}")  # the link opened again
    await browser.open("/chat?ref=VAAAAAA")  # another volunteer's
    referrals = await rows(site.db, "SELECT detail FROM events WHERE kind = 'referral'")
    assert referrals == [(VOLUNTEER,)], "attributed once, to the first"
    assert await site.count("events", "kind = 'started'") == 1


async def test_coming_back_offers_to_continue_at_the_step(site: Site) -> None:
    browser = site.browser()
    await browser.open()
    await browser.press("▶️ Bắt đầu")
    for option in ("install", "ok", "i:vnpt", "android", "ok", "done", "done"):
        await browser.press(option)
    assert browser.said[-1].startswith("Bước 3/9")
    await browser.open()  # a reload, or the link opened again days later
    assert browser.said == ["Bạn đang cài dở ở Bước 3/9: Chụp mặt trước căn cước.\n"
                            "Tiếp tục ở bước 3/9 hay làm lại?"]  # fmt: skip
    await browser.press("resume")
    assert browser.said[-1].startswith("Bước 3/9")


async def test_deleting_ones_data_clears_the_rows_and_the_cookie(site: Site) -> None:
    browser = site.browser()
    await browser.open()
    await browser.press("▶️ Bắt đầu")
    await browser.press("install")
    await browser.press("🗑 Xóa dữ liệu của tôi")
    assert "Bạn muốn xóa hết dữ liệu" in browser.said[0]
    ref = site.refs.ref("web", browser.cookie)
    response = await site.client.post(
        "/chat",
        data={**browser.form_with("erase")[0].fields, "option": "erase"},
    )
    html = await response.text()
    assert "Đã xóa hết dữ liệu" in html
    assert "Điện thoại này cũng đã quên mã của bạn" in html
    assert response.cookies[COOKIE]["max-age"] == "0"
    assert browser.cookie == ""
    assert 'href="/chat"' in html, "a way to start again"
    for table in ("sessions", "events", "inbox", "deliveries"):
        assert await site.count(table, f"user_ref = '{ref}'") == 0, table
    await browser.open()
    assert browser.form_with("▶️ Bắt đầu"), "a stranger again"


# --- the conversation on the page -----------------------------------------------------------


async def test_a_typed_question_is_answered_with_a_button_back_to_the_step(site: Site) -> None:
    browser = site.browser()
    await browser.open()
    await browser.press("▶️ Bắt đầu")
    for option in ("install", "ok", "i:vnpt", "android"):
        await browser.press(option)
    assert "không tự nhắn nhắc bạn được" in browser.said[0], "no reminders on the web"
    await browser.press("📱 Bắt đầu cài")
    await browser.ask("cks co mat tien ko")
    assert browser.said[0].startswith("Nhiều nhà cung cấp đang miễn phí năm đầu")
    assert "bạn quay lại Bước 1/9" in browser.said[0]
    await browser.press("▶️ Quay lại Bước 1/9")
    assert browser.said[-1].startswith("Bước 1/9")
    assert await site.count("events", "kind = 'reminders'") == 0


async def test_the_hard_steps_show_their_pictures_with_alt_text(
    site: Site, pictures: Pictures
) -> None:
    browser = site.browser()
    await browser.open()
    await browser.press("▶️ Bắt đầu")
    for option in ("install", "ok", "i:vnpt", "android", "ok", "done", "done"):
        await browser.press(option)
    card = pictures.get("cccd_photo")
    assert card is not None
    [image] = browser.page.images
    assert image["src"] == f"/pictures/cccd_photo-{card.digest}.png"
    assert image["alt"] == card.alt
    assert (image["width"], image["height"]) == (str(card.width), str(card.height))
    picture = await site.client.get(image["src"])
    assert await picture.read() == card.png


async def test_a_form_sent_twice_is_applied_once(site: Site) -> None:
    browser = site.browser()
    await browser.open()
    await browser.press("▶️ Bắt đầu")
    form, (name, value, _) = browser.form_with("install")
    data = {**form.fields, name: value}
    first = await site.client.post("/chat", data=data)
    again = await site.client.post("/chat", data=data)  # a double tap, a reload
    assert first.status == again.status == 200
    page = parse(await again.text())
    assert [a for _, a in page.messages] == [True], "nothing new: where the person is"
    assert page.messages[0][0].startswith("Trước khi cài")
    assert await site.count("events", "kind = 'step' AND step = 'ready'") == 1


async def test_chat_js_gets_the_replies_alone_and_a_secret_is_taken_back(site: Site) -> None:
    browser = site.browser()
    await browser.open()
    await browser.press("▶️ Bắt đầu")
    form = next(f for f in browser.page.forms if "text" in f.fields)
    response = await site.client.post(
        "/chat", data={**form.fields, "text": "mã OTP của tôi là 123456"}, headers={"X-Chat": "1"}
    )
    answer = await response.json()
    assert answer["discard"] is True, "the page removes the message"
    assert answer["started"] is True
    assert answer["html"].startswith('<div class="turn">')
    assert "<html" not in answer["html"]
    assert "123456" not in answer["html"]
    assert "⚠️" in answer["html"]
    stored = await rows(site.db, "SELECT * FROM events")
    assert "123456" not in repr(stored)


# --- what is refused ------------------------------------------------------------------------


async def test_a_post_from_another_site_or_without_the_token_is_refused(site: Site) -> None:
    browser = site.browser()
    await browser.open()
    await browser.press("▶️ Bắt đầu")
    form, (name, value, _) = browser.form_with("install")
    data = {**form.fields, name: value}
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        assert (await site.client.post("/chat", data=data, headers=headers)).status == 403
    stale = await site.client.post("/chat", data={**data, "csrf": "0" * 40})
    assert stale.status == 403
    assert "Trang này đã cũ" in await stale.text()
    assert await site.count("events", "kind = 'step' AND step = 'ready'") == 0
    same = await site.client.post(
        "/chat", data=data, headers={"Origin": str(site.client.make_url("/"))[:-1]}
    )
    assert same.status == 200, "this site's own origin"


async def test_there_is_no_upload_of_any_kind(site: Site) -> None:
    browser = site.browser()
    await browser.open()
    await browser.press("▶️ Bắt đầu")
    form = next(f for f in browser.page.forms if "text" in f.fields)
    upload = FormData()
    for key, value in form.fields.items():
        upload.add_field(key, value)
    upload.add_field("text", b"\xff\xd8 a photo", filename="cccd.jpg", content_type="image/jpeg")
    response = await site.client.post("/chat", data=upload)
    assert response.status == 400
    assert 'type="file"' not in browser.html
    long = await site.client.post("/chat", data={**form.fields, "text": "a" * 20_000})
    assert long.status == 400


async def test_rate_limits_per_session_and_per_address(
    engine: Engine, tmp_path: Path, config: Config
) -> None:
    async for site in _site(engine, tmp_path, per_address=12):
        browser = site.browser()
        await browser.open()
        await browser.press("▶️ Bắt đầu")
        statuses = []
        for _ in range(12):
            await browser.open()
            statuses.append(browser.status)
        assert statuses[-1] == 429
        assert "Bạn bấm nhanh quá" in browser.html
        # Another address (as the reverse proxy on this machine names it) is not slowed.
        other = await site.client.get("/chat", headers={"X-Forwarded-For": "203.0.113.9"})
        assert other.status == 200
    async for site in _site(engine, tmp_path / "b"):
        browser = site.browser()
        await browser.open()
        await browser.press("▶️ Bắt đầu")
        for _ in range(config.messages_per_minute):
            await browser.ask("chữ ký số là gì")
        assert browser.said == [engine.content.texts["slow_down"]]
    assert PER_ADDRESS >= 100, "a village behind one address is not slowed"


async def test_larger_text_without_javascript(site: Site) -> None:
    browser = site.browser()
    await browser.open()
    await browser.press("🔎 Chữ to hơn")
    assert browser.status == 200
    assert '<html lang="vi" class="big">' in browser.html
    assert browser.form_with("🔎 Chữ nhỏ lại")
    await browser.open()
    assert 'class="big"' in browser.html, "kept for the next pages"
    assert await site.count("sessions") == 0, "choosing a text size starts nothing"


async def test_the_static_files_are_small_and_kept_for_good(site: Site) -> None:
    browser = site.browser()
    await browser.open()
    sizes = {}
    for found in re.finditer(r'(?:href|src)="(/chat/static/[^"]+)"', browser.html):
        response = await site.client.get(found.group(1))
        assert response.status == 200
        assert "immutable" in response.headers["Cache-Control"]
        sizes[found.group(1)] = len(await response.read())
    assert len(sizes) == 2
    assert sum(sizes.values()) + len(browser.html.encode()) < 30_000
    assert (await site.client.get("/chat/static/page.html")).status == 404
    assert (await site.client.get("/chat/static/chat.css")).status == 404, "only by digest"


# --- the page's words -----------------------------------------------------------------------


def test_text_is_escaped_and_only_allowed_links_are_live(config: Config) -> None:
    html = paragraphs(
        "Vào dichvucong.gov.vn <b>ngay</b>\nhoặc https://evil.example\n\nhết",
        config.links,
    )
    assert html == (
        '<p>Vào <a href="https://dichvucong.gov.vn" rel="noopener noreferrer" target="_blank">'
        "dichvucong.gov.vn</a> &lt;b&gt;ngay&lt;/b&gt;<br>hoặc https://evil.example</p>"
        "<p>hết</p>"
    )
    assert "<a" not in paragraphs("https://t.me/somebot", LinkPolicy())


def test_every_word_of_the_page_is_in_content(content: Content) -> None:
    texts = load_webchat_texts(content.locale)
    assert texts["start"] == "▶️ Bắt đầu"
    templates = Path(__file__).resolve().parents[2] / "handlers" / "webchat"
    for template in templates.glob("*.html"):
        source = template.read_text(encoding="utf-8")
        visible = re.sub(r"{[{%#].*?[}%#]}|<[^>]*>", " ", source, flags=re.DOTALL)
        assert not re.search(r"[A-Za-zÀ-ỹ]{3,}", visible), template.name
