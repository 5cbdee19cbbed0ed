"""Where a process keeps what it computed once, for the next start of the same content and
code: rendered pictures and trained classifiers (each under a key of what it depends on).

A module of its own, so that a process that only warms the pictures (the supervisor of
``serve --workers N``) does not import the application's stack (app/runtime.py) for them.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from bot.content import ContentError
from bot.pictures import load_pictures

#: Where rendered pictures are kept between starts (beside the local database and secret).
PICTURE_CACHE = Path("var") / "pictures"
#: Trained classifiers of the understanding (app/training.py: ModelCache).
MODEL_CACHE = Path("var") / "models"


def warm_picture_cache(locale: str = "vi") -> None:
    """Render the pictures into :data:`PICTURE_CACHE` now (a supervisor, before its workers
    start); a picture that cannot be rendered is left for the worker to report."""
    # A worker checks the content at its start and says what is wrong.
    with contextlib.suppress(ContentError):
        load_pictures(locale, cache=PICTURE_CACHE)
