"""Folding text for matching."""

from __future__ import annotations

from bot.textnorm import fold, strip_marks, tokens


def test_fold_removes_accents_case_punctuation() -> None:
    assert fold("Chữ ký số  là gì??") == "chu ky so la gi"
    assert fold("ĐỒNG Ý!") == "dong y"
    assert fold("✅ Xong") == "xong"
    assert fold("xoá") == fold("xóa") == "xoa"


def test_strip_marks_keeps_case() -> None:
    assert strip_marks("Đồng Ý") == "Dong Y"


def test_tokens() -> None:
    assert tokens("Quét   khuôn-mặt") == ["quet", "khuon", "mat"]
