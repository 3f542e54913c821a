"""One page to browse drift reports: every day, its drift share, what drifted, and links.

Regenerated from the JSON summaries on disk each time a report is written, so it always lists
exactly the days that have a report (re-runs and backfills included). Links are relative, so
the folder can be copied, served or opened from disk as it is.
"""

from __future__ import annotations

import html
from datetime import date
from pathlib import Path

from ml_assets.atomic_files import write_text_atomically
from ml_assets.monitoring.plots import plot_drift_share
from ml_assets.monitoring.reports import locked, read_summaries
from ml_assets.storage import storage_path

INDEX_NAME = "index.html"
PLOT_NAME = "drift_share.png"

_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; }
th, td { padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: left; }
tr.drift td { background: #fdecea; }
"""


def _row(summary: dict) -> str:
    day = html.escape(summary["day"])
    drifted = ", ".join(html.escape(c) for c in summary.get("drifted_columns", [])) or "-"
    css = ' class="drift"' if summary.get("dataset_drift") else ""
    sample = f"{summary.get('current_sample_rows', 0):,} / {summary.get('current_rows', 0):,}"
    return (
        f"<tr{css}><td>{day}</td><td>{summary['drift_share']:.2f}</td><td>{drifted}</td>"
        f"<td>{sample}</td>"
        f'<td><a href="{day}.html">report</a> · <a href="{day}.json">json</a></td></tr>'
    )


def render_index(summaries: list[dict], title: str, plot_name: str | None) -> str:
    """The page's HTML from day summaries (newest first in the table)."""
    rows = "\n".join(_row(s) for s in sorted(summaries, key=lambda s: s["day"], reverse=True))
    picture = f'<p><img src="{plot_name}" alt="drift share over time"></p>' if plot_name else ""
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_STYLE}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p>{len(summaries)} day(s) with a report. A highlighted row is a day whose share of drifted
columns reached its threshold; each report states the method and threshold of every column.</p>
{picture}
<table>
<tr><th>day</th><th>drift share</th><th>drifted columns</th><th>rows compared</th>
<th>files</th></tr>
{rows}
</table>
</body></html>
"""


def write_index(folder: Path, title: str = "Drift reports") -> Path:
    """Rebuild `folder/index.html` (and its drift-share PNG) from the day summaries there."""
    folder = storage_path(folder)
    with locked(folder, ".index.lock"):
        summaries = read_summaries(folder)
        plot_name = None
        if summaries:
            plot_drift_share(
                [date.fromisoformat(s["day"]) for s in summaries],
                [s["drift_share"] for s in summaries],
                folder / PLOT_NAME,
                threshold=summaries[-1].get("share_threshold"),
            )
            plot_name = PLOT_NAME
        return write_text_atomically(folder / INDEX_NAME, render_index(summaries, title, plot_name))
