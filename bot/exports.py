"""Officials' spreadsheets: the rows of completions by day, village, provider and source, as
a CSV file that Excel opens with Vietnamese letters intact.

Pure: the counts (storage/stats.py ``export_rows``), config and texts in, file bytes out.
No personal data: every row is a count.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping

from bot.config import Commune, Config

#: (commune code, village id, YYYY-MM-DD, provider id, source, count)
DayRow = tuple[str, str, str, str, str, int]


def days_csv(
    rows: Iterable[DayRow],
    communes: Mapping[str, Commune],
    config: Config,
    texts: Mapping[str, str],
    unknown: str,
) -> bytes:
    """UTF-8 with a byte-order mark, so that Excel shows Vietnamese letters right."""
    providers = {p.id: p.name for p in config.providers}
    sources = {"self": texts["source_self"], "volunteer": texts["source_volunteer"]}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(texts["csv_header"].split(","))
    for code, village, day, provider, source, n in rows:
        commune = communes[code]
        found = commune.village(village)
        writer.writerow(
            [
                commune.name,
                found.name if found else unknown,
                day,
                providers.get(provider, unknown),
                sources.get(source, source),
                n,
            ]
        )
    return ("\ufeff" + out.getvalue()).encode("utf-8")
