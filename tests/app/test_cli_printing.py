"""``python -m bot poster`` and ``stepcard``: the files they write, the volunteer check against
the staff repository, and one-line errors (exit code 2) for everything a person can get wrong.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import main
from bot.officials import Scope
from storage.database import Database, migrate
from storage.staff import StaffRepository
from tests.bot.test_printing import page_text, qr_codes, render
from tests.conftest import ROOT, T0

#: A second commune (Hac Thanh, Thanh Hoa) beside the demo's Nong Cong.
SECOND_COMMUNE = """
[[communes]]
code = 14797
target = 0.4

[communes.support]
name = "UBND phường Hạc Thành"

[[communes.villages]]
id = "kp-a"
name = "Khu A"
adults = 100
adults_present = 80
households = 40
"""


@pytest.fixture
def deployment(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Two communes, each with one enrolled volunteer: commune code -> volunteer code."""
    config = tmp_path / "config.toml"
    config.write_text(
        (ROOT / "config.toml").read_text(encoding="utf-8") + SECOND_COMMUNE, encoding="utf-8"
    )
    monkeypatch.setenv("BOT_CONFIG", str(config))
    monkeypatch.setenv("DATABASE_URL", database_url)

    async def enrol() -> dict[str, str]:
        db = Database(database_url)
        try:
            await migrate(db)
            staff = StaffRepository(db)
            codes = {}
            for number, commune in enumerate(("16279", "14797")):
                invite = await staff.create_invite(
                    "volunteer", Scope("communes", (commune,)), created_by="test", now=T0
                )
                member = await staff.redeem("telegram", f"user-{number}", invite, T0)
                assert member is not None
                assert member.code
                codes[commune] = member.code
            return codes
        finally:
            await db.dispose()

    return asyncio.run(enrol())


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *words: str) -> None:
    assert code == 2
    assert err.startswith("error: "), err
    assert err.count("\n") == 1, err
    for word in words:
        assert word in err


def test_a_volunteer_poster_for_their_commune(
    deployment: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    volunteer = deployment["16279"]
    out = tmp_path / "poster.pdf"
    code, printed, _ = run(
        capsys, "poster", "--commune", "16279", "--volunteer", volunteer.lower(), "--out", str(out)
    )
    assert code == 0
    assert printed == f"written: {out}\n"
    pdf = out.read_bytes()
    assert f"mã {volunteer}" in page_text(pdf)
    assert qr_codes(render(pdf)) == [f"https://t.me/TroLyChuKySoDemoBot?start={volunteer}"]


def test_a_volunteer_of_another_commune_is_refused(
    deployment: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "poster.pdf"
    other = deployment["14797"]
    code, _, err = run(
        capsys, "poster", "--commune", "16279", "--volunteer", other, "--out", str(out)
    )
    assert_one_line_error(code, err, other, "14797", "16279")
    assert not out.exists()
    code, _, err = run(
        capsys, "poster", "--commune", "16279", "--volunteer", "VAAAAAA", "--out", str(out)
    )
    assert_one_line_error(code, err, "VAAAAAA", "not the code of an enrolled volunteer")
    code, _, err = run(
        capsys, "poster", "--commune", "16279", "--volunteer", "inv_x", "--out", str(out)
    )
    assert_one_line_error(code, err, "not a volunteer code")
    assert not out.exists()


def test_the_commune_poster_of_each_commune(
    deployment: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "poster.pdf"
    assert run(capsys, "poster", "--commune", "14797", "--out", str(out))[0] == 0
    text = page_text(out.read_bytes())
    assert "Phường Hạc Thành" in text
    assert "UBND phường Hạc Thành" in text
    assert "Nông Cống" not in text


def test_poster_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BOT_CONFIG", raising=False)
    code, _, err = run(capsys, "poster", "--commune", "99999", "--out", str(tmp_path / "p.pdf"))
    assert_one_line_error(code, err, "99999", "16279 (Xã Nông Cống)")
    code, _, err = run(capsys, "poster", "--commune", "16279", "--out", "/nonexistent/x.pdf")
    assert_one_line_error(code, err, "cannot write /nonexistent/x.pdf")
    code, _, err = run(capsys, "poster", "--commune", "16279", "--out", str(tmp_path))
    assert_one_line_error(code, err, "cannot write")


def test_step_cards(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BOT_CONFIG", raising=False)
    out = tmp_path / "card.pdf"
    assert run(capsys, "stepcard", "--provider", "misa", "--out", str(out))[0] == 0
    text = page_text(out.read_bytes())
    assert "Cài chữ ký số MISA eSign" in text
    assert "Xã Nông Cống" in text, "the only commune's support point, without --commune"
    code, _, err = run(capsys, "stepcard", "--provider", "fpt", "--out", str(out))
    assert_one_line_error(code, err, "'fpt'", "vnpt, viettel, misa, vneid")
    code, _, err = run(
        capsys, "stepcard", "--provider", "vnpt", "--commune", "1", "--out", str(out)
    )
    assert_one_line_error(code, err, "commune 1")
    code, _, err = run(capsys, "stepcard", "--provider", "misa", "--out", str(tmp_path / "no/x"))
    assert_one_line_error(code, err, f"cannot write {tmp_path / 'no/x'}")


def test_the_process_exits_2_without_a_traceback(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot", "stepcard", "--provider", "vnpt", "--out", "/proc/x.pdf"],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith("error: cannot write /proc/x.pdf")
    assert "Traceback" not in done.stderr
