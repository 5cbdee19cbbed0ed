"""The printed poster and step card, read back as a person and a phone would read them.

Each PDF is checked as a file (one A4 page; its text, extracted with pypdf, has the Vietnamese
letters intact) and as a picture (rendered with pdfium; its QR code decoded with zxing-cpp, as
a phone camera would). ``SCREENSHOTS=docs/screenshots`` saves the renderings as PNG.
"""

from __future__ import annotations

import io
import os
import shutil
import tomllib
import unicodedata
from dataclasses import replace
from pathlib import Path
from typing import Any

import pypdf
import pypdfium2 as pdfium
import pytest
import zxingcpp
from PIL import Image

from bot import printing
from bot.config import Config, ConfigError, parse_config
from bot.content import CONTENT_ROOT, Content, ContentError
from tests.conftest import ROOT

#: A4 in PDF points (1/72 inch).
A4 = (595.28, 841.89)
CODE = "VK7M2QX"


@pytest.fixture(scope="module")
def texts(content: Content) -> printing.PrintTexts:
    return printing.load_print_texts(content)


def page_text(pdf: bytes) -> str:
    """The text of a one-page A4 PDF, composed, line breaks and runs of spaces as one space."""
    pages = pypdf.PdfReader(io.BytesIO(pdf)).pages
    assert len(pages) == 1
    box = pages[0].mediabox
    assert (round(float(box.width), 1), round(float(box.height), 1)) == (595.3, 841.9)
    return " ".join(unicodedata.normalize("NFC", pages[0].extract_text()).split())


def render(pdf: bytes, dpi: int = 150) -> Image.Image:
    document = pdfium.PdfDocument(pdf)
    try:
        image: Image.Image = document[0].render(scale=dpi / 72).to_pil()
    finally:
        document.close()
    return image


def qr_codes(image: Image.Image) -> list[str]:
    return [
        code.text
        for code in zxingcpp.read_barcodes(image)
        if code.format == zxingcpp.BarcodeFormat.QRCode
    ]


def save_screenshot(name: str, pdf: bytes) -> None:
    folder = os.environ.get("SCREENSHOTS")
    if folder:
        render(pdf, dpi=100).convert("L").save(Path(folder) / name, optimize=True)


def config_with(**changes: Any) -> Config:
    """The demo config with the first commune's entries changed."""
    raw = tomllib.loads((ROOT / "config.toml").read_text(encoding="utf-8"))
    support = {**raw["communes"][0]["support"], **changes.pop("support", {})}
    raw["communes"][0] = {**raw["communes"][0], **changes, "support": support}
    return parse_config(raw)


# --- the poster -----------------------------------------------------------------------------


def test_the_volunteer_poster_reads_right_and_its_qr_code_opens_their_link(
    content: Content, texts: printing.PrintTexts, config: Config
) -> None:
    link = printing.volunteer_link(config, CODE)
    pdf = printing.poster_pdf(content, texts, config, config.communes[0], link, CODE)
    text = page_text(pdf)
    for words in (
        "Xã Nông Cống, Thanh Hóa",  # the commune
        "Cài chữ ký số trên điện thoại",
        "Căn cước gắn chip",  # the readiness list
        "SIM đứng tên chính bạn",
        "KHÔNG BAO GIỜ hỏi ảnh căn cước",  # the privacy promise
        "Cảnh giác lừa đảo",
        "Bộ phận Một cửa – UBND xã Nông Cống",  # the support point
        f"mã {CODE}",  # for Zalo users, where a link cannot carry the code
    ):
        assert words in text
    printed = text.replace(" ?start=", "?start=")  # the link may break before "?start="
    assert "t.me/TroLyChuKySoDemoBot?start=VK7M2QX" in printed, "the link under the code"
    assert "{" not in text, "every placeholder filled"
    assert qr_codes(render(pdf)) == ["https://t.me/TroLyChuKySoDemoBot?start=VK7M2QX"]
    save_screenshot("poster.png", pdf)


def test_the_commune_poster_points_to_the_bot(
    content: Content, texts: printing.PrintTexts, config: Config
) -> None:
    link = printing.commune_link(config)
    pdf = printing.poster_pdf(content, texts, config, config.communes[0], link)
    text = page_text(pdf)
    assert "t.me/TroLyChuKySoDemoBot" in text
    assert "?start=" not in text
    assert "mã V" not in text, "no volunteer's code on the commune's poster"
    assert texts.poster["zalo"] in text
    # Read from a coarse picture (75 dpi), as from a cheap phone a step away.
    image = render(pdf, dpi=75)
    assert qr_codes(image) == ["https://t.me/TroLyChuKySoDemoBot"]


