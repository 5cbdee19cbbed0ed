"""Fixtures of the browser tests (the dashboard's, and the web chat's:
tests/handlers/test_web_browser.py): the process's one Chromium, lent to each test
(tests/dashboard/browser.py: chromium), and one server for each module (each checks figures
of its own database).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.engine import Engine
from tests.dashboard.browser import Served, chromium, screenshots_folder, serve


@pytest.fixture
def browser(request: pytest.FixtureRequest) -> Iterator[Any]:
    with chromium(request.config) as shared:
        yield shared


@pytest.fixture(scope="module")
def served(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from serve(tmp_path_factory.mktemp("served"), engine)


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return screenshots_folder(tmp_path_factory.mktemp("screenshots"))
