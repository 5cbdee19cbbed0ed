"""The dashboard's words live in content/vi/dashboard.toml; templates hold only structure."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.content import ContentError
from dashboard.texts import load_dashboard_texts
from tests.conftest import ROOT

TEMPLATES = sorted((ROOT / "dashboard" / "templates").glob("*.html"))
#: Letters only Vietnamese uses (with its tone marks): none may appear in a template.
VIETNAMESE = re.compile(r"[àáảãạăắằẳẵặâấầẩẫậèéẻẽẹêếềểễệìíỉĩịòóỏõọôốồổỗộơớờởỡợùúủũụưứừửữựỳýỷỹỵđ]",
                        re.IGNORECASE)  # fmt: skip


def test_templates_hold_no_vietnamese_text() -> None:
    assert TEMPLATES
    found = {p.name: VIETNAMESE.findall(p.read_text(encoding="utf-8")) for p in TEMPLATES}
    assert {name: letters for name, letters in found.items() if letters} == {}


def test_every_text_a_template_or_the_code_names_exists_and_is_used() -> None:
    texts = load_dashboard_texts("vi")
    sources = [p.read_text(encoding="utf-8") for p in TEMPLATES]
    sources.append((ROOT / "dashboard" / "web.py").read_text(encoding="utf-8"))
    sources.append((ROOT / "dashboard" / "pages.py").read_text(encoding="utf-8"))
    joined = "\n".join(sources)
    named = set(re.findall(r"\bt\.([a-z_]+)", joined))
    named |= set(re.findall(r"""(?<!f\.)(?<!desk\.)texts\[["']([a-z_]+)["']\]""", joined))
    for pair in re.findall(r"""_message\(\s*["']([a-z_]+)["'],\s*["']([a-z_]+)""", joined):
        named |= set(pair)
    assert named - set(texts) == set(), "named but missing from dashboard.toml"
    unused = {key for key in texts if key not in joined}
    assert unused == set(), "in dashboard.toml but never shown"


def test_broken_braces_are_a_content_error(tmp_path: Path) -> None:
    (tmp_path / "vi").mkdir()
    (tmp_path / "vi" / "dashboard.toml").write_text('[texts]\nx = "a {b"\n', encoding="utf-8")
    with pytest.raises(ContentError, match=r"texts\.x: broken braces"):
        load_dashboard_texts("vi", tmp_path)
