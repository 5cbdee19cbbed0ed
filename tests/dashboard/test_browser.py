"""The dashboard in a real browser (Chromium, headless) against the server of
``python -m bot serve``: as an official would use it, on a computer (1366x768) and on a phone
(360x740).

``SCREENSHOTS=docs/screenshots .venv/bin/python -m pytest tests/dashboard/test_browser.py``
renders the set shown in the README again.
"""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader

from bot.content import load_staff_texts
from bot.officials import WEB_LINK_TTL, Scope
from bot.stats import Formatter
from tests.bot.test_printing import qr_codes, render
from tests.dashboard.browser import DESKTOP, PHONE, TEXT_STYLES, UNLABELLED, Served, figures

NONG_CONG = Scope("communes", ("16279",))


def signed_in(
    browser: Any, served: Served, scope: Scope = NONG_CONG, size: dict[str, int] = DESKTOP
) -> Any:
    """A new browser (its own cookies) signed in with a fresh link: the page it lands on."""
    context = browser.new_context(viewport=size, locale="vi-VN")
    page = context.new_page()
    page.goto(served.link(scope))
    page.get_by_role("button", name="Vào trang số liệu").click()
    assert page.url == served.base + "/dashboard"
    return page


def test_the_login_link_shows_the_figures_of_stats_json(
    browser: Any, served: Served, shots: Path
) -> None:
    printed = served.cli("web-link", "--commune", "16279").strip().splitlines()
    assert "Xã Nông Cống (16279)" in printed[0]
    link = printed[-1]
    assert link.startswith(served.base + "/dashboard/login?t=")
    context = browser.new_context(viewport=DESKTOP, locale="vi-VN")
    page = context.new_page()
    page.goto(link)
    page.get_by_role("button", name="Vào trang số liệu").click()
    assert page.url == served.base + "/dashboard"
    cookie = next(c for c in context.cookies() if c["name"] == "cks_session")
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Strict"
    stats = json.loads(served.cli("stats", "--json", "--commune", "16279"))
    shown = figures(page)
    for key in ("completed", "adults_present", "coverage", "target_people", "gap",
                "pace_per_day"):  # fmt: skip
        assert shown[key] == str(stats[key]), key
    assert (stats["completed_self"], stats["completed_assisted"]) == (4, 1), "as filled"
    f = Formatter("vi", load_staff_texts("vi"))
    assert page.locator("#fig-completed").inner_text() == f.n(stats["completed"])
    assert page.locator("#fig-coverage").inner_text() == f.pct(stats["coverage"])
    assert (page.locator("svg#progress title").text_content() or "").startswith("Xã Nông Cống")
    page.screenshot(path=shots / "dashboard-overview.png")
    context.close()


def test_the_volunteers_page_shows_the_help_requests_of_stats_json(
    browser: Any, served: Served
) -> None:
    """Help requests as /stats counts them (not presses of "Gặp cán bộ"): taken, ended,
    installed, the median wait for someone to take one, and by helper."""
    page = signed_in(browser, served)
    page.goto(served.base + "/dashboard/volunteers")
    found = json.loads(served.cli("stats", "--json", "--commune", "16279"))["help_desk"]
    assert found == {
        "requests": 5, "open": 1, "claimed": 1, "taken": 4, "ended": 3, "installed": 2,
        "installed_share": 2 / 3, "median_claim_s": 15 * 60.0,
        "by_helper": [{"volunteer": served.volunteer, "taken": 3, "installed": 1},
                      {"volunteer": None, "taken": 1, "installed": 1}],
    }  # fmt: skip
    f = Formatter("vi", load_staff_texts("vi"))
    line = page.locator("#help-desk").inner_text()
    assert line.startswith(f"Người dân nhờ người giúp: {found['requests']} yêu cầu (đang chờ 1,")
    assert f"Đã có người nhận: {found['taken']}." in line
    assert f"Đã xong: 3, trong đó cài xong 2 ({f.pct(found['installed_share'])})" in line
    assert line.endswith("(trung vị): 15 phút.")
    cells = page.locator("#helpers tbody tr").all_inner_texts()
    assert [c.split("\t") for c in cells] == [
        [served.volunteer, "3", "1"],
        ["Cán bộ xã", "1", "1"],
    ]
    page.context.close()


def test_without_a_session_one_is_asked_to_get_a_link_in_the_bot(
    browser: Any, served: Served
) -> None:
    page = browser.new_page()
    page.goto(served.base + "/dashboard/villages")
    assert page.url == served.base + "/dashboard/signin"
    assert "/web" in page.locator("main").inner_text()
    page.close()


def test_another_communes_page_is_forbidden(browser: Any, served: Served) -> None:
    page = signed_in(browser, served)
    response = page.goto(served.base + "/dashboard/villages?commune=14797")
    assert response.status == 403
    assert "ngoài phạm vi" in page.locator("main").inner_text()
    page.context.close()


def login_status(page: Any, link: str) -> int:
    """Open a login link and press its button: the status of the sign-in itself."""
    page.goto(link)
    with page.expect_response(lambda r: r.request.method == "POST") as signed:
        page.get_by_role("button", name="Vào trang số liệu").click()
    status: int = signed.value.status
    return status


