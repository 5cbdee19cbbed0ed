"""The official post-2025 list of 3,321 communes, wards and special zones (vietnam-provinces).

The package (2025.10.1 on Python 3.11) offers lookups by code only, so name matching -- with or
without diacritics, with or without the "xa"/"phuong" prefix -- is done here with rapidfuzz.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from rapidfuzz import fuzz, process
from vietnam_provinces import Province, Ward

from bot.textnorm import fold

_PREFIXES = ("xa ", "phuong ", "dac khu ", "thi tran ")


@dataclass(frozen=True, slots=True)
class OfficialCommune:
    code: str
    name: str
    province: str
    province_code: str


def _bare(name: str) -> str:
    """Folded name without its administrative prefix: "Xa Nong Cong" -> "nong cong"."""
    folded = fold(name)
    for prefix in _PREFIXES:
        if folded.startswith(prefix):
            return folded[len(prefix) :]
    return folded


@cache
def _all() -> dict[str, OfficialCommune]:
    provinces = {int(p.code): p.name for p in Province.iter_all()}
    return {
        str(int(w.code)): OfficialCommune(
            code=str(int(w.code)),
            name=w.name,
            province=provinces[int(w.province_code)],
            province_code=str(int(w.province_code)),
        )
        for w in Ward.iter_all()
    }


@cache
def _bare_names() -> dict[str, str]:
    return {code: _bare(c.name) for code, c in _all().items()}


def count() -> int:
    """How many communes the official list has (3,321 after the 2025 reform)."""
    return len(_all())


def by_code(code: str | int) -> OfficialCommune | None:
    """The commune with this official code, e.g. "16279", or None."""
    try:
        key = str(int(str(code).strip()))
    except ValueError:
        return None
    return _all().get(key)


def same_name(a: str, b: str) -> bool:
    """Whether two spellings name the same commune (accents and prefix ignored)."""
    return _bare(a) == _bare(b)


def search(name: str, *, codes: list[str] | None = None, limit: int = 3) -> list[OfficialCommune]:
    """Communes whose name is close to ``name``, best first; among ``codes`` if given."""
    query = _bare(name)
    if not query:
        return []
    names = _bare_names()
    choices = {code: names[code] for code in (codes if codes is not None else names)}
    found = process.extract(query, choices, scorer=fuzz.ratio, score_cutoff=80, limit=limit)
    return [_all()[code] for _, _, code in found]


def province_name(code: str | int) -> str | None:
    """The name of the province with this official code, e.g. "38" -> "Thanh Hoa" (accented)."""
    try:
        return {str(int(p.code)): p.name for p in Province.iter_all()}.get(str(int(code)))
    except ValueError:
        return None
