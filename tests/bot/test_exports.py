"""Officials' spreadsheets (bot/exports.py): CSV in both dialects and the Excel workbook, with
the commune code, population, target and coverage columns that make coverage computable."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from openpyxl import load_workbook

from bot.config import Config
from bot.content import Content, load_staff_texts
from bot.exports import days_table, to_csv, to_xlsx, villages_table
from bot.stats import RawStats, Report, build_report, population

TEXTS = load_staff_texts("vi")
DAY = date(2026, 11, 24)


@pytest.fixture
def report(config: Config, content: Content) -> Report:
    raw = RawStats(
        by_village={("16279", "dong-hoa", "self"): 37, ("16279", "kp-1", "volunteer"): 2}
    )
    return build_report(
        raw,
        scope_name="Xã Nông Cống",
        communes=config.communes,
        figures=population(config.communes, {}),
        content=content,
        today=DAY,
    )


def test_villages_have_codes_population_target_and_coverage(
    report: Report, config: Config
) -> None:
    table = villages_table(report, config, TEXTS)
    assert table.header[:3] == ("Mã xã", "Xã", "Mã thôn")
    dong_hoa = next(r for r in table.rows if r[2] == "dong-hoa")
    assert dong_hoa == (16279, "Xã Nông Cống", "dong-hoa", "Thôn Đông Hòa (mẫu)",
                        980, 850, 430, 0.5, 425, 37, round(37 / 850, 4))  # fmt: skip
    assert sum(r[9] for r in table.rows) == report.completed  # type: ignore[misc]


def test_excel_vn_csv_uses_semicolons_and_decimal_commas(report: Report, config: Config) -> None:
    data = to_csv(villages_table(report, config, TEXTS), "excel-vn")
    assert data.startswith(b"\xef\xbb\xbf"), "UTF-8 byte-order mark for Excel"
    text = data.decode("utf-8-sig")
    assert "\r\n" in text
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert rows[0][0] == "Mã xã"
    dong_hoa = next(r for r in rows if r[2] == "dong-hoa")
    assert dong_hoa[7:] == ["0,5", "425", "37", "0,0435"]
    # The coverage can be computed again from the file alone.
    assert round(int(dong_hoa[9]) / int(dong_hoa[5]), 4) == float(dong_hoa[10].replace(",", "."))


def test_plain_excel_csv_uses_commas_and_points(report: Report, config: Config) -> None:
    rows = list(csv.reader(io.StringIO(to_csv(villages_table(report, config, TEXTS)).decode(
        "utf-8-sig"))))  # fmt: skip
    dong_hoa = next(r for r in rows if r[2] == "dong-hoa")
    assert dong_hoa[7:] == ["0.5", "425", "37", "0.0435"]
    with pytest.raises(ValueError, match="unknown dialect"):
        to_csv(villages_table(report, config, TEXTS), "excel-fr")  # type: ignore[arg-type]


def test_workbook_keeps_numbers_dates_and_vietnamese(report: Report, config: Config) -> None:
    communes = {c.code: c for c in config.communes}
    days = days_table(
        [("16279", "dong-hoa", "2026-11-24", "vnpt", "self", 3),
         ("16279", "nowhere", "2026-11-23", "zzz", "volunteer", 1)],
        communes, config, TEXTS, "Không rõ",
    )  # fmt: skip
    data = to_xlsx([villages_table(report, config, TEXTS), days])
    book = load_workbook(io.BytesIO(data))
    assert book.sheetnames == ["Theo thôn", "Theo ngày"]
    villages = list(book["Theo thôn"].iter_rows(values_only=True))
    assert villages[0][-1] == "Tỉ lệ đã cài (trên người có mặt)"
    dong_hoa = next(r for r in villages if r[2] == "dong-hoa")
    assert dong_hoa[0] == 16279
    assert dong_hoa[10] == pytest.approx(0.0435)
    assert book["Theo thôn"]["K2"].number_format == "0.0%"
    day_rows = list(book["Theo ngày"].iter_rows(values_only=True))
    assert day_rows[1][4].date() == date(2026, 11, 24)  # type: ignore[union-attr]
    assert day_rows[1][5:] == ("VNPT SmartCA", "Tự báo", 3)
    assert day_rows[2][3] == "Không rõ"
    assert day_rows[2][5] == "Không rõ"
