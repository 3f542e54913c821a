"""A small per-day table beside the reports (one row per day, re-runs replace their row), so
the time-series pictures are redrawn from every day materialized so far."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ml_assets.atomic_files import write_parquet_atomically
from ml_assets.monitoring.reports import locked


def upsert_day(path: Path, row: dict[str, object], day_column: str = "day") -> pl.DataFrame:
    """Replace `row`'s day in the table at `path` (creating it) and return the whole table.
    A lock keeps partitions materialized side by side from losing each other's rows."""
    with locked(path.parent, f".{path.stem}.lock"):
        new = pl.DataFrame([row])
        if path.exists():
            old = pl.read_parquet(path).filter(pl.col(day_column) != row[day_column])
            new = pl.concat([old, new], how="diagonal_relaxed")
        table = new.sort(day_column)
        write_parquet_atomically(table, path)
    return table
