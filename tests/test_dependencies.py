"""Dependencies: every one bounded above, and installed from a lock file with hashes that
agrees with pyproject.toml (README, "Dependencies")."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT

LOCK = ROOT / "requirements.lock"


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    found = [Requirement(r) for r in project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        found += [Requirement(r) for r in extra]
    return found


def locked() -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) of every pin in the lock file."""
    text = LOCK.read_text(encoding="utf-8").replace("\\\n", " ")
    pins: dict[str, tuple[str, list[str]]] = {}
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;]+)", line)
        if match:
            name = canonicalize_name(match.group(1).split("[")[0])
            pins[name] = (match.group(2), re.findall(r"--hash=sha256:([0-9a-f]{64})", line))
    return pins


def test_every_dependency_has_an_upper_bound() -> None:
    unbounded = [
        str(r)
        for r in declared()
        if not any(s.operator in ("<", "<=", "~=", "==") for s in r.specifier)
    ]
    assert unbounded == []


def test_the_lock_pins_every_dependency_within_its_range_with_hashes() -> None:
    pins = locked()
    assert pins, "requirements.lock: no pins (make lock)"
    for requirement in declared():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in requirements.lock: run make lock"
        version, _ = pins[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{name}=={version} is outside {requirement.specifier}: run make lock"
        )
    assert all(hashes for _, hashes in pins.values()), "every pin needs its hashes"
