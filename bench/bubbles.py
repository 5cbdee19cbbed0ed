"""Bubbles per citizen message: how many messages the bot sends for each one a citizen sends.

Every message is a notification on the citizen's phone, and on Zalo it counts against a
quota (the Zalo Bot Platform's free tier allows 3,000 a month; a Zalo OA answers free 8
times in 48 hours). The main paths of the conversation are played through the real engine
with each channel's medium (its Capabilities), and each reply is cut into messages by the
channel's own code -- ``handlers.telegram.pieces``, ``handlers.zalo_bot.pieces``,
``handlers.zalo_oa.payloads`` -- exactly as its ``deliver`` sends them. Citizens type on Zalo
Bot (numbers and words); on the button channels a tap is the same input to the engine.

Target: at most 1.2 bubbles per citizen message on Zalo (tests/handlers/test_bubbles.py).

Usage: ``python bench/bubbles.py`` (a second at most; ``--quick`` is the same). Last line:
``telegram=… zalo_bot=… zalo_oa=…`` (bubbles per citizen message over all paths).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.config import load_config  # noqa: E402
from bot.content import load_content  # noqa: E402
from bot.engine import Engine  # noqa: E402
from bot.model import Input, Media, Medium, OutMessage, State, Text  # noqa: E402
from handlers import telegram, zalo_bot, zalo_oa  # noqa: E402

#: Each channel: its medium, and how one engine message is cut into the messages it sends.
CHANNELS: dict[str, tuple[Medium, Callable[[OutMessage], Sequence[object]]]] = {
    telegram.CHANNEL: (telegram.CAPABILITIES.medium(telegram.CHANNEL), telegram.pieces),
    zalo_bot.CHANNEL: (zalo_bot.CAPABILITIES.medium(zalo_bot.CHANNEL), zalo_bot.pieces),
    zalo_oa.CHANNEL: (zalo_oa.CAPABILITIES.medium(zalo_oa.CHANNEL), zalo_oa.payloads),
}

#: The main paths: what a citizen sends ("!photo": a photo), and the screen it ends on.
PATHS: dict[str, tuple[tuple[str, ...], str]] = {
    "install with the provider's app, then report": (
        (
            "xin chào", "2", "1", "1", "1", "1", "2",  # menu, ready, provider, phone, reminders,
            # announcements (asked apart)
            *["xong"] * 9,  # the nine steps
            "1", "1", "1",  # consent, village, living here (one commune; provider known)
        ),
        "complete",
    ),
    "install in VNeID": (
        ("xin chào", "2", "1", "4", "2", "2", *["1"] * 5),  # five steps in VNeID
        "report_consent",
    ),
    "stuck, a question, a miss and a photo on a step": (
        (
            "xin chào", "2", "1", "2", "1", "2", "xong", "xong",
            "2", "1",  # stuck at the ID photo, then it worked
            "co mat tien khong", "hom nay troi mua to qua", "!photo", "1",
        ),
        "face",
    ),
    "already installed: the report": (
        ("xin chào", "3", "1", "1", "1", "3"),  # consent, village, here, provider
        "complete",
    ),
    "no smartphone": (
        ("xin chào", "2", "3", "2", "1", "3", "3"),  # share, a visit, back, the commune
        "human",
    ),
    "what the bot keeps, scam signs": (
        ("xin chào", "bảo mật", "menu", "lừa đảo", "menu"),
        "menu",
    ),
}  # fmt: skip


@dataclass
class Figures:
    messages: int = 0
    bubbles: int = 0

    @property
    def ratio(self) -> float:
        return self.bubbles / self.messages if self.messages else 0.0


def play(engine: Engine, channel: str, inputs: Sequence[str]) -> tuple[Figures, State]:
    """Play ``inputs`` as one new citizen on ``channel``: the figures and the final state."""
    medium, cut = CHANNELS[channel]
    state = State()
    now = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
    figures = Figures()
    for line in inputs:
        now += timedelta(minutes=1)
        event: Input = Media("photo") if line == "!photo" else Text(line)
        reply = engine.advance(state, event, now, medium=medium)
        state = reply.state
        figures.messages += 1
        figures.bubbles += sum(len(cut(message)) for message in reply.messages)
    return figures, state


def measure(engine: Engine) -> dict[str, dict[str, Figures]]:
    """Channel -> path -> figures (checking that each path ends where it should)."""
    out: dict[str, dict[str, Figures]] = {}
    for channel in CHANNELS:
        out[channel] = {}
        for name, (inputs, end) in PATHS.items():
            figures, state = play(engine, channel, inputs)
            if state.screen != end:
                raise AssertionError(f"{channel}: {name!r} ended at {state.screen!r}, not {end!r}")
            out[channel][name] = figures
    return out


def total(paths: dict[str, Figures]) -> Figures:
    return Figures(sum(f.messages for f in paths.values()), sum(f.bubbles for f in paths.values()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the same (it takes a second)")
    parser.parse_args()
    config = load_config(ROOT / "config.toml")
    engine = Engine(load_content(config.locale), config)
    figures = measure(engine)
    channels = list(CHANNELS)
    print(f"{'path':<50} {'messages':>8} " + " ".join(f"{c:>9}" for c in channels))
    for name in PATHS:
        row = " ".join(f"{figures[c][name].ratio:>9.2f}" for c in channels)
        print(f"{name:<50} {figures[channels[0]][name].messages:>8} {row}")
    sums = {c: total(figures[c]) for c in channels}
    row = " ".join(f"{sums[c].ratio:>9.2f}" for c in channels)
    print(f"{'all paths':<50} {sums[channels[0]].messages:>8} {row}")
    print(" ".join(f"{c}={sums[c].ratio:.2f}" for c in channels))


if __name__ == "__main__":
    main()