def test_with_a_public_web_address_the_posters_open_the_web_chat(
    content: Content, texts: printing.PrintTexts, config: Config
) -> None:
    """deployment.web_url in config.toml: the QR codes open the web chat, which a phone with
    only Zalo opens in Zalo's own browser; a volunteer's code rides in the link."""
    web = replace(config, web_url="https://chukyso.example.vn")
    link = printing.volunteer_link(web, CODE)
    assert link == f"https://chukyso.example.vn/chat?ref={CODE}"
    pdf = printing.poster_pdf(content, texts, web, web.communes[0], link, CODE)
    assert qr_codes(render(pdf)) == [link]
    text = page_text(pdf)
    assert "chukyso.example.vn/chat?ref=VK7M2QX" in text.replace(" ?ref=", "?ref=")
    assert texts.poster["zalo_web"] in text
    assert "t.me" not in text
    commune = printing.poster_pdf(content, texts, web, web.communes[0], printing.commune_link(web))
    assert qr_codes(render(commune, dpi=75)) == ["https://chukyso.example.vn/chat"]
    card = printing.step_card_pdf(content, texts, web, web.providers[0], web.communes[0])
    assert qr_codes(render(card)) == ["https://chukyso.example.vn/chat"]
    # A Telegram bot is not needed then.
    assert printing.commune_link(replace(web, bot_username="")) == web.chat_url
    save_screenshot("poster-web.png", pdf)


@pytest.mark.parametrize(
    "url",
    ["http://chukyso.example.vn", "chukyso.example.vn", "https://x.vn/?a=1", "ftp://x.vn"],
)
def test_a_web_address_that_is_not_one_is_refused(url: str) -> None:
    raw = tomllib.loads((ROOT / "config.toml").read_text(encoding="utf-8"))
    raw["deployment"]["web_url"] = url
    with pytest.raises(ConfigError, match="web_url"):
        parse_config(raw)
    raw["deployment"]["web_url"] = "https://chukyso.example.vn/"
    assert parse_config(raw).chat_url == "https://chukyso.example.vn/chat"


def test_the_qr_code_survives_damage(
    content: Content, texts: printing.PrintTexts, config: Config
) -> None:
    """A poster on a village board gets wet, torn and stapled: the code's error correction
    (level Q: about a quarter of it may be lost) keeps it readable."""
    link = printing.volunteer_link(config, CODE)
    image = render(printing.poster_pdf(content, texts, config, config.communes[0], link, CODE))
    codes = zxingcpp.read_barcodes(image)
    assert len(codes) == 1
    corners = codes[0].position
    left = min(corners.top_left.x, corners.bottom_left.x)
    right = max(corners.top_right.x, corners.bottom_right.x)
    top = min(corners.top_left.y, corners.top_right.y)
    bottom = max(corners.bottom_left.y, corners.bottom_right.y)
    # A stain in the middle: a white square of a third of its width (a ninth of its area).
    side = (right - left) // 3
    x, y = (left + right - side) // 2, (top + bottom - side) // 2
    image.paste((255, 255, 255), (x, y, x + side, y + side))
    assert qr_codes(image) == [link]


def test_the_pages_print_in_black_and_white(
    content: Content, texts: printing.PrintTexts, config: Config
) -> None:
    provider = config.providers[0]
    for pdf in (
        printing.poster_pdf(
            content, texts, config, config.communes[0], printing.commune_link(config)
        ),
        printing.step_card_pdf(content, texts, config, provider, config.communes[0]),
    ):
        image = render(pdf, dpi=50).convert("RGB")
        red, green, blue = image.split()
        assert red.tobytes() == green.tobytes() == blue.tobytes(), "no colour at all"
        # Mostly paper, and some real black (text, bars), not grey.
        histogram = image.convert("L").histogram()
        pixels = sum(histogram)
        assert sum(histogram[:32]) > 0.05 * pixels
        assert sum(histogram[224:]) > 0.5 * pixels


def test_a_long_support_address_shrinks_the_type_instead_of_adding_a_page(
    content: Content, texts: printing.PrintTexts
) -> None:
    address = "Trụ sở UBND xã Nông Cống, đường liên thôn số 4, gần chợ, tỉnh Thanh Hóa " * 3
    config = config_with(support={"address": address})
    pdf = printing.poster_pdf(
        content, texts, config, config.communes[0], printing.commune_link(config)
    )
    assert "đường liên thôn số 4" in page_text(pdf)  # one page, checked by page_text


def test_text_that_cannot_fit_is_a_clear_error(
    content: Content, texts: printing.PrintTexts
) -> None:
    config = config_with(support={"hours": "Thứ Hai đến Thứ Sáu, sáng và chiều. " * 60})
    with pytest.raises(printing.PrintError, match="does not fit on one A4 page"):
        printing.poster_pdf(
            content, texts, config, config.communes[0], printing.commune_link(config)
        )


