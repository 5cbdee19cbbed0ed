"""Officials' spreadsheets: coverage by village (with the commune code, the population,
the target and the coverage, so the sums can be redone in Excel) and completions by day,
village, provider and source -- as CSV or as an Excel workbook.

Two CSV dialects, both UTF-8 with a byte-order mark (without it Excel reads Vietnamese
letters as Windows-1252): ``excel`` with "," and decimal points, and ``excel-vn`` with ";"
and decimal commas, which Excel with Vietnamese regional settings (the list separator is
";") opens straight into columns. The workbook (openpyxl) needs neither: numbers are numbers
and dates are dates in any locale.

Pure: a report or the counts (storage/stats.py ``export_rows``), config and texts in, file
bytes out. No personal data: every row is a count.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from bot.config import Commune, Config
from bot.stats import Report

#: (commune code, village id, YYYY-MM-DD, provider id, source, count)
DayRow = tuple[str, str, str, str, str, int]
Cell = str | int | float | date | None
Dialect = Literal["excel", "excel-vn"]
DIALECTS: tuple[Dialect, ...] = ("excel", "excel-vn")
#: Columns shown as a percentage in the workbook, and rounded in a CSV.
PERCENT_DIGITS = 4


@dataclass(frozen=True, slots=True)
class Table:
    """A spreadsheet's header and rows; ``percent``: indexes of columns holding shares."""

    name: str
    header: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    percent: frozenset[int] = frozenset()


def _header(texts: Mapping[str, str], key: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in texts[key].split(","))


def villages_table(report: Report, config: Config, texts: Mapping[str, str]) -> Table:
    """One row per village of the report: codes, names, population figures, the commune's
    target, completions and coverage (completions / adults present)."""
    rows: list[tuple[Cell, ...]] = []
    index = {c.code: c for c in config.communes}  # a national deployment has 3,321
    for area in sorted(report.villages, key=lambda a: a.code):
        commune_code, _, village_id = area.code.partition("/")
        commune = index.get(commune_code)
        if commune is None:
            continue
        target = commune.target if area.adults_present else None
        rows.append(
            (
                int(commune.code),
                commune.name,
                village_id,
                area.name,
                area.adults,
                area.adults_present,
                area.households,
                target,
                math.ceil(commune.target * area.adults_present),
                area.completed,
                _round(area.coverage),
            )
        )
    return Table(texts["sheet_villages"], _header(texts, "villages_header"), tuple(rows),
                 frozenset({7, 10}))  # fmt: skip


def days_table(
    rows: Iterable[DayRow],
    communes: Mapping[str, Commune],
    config: Config,
    texts: Mapping[str, str],
    unknown: str,
) -> Table:
    """One row per commune, village, day, provider and source with its count."""
    providers = {p.id: p.name for p in config.providers}
    sources = {"self": texts["source_self"], "volunteer": texts["source_volunteer"]}
    out: list[tuple[Cell, ...]] = []
    for code, village, day, provider, source, n in rows:
        commune = communes[code]
        found = commune.village(village)
        out.append(
            (
                int(commune.code),
                commune.name,
                village,
                found.name if found else unknown,
                date.fromisoformat(day),
                providers.get(provider, unknown),
                sources.get(source, source),
                n,
            )
        )
    return Table(texts["sheet_days"], _header(texts, "days_header"), tuple(out))


def _round(value: float | None) -> float | None:
    return round(value, PERCENT_DIGITS) if value is not None else None


def to_csv(table: Table, dialect: Dialect = "excel") -> bytes:
    """``table`` as CSV in ``dialect`` (see the module's docstring)."""
    if dialect not in DIALECTS:
        raise ValueError(f"unknown dialect {dialect!r}: one of {', '.join(DIALECTS)}")
    comma = dialect == "excel-vn"
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";" if comma else ",")
    writer.writerow(table.header)

    def cell(value: Cell) -> str:
        if value is None:
            return ""
        if isinstance(value, float):
            text = f"{value:.{PERCENT_DIGITS}f}".rstrip("0").rstrip(".")
            return text.replace(".", ",") if comma else text
        if isinstance(value, date):
            return value.isoformat()
        return str(value)

    for row in table.rows:
        writer.writerow([cell(v) for v in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(tables: Sequence[Table]) -> bytes:
    """An Excel workbook with one sheet per table: bold header, frozen first row, numbers
    as numbers, days as dates (dd/mm/yyyy), shares as percentages."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    book = Workbook(write_only=True)
    bold = Font(bold=True)
    for table in tables:
        sheet = book.create_sheet(table.name[:31])  # Excel's limit for a sheet's name
        sheet.freeze_panes = "A2"
        for i, title in enumerate(table.header):
            width = max(len(title), *(len(str(r[i] or "")) for r in table.rows[:200]), 8)
            sheet.column_dimensions[_column(i)].width = min(40, width + 2)
        header = []
        for title in table.header:
            cell = WriteOnlyCell(sheet, value=title)
            cell.font = bold
            header.append(cell)
        sheet.append(header)
        for row in table.rows:
            cells = []
            for i, value in enumerate(row):
                cell = WriteOnlyCell(sheet, value=value)  # type: ignore[arg-type]
                if i in table.percent:
                    cell.number_format = "0.0%"
                elif isinstance(value, date):
                    cell.number_format = "dd/mm/yyyy"
                cells.append(cell)
            sheet.append(cells)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _column(index: int) -> str:
    """Excel's column letters for a 0-based index (A, B, ..., Z, AA...)."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters
