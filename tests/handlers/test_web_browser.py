"""The web chat in a real browser (Debian's Chromium, headless) against the server of
``python -m bot serve``, at phone size (360x740), with JavaScript on and off: a citizen opens a
volunteer's link, sees the privacy promise, reaches step 1, asks "cks co mat tien ko" and gets
the answer, comes back and is offered to continue, deletes their data; the volunteer is counted
once. The page is checked for what old eyes and hands need (text >= 18 px, buttons >= 48 px and
full width, contrast), for its weight (< 100 kB with a picture), and read-aloud uses the
phone's own voice, sends nothing anywhere, and hides where there is no Vietnamese voice.

``SCREENSHOTS=docs/screenshots .venv/bin/python -m pytest tests/handlers/test_web_browser.py``
renders the README's screenshots again (with an emoji font installed, as phones have one:
Debian's fonts-noto-color-emoji).
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bot import printing
from bot.config import load_config
from bot.content import Content
from tests.bot.test_printing import qr_codes, render
from tests.dashboard.browser import PHONE, TEXT_STYLES, UNLABELLED, Served
from tests.dashboard.conftest import browser, served, shots

#: The dashboard's fixtures: the process's browser, and a server of this module's own.
__all__ = ["browser", "served", "shots"]

#: Zalo's in-app browser on an Android phone says so in its user agent.
ZALO = (
    "Mozilla/5.0 (Linux; Android 10; SM-A105F) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Mobile Safari/537.36 Zalo android/12080900 ZaloTheme/light"
)
#: A Vietnamese voice where Chromium on a server has none (no speech service): the phone's
#: own, as the page sees it. Every call is written down; nothing is spoken.
FAKE_VOICE = """
(() => {
  const voice = {name: 'Tiếng Việt', lang: 'vi-VN', localService: true, default: false};
  window.spoken = [];
  Object.defineProperty(window, 'speechSynthesis', {value: {
    getVoices: () => [voice], speaking: false, onvoiceschanged: null,
    speak: (u) => window.spoken.push({text: u.text, lang: u.lang, voice: u.voice && u.voice.lang}),
    cancel: () => {},
  }});
  window.SpeechSynthesisUtterance = function (text) { this.text = text; };
})();
"""


def phone(browser: Any, *, js: bool = True, voice: bool = False) -> Any:
    context = browser.new_context(
        viewport=PHONE, locale="vi-VN", java_script_enabled=js, user_agent=ZALO
    )
    if voice:
        context.add_init_script(FAKE_VOICE)
    return context.new_page()


def tap(page: Any, label: str) -> None:
    """Tap the last button with this label (the newest message's, with JavaScript)."""
    page.get_by_role("button", name=label, exact=True).last.click()


def said(page: Any) -> str:
    return str(page.locator("#chat").inner_text())


def wait_for(page: Any, text: str) -> None:
    """Wait until ``text`` is on the page: case-sensitive ("KHÔNG BAO GIỜ" is the reply's, not
    the first page's "Không bao giờ")."""
    page.locator("#chat").get_by_text(re.compile(re.escape(text))).last.wait_for()


def sql(served: Served, query: str) -> list[tuple[Any, ...]]:
    path = served.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        return list(db.execute(query).fetchall())


def referrals(served: Served) -> int:
    query = "SELECT count(*) FROM events WHERE channel = 'web' AND kind = 'referral'"
    return int(sql(served, query)[0][0])


def completions(served: Served) -> int:
    query = "SELECT count(*) FROM events WHERE channel = 'web' AND kind = 'completed'"
    return int(sql(served, query)[0][0])


@pytest.mark.parametrize("js", [True, False], ids=["javascript", "no-javascript"])
def test_a_citizen_from_a_volunteers_link_to_an_answer_and_back(
    browser: Any, served: Served, shots: Path, js: bool
) -> None:
    before = referrals(served)
    page = phone(browser, js=js)
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    page.goto(f"{served.base}/chat?ref={served.volunteer}")
    assert referrals(served) == before, "opening the link counts nobody"
    assert not page.get_by_text("để điện thoại đọc to").is_visible(), "no voice, not told"
    tap(page, "▶️ Bắt đầu")
    wait_for(page, "KHÔNG BAO GIỜ hỏi ảnh căn cước")
    for label in ("📱 Hướng dẫn cài từng bước", "✅ Tôi có đủ, bắt đầu", "VNPT SmartCA",
                  "Android (Samsung, Oppo, Xiaomi…)"):  # fmt: skip
        tap(page, label)
    wait_for(page, "trợ lý không tự nhắn nhắc bạn được")
    tap(page, "📱 Bắt đầu cài")
    wait_for(page, "Bước 1/9: Cài ứng dụng VNPT SmartCA")
    page.get_by_label("Gõ câu hỏi của bạn").fill("cks co mat tien ko")
    page.get_by_role("button", name="Gửi", exact=True).click()
    wait_for(page, "Nhiều nhà cung cấp đang miễn phí năm đầu")
    if js:
        assert navigations == [navigations[0]], "one page: answered in place"
        assert "cks co mat tien ko" in said(page), "the question stays in the chat"
        page.screenshot(path=shots / "webchat-answer.png")
    else:
        assert len(navigations) > 5, "a page for each answer"
    # Back later, on the same phone: the link again (a reload, with JavaScript).
    if js:
        page.reload()
    else:
        page.goto(f"{served.base}/chat?ref={served.volunteer}")
    wait_for(page, "Tiếp tục ở bước 1/9 hay làm lại?")
    tap(page, "▶️ Tiếp tục")
    wait_for(page, "Bước 1/9")
    assert referrals(served) == before + 1, "the volunteer counted once"
    # Delete my data: the rows and the cookie.
    cookie = next(c for c in page.context.cookies() if c["name"] == "chat_id")
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Lax"
    tap(page, "🗑 Xóa dữ liệu của tôi")
    wait_for(page, "Bạn muốn xóa hết dữ liệu của mình")
    tap(page, "🗑 Xóa hết")
    wait_for(page, "Đã xóa hết dữ liệu của bạn")
    assert [c for c in page.context.cookies() if c["name"] == "chat_id"] == []
    assert page.get_by_role("link", name="▶️ Bắt đầu lại").is_visible()
    assert not page.get_by_label("Gõ câu hỏi của bạn").is_visible()
    page.context.close()


def _to_step_three(page: Any, served: Served) -> None:
    page.goto(f"{served.base}/chat")
    tap(page, "▶️ Bắt đầu")
    for label in ("📱 Hướng dẫn cài từng bước", "✅ Tôi có đủ, bắt đầu", "VNPT SmartCA",
                  "Android (Samsung, Oppo, Xiaomi…)", "📱 Bắt đầu cài", "✅ Xong"):  # fmt: skip
        tap(page, label)
    wait_for(page, "Bước 2/9")
    tap(page, "✅ Xong")
    wait_for(page, "Bước 3/9")


@pytest.mark.parametrize("big", [False, True], ids=["normal", "large"])
def test_the_page_is_for_old_eyes_and_hands(
    browser: Any, served: Served, shots: Path, big: bool
) -> None:
    page = phone(browser)
    page.goto(f"{served.base}/chat")
    if big:
        tap(page, "🔎 Chữ to hơn")
        assert page.get_by_role("button", name="🔎 Chữ nhỏ lại").is_visible()
    _to_step_three(page, served)
    image = page.locator("#chat img").last
    image.wait_for()
    assert image.get_attribute("alt", timeout=1000).startswith("Hình mẫu chụp căn cước")
    # Loaded and drawn (the picture may still be on its way on a busy machine).
    page.wait_for_function(
        "() => [...document.querySelectorAll('#chat img')]"
        ".every((i) => i.complete && i.naturalWidth > 0)"
    )
    problems: list[str] = list(page.evaluate(UNLABELLED))
    size = page.evaluate(
        "() => parseFloat(getComputedStyle(document.querySelector('.msg p')).fontSize)"
    )
    assert size == (26 if big else 20)
    for text in page.evaluate(TEXT_STYLES):
        if text["size"] < 18:
            problems.append(f"{text['size']} px: {text['text']!r}")
        if text["contrast"] < 4.5:
            problems.append(f"contrast {text['contrast']}: {text['text']!r}")
    buttons = page.evaluate(
        """() => [...document.querySelectorAll('button')].filter((b) => b.offsetParent)
             .map((b) => ({text: b.textContent.trim(), height: b.getBoundingClientRect().height,
                           width: b.getBoundingClientRect().width,
                           room: b.parentElement.getBoundingClientRect().width,
                           option: !!b.closest('.options')}))"""
    )
    for button in buttons:
        if button["height"] < 48:
            problems.append(f"{button['height']} px high: {button['text']!r}")
        if button["option"] and button["width"] < button["room"] - 1:
            problems.append(f"not full width: {button['text']!r}")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    assert problems == []
    # The step's picture in view; with larger text, the step's text.
    step = page.locator("#chat article.bot").last if big else image
    step.evaluate("(e) => e.scrollIntoView()")
    page.screenshot(path=shots / ("webchat-step-large.png" if big else "webchat-step.png"))
    page.context.close()


def weight(page: Any, document: bytes) -> dict[str, int]:
    """Bytes of the page and of everything it loads (its style, its script, its pictures),
    each fetched again, so that nothing counts as cached."""
    sizes = {"page": len(document)}
    urls = page.evaluate(
        "() => [...document.querySelectorAll('link[rel=stylesheet], script[src], img')]"
        ".map((e) => e.href || e.src)"
    )
    for url in urls:
        sizes[url.rsplit("/", 1)[-1]] = len(page.request.get(url).body())
    return sizes


def test_a_page_with_a_picture_weighs_under_100_kb(browser: Any, served: Served) -> None:
    page = phone(browser, js=False)
    _to_step_three(page, served)
    page.goto(f"{served.base}/chat")
    with page.expect_navigation() as loaded:
        tap(page, "▶️ Tiếp tục")  # back at step 3: its picture again
    page.locator("#chat img").last.wait_for()
    sizes = weight(page, loaded.value.body())
    assert len(sizes) == 4, sizes
    assert sum(sizes.values()) < 100_000, sizes
    page.context.close()
    page = phone(browser)
    first = page.goto(f"{served.base}/chat")
    sizes = weight(page, first.body())
    assert sum(sizes.values()) < 30_000, sizes
    page.context.close()


def test_read_aloud_uses_the_phones_vietnamese_voice_and_sends_nothing(
    browser: Any, served: Served, shots: Path
) -> None:
    quiet = phone(browser)
    quiet.goto(f"{served.base}/chat")
    tap(quiet, "▶️ Bắt đầu")
    wait_for(quiet, "KHÔNG BAO GIỜ")
    assert quiet.locator(".say:visible").count() == 0, "no Vietnamese voice: no button"
    quiet.context.close()
    page = phone(browser, voice=True)
    page.goto(f"{served.base}/chat")
    assert page.get_by_text("để điện thoại đọc to").is_visible(), "the first page tells of it"
    page.screenshot(path=shots / "webchat-start.png")
    tap(page, "▶️ Bắt đầu")
    wait_for(page, "KHÔNG BAO GIỜ")
    listen = page.get_by_role("button", name="🔊 Nghe")
    assert listen.count() == 1, "one for each message (greeting, promise and menu are one)"
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    listen.nth(0).click()
    spoken = page.evaluate("() => window.spoken")
    assert len(spoken) == 1
    assert spoken[0]["lang"] == "vi-VN"
    assert spoken[0]["voice"] == "vi-VN"
    assert "KHÔNG BAO GIỜ hỏi ảnh căn cước" in spoken[0]["text"]
    assert "🔒" not in spoken[0]["text"], "emoji are not read out"
    assert page.get_by_role("button", name="⏹ Dừng đọc").count() == 1
    assert requests == [], "read on the phone: nothing sent anywhere"
    page.context.close()


def test_a_person_with_only_zalo_scans_the_code_and_finishes_the_guide(
    browser: Any, served: Served, shots: Path, content: Content
) -> None:
    """The issue's "done when": where the deployment has a public web address (config.toml's
    deployment.web_url), the QR code of a volunteer's poster -- decoded from the printed
    page, as a phone's camera reads it -- opens the web chat in Zalo's browser; with larger
    text, the person goes through the nine steps (the two hard ones with their pictures) to
    the completion report, has it read aloud, and the volunteer is counted once."""
    config = load_config(Path(served.env["BOT_CONFIG"]))
    assert config.web_url, "the deployment has a public web address"
    texts = printing.load_print_texts(content)
    link = printing.volunteer_link(config, served.volunteer)
    poster = printing.poster_pdf(
        content, texts, config, config.communes[0], link, served.volunteer
    )
    (scanned,) = qr_codes(render(poster))
    assert scanned == f"{config.web_url}/chat?ref={served.volunteer}"
    before, done_before = referrals(served), completions(served)
    page = phone(browser, voice=True)
    page.goto(scanned)
    tap(page, "🔎 Chữ to hơn")
    tap(page, "▶️ Bắt đầu")
    wait_for(page, "KHÔNG BAO GIỜ hỏi ảnh căn cước")
    for label in ("📱 Hướng dẫn cài từng bước", "✅ Tôi có đủ, bắt đầu", "VNPT SmartCA",
                  "Android (Samsung, Oppo, Xiaomi…)", "📱 Bắt đầu cài"):  # fmt: skip
        tap(page, label)
    for step in range(1, 10):
        wait_for(page, f"Bước {step}/9")
        tap(page, "✅ Xong")
    wait_for(page, "Cảm ơn bạn đã cài chữ ký số!")
    tap(page, "✅ Đồng ý")
    wait_for(page, "Bạn thuộc xã (phường) nào?")  # this deployment serves three communes
    page.get_by_role("button", name=re.compile(config.communes[0].name)).last.click()
    wait_for(page, "Bạn ở thôn (khu phố) nào")
    tap(page, "Thôn Đông Hòa (mẫu)")
    wait_for(page, "có đang sống ở")
    tap(page, "Có, đang sống ở đây")
    wait_for(page, "Đã ghi nhận!")
    wait_for(page, f"{config.web_url}/chat")  # the link to share with family, that of the web
    assert page.evaluate("() => document.documentElement.classList.contains('big')")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    alts = [i.get_attribute("alt") or "" for i in page.locator("#chat img").all()]
    assert len(alts) == 3, "the card's picture on its two steps, the face check's on one"
    assert alts[0].startswith("Hình mẫu chụp căn cước")
    page.locator("#chat article.bot").last.evaluate("(e) => e.scrollIntoView()")
    page.screenshot(path=shots / "webchat-complete-large.png")
    # Read aloud on the phone: the completion message, in the phone's Vietnamese voice.
    page.locator("#chat article.bot").last.get_by_role("button", name="🔊 Nghe").click()
    spoken = page.evaluate("() => window.spoken")
    assert "Đã ghi nhận!" in spoken[-1]["text"]
    assert spoken[-1]["lang"] == "vi-VN"
    assert referrals(served) == before + 1, "the volunteer counted once"
    assert completions(served) == done_before + 1, "the report counted"
    page.context.close()
