"""The official commune list (vietnam-provinces) and name matching."""

from __future__ import annotations

from bot import communes


def test_official_list_has_every_commune_after_the_2025_reform() -> None:
    assert communes.count() == 3321


def test_lookup_by_code() -> None:
    found = communes.by_code(16279)
    assert found is not None
    assert (found.name, found.province) == ("Xã Nông Cống", "Thanh Hóa")
    assert communes.by_code("not a code") is None
    assert communes.by_code(1) is None or communes.by_code(1).code == "1"  # type: ignore[union-attr]


def test_search_without_accents_and_prefix() -> None:
    assert communes.search("nong cong")[0].code == "16279"
    assert communes.search("Xã Nông Cống")[0].code == "16279"
    assert communes.search("NONG CONG")[0].code == "16279"


def test_search_within_given_codes() -> None:
    assert communes.search("nong cong", codes=["14797"]) == []


def test_nonsense_finds_nothing() -> None:
    assert communes.search("qwertyuiop") == []
    assert communes.search("") == []
