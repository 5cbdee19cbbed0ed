"""Logging that cannot flood: a storm of one message is one line per interval, with a count."""

from __future__ import annotations

import logging

from bot.logs import OncePerInterval


def record(msg: str, *args: object, name: str = "asyncio") -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, None)


def test_a_storm_is_one_line_per_interval_and_the_next_line_tells_the_count() -> None:
    now = [0.0]
    storm = OncePerInterval(60.0, clock=lambda: now[0])
    kept = []
    for second in range(180):  # one a second for three minutes, as asyncio's accept() error
        now[0] = float(second)
        one = record("socket.accept() out of system resource\nsocket: <fd=%d>", second)
        if storm.filter(one):
            kept.append(one.getMessage())
    assert len(kept) == 3
    assert kept[0].startswith("socket.accept() out of system resource")
    assert "(59 more like this in the last 60 s)" in kept[1]


def test_kinds_are_told_apart_by_logger_and_template_not_by_arguments() -> None:
    storm = OncePerInterval(60.0, clock=lambda: 0.0)
    assert storm.filter(record("%s: malformed delivery refused (%s)", "telegram", "a"))
    assert not storm.filter(record("%s: malformed delivery refused (%s)", "zalo_oa", "b"))
    assert storm.filter(record("another message"))
    assert storm.filter(record("another message", name="aiohttp.server"))


def test_it_remembers_a_bounded_number_of_kinds() -> None:
    storm = OncePerInterval(60.0, kinds=10, clock=lambda: 0.0)
    for n in range(1000):
        storm.filter(record(f"message {n}"))
    assert len(storm._seen) == 10
