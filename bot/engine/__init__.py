"""The conversation engine: (state, input) -> (new state, messages, analytics events).

Pure and channel-neutral: no I/O, no clock (the host passes ``now``), no channel types. The
flow itself is data (:mod:`bot.content`); the engine is split by concern:

- :mod:`bot.engine.engine`: the entry point and the gate every input passes;
- :mod:`bot.engine.guards`: secrets typed by mistake, unreadable text, links;
- :mod:`bot.engine.navigation`: moving between screens, detours, resuming, the report;
- :mod:`bot.engine.rendering`: showing a screen, its options and placeholders;
- :mod:`bot.engine.actions`: one implementation per action of the vocabulary;
- :mod:`bot.engine.helping`: help requests' news, what goes to a person, typed answers;
- :mod:`bot.engine.turn`: the reply being built.

The analytics event kinds are :class:`bot.vocabulary.EventKind`.
"""

from bot.engine.actions import GLOBAL_PREFIX
from bot.engine.engine import Engine
from bot.engine.guards import MAX_TEXT, foreign_links, sensitive_kind
from bot.engine.rendering import PAGE_SIZE
from bot.model import State


def screen_key(state: State) -> str:
    """Identifies the screen a state shows: button presses carry it to detect stale ones."""
    return state.here.key


__all__ = [
    "GLOBAL_PREFIX",
    "MAX_TEXT",
    "PAGE_SIZE",
    "Engine",
    "foreign_links",
    "screen_key",
    "sensitive_kind",
]
