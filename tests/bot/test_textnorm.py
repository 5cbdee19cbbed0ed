"""Folding text for matching."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from bot.textnorm import clean_input, fold, strip_marks, tokens


def test_fold_removes_accents_case_punctuation() -> None:
    assert fold("Chữ ký số  là gì??") == "chu ky so la gi"
    assert fold("ĐỒNG Ý!") == "dong y"
    assert fold("✅ Xong") == "xong"
    assert fold("xoá") == fold("xóa") == "xoa"


def test_strip_marks_keeps_case() -> None:
    assert strip_marks("Đồng Ý") == "Dong Y"


def test_tokens() -> None:
    assert tokens("Quét   khuôn-mặt") == ["quet", "khuon", "mat"]


def test_clean_input_drops_what_shows_nothing_and_spaces_controls() -> None:
    assert clean_input("ch\u200bu\u00ad ky\u200d so\ufeff") == "chu ky so"
    assert clean_input("a\x00b\x1bc\x7fd\x85e") == "a b c d e"
    assert clean_input("dòng 1\ndòng 2\tcột") == "dòng 1\ndòng 2\tcột"


@given(st.text())
def test_strip_marks_drops_exactly_the_combining_marks(text: str) -> None:
    decomposed = unicodedata.normalize("NFD", text.replace("\u0111", "d").replace("\u0110", "D"))
    expected = "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")
    assert strip_marks(text) == expected
