"""How the BOT_ID_SECRET strength rule (app/id_secret.py) treats random secrets.

The rule refuses a secret that zxcvbn rates below 10^12 guesses. A rule that refused
random secrets people already use would lock a deployment out of its stored users, so this
draws random 16-character secrets of each common kind (the shortest allowed) and counts how
many the rule would refuse, with the lowest rating seen.

Usage: python bench/secret_strength.py [--quick] [--samples N] [--seed S]

Last line: ``refused_hex16=… refused_lower16=… refused_alnum16=… refused_urlsafe16=…
refused_digits16=… lowest_log10=…`` (digits excluded from the lowest: they are expected to
fall below now and then).
"""

from __future__ import annotations

import argparse
import random
import string
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from zxcvbn import zxcvbn

from app.id_secret import MIN_GUESSES_LOG10, PROJECT_WORDS

KINDS = {
    "hex16": "0123456789abcdef",
    "lower16": string.ascii_lowercase,
    "alnum16": string.ascii_letters + string.digits,
    "urlsafe16": string.ascii_letters + string.digits + "-_",
    "digits16": string.digits,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="300 of each kind")
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args()
    samples = 300 if args.quick else args.samples
    rng = random.Random(args.seed)
    figures, lowest = [], float("inf")
    for kind, alphabet in KINDS.items():
        ratings = [
            float(
                zxcvbn(
                    "".join(rng.choice(alphabet) for _ in range(16)),
                    user_inputs=list(PROJECT_WORDS),
                )["guesses_log10"]
            )
            for _ in range(samples)
        ]
        refused = sum(r < MIN_GUESSES_LOG10 for r in ratings)
        print(f"{kind}: {samples} secrets, {refused} refused, lowest 10^{min(ratings):.2f}")
        figures.append(f"refused_{kind}={refused}")
        if kind != "digits16":
            lowest = min(lowest, *ratings)
    print(" ".join(figures) + f" lowest_log10={lowest:.2f}")


if __name__ == "__main__":
    main()
