"""Fixtures of the dashboard's browser tests: one Chromium and one server for them all.

Module-scoped, not session-scoped: Playwright's synchronous API keeps an event loop running
on the main thread while it is open, and the asynchronous tests after test_browser.py need
that thread free. Only test_browser.py uses them, so this is still one browser per session.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.engine import Engine
from tests.dashboard.browser import FLAGS, Served, chromium_or_skip, screenshots_folder, serve


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(executable), args=FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def served(
    browser: Any, engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    yield from serve(tmp_path_factory.mktemp("served"), engine)


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return screenshots_folder(tmp_path_factory.mktemp("screenshots"))
