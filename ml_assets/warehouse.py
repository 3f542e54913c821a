"""Partitioned Parquet tables under the data directory, one file per daily partition.

A partition is written to a temporary name in its own folder and renamed into place, so a
re-run replaces a day whole and a run killed mid-write leaves the previous version intact.
No process holds a lock, so partitions can be written side by side.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from ml_assets.atomic_files import write_parquet_atomically

PARTITION_FILE = "data.parquet"


def partition_dir(root: Path, table: str, day: date | str) -> Path:
    return root / table / f"date={day if isinstance(day, str) else day.isoformat()}"


def partition_path(root: Path, table: str, day: date | str | None) -> Path:
    """Where a table's partition lives; `day=None` is the single file of an unpartitioned table."""
    if day is None:
        return root / table / PARTITION_FILE
    return partition_dir(root, table, day) / PARTITION_FILE


def write_partition(root: Path, table: str, day: date | str | None, frame: pl.DataFrame) -> Path:
    return write_parquet_atomically(frame, partition_path(root, table, day))


def read_partition(root: Path, table: str, day: date | str | None) -> pl.DataFrame:
    path = partition_path(root, table, day)
    if not path.exists():
        where = f"partition {day}" if day is not None else "its only partition"
        raise FileNotFoundError(
            f"table {table!r} has no {where} at {path}: materialize {table} for it first"
        )
    return pl.read_parquet(path)


def existing_partitions(root: Path, table: str, days: Iterable[date | str]) -> list[Path]:
    return [p for day in days if (p := partition_path(root, table, day)).exists()]


def read_partitions(root: Path, table: str, days: Iterable[date | str]) -> dict[str, pl.DataFrame]:
    """The stored partitions among `days`, by partition key in the order given; days without a
    file (before the data began) are left out."""
    return {
        path.parent.name.removeprefix("date="): pl.read_parquet(path)
        for path in existing_partitions(root, table, days)
    }


def concat_partitions(frames: Iterable[pl.DataFrame]) -> pl.DataFrame:
    """Days of one table as one frame; a column absent on some days is null there."""
    return pl.concat(list(frames), how="diagonal_relaxed")


def window_keys(day: date, days_back: int) -> list[str]:
    """The partition keys `day - days_back .. day`, oldest first: a day's input window."""
    return [(day - timedelta(days=back)).isoformat() for back in range(days_back, -1, -1)]


def window_frame(
    frames: Mapping[str, pl.DataFrame], table: str, day: date, days_back: int
) -> pl.DataFrame:
    """Days `day - days_back .. day` of `frames` (a range run's input, by partition key) as one
    frame: exactly what a single-day run of `day` loads through its window mapping, so each day
    of a range is computed from the same rows as when it runs alone."""
    keys = window_keys(day, days_back)
    present = [frames[k] for k in keys if k in frames]
    if not present:
        raise FileNotFoundError(
            f"{table} has none of the partitions {keys[0]}..{keys[-1]} needed for {day}: "
            f"materialize {table} for them first"
        )
    return present[0] if len(present) == 1 else concat_partitions(present)


def file_digest(path: Path) -> str:
    """A content hash of a written partition: its data version."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]
