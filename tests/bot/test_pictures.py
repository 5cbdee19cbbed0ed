"""The install-step pictures: they render, stay small, carry alt text, and bad specs are caught."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from matplotlib.ft2font import FT2Font
from PIL import Image, ImageChops

from bot.content import ContentError
from bot.pictures import (
    MAX_PNG_BYTES,
    MAX_SVG_BYTES,
    SVG_NS,
    WIDTH,
    Pictures,
    PictureSpec,
    check_specs,
    check_svg,
    expected_size,
    font_files,
    load_pictures,
    render_cached,
    render_png,
)
from tests.conftest import ROOT

DOCS = ROOT / "docs" / "pictures"
IMAGES = ROOT / "content" / "vi" / "images"

#: A minimal valid picture: a viewBox, a shape, a text, an internal reference.
GOOD_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
    'viewBox="0 0 200 100"><defs><rect id="r" width="80" height="40" fill="#c62828"/></defs>'
    '<use xlink:href="#r" x="10" y="10"/><text x="100" y="80" font-size="30">OK</text></svg>'
)


def test_the_two_hard_steps_have_their_pictures(pictures: Pictures) -> None:
    card, face = pictures.for_step("cccd_front"), pictures.for_step("face")
    assert card is not None
    assert face is not None
    assert card.id == "cccd_photo"
    assert pictures.for_step("cccd_back") is card
    assert face.id == "face_check"
    assert pictures.for_step("store") is None
    assert pictures.for_step("no_such_step") is None
    assert pictures.get("face_check") is face
    assert len(pictures) == 2


def test_every_picture_renders_to_a_small_png_of_the_expected_size(pictures: Pictures) -> None:
    for picture in pictures:
        with Image.open(io.BytesIO(picture.png)) as image:
            image.load()
            assert image.format == "PNG"
            assert image.size == (picture.width, picture.height)
        assert (picture.width, picture.height) == expected_size(picture.svg) == (WIDTH, 1280)
        assert len(picture.png) < MAX_PNG_BYTES, picture.id
        assert len(picture.svg) < MAX_SVG_BYTES, picture.id
        assert re.fullmatch(r"[0-9a-f]{16}", picture.digest)


def test_the_pictures_are_not_blank(pictures: Pictures) -> None:
    """Each quarter of the grid holds a drawing (a missing <use> target draws nothing)."""
    for picture in pictures:
        with Image.open(io.BytesIO(picture.png)) as image:
            rgb = image.convert("RGB")
        for x in (0, rgb.width // 2):
            for y in (0, rgb.height // 2):
                quarter = rgb.crop((x, y, x + rgb.width // 2, y + rgb.height // 2))
                colours = quarter.getcolors(maxcolors=100_000)
                assert colours is not None
                assert len(colours) > 20, (picture.id, x, y)


def test_alt_texts_stand_on_their_own(pictures: Pictures) -> None:
    for picture in pictures:
        sentences = [s for s in re.split(r"[.!?]\s+", picture.alt.strip().rstrip(".")) if s]
        assert 2 <= len(sentences) <= 4, (picture.id, sentences)
        assert 80 <= len(picture.alt) <= 400, picture.id
        assert "\n" not in picture.alt, picture.id


def test_every_letter_in_the_pictures_is_in_the_font() -> None:
    """Text is drawn with DejaVu Sans; a letter it lacks would show as an empty box."""
    charmaps = [FT2Font(path).get_charmap() for path in font_files()]
    for svg in IMAGES.glob("*.svg"):
        texts = [e.text or "" for e in ET.parse(svg).iter(f"{SVG_NS}text")]
        assert texts, svg.name
        for letter in set("".join(texts)) - {" "}:
            assert all(ord(letter) in cmap for cmap in charmaps), (svg.name, letter)


def test_text_is_drawn_without_any_system_font() -> None:
    """The fonts are passed explicitly (system fonts are skipped), so text shows up."""
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 200 100">'
        '<text x="10" y="80" font-size="80" font-family="DejaVu Sans">\u0110\u1ec6</text></svg>'
    )
    png, _, _ = render_png(svg.encode(), width=200)
    with Image.open(io.BytesIO(png)) as image:
        dark = sum(image.convert("L").histogram()[:100])
    assert dark > 500


def test_rendering_twice_gives_identical_bytes() -> None:
    for svg in IMAGES.glob("*.svg"):
        data = svg.read_bytes()
        assert render_png(data) == render_png(data), svg.name


def test_the_committed_pngs_match_the_svgs(pictures: Pictures) -> None:
    """docs/pictures/ shows what the bot sends: regenerate with `python -m bot pictures --out
    docs/pictures` after drawing. Compared by pixels, so a newer renderer's rounding passes."""
    for picture in pictures:
        path = DOCS / f"{picture.id}.png"
        assert path.is_file(), f"{path} is missing"
        with Image.open(path) as committed, Image.open(io.BytesIO(picture.png)) as fresh:
            assert committed.size == fresh.size, picture.id
            diff = ImageChops.difference(committed.convert("L"), fresh.convert("L"))
            changed = sum(diff.histogram()[33:])
        assert changed < 0.005 * picture.width * picture.height, (picture.id, changed)


