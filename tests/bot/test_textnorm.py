"""Folding text for matching."""

from __future__ import annotations

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
