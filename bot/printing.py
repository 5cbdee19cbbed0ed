"""Printed materials as PDF: the village notice-board poster and the door-to-door step card.

Every word printed comes from ``content/<locale>/print.toml`` (short versions of the chat
texts), the install steps of ``flow.toml`` and ``config.toml``; this module only lays them
out. It is pure: content, config and a link in, PDF bytes out (no database, no environment).

Library: fpdf2. It is pure Python (weasyprint needs Pango and other system libraries, and an
HTML detour for two fixed layouts), small, kept up, and it embeds the subset of a TTF font that
the page uses, so Vietnamese letters print the same on any printer. The font is DejaVu Sans,
which ships with matplotlib (already a dependency) and has every Vietnamese letter.

Both documents are one A4 page, black on white only (they get photocopied), laid out at the
largest scale that fits: a long commune name or support address makes the type a little
smaller instead of spilling onto a second page. The QR code is drawn as vector squares, so it
stays sharp however the page is printed. A weekly report can be added beside them on
:class:`Sheet`, with its texts in a new section of ``print.toml``.
"""

from __future__ import annotations

import string
import tomllib
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from bot.config import Commune, Config, Provider
from bot.content import CONTENT_ROOT, PLACEHOLDERS, Content, ContentError
from bot.pictures import font_files

# fpdf2, fontTools and segno are imported where a document is made: together about 1 s of
# CPU at the start of every process that imports this module (the bot's servers, for their
# posters and step cards), most of which never print anything.
if TYPE_CHECKING:
    from fpdf import FPDF

FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}
FAMILY = "DejaVuSans"
#: Placeholders of print.toml besides the chat's: the printed link and a volunteer's code.
PRINT_PLACEHOLDERS = PLACEHOLDERS | frozenset({"link", "code"})
POSTER_TEXTS = (
    "document_title", "place", "headline", "subline", "why_title", "need_title", "qr_title",
    "qr_app", "zalo_volunteer", "zalo", "qr_web", "zalo_web", "privacy_title", "privacy",
    "scam_title", "support_title", "support", "visit",
)  # fmt: skip
POSTER_LISTS = ("why", "need", "scam")
STEPCARD_TEXTS = (
    "title", "title_vneid", "subtitle", "need", "safety", "hotline", "support",
    "support_none", "qr",
)  # fmt: skip
#: The smallest scale a document may be laid out at: below it the instructions of the step
#: card (18 pt at full size) would drop under 12 pt, too small for the people it is for.
MIN_SCALE = 0.66
#: Room left on the page is shared out between a document's gaps, up to this much each (mm):
#: more would look like missing text.
MAX_SPREAD = 8.0
#: Millimetres per typographic point.
MM_PER_PT = 25.4 / 72


class PrintError(ValueError):
    """A document cannot be made (no link to print, text too long for its page...)."""


@dataclass(frozen=True, slots=True)
class Section:
    """One table of print.toml: single texts and lists of short lines."""

    texts: Mapping[str, str]
    lists: Mapping[str, tuple[str, ...]]

    def __getitem__(self, key: str) -> str:
        return self.texts[key]

    def items(self, key: str) -> tuple[str, ...]:
        return self.lists[key]


@dataclass(frozen=True, slots=True)
class PrintTexts:
    poster: Section
    stepcard: Section
    #: Install step id -> (short instruction, short instruction on the VNeID route or None).
    steps: Mapping[str, tuple[str, str | None]]


@dataclass(frozen=True, slots=True)
class CardStep:
    """One line of the step card: the step's title and its one key instruction."""

    id: str
    title: str
    text: str