# --- the checks ----------------------------------------------------------------------------


def _spec(**changes: object) -> PictureSpec:
    fields: dict[str, object] = {
        "id": "good",
        "file": "good.svg",
        "alt": "A picture.",
    }
    fields.update(changes)
    return PictureSpec(**fields)  # type: ignore[arg-type]


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "good.svg").write_text(GOOD_SVG, encoding="utf-8")
    return folder


def test_a_good_spec_passes(images: Path) -> None:
    assert check_specs([_spec()], images, {"good"}) == []
    assert check_svg(GOOD_SVG.encode()) == []


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        (_spec(id="unused"), "no install step shows it"),
        (_spec(alt=""), "empty alt text"),
        (_spec(file="gone.svg"), "missing file"),
        (_spec(file="../good.svg"), "must be a plain NAME.svg"),
        (_spec(file="good.png"), "must be a plain NAME.svg"),
        (_spec(id="Bad Id"), "lower-case token"),
    ],
)
def test_a_bad_spec_is_caught(images: Path, spec: PictureSpec, problem: str) -> None:
    problems = check_specs([spec], images, {"good", "Bad Id"})
    assert any(problem in p for p in problems), problems


def test_ids_are_unique(images: Path) -> None:
    problems = check_specs([_spec(), _spec()], images, {"good"})
    assert any("listed twice" in p for p in problems), problems


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ('<use href="http://example.org/a.svg#x"/>', "links to an external resource"),
        ('<use xlink:href="file:///etc/passwd"/>', "links to an external resource"),
        ('<use xlink:href="other.svg#x"/>', "links to an external resource"),
        ('<image href="data:image/png;base64,iVBORw0KGgo=" width="5" height="5"/>', "<image>"),
        ('<image xlink:href="photo.jpg" width="5" height="5"/>', "embeds an image"),
        ('<rect width="5" height="5" fill="url(http://example.org/p)"/>', "external resource"),
        ('<rect width="5" height="5" style="fill: url(\'file:///x\')"/>', "external resource"),
        ("<style>@import url(http://example.org/a.css);</style>", "imports a stylesheet"),
        ("<foreignObject><p>hi</p></foreignObject>", "non-SVG content"),
        ("<script>alert(1)</script>", "holds a script"),
    ],
)
def test_an_svg_that_reaches_outside_or_embeds_a_raster_is_caught(
    images: Path, body: str, problem: str
) -> None:
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'viewBox="0 0 10 10">{body}</svg>'
    )
    assert any(problem in p for p in check_svg(svg.encode())), check_svg(svg.encode())
    (images / "bad.svg").write_text(svg, encoding="utf-8")
    problems = check_specs([_spec(id="bad", file="bad.svg")], images, {"bad"})
    assert any(problem in p for p in problems), problems