def test_an_expired_or_used_link_is_refused(browser: Any, served: Served) -> None:
    page = browser.new_page()
    old = served.link(NONG_CONG, age=WEB_LINK_TTL + timedelta(seconds=5))
    assert login_status(page, old) == 403
    assert "không dùng được" in page.locator("h1").inner_text()
    fresh = served.link(NONG_CONG)
    assert login_status(page, fresh) == 303
    assert page.url == served.base + "/dashboard"
    other = browser.new_page()  # someone else, with the same link
    assert login_status(other, fresh) == 403
    assert other.context.cookies() == []
    page.close()
    other.close()


def test_the_announcement_form_rejects_a_foreign_link(
    browser: Any, served: Served, shots: Path
) -> None:
    page = signed_in(browser, served, size=PHONE)
    page.goto(served.base + "/dashboard/announcements")
    page.get_by_label("Nội dung thông báo").fill("Cài ở bit.ly/cks-nhanh cho nhanh")
    page.get_by_role("button", name="Xem trước").click()
    alert = page.get_by_role("alert")
    assert "bit.ly" in alert.inner_text()
    assert page.get_by_label("Nội dung thông báo").input_value().startswith("Cài ở bit.ly")
    page.screenshot(path=shots / "dashboard-announcement-phone.png")
    page.get_by_label("Nội dung thông báo").fill("Chủ nhật 8 giờ, Nhà văn hóa thôn Đông Hòa.")
    page.get_by_role("button", name="Xem trước").click()
    assert "Gửi tới 1 người" in page.locator("main").inner_text()
    page.get_by_role("button", name="Gửi thông báo").click()
    assert "Đang gửi tới 1 người" in page.get_by_role("status").inner_text()
    page.context.close()


@pytest.mark.parametrize(("size", "name"), [(DESKTOP, "desktop"), (PHONE, "phone")])
def test_every_page_is_labelled_readable_and_legible(
    browser: Any, served: Served, shots: Path, size: dict[str, int], name: str
) -> None:
    page = signed_in(browser, served, Scope("province", ("38",)), size)
    problems = []
    for path in ("", "/villages", "/villages?commune=16279", "/funnel", "/volunteers",
                 "/announcements", "/downloads", "/report"):  # fmt: skip
        response = page.goto(served.base + "/dashboard" + path)
        assert response.status == 200, path
        problems += [f"{path}: no label for {field}" for field in page.evaluate(UNLABELLED)]
        for text in page.evaluate(TEXT_STYLES):
            large = text["size"] >= 24 or (text["bold"] and text["size"] >= 18.66)
            if text["contrast"] < (3 if large else 4.5):
                problems.append(f"{path}: contrast {text['contrast']} of {text['text']!r}")
            if name == "phone" and text["size"] < 16:
                problems.append(f"{path}: {text['size']} px {text['text']!r}")
        if path in ("/villages?commune=16279", "/funnel", "") and name == "desktop":
            slug = path.strip("/").split("?")[0] or "province"
            page.screenshot(path=shots / f"dashboard-{slug}.png")
        if path == "/villages" and name == "phone":
            page.screenshot(path=shots / "dashboard-villages-phone.png")
    assert problems == []
    page.context.close()


def test_the_weekly_report_prints_on_one_a4_page(
    browser: Any, served: Served, shots: Path
) -> None:
    page = signed_in(browser, served)
    page.goto(served.base + "/dashboard/report")
    pdf = page.pdf(format="A4", print_background=True)
    assert len(PdfReader(io.BytesIO(pdf)).pages) == 1
    text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert "Báo cáo tuần: Xã Nông Cống" in text
    assert "Đăng xuất" not in text, "no navigation on paper"
    render(pdf, dpi=60).convert("L").save(shots / "dashboard-report-a4.png", optimize=True)
    page.context.close()


def test_downloads_open_with_vietnamese_intact_and_the_poster_opens_the_bot(
    browser: Any, served: Served
) -> None:
    page = signed_in(browser, served)
    page.goto(served.base + "/dashboard/downloads")
    with page.expect_download() as spreadsheet:
        page.get_by_role("link", name="Tệp Excel (2 trang: theo thôn, theo ngày)").click()
    book = load_workbook(io.BytesIO(Path(spreadsheet.value.path()).read_bytes()))
    villages = list(book["Theo thôn"].iter_rows(values_only=True))
    dong_hoa = next(r for r in villages if r[2] == "dong-hoa")
    assert dong_hoa[1:4] == ("Xã Nông Cống", "dong-hoa", "Thôn Đông Hòa (mẫu)")
    done, present, coverage = (float(str(dong_hoa[i])) for i in (9, 5, 10))
    assert coverage == pytest.approx(done / present, abs=1e-4), "coverage computable"
    with page.expect_download() as poster:
        page.get_by_role("link", name="Áp phích A4 dán bảng tin: Xã Nông Cống").click()
    codes = qr_codes(render(Path(poster.value.path()).read_bytes()))
    # The deployment has a public web address: the commune's code opens the web chat.
    assert codes == [served.base.replace("127.0.0.1", "localhost") + "/chat"]
    page.context.close()
