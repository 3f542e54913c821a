"""Pictures of monitoring over days (drift share, model quality, latency) as PNG files.

Files rather than figures, so an asset can attach their paths and an HTML page can embed them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from ml_assets.atomic_files import replace_atomically
from ml_assets.storage import storage_path
from ml_assets.training.plots import pyplot

if TYPE_CHECKING:
    import matplotlib.pyplot as plt


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    try:
        return replace_atomically(
            storage_path(path), lambda t: fig.savefig(t, dpi=90, format="png")
        )
    finally:
        pyplot().close(fig)


def _date_axis(ax: plt.Axes) -> None:
    import matplotlib.dates as mdates

    ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d"))
    ax.grid(alpha=0.3)


def plot_drift_share(
    days: Sequence[date], shares: Sequence[float], path: Path, threshold: float | None = None
) -> Path:
    """Drift share per day, with the day-drift threshold as a dashed line."""
    fig, ax = pyplot().subplots(figsize=(8, 2.6))
    ax.plot(days, shares, marker="o", markersize=3)
    if threshold is not None:
        ax.axhline(threshold, color="tab:red", linestyle="--", linewidth=1, label="threshold")
        ax.legend(loc="upper left", fontsize=8)
    ax.set(ylabel="drift share", ylim=(-0.02, 1.02), title="Share of drifted columns per day")
    _date_axis(ax)
    return _save(fig, path)


def plot_series(
    table: pl.DataFrame, panels: Mapping[str, Sequence[str]], path: Path, title: str
) -> Path:
    """One panel per entry of `panels` (panel title -> columns), all against `table['day']`."""
    fig, axes = pyplot().subplots(len(panels), 1, figsize=(8, 2.4 * len(panels)), sharex=True)
    axes = [axes] if len(panels) == 1 else list(axes)
    days = table["day"].to_list()
    for ax, (panel, columns) in zip(axes, panels.items(), strict=True):
        for column in columns:
            ax.plot(days, table[column].to_list(), marker="o", markersize=3, label=column)
        ax.set_title(panel, fontsize=10)
        ax.legend(loc="best", fontsize=7)
        _date_axis(ax)
    fig.suptitle(title)
    return _save(fig, path)