@pytest.mark.parametrize(
    ("svg", "problem"),
    [
        ('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', "viewBox"),
        ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 0 10"/>', "viewBox"),
        ("<svg viewBox='0 0 10 10'/>", "SVG namespace"),
        ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">', "not valid XML"),
        (
            '<!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">&x;</svg>',
            "DOCTYPE",
        ),
        (
            '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><!--'
            + "x" * MAX_SVG_BYTES
            + "--></svg>",
            "at most",
        ),
    ],
)
def test_a_malformed_svg_is_caught(svg: str, problem: str) -> None:
    problems = check_svg(svg.encode())
    assert any(problem in p for p in problems), problems


def _content_root(tmp_path: Path, toml: str, svg: str = GOOD_SVG) -> Path:
    folder = tmp_path / "content" / "vi"
    (folder / "images").mkdir(parents=True)
    (folder / "images" / "good.svg").write_text(svg, encoding="utf-8")
    (folder / "images.toml").write_text(toml, encoding="utf-8")
    return tmp_path / "content"


def test_load_pictures_refuses_bad_content(tmp_path: Path) -> None:
    toml = '[[picture]]\nid = "good"\nfile = "good.svg"\nalt = ""\n'
    root = _content_root(tmp_path, toml)
    with pytest.raises(ContentError) as error:
        load_pictures("vi", root, shown={"face": "other"})
    assert "no install step shows it" in str(error.value)
    assert "empty alt text" in str(error.value)


def test_load_pictures_refuses_a_png_over_the_limit(tmp_path: Path) -> None:
    """Noise does not compress: the limit is checked on the PNG actually rendered."""
    noise = (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100">'
        '<filter id="n"><feTurbulence baseFrequency="0.9" numOctaves="3"/></filter>'
        '<rect width="100" height="100" filter="url(#n)"/></svg>'
    )
    toml = '[[picture]]\nid = "good"\nfile = "good.svg"\nalt = "Noise."\n'
    root = _content_root(tmp_path, toml, noise)
    with pytest.raises(ContentError, match="at most 100000"):
        load_pictures("vi", root, shown={"face": "good"})


def test_load_pictures_renders_a_good_spec_at_the_asked_width(tmp_path: Path) -> None:
    toml = '[[picture]]\nid = "good"\nfile = "good.svg"\nalt = "A red box."\n'
    root = _content_root(tmp_path, toml)
    pictures = load_pictures("vi", root, shown={"face": "good"}, width=400)
    picture = pictures.for_step("face")
    assert picture is not None
    assert (picture.width, picture.height) == (400, 200)
    assert picture.alt == "A red box."
    assert picture.svg == GOOD_SVG.encode()
    with Image.open(io.BytesIO(picture.png)) as image:
        assert image.size == (400, 200)
        # the <use> of the red box drew it: the pixel at its centre is red
        red, green, blue = image.convert("RGB").getpixel((100, 60))  # type: ignore[misc]
        assert red > 180 > green + 80
        assert blue < 100


def test_a_rendering_is_kept_and_a_bad_kept_file_is_rendered_again(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = render_cached(GOOD_SVG.encode(), 200, cache)
    assert first == render_png(GOOD_SVG.encode(), 200)
    [kept] = cache.glob("*.png")
    assert kept.read_bytes() == first[0]
    kept.write_bytes(render_png(GOOD_SVG.encode(), 100)[0])  # another size: not trusted
    assert render_cached(GOOD_SVG.encode(), 200, cache) == first
    kept.write_bytes(b"not a picture")
    assert render_cached(GOOD_SVG.encode(), 200, cache) == first
    assert kept.read_bytes() == first[0], "written again"
    other = render_cached(GOOD_SVG.replace("OK", "KO").encode(), 200, cache)
    assert other != first
    assert len(list(cache.glob("*.png"))) == 2, "a changed SVG is another key"
    (tmp_path / "ro").write_text("a file where the folder should be")
    assert render_cached(GOOD_SVG.encode(), 200, tmp_path / "ro") == first, "no cache: rendered"
