"""Cost of the link filter (bot/links.py) on every message the bot sends.

Every outgoing message passes :func:`bot.links.scrub`, so its cost is paid on each reply.
This bench measures it on the real content (every text, FAQ answer and install step, as
written, placeholders and all) and on hostile inputs up to the longest text the bot reads or
sends (an announcement: 1,000 characters) built to make a parser slow: long runs of dots,
"@", "1.", entities, labels without a top-level domain.

Usage: python bench/links.py [--quick] [--rounds N]

Last line: ``content_us_per_message=… worst_ms=… worst_input=…``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.config import DEFAULT_CONFIG, load_config
from bot.content import load_content
from bot.links import scrub

#: Built to be slow for a regex-and-loop parser; each is cut to 1,000 characters.
HOSTILE = {
    "dots": ".",
    "labels": "a.",
    "ats": "@",
    "user_at": "a@",
    "ones": "1.",
    "quads": "1.1.1.1 ",
    "entities": "&#46;",
    "schemes": "http://",
    "slashes": "/",
    "emails": "a@b.c",
    "fullwidth": "ａ．",
    "invisible": "\u200b",
    "links": "x.com ",
    "word": "x",
}


def content_texts() -> list[str]:
    content = load_content(load_config(DEFAULT_CONFIG).locale)
    texts = [*content.texts.values(), *(t.answer for t in content.faq.values())]
    texts += [t for s in content.screens.values() for t in s.texts]
    texts += [x for s in content.install for x in (s.text, s.why, s.stuck)]
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a few seconds)")
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    rounds = 20 if args.quick else args.rounds
    policy = load_config(DEFAULT_CONFIG).links
    texts = content_texts()
    scrub("warm.up", policy, "")
    started = time.perf_counter()
    for _ in range(rounds):
        for text in texts:
            scrub(text, policy, "(hidden)")
    per_message = (time.perf_counter() - started) / (rounds * len(texts)) * 1e6
    print(f"content: {len(texts)} texts, {per_message:.1f} us each")
    worst, worst_name = 0.0, ""
    for name, unit in HOSTILE.items():
        text = (unit * (1000 // len(unit) + 1))[:1000]
        best = float("inf")
        for _ in range(3 if args.quick else 10):
            started = time.perf_counter()
            scrub(text, policy, "(hidden)")
            best = min(best, time.perf_counter() - started)
        print(f"{name:>10}: {best * 1e3:.2f} ms")
        if best > worst:
            worst, worst_name = best, name
    print(
        f"content_us_per_message={per_message:.1f} worst_ms={worst * 1e3:.2f} "
        f"worst_input={worst_name}"
    )


if __name__ == "__main__":
    main()
