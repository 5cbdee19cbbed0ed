"""The packages' layering: the core imports no edge, and the environment is read in one place.

bot/ (the pure core) -> nothing of ours but itself; storage/ -> bot/; handlers/ (channel
adapters and the services they share) -> bot/, storage/; dashboard/ (the officials' web
pages) -> bot/, storage/, handlers/; app/ (composition root) -> all.
"""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from tests.conftest import ROOT

PACKAGES = ("app", "bot", "dashboard", "handlers", "storage")
#: Which of our packages each package may import.
ALLOWED = {
    "bot": {"bot"},
    "storage": {"storage", "bot"},
    "handlers": {"handlers", "bot", "storage"},
    "dashboard": {"dashboard", "bot", "storage", "handlers"},
    "app": {"app", "bot", "dashboard", "handlers", "storage"},
}


def _modules(package: str) -> list[str]:
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        if "migrations" in path.parts or path.name == "__main__.py":
            continue
        parts = path.relative_to(ROOT).with_suffix("").parts
        found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


def _imports(module: str) -> set[str]:
    """Our top-level packages that ``module``'s source imports (anywhere in the file)."""
    path = ROOT / (module.replace(".", "/") + ".py")
    if not path.exists():
        path = ROOT / module.replace(".", "/") / "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names & set(PACKAGES)


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_imports_only_what_it_may(package: str) -> None:
    wrong = {
        module: sorted(_imports(module) - ALLOWED[package])
        for module in _modules(package)
        if _imports(module) - ALLOWED[package]
    }
    assert wrong == {}


def test_the_core_loads_without_any_edge_package() -> None:
    modules = _modules("bot")
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "edges = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('app', 'dashboard', 'handlers', 'storage', 'telegram', 'aiohttp', 'sqlalchemy'))\n"
        "print(edges)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_only_the_settings_module_reads_the_environment() -> None:
    readers = []
    for package in PACKAGES:
        for module in _modules(package):
            path = ROOT / (module.replace(".", "/") + ".py")
            if not path.exists():
                path = ROOT / module.replace(".", "/") / "__init__.py"
            source = path.read_text(encoding="utf-8")
            if "os.environ" in source or "getenv" in source:
                readers.append(module)
    assert readers == ["app.settings"]
