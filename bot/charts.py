"""The /chart picture: completions over time against the target, and coverage by area.

Rendered with matplotlib's headless Agg backend into PNG bytes. DejaVu Sans, which matplotlib
ships, has every Vietnamese letter, so the labels render as written.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from datetime import date

from bot.stats import Report


def chart_png(report: Report, texts: Mapping[str, str]) -> bytes:
    """A two-panel PNG for ``report``."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.dates import DateFormatter

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 8), dpi=100)
    try:
        days = [date.fromisoformat(d) for d in report.by_day]
        total = 0
        cumulative = []
        for n in report.by_day.values():
            total += n
            cumulative.append(total)
        if days:
            top.step(
                days, cumulative, where="post", color="#1f77b4", label=texts["chart_cumulative"]
            )
        top.axhline(
            report.target_people, color="#d62728", linestyle="--", label=texts["chart_target"]
        )
        top.set_title(texts["chart_title"].format(scope=report.scope))
        top.xaxis.set_major_formatter(DateFormatter("%d/%m"))  # type: ignore[no-untyped-call]
        top.set_ylim(bottom=0)
        top.legend(loc="upper left")
        top.grid(alpha=0.3)

        wide = len(report.communes) > 1
        areas = list(report.communes if wide else report.villages)[:20]
        names = [a.name for a in areas]
        shares = [100 * (a.coverage or 0.0) for a in areas]
        bottom.barh(names, shares, color="#2ca02c")
        bottom.axvline(100 * report.target_share, color="#d62728", linestyle="--")
        bottom.set_title(texts["chart_coverage_communes" if wide else "chart_coverage"])
        bottom.set_xlim(0, 100)
        bottom.invert_yaxis()
        fig.tight_layout()
        out = io.BytesIO()
        fig.savefig(out, format="png")
        return out.getvalue()
    finally:
        plt.close(fig)