def test_no_link_without_a_bot_username(content: Content) -> None:
    raw = tomllib.loads((ROOT / "config.toml").read_text(encoding="utf-8"))
    raw["deployment"]["bot_username"] = ""
    with pytest.raises(printing.PrintError, match="bot_username"):
        printing.commune_link(parse_config(raw))


# --- the step card --------------------------------------------------------------------------


@pytest.mark.parametrize("provider_id", ["vnpt", "vneid"])
def test_the_step_card_lists_every_step_of_the_route_in_order(
    content: Content, texts: printing.PrintTexts, config: Config, provider_id: str
) -> None:
    provider = config.provider(provider_id)
    assert provider is not None
    pdf = printing.step_card_pdf(content, texts, config, provider, config.communes[0])
    text = page_text(pdf)
    route = content.install_steps(provider.kind)
    assert len(route) >= 5
    at = 0
    for number, install_step in enumerate(route, start=1):
        title = install_step.title.replace("{app}", provider.app)
        found = text.find(f"{number} {title}", at)
        assert found >= at, f"step {number} ({title}) missing or out of order"
        at = found
    steps = printing.card_steps(content, texts, config, provider)
    assert [s.id for s in steps] == [s.id for s in route]
    for step in steps:
        assert step.text in text, "the key instruction under each title"
    assert f"{len(route)} bước" in text
    assert "Không đọc cho ai" in text, "the one safety rule"
    assert "0000 000 000" in text, "the support point's phone"
    assert "{" not in text
    assert qr_codes(render(pdf)) == [printing.commune_link(config)]
    if provider_id == "vnpt":
        assert 'tìm "VNPT SmartCA". Nhà phát hành phải là VNPT.' in text, "placeholders filled"
        assert "CH Play (máy Android) hoặc App Store (iPhone)" in text, "either store"
        save_screenshot("stepcard.png", pdf)
    else:
        assert "Đăng nhập VNeID" in text
        assert "Chụp mặt trước căn cước" not in text, "no step of the other route"


def test_the_step_card_without_a_commune_names_no_support_point(
    content: Content, texts: printing.PrintTexts, config: Config
) -> None:
    pdf = printing.step_card_pdf(content, texts, config, config.providers[1])
    text = page_text(pdf)
    assert "Nông Cống" not in text
    assert texts.stepcard["support_none"] in text
    assert "Cài chữ ký số Viettel MySign" in text


def test_every_install_step_has_a_short_instruction(
    content: Content, texts: printing.PrintTexts
) -> None:
    assert set(texts.steps) == {step.id for step in content.install}
    for step_id, (text, _vneid) in texts.steps.items():
        assert len(text) <= 100, f"steps.{step_id}: one line or two on the card"


def test_a_step_missing_from_print_toml_prints_the_first_paragraph_of_its_chat_text(
    content: Content, texts: printing.PrintTexts, config: Config
) -> None:
    bare = printing.PrintTexts(texts.poster, texts.stepcard, steps={})
    provider = config.provider("vnpt")
    assert provider is not None
    first = printing.card_steps(content, bare, config, provider)[0]
    store = "CH Play (máy Android) hoặc App Store (iPhone)"
    assert first.text == f'Mở {store} trên điện thoại, tìm "VNPT SmartCA".'


# --- the texts ------------------------------------------------------------------------------


def copy_content(tmp_path: Path) -> Path:
    shutil.copytree(CONTENT_ROOT / "vi", tmp_path / "vi")
    return tmp_path / "vi" / "print.toml"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (("headline = ", "headline_old = "), "poster.headline is missing"),
        (('title = "Cài chữ ký số {provider}"', 'title = "{provider_name}"'), "{provider_name}"),
        (("[steps.face]", "[steps.selfie]"), "steps.selfie: no install step"),
        (('zalo = "', 'zalo = "{'), "broken braces"),
        (("chụp mặt sau như vậy.", "{link}"), "steps.cccd_back: unknown placeholder {link}"),
    ],
)
def test_print_toml_is_checked_when_loaded(
    content: Content, tmp_path: Path, change: tuple[str, str], problem: str
) -> None:
    path = copy_content(tmp_path)
    original = path.read_text(encoding="utf-8")
    assert change[0] in original
    path.write_text(original.replace(change[0], change[1], 1), encoding="utf-8")
    with pytest.raises(ContentError, match=problem.replace("{", r"\{").replace("}", r"\}")):
        printing.load_print_texts(content, root=tmp_path)


def test_text_is_composed_and_what_the_font_lacks_is_dropped() -> None:
    decomposed = unicodedata.normalize("NFD", "Chữ ký số")
    assert printing.clean(decomposed) == "Chữ ký số"
    assert printing.clean("🔒 Mã PIN  như chìa khóa 🔑") == "Mã PIN như chìa khóa"
