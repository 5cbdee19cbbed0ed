"""What the install-step pictures cost at start-up: time, memory, bytes.

Each worker process renders every picture once when it starts (bot/pictures.py), so this
times a whole :func:`load_pictures` in a fresh process, as a worker would pay it, and a bare
render of each SVG, and reports the PNG sizes against the 100 kB limit.

Usage: python bench/pictures.py [--quick]
Last line: ``pictures=<n> load_s=<s> render_max_s=<s> png_max_kb=<kb> rss_mb=<mb>``.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.pictures import load_pictures, render_png  # noqa: E402

#: Run in a child process: a cold start, imports included.
COLD_LOAD = """
import resource, time
t = time.perf_counter()
from bot.pictures import load_pictures
pictures = load_pictures("vi")
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 cold start and 1 render each")
    args = parser.parse_args()
    rounds = 1 if args.quick else 5

    loads, rss = [], []
    for _ in range(rounds):
        out = subprocess.run(
            [sys.executable, "-c", COLD_LOAD], cwd=ROOT, check=True, capture_output=True, text=True
        ).stdout.split()
        loads.append(float(out[0]))
        rss.append(float(out[1]))

    pictures = load_pictures("vi")
    render_max = 0.0
    for picture in pictures:
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            render_png(picture.svg)
            times.append(time.perf_counter() - start)
        render_max = max(render_max, statistics.median(times))
        print(
            f"{picture.id}: {picture.width}x{picture.height},"
            f" PNG {len(picture.png) / 1000:.1f} kB, SVG {len(picture.svg) / 1000:.1f} kB,"
            f" render {statistics.median(times):.2f} s"
        )
    print(
        f"this process: max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )
    png_max = max(len(p.png) for p in pictures) / 1000
    print(
        f"pictures={len(pictures)} load_s={statistics.median(loads):.2f} "
        f"render_max_s={render_max:.2f} png_max_kb={png_max:.1f} rss_mb={max(rss):.0f}"
    )


if __name__ == "__main__":
    main()