def load_print_texts(content: Content, root: Path = CONTENT_ROOT) -> PrintTexts:
    """Read and check ``print.toml`` of ``content``'s locale."""
    path = root / content.locale / "print.toml"
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ContentError(f"missing content file: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ContentError(f"{path}: not valid TOML: {exc}") from exc
    problems: list[str] = []
    poster = _section(raw, "poster", POSTER_TEXTS, POSTER_LISTS, problems)
    stepcard = _section(raw, "stepcard", STEPCARD_TEXTS, (), problems)
    steps: dict[str, tuple[str, str | None]] = {}
    steps_raw = raw.get("steps", {})
    for step_id, table in steps_raw.items() if isinstance(steps_raw, dict) else ():
        if content.install_step(step_id) is None:
            problems.append(f"steps.{step_id}: no install step of that id in flow.toml")
        elif not isinstance(table, dict) or not isinstance(table.get("text"), str):
            problems.append(f"steps.{step_id}: a `text` is needed")
        else:
            vneid = table.get("text_vneid")
            steps[step_id] = (table["text"].strip(), str(vneid).strip() if vneid else None)
    texts = [*poster.texts.items(), *stepcard.texts.items()]
    texts += [
        (k, t) for section in (poster, stepcard) for k, v in section.lists.items() for t in v
    ]
    for where, text in texts:
        problems += _check_placeholders(text, where, PRINT_PLACEHOLDERS)
    for step_id, pair in steps.items():
        for text in filter(None, pair):  # filled as the chat fills the step's own text
            problems += _check_placeholders(text, f"steps.{step_id}", PLACEHOLDERS)
    if problems:
        raise ContentError(f"content/{content.locale}/print.toml: " + "; ".join(problems))
    return PrintTexts(poster=poster, stepcard=stepcard, steps=steps)


def _section(
    raw: dict[str, Any],
    name: str,
    keys: Sequence[str],
    list_keys: Sequence[str],
    problems: list[str],
) -> Section:
    table = raw.get(name, {})
    texts = {k: str(v).strip() for k, v in table.items() if isinstance(v, str)}
    lists = {k: tuple(str(i).strip() for i in v) for k, v in table.items() if isinstance(v, list)}
    problems += [f"{name}.{k} is missing" for k in keys if not texts.get(k)]
    problems += [f"{name}.{k} (a list) is missing" for k in list_keys if not lists.get(k)]
    return Section(texts, lists)


def _check_placeholders(text: str, where: str, allowed: frozenset[str]) -> list[str]:
    try:
        names = {field for _, field, _, _ in string.Formatter().parse(text) if field}
    except ValueError as exc:
        return [f"{where}: broken braces ({exc})"]
    return [f"{where}: unknown placeholder {{{n}}}" for n in sorted(names - allowed)]


# --- links and placeholders -----------------------------------------------------------------


def commune_link(config: Config) -> str:
    """The link to the bot that a commune prints (no volunteer's code in it): the web chat
    where the deployment has a public web address (it opens in Zalo's own browser, nothing
    to install), else the Telegram bot."""
    if config.chat_url:
        return config.chat_url
    if not config.bot_username:
        raise PrintError(
            "config.toml has neither deployment.web_url nor deployment.bot_username: "
            "no link to print"
        )
    return config.share_url


def volunteer_link(config: Config, code: str) -> str:
    """A volunteer's personal link: whoever opens it is counted as brought by them."""
    parameter = "ref" if config.chat_url else "start"
    return f"{commune_link(config)}?{parameter}={code}"


def display_link(link: str) -> str:
    """The link as printed for typing: without "https://", which browsers add themselves."""
    return link.removeprefix("https://")


def placeholders(
    config: Config, content: Content, commune: Commune | None, provider: Provider | None = None
) -> dict[str, str]:
    """The values of the chat's placeholders for a printed page, filled as the engine fills
    them for a citizen whose phone type is not known yet (so {store} names both stores)."""
    texts = content.texts
    values = {str(name): "" for name in PLACEHOLDERS}
    values.update(
        providers=", ".join(p.name for p in config.providers),
        share_url=config.share_url,
        store=texts.get("store_unknown", ""),
        hotline=texts["hotline_unknown"],
        delete_command=texts["delete_command"],
        consent_version=texts["consent_version"],
        retention_months=str(config.retention_months),
    )
    if provider is not None:
        values.update(
            app=provider.app,
            provider=provider.name,
            publisher=provider.publisher,
            site=provider.site,
            hotline=provider.hotline or texts["hotline_unknown"],
        )
    if commune is not None:
        values.update(
            commune=commune.name,
            province=commune.province,
            support_name=commune.support.name,
            support_address=commune.support.address,
            support_hours=commune.support.hours,
            support_phone=commune.support.phone,
        )
    return values


def card_steps(
    content: Content, texts: PrintTexts, config: Config, provider: Provider
) -> tuple[CardStep, ...]:
    """The install steps of ``provider``'s route, in order, each with its key instruction."""
    values = placeholders(config, content, None, provider)
    route = provider.kind
    steps = []
    for step in content.install_steps(route):
        short = texts.steps.get(step.id)
        if short is not None:
            text = short[1] if route == "vneid" and short[1] else short[0]
        else:
            text = step.text_for(route).split("\n\n")[0]
        title = step.title.format_map(values)
        steps.append(CardStep(step.id, title, text.format_map({**values, "title": title})))
    return tuple(steps)


# --- the page -------------------------------------------------------------------------------


@cache
def _glyphs() -> frozenset[int]:
    """The characters both fonts can draw."""
    from fontTools.ttLib import TTFont

    sets = []
    for name in FONT_FILES.values():
        font = TTFont(font_dir() / name, lazy=True)
        try:
            sets.append(frozenset(font.getBestCmap()))
        finally:
            font.close()
    return frozenset.intersection(*sets)


def clean(text: str) -> str:
    """Composed Vietnamese letters, without what the font cannot draw (the chat's emoji),
    spaces as the chat texts have them collapsed."""
    glyphs = _glyphs()
    kept = "".join(c for c in unicodedata.normalize("NFC", text) if ord(c) in glyphs or c == "\n")
    return "\n".join(" ".join(line.split()) for line in kept.split("\n"))


@cache
def font_dir() -> Path:
    """The folder of matplotlib's DejaVu Sans (:func:`bot.pictures.font_files`)."""
    return Path(font_files()[0]).parent


def new_pdf(title: str, lang: str) -> FPDF:
    """An empty A4 document with the fonts, placing in millimetres, no automatic page break."""
    from fpdf import FPDF

    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.c_margin = 0  # text starts exactly where it is placed
    for style, name in FONT_FILES.items():
        pdf.add_font(FAMILY, style, font_dir() / name)
    pdf.set_title(clean(title))
    pdf.set_lang(lang)
    pdf.set_creator("tro-ly-chu-ky-so")
    return pdf


class Sheet:
    """One A4 page being laid out: millimetres for places, points for type sizes (scaled).

    ``lowest`` is the bottom of everything drawn so far; the page is good when it stays
    inside the bottom margin."""

    WIDTH = 210.0
    HEIGHT = 297.0

    def __init__(self, pdf: FPDF, *, scale: float = 1.0, margin: float = 12.0) -> None:
        pdf.add_page()
        self.pdf = pdf
        self.scale = scale
        self.margin = margin
        self.lowest = margin

    @property
    def left(self) -> float:
        return self.margin

    @property
    def width(self) -> float:
        return self.WIDTH - 2 * self.margin

    @property
    def bottom(self) -> float:
        return self.HEIGHT - self.margin

    def fits(self) -> bool:
        return self.lowest <= self.bottom + 0.01

    def mm(self, length: float) -> float:
        """A length of the layout at this sheet's scale."""
        return length * self.scale

    def points(self, size: float, fixed: bool = False) -> float:
        """A type size at this sheet's scale (``fixed``: as given)."""
        return size if fixed else size * self.scale

    def line_height(self, size: float, leading: float = 1.25, fixed: bool = False) -> float:
        return self.points(size, fixed) * leading * MM_PER_PT

    def _font(self, size: float, bold: bool, fixed: bool = False) -> None:
        self.pdf.set_font(FAMILY, "B" if bold else "", self.points(size, fixed))

    def measure(
        self, text: str, w: float, size: float, *, bold: bool = False, leading: float = 1.25
    ) -> float:
        """The height ``text`` takes, wrapped to width ``w``."""
        self._font(size, bold)
        lines = self.pdf.multi_cell(
            w, self.line_height(size, leading), clean(text), dry_run=True, output="LINES"
        )
        assert isinstance(lines, list)
        return len(lines) * self.line_height(size, leading)

    def text_width(self, text: str, size: float, *, bold: bool = False) -> float:
        self._font(size, bold)
        return float(self.pdf.get_string_width(clean(text)))

    def write(
        self,
        text: str,
        x: float,
        y: float,
        w: float,
        size: float,
        *,
        bold: bool = False,
        align: str = "L",
        leading: float = 1.25,
        white: bool = False,
        wrap: Literal["WORD", "CHAR"] = "WORD",
        fixed: bool = False,
    ) -> float:
        """Write ``text`` wrapped to width ``w`` from (x, y); returns the y below it."""
        from fpdf.enums import WrapMode, XPos, YPos

        self._font(size, bold, fixed)
        self.pdf.set_text_color(255 if white else 0)
        self.pdf.set_xy(x, y)
        self.pdf.multi_cell(
            w,
            self.line_height(size, leading, fixed),
            clean(text),
            align=align,
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
            wrapmode=WrapMode.coerce(wrap),
        )
        return self._below(self.pdf.get_y())

    def bullets(
        self,
        items: Sequence[str],
        x: float,
        y: float,
        w: float,
        size: float,
        *,
        marker: Callable[[int], str] = lambda _: "•",
        gap: float = 1.5,
    ) -> float:
        """A list: each item behind its marker (bold), wrapped lines indented under the text."""
        widest = max(self.text_width(marker(n), size, bold=True) for n in range(1, len(items) + 1))
        indent = widest + self.mm(size) * 0.4 * MM_PER_PT  # 0.4 em between marker and text
        for number, item in enumerate(items, start=1):
            self.write(marker(number), x, y, indent, size, bold=True)
            y = self.write(item, x + indent, y, w - indent, size) + self.mm(gap)
        return y - self.mm(gap)

    def rect(
        self, x: float, y: float, w: float, h: float, *, fill: bool = False, line: float = 0.0
    ) -> None:
        self.pdf.set_draw_color(0)
        self.pdf.set_fill_color(0)
        if line:
            self.pdf.set_line_width(line)
        style = "F" if fill else "D"
        self.pdf.rect(x, y, w, h, style=style)
        self._below(y + h + (line / 2 if not fill else 0))

    def rule(self, y: float, line: float) -> None:
        """A black line ``line`` millimetres thick across the page at ``y``."""
        self.rect(self.left, y, self.width, line, fill=True)

    def disc(self, x: float, y: float, d: float, label: str, size: float) -> None:
        """A black disc of diameter ``d`` at (x, y) with ``label`` in white in its middle."""
        self.pdf.set_fill_color(0)
        self.pdf.ellipse(x, y, d, d, style="F")
        height = self.line_height(size, 1.0)
        self.write(label, x, y + (d - height) / 2, d, size, bold=True, align="C", leading=1.0,
                   white=True)  # fmt: skip
        self._below(y + d)

    def qr(self, x: float, y: float, size: float, data: str) -> None:
        """A QR code of ``data``, ``size`` millimetres wide including its quiet zone (4 modules
        of white, needed by scanners), each dark run of a row drawn as one black rectangle."""
        import segno

        code = segno.make(data, error="q", micro=False)
        border = 4
        rows = list(code.matrix_iter(scale=1, border=border))
        module = size / len(rows)
        self.pdf.set_fill_color(0)
        for row_number, row in enumerate(rows):
            start: int | None = None
            for col, dark in enumerate([*row, 0]):
                if dark and start is None:
                    start = col
                elif not dark and start is not None:
                    self.pdf.rect(
                        x + start * module, y + row_number * module,
                        (col - start) * module, module, style="F",
                    )  # fmt: skip
                    start = None
        self._below(y + size)

    def _below(self, y: float) -> float:
        self.lowest = max(self.lowest, y)
        return y

    def output(self) -> bytes:
        return bytes(self.pdf.output())


def _link_lines(sheet: Sheet, link: str, w: float, size: float) -> str:
    """The printed link, broken before its "?start=" (or "?ref=") part when one line is too
    wide."""
    shown = display_link(link)
    if sheet.text_width(shown, size, bold=True) <= w or "?" not in shown:
        return shown
    head, _, tail = shown.partition("?")
    return f"{head}\n?{tail}"


def fit(build: Callable[[Sheet, float], None], *, title: str, lang: str, gaps: int) -> bytes:
    """One A4 page laid out by ``build(sheet, spread)`` at the largest scale that fits (to
    1 %), the room left shared out as ``spread`` millimetres added to each of its ``gaps``.

    Tries are laid out on pages of one draft document (reading the fonts costs about 0.2 s
    a document, a try a few milliseconds); the chosen one is laid out again, alone."""
    draft = new_pdf(title, lang)

    def attempt(scale: float) -> Sheet:
        sheet = Sheet(draft, scale=scale)
        build(sheet, 0.0)
        return sheet

    sheet = attempt(1.0)
    if not sheet.fits():
        low = attempt(MIN_SCALE)
        if not low.fits():
            raise PrintError(
                f"the text does not fit on one A4 page even at {MIN_SCALE:.0%} size: "
                "shorten the texts in print.toml or config.toml"
            )
        sheet, high = low, 1.0
        while high - sheet.scale > 0.01:
            middle = attempt((sheet.scale + high) / 2)
            if middle.fits():
                sheet = middle
            else:
                high = middle.scale
    spread = min((sheet.bottom - sheet.lowest) / max(gaps, 1), MAX_SPREAD)
    final = Sheet(new_pdf(title, lang), scale=sheet.scale)
    build(final, spread)
    if not final.fits():  # the spread pushed a wrapped line over: lay it out without
        final = Sheet(new_pdf(title, lang), scale=sheet.scale)
        build(final, 0.0)
    return final.output()


# --- the poster -----------------------------------------------------------------------------


def poster_pdf(
    content: Content,
    texts: PrintTexts,
    config: Config,
    commune: Commune,
    link: str,
    volunteer: str | None = None,
) -> bytes:
    """The A4 poster for the village notice board of ``commune``, its QR code to ``link``
    (the commune's link, or ``volunteer``'s personal link with their code for Zalo users)."""
    values = placeholders(config, content, commune)
    p = texts.poster

    def f(text: str) -> str:
        return text.format_map({**values, "link": display_link(link), "code": volunteer or ""})

    def build(sheet: Sheet, spread: float) -> None:
        x, w, mm = sheet.left, sheet.width, sheet.mm
        # What is seen from 2 m keeps its size while the rest fits around it: the headline
        # (46 pt bold: capitals 11 mm tall) and the QR code (86 mm with its quiet zone).
        y = sheet.write(f(p["place"]), x, sheet.margin, w, 20, bold=True, align="C")
        sheet.rule(y + mm(2), 1.2)
        y = sheet.write(
            f(p["headline"]), x, y + mm(4), w, 46, bold=True, align="C", leading=1.1, fixed=True
        )
        y = sheet.write(f(p["subline"]), x, y + mm(2), w, 19, align="C")
        top = y + mm(6) + spread
        # Right: the QR code, the link under it, the line for Zalo users.
        qr_w = 86.0
        qx = x + w - qr_w
        qy = sheet.write(f(p["qr_title"]), qx, top, qr_w, 19, bold=True, align="C")
        sheet.qr(qx, qy + mm(1), qr_w, link)
        # The web chat's link opens in Zalo's own browser: nothing for Zalo users to type.
        web = link.startswith(config.chat_url) if config.chat_url else False
        how = f(p["qr_web"]) if web else f(p["qr_app"])
        qy = sheet.write(how, qx, qy + qr_w + mm(2), qr_w, 13, align="C")
        qy = sheet.write(_link_lines(sheet, link, qr_w, 15), qx, qy, qr_w, 15, bold=True,
                         align="C", wrap="CHAR")  # fmt: skip
        if web:
            zalo, bold = f(p["zalo_web"]), False
        else:
            zalo, bold = f(p["zalo_volunteer"]) if volunteer else f(p["zalo"]), bool(volunteer)
        qy = sheet.write(zalo, qx, qy + mm(3), qr_w, 14, bold=bold, align="C")
        # Left: what to prepare, why, and the privacy promise in a thick frame.
        left_w = w - qr_w - mm(6)
        ly = sheet.write(f(p["need_title"]), x, top, left_w, 22, bold=True)
        ly = sheet.bullets(
            [f(i) for i in p.items("need")], x, ly + mm(2), left_w, 18,
            marker=lambda n: f"{n}.", gap=2,
        )  # fmt: skip
        ly = sheet.write(f(p["why_title"]), x, ly + mm(5) + spread, left_w, 22, bold=True)
        ly = sheet.bullets([f(i) for i in p.items("why")], x, ly + mm(2), left_w, 18, gap=2)
        pad = mm(3)
        inner = left_w - 2 * pad
        promise = f(p["privacy"])
        box_y = ly + mm(6) + spread
        box_h = (
            sheet.measure(f(p["privacy_title"]), inner, 17, bold=True)
            + sheet.measure(promise, inner, 17)
            + 2 * pad
        )
        sheet.rect(x, box_y, left_w, box_h, line=mm(1.2))
        py = sheet.write(f(p["privacy_title"]), x + pad, box_y + pad, inner, 17, bold=True)
        sheet.write(promise, x + pad, py, inner, 17)
        # Below, full width: the scam signs under a black bar, then the support point.
        y = max(box_y + box_h, qy) + mm(6) + spread
        pad = mm(4)
        inner = w - 2 * pad
        bar_h = sheet.measure(f(p["scam_title"]), inner, 18, bold=True) + 2 * mm(2)
        sheet.rect(x, y, w, bar_h, fill=True)
        sheet.write(f(p["scam_title"]), x + pad, y + mm(2), inner, 18, bold=True, white=True)
        sy = sheet.bullets([f(i) for i in p.items("scam")], x + pad, y + bar_h + mm(2), inner, 17)
        sheet.rect(x, y, w, sy + mm(3) - y, line=mm(0.6))
        y = sy + mm(8) + spread
        y = sheet.write(f(p["support_title"]), x, y, w, 16, bold=True)
        y = sheet.write(f(p["support"]), x, y, w, 14)
        sheet.write(f(p["visit"]), x, y + mm(1.5), w, 14, bold=True)

    return fit(build, title=f(p["document_title"]), lang=content.locale, gaps=5)


# --- the step card --------------------------------------------------------------------------


def step_card_pdf(
    content: Content,
    texts: PrintTexts,
    config: Config,
    provider: Provider,
    commune: Commune | None = None,
) -> bytes:
    """The A4 step card for door-to-door visits: ``provider``'s install steps, one per line,
    large type, a box to tick for each; the hotline and ``commune``'s support point below."""
    steps = card_steps(content, texts, config, provider)
    values = placeholders(config, content, commune, provider)
    values["total"] = str(len(steps))
    c = texts.stepcard
    link = commune_link(config)
    title = c["title_vneid"] if provider.kind == "vneid" else c["title"]

    def f(text: str) -> str:
        return text.format_map({**values, "link": display_link(link), "code": ""})

    def build(sheet: Sheet, spread: float) -> None:
        x, w, mm = sheet.left, sheet.width, sheet.mm
        y = sheet.margin
        if commune is not None:
            y = sheet.write(f(texts.poster["place"]), x, y, w, 14, bold=True)
        y = sheet.write(f(title), x, y, w, 28, bold=True, leading=1.15)
        y = sheet.write(f(c["subtitle"]), x, y + mm(1), w, 15)
        y = sheet.write(f(c["need"]), x, y + mm(1), w, 15, bold=True)
        sheet.rule(y + mm(2), 1.0)
        y += mm(4)
        # One row per step: number disc, title, key instruction, a box to tick.
        disc = mm(13)
        tick = mm(9)
        text_x = x + disc + mm(4)
        text_w = w - disc - tick - mm(8)
        for number, step in enumerate(steps, start=1):
            row = y + mm(2.5) + spread / 2
            sheet.disc(x, row, disc, str(number), 22)
            ty = sheet.write(step.title, text_x, row, text_w, 21, bold=True, leading=1.2)
            ty = sheet.write(step.text, text_x, ty + mm(0.5), text_w, 18, leading=1.2)
            sheet.rect(x + w - tick, row + mm(1.5), tick, tick, line=mm(0.5))
            y = max(ty, row + disc) + mm(2.5) + spread / 2
            sheet.rule(y, 0.3)
        # The one safety rule, white on black, then where to get help.
        y += mm(4)
        pad = mm(3)
        bar_h = sheet.measure(f(c["safety"]), w - 2 * pad, 16, bold=True) + 2 * pad
        sheet.rect(x, y, w, bar_h, fill=True)
        sheet.write(f(c["safety"]), x + pad, y + pad, w - 2 * pad, 16, bold=True, white=True)
        y += bar_h + mm(5)
        qr_w = mm(34)
        help_w = w - qr_w - mm(6)
        support = f(c["support"]) if commune is not None else f(c["support_none"])
        hy = sheet.write(f(c["hotline"]), x, y, help_w, 15)
        hy = sheet.write(support, x, hy + mm(2), help_w, 15)
        qx = x + w - qr_w
        qy = sheet.write(f(c["qr"]), x, hy + mm(2), help_w, 13)
        sheet.write(display_link(link), x, qy, help_w, 13, bold=True, wrap="CHAR")
        sheet.qr(qx, y - mm(2), qr_w, link)

    return fit(build, title=f(title), lang=content.locale, gaps=len(steps))
