"""Pictures for the hardest install steps, drawn as SVG and sent as PNG.

``content/<locale>/images.toml`` lists each picture: its id, its SVG file in
``content/<locale>/images/`` and its alt text (what the terminal chat prints and screen readers
read). The flow names the picture of an install step (``flow.toml``, ``[[install]] picture``:
the one source of truth; :mod:`bot.content` checks the name). :func:`load_pictures` checks the
specs and renders every SVG to PNG once, so a channel only ever sends bytes it already holds.

Rendering uses resvg (the ``resvg-py`` wheel: self-contained, no system library) with the DejaVu
Sans files that matplotlib ships, given explicitly and with system fonts skipped: every
Vietnamese letter renders, and the same input gives the same bytes on every machine. The RGBA
output is then reduced to a 256-colour palette with Pillow: flat drawings lose nothing visible
and the PNG shrinks to about 40 % (about 60 kB at 1080 px wide instead of about 160 kB).
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import re
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.content import CONTENT_ROOT, ContentError
from bot.folders import private_folder

#: Pixel width of every PNG: sharp on a 1080 px wide phone screen, and a 360 px wide screen
#: scales it by 1/3, which is what the SVGs' text sizes (60 and 40 units) are drawn for.
WIDTH = 1080
#: Telegram, Zalo and the web page each send the PNG as is; over 100 kB is slow on a weak
#: rural connection.
MAX_PNG_BYTES = 100_000
#: Hand-drawn SVGs are a few kB; a bigger one has probably had a drawing pasted in.
MAX_SVG_BYTES = 32_000
#: A palette PNG: enough for anti-aliased flat colours and soft gradients.
PALETTE_COLOURS = 256

SVG_NS = "{http://www.w3.org/2000/svg}"
#: Elements that pull in raster images, other documents or code.
FORBIDDEN_ELEMENTS = {
    "image": "embeds an image",
    "foreignObject": "embeds non-SVG content",
    "script": "holds a script",
    "feImage": "embeds an image",
}
_URL_RE = re.compile(r"url\(\s*['\"]?([^'\")]*)")


def font_files() -> list[str]:
    """DejaVu Sans (regular and bold) as shipped by matplotlib, a dependency already.

    Found without importing matplotlib (that import alone costs about 0.35 s at start-up);
    the folder is what ``matplotlib.get_data_path()`` returns.
    """
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or spec.origin is None:
        raise ContentError("matplotlib is not installed: no DejaVu Sans for the pictures")
    folder = Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf"
    files = [folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise ContentError(f"font files missing: {missing}")
    return [str(f) for f in files]


@dataclass(frozen=True, slots=True)
class PictureSpec:
    """One entry of ``images.toml``."""

    id: str
    file: str
    alt: str


@dataclass(frozen=True, slots=True)
class Picture:
    """A rendered picture: the PNG to send, the SVG it came from, and the alt text."""

    id: str
    alt: str
    png: bytes
    svg: bytes
    width: int
    height: int
    #: The install steps that show it (as the flow names them).
    steps: tuple[str, ...] = ()
    #: The first 16 hex digits of the PNG's SHA-256: for a cache-busting URL or an ETag.
    digest: str = ""


class Pictures:
    """The rendered pictures of one locale, by id and by install step."""

    def __init__(self, pictures: Collection[Picture]) -> None:
        self._by_id = {p.id: p for p in pictures}
        self._by_step = {step: p for p in pictures for step in p.steps}

    def for_step(self, step_id: str) -> Picture | None:
        """The picture to show with install step ``step_id``, if it has one."""
        return self._by_step.get(step_id)

    def get(self, picture_id: str) -> Picture | None:
        return self._by_id.get(picture_id)

    def __iter__(self) -> Iterator[Picture]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)


def load_pictures(
    locale: str = "vi",
    root: Path = CONTENT_ROOT,
    *,
    shown: Mapping[str, str] | None = None,
    width: int = WIDTH,
    cache: Path | None = None,
) -> Pictures:
    """Check ``content/<locale>/images.toml`` and render every picture to PNG.

    ``shown``: install step id -> the picture it shows; by default, as the locale's flow
    names them. ``cache``: a folder keeping each rendering (:func:`render_cached`), so that a
    restarted process or another worker does not render again. Raises
    :class:`ContentError` on a bad spec, a picture no step shows, or an SVG that breaks the
    rules.
    """
    folder = root / locale
    if shown is None:
        from bot.content import load_content

        shown = {s.id: s.picture for s in load_content(locale, root).install if s.picture}
    specs = load_specs(folder / "images.toml")
    problems = check_specs(specs, folder / "images", set(shown.values()))
    if problems:
        raise ContentError(f"content/{locale}/images.toml: " + "; ".join(problems))
    pictures = []
    for spec in specs:
        svg = (folder / "images" / spec.file).read_bytes()
        png, w, h = render_cached(svg, width, cache) if cache else render_png(svg, width)
        if len(png) > MAX_PNG_BYTES:
            raise ContentError(
                f"picture {spec.id!r}: the PNG is {len(png)} bytes (at most {MAX_PNG_BYTES})"
            )
        digest = hashlib.sha256(png).hexdigest()[:16]
        steps = tuple(step for step, picture in shown.items() if picture == spec.id)
        pictures.append(Picture(spec.id, spec.alt, png, svg, w, h, steps, digest))
    return Pictures(pictures)


def load_specs(path: Path) -> tuple[PictureSpec, ...]:
    """The ``[[picture]]`` entries of ``images.toml`` (no file is opened but this one)."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ContentError(f"missing content file {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ContentError(f"{path}: not valid TOML: {exc}") from exc
    return tuple(_spec(entry) for entry in raw.get("picture", []))


def _spec(raw: dict[str, Any]) -> PictureSpec:
    return PictureSpec(
        id=str(raw.get("id", "")),
        file=str(raw.get("file", "")),
        alt=str(raw.get("alt", "")).strip(),
    )


def check_specs(specs: Collection[PictureSpec], images: Path, shown: Collection[str]) -> list[str]:
    """Every problem with ``specs``: ids, alt texts, files, what the SVGs hold, and pictures
    that no install step shows (``shown``: the ids the flow names)."""
    problems: list[str] = []
    seen_ids: set[str] = set()
    for spec in specs:
        where = f"picture {spec.id!r}"
        if not re.fullmatch(r"[a-z][a-z0-9_]*", spec.id):
            problems.append(f"{where}: the id must be a lower-case token")
        if spec.id in seen_ids:
            problems.append(f"{where}: listed twice")
        seen_ids.add(spec.id)
        if not spec.alt:
            problems.append(f"{where}: empty alt text")
        if spec.id not in shown:
            problems.append(f"{where}: no install step shows it (flow.toml, `picture`)")
        # A bare file name: a picture cannot point outside content/<locale>/images/.
        if not re.fullmatch(r"[A-Za-z0-9_-]+\.svg", spec.file):
            problems.append(f"{where}: file {spec.file!r} must be a plain NAME.svg")
            continue
        path = images / spec.file
        if not path.is_file():
            problems.append(f"{where}: missing file {path}")
            continue
        problems += [f"{where}: {p}" for p in check_svg(path.read_bytes())]
    return problems


def check_svg(svg: bytes) -> list[str]:
    """Why ``svg`` may not be shown: external references, embedded images, size, no viewBox.

    A picture must draw the same everywhere and fetch nothing: resvg and a browser would
    otherwise load ``href``/``url()`` targets from files or the network.
    """
    if len(svg) > MAX_SVG_BYTES:
        return [f"the SVG is {len(svg)} bytes (at most {MAX_SVG_BYTES})"]
    if b"<!DOCTYPE" in svg or b"<!ENTITY" in svg:
        return ["the SVG declares a DOCTYPE or entities"]
    try:
        svg_root = ET.fromstring(svg)
    except ET.ParseError as exc:
        return [f"not valid XML: {exc}"]
    if svg_root.tag != f"{SVG_NS}svg":
        return ["the root element is not <svg> in the SVG namespace"]
    problems = []
    if _view_box(svg_root) is None:
        problems.append("the <svg> element needs a viewBox of four numbers")
    for element in svg_root.iter():
        name = element.tag.removeprefix(SVG_NS)
        if name in FORBIDDEN_ELEMENTS:
            problems.append(f"<{name}> {FORBIDDEN_ELEMENTS[name]}")
        for attr, value in element.attrib.items():
            if attr.rsplit("}", 1)[-1] == "href" and not value.startswith("#"):
                problems.append(f"<{name}> links to an external resource {value[:60]!r}")
            problems += [
                f"<{name}> {attr}= refers to an external resource {target[:60]!r}"
                for target in _URL_RE.findall(value)
                if not target.strip().startswith("#")
            ]
        if name == "style" and element.text:
            if "@import" in element.text:
                problems.append("<style> imports a stylesheet")
            problems += [
                f"<style> refers to an external resource {target[:60]!r}"
                for target in _URL_RE.findall(element.text)
                if not target.strip().startswith("#")
            ]
    return problems


def _view_box(svg_root: ET.Element) -> tuple[float, float, float, float] | None:
    try:
        x, y, w, h = (float(v) for v in svg_root.get("viewBox", "").replace(",", " ").split())
    except ValueError:
        return None
    return (x, y, w, h) if w > 0 and h > 0 else None


def render_png(svg: bytes, width: int = WIDTH) -> tuple[bytes, int, int]:
    """``svg`` as a palette PNG ``width`` pixels wide: ``(png, width, height)``.

    Deterministic: the fonts are given explicitly, nothing else is read.
    """
    import resvg_py
    from PIL import Image

    rgba = resvg_py.svg_to_bytes(
        svg_string=svg.decode("utf-8"),
        width=width,
        # White under anything transparent: Telegram's dark theme shows transparency as black.
        background="#ffffff",
        skip_system_fonts=True,
        font_files=font_files(),
        font_family="DejaVu Sans",
        sans_serif_family="DejaVu Sans",
    )
    with Image.open(io.BytesIO(rgba)) as image:
        palette = image.convert("RGB").quantize(
            colors=PALETTE_COLOURS, method=Image.Quantize.MEDIANCUT
        )
    out = io.BytesIO()
    palette.save(out, format="PNG", optimize=True)
    return out.getvalue(), palette.width, palette.height


def render_cached(svg: bytes, width: int, cache: Path) -> tuple[bytes, int, int]:
    """:func:`render_png`, kept in ``cache`` under a key of everything the bytes depend on
    (the SVG, the width, the palette, the versions of resvg and Pillow, the font files):
    rendering costs about 1.2 s a picture, reading it back a millisecond. A cache that
    cannot be read or written is rendered around, and a kept file is used only if it is a
    PNG of the expected size."""
    from importlib.metadata import version

    from PIL import Image

    parts = [svg, f"{width}:{PALETTE_COLOURS}".encode()]
    parts += [version("resvg-py").encode(), version("pillow").encode()]
    parts += [f"{f}:{Path(f).stat().st_size}".encode() for f in font_files()]
    key = hashlib.sha256(b"".join(hashlib.sha256(p).digest() for p in parts)).hexdigest()
    path = cache / f"{key[:32]}.png"
    size = expected_size(svg, width)
    try:
        kept = path.read_bytes()
        with Image.open(io.BytesIO(kept)) as image:
            if image.format == "PNG" and image.size == size:
                return kept, *size
    except (OSError, ValueError):
        pass  # not there yet, or not a picture: rendered again
    png, w, h = render_png(svg, width)
    try:
        private_folder(cache)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_bytes(png)
        partial.replace(path)  # whole or not at all, whichever worker writes last
    except OSError:
        pass  # a read-only folder: rendered at every start, as without a cache
    return png, w, h


def expected_size(svg: bytes, width: int = WIDTH) -> tuple[int, int]:
    """The pixel size :func:`render_png` gives ``svg``: ``width`` by the viewBox's ratio."""
    view_box = _view_box(ET.fromstring(svg))
    if view_box is None:
        raise ContentError("the <svg> element needs a viewBox of four numbers")
    _, _, w, h = view_box
    return width, round(width * h / w)
