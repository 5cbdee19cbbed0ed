"""Fewer bubbles: each citizen message gets about one message back, most of all on Zalo,
where every message is a notification and counts against a monthly quota (bench/bubbles.py
prints the figures per path)."""

from __future__ import annotations

from bench.bubbles import measure, total
from bot.engine import Engine

#: Bubbles per citizen message over the main paths, at most.
TARGET = {"telegram": 1.2, "zalo_bot": 1.2, "zalo_oa": 1.2}


def test_about_one_message_back_for_each_message_on_the_main_paths(engine: Engine) -> None:
    figures = measure(engine)  # also checks that every path ends where it should
    for channel, paths in figures.items():
        assert total(paths).ratio <= TARGET[channel], (channel, paths)
        for name, path in paths.items():
            assert path.ratio <= 1.5, (channel, name, path)
