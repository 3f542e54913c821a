"""Partitioned Parquet tables under the data directory, one file per daily partition.

A partition is written to a temporary name in its own folder and renamed into place, so a
re-run replaces a day whole and a run killed mid-write leaves the previous version intact.
No process holds a lock, so partitions can be written side by side.

The root may be an object-store URL (`ML_ASSETS_WAREHOUSE_URL=s3://bucket/warehouse`, see
`storage`) with the same layout, one object per day. There a partition is one PUT, which S3
applies atomically: a reader sees the previous day or the new one, a killed run leaves the
previous version, and no temporary object is ever visible. Reads are one GET per day.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Mapping
from datetime import date, timedelta

import polars as pl

from ml_assets.atomic_files import replace_atomically, write_parquet_atomically
from ml_assets.storage import (
    StoragePath,
    exists,
    is_remote,
    read_bytes,
    read_parquet,
    storage_path,
    subfolders,
)

PARTITION_FILE = "data.parquet"


def partition_dir(root: StoragePath | str, table: str, day: date | str) -> StoragePath:
    return storage_path(root) / table / f"date={day if isinstance(day, str) else day.isoformat()}"


def partition_path(root: StoragePath | str, table: str, day: date | str | None) -> StoragePath:
    """Where a table's partition lives; `day=None` is the single file of an unpartitioned table."""
    if day is None:
        return storage_path(root) / table / PARTITION_FILE
    return partition_dir(root, table, day) / PARTITION_FILE


def write_partition(
    root: StoragePath | str, table: str, day: date | str | None, frame: pl.DataFrame
) -> StoragePath:
    return write_parquet_atomically(frame, partition_path(root, table, day))


def store_partition(
    root: StoragePath | str, table: str, day: date | str | None, frame: pl.DataFrame
) -> tuple[StoragePath, str]:
    """Write a partition and return it with its data version (`file_digest` of the stored
    file), hashed from the bytes written: reading it back would cost a GET on S3."""
    buffer = io.BytesIO()
    frame.write_parquet(buffer, statistics=True)
    data = buffer.getvalue()
    path = replace_atomically(partition_path(root, table, day), lambda t: t.write_bytes(data))
    return path, bytes_digest(data)


def read_partition(root: StoragePath | str, table: str, day: date | str | None) -> pl.DataFrame:
    path = partition_path(root, table, day)
    try:  # no existence check first: on S3 that is one more request per partition
        return read_parquet(path)
    except FileNotFoundError:
        where = f"partition {day}" if day is not None else "its only partition"
        raise FileNotFoundError(
            f"table {table!r} has no {where} at {path}: materialize {table} for it first"
        ) from None


def listed_keys(root: StoragePath | str, table: str, days: Iterable[date | str]) -> list[str]:
    """The partition keys of `days`, on an object store only those the table has: one LIST
    instead of a GET per absent day (a feature window reaches back weeks before the data
    began). Locally all of them: a missing file costs nothing to find."""
    keys = [day if isinstance(day, str) else day.isoformat() for day in days]
    root = storage_path(root)
    if not is_remote(root) or len(keys) < 2:
        return keys
    stored = {p.name for p in subfolders(root / table, "date=")}
    return [key for key in keys if f"date={key}" in stored]


def existing_partitions(
    root: StoragePath | str, table: str, days: Iterable[date | str]
) -> list[StoragePath]:
    return [p for day in days if exists(p := partition_path(root, table, day))]


def read_partitions(
    root: StoragePath | str, table: str, days: Iterable[date | str]
) -> dict[str, pl.DataFrame]:
    """The stored partitions among `days`, by partition key in the order given; days without a
    file (before the data began) are left out."""
    frames = {}
    for key in listed_keys(root, table, days):
        try:
            frames[key] = read_parquet(partition_path(root, table, key))
        except FileNotFoundError:  # removed since it was listed, or absent on a disk
            continue
    return frames


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


def bytes_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def file_digest(path: StoragePath) -> str:
    """A content hash of a written partition: its data version."""
    return bytes_digest(read_bytes(path))
