"""A small per-day table beside the reports (one row per day, re-runs replace their row), so
the time-series pictures are redrawn from every day materialized so far."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl

from ml_assets.atomic_files import write_parquet_atomically
from ml_assets.monitoring.reports import locked
from ml_assets.storage import exists, read_parquet


def upsert_day(
    path: Path,
    row: dict[str, object],
    redraw: Callable[[pl.DataFrame], Path],
    day_column: str = "day",
) -> Path:
    """Replace `row`'s day in the table at `path` (creating it), and redraw the picture from
        the whole table. One lock around the two keeps partitions materialized side
        by side from losing each other's rows, and the picture drawn last shows every day.
    Returns the picture."""
    with locked(path.parent, f".{path.stem}.lock"):
        new = pl.DataFrame([row])
        if exists(path):
            old = read_parquet(path).filter(pl.col(day_column) != row[day_column])
            new = pl.concat([old, new], how="diagonal_relaxed")
        table = new.sort(day_column)
        write_parquet_atomically(table, path)
        return redraw(table)
