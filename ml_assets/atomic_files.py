"""The one atomic write of the platform: a reader sees the old file or the new one, never
half of one, and a writer killed mid-write leaves no temporary behind for ever.

Every file the platform writes for others to read (warehouse partitions, the prediction log,
reports, pictures, caches, landed files) goes through `replace_atomically`: write to a
hidden temporary in the target's folder, fsync, rename over the target. A temporary that a
killed writer left in that folder is removed by the next write there once it is older than
`STALE_AFTER_S` (younger ones may belong to a writer that is still running).

On an object store (a `UPath`, see `storage`) there is no rename and no fsync. The file is
written to a local temporary, then uploaded with one PUT, which S3 applies atomically: a
reader sees the old object or the new one, and a writer killed before or during the upload
leaves the old object (or none) and no temporary in the bucket. What S3 does not give is
a rename's all-or-nothing over several files: a range run writes one object per day, so a
killed run leaves whole days only, as on a local disk.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import polars as pl

from ml_assets.storage import StoragePath, is_remote, write_bytes

TEMPORARY_SUFFIX = ".tmp"
STALE_AFTER_S = 15 * 60.0


def temporary_for(path: Path) -> Path:
    """A fresh hidden temporary beside `path` (unique, so concurrent writers never share it)."""
    return path.parent / f".{path.name}.{uuid.uuid4().hex}{TEMPORARY_SUFFIX}"


def remove_stale_temporaries(folder: Path, older_than_s: float = STALE_AFTER_S) -> int:
    """Delete temporaries in `folder` that a killed writer left; returns how many."""
    if not folder.is_dir():
        return 0
    cutoff = time.time() - older_than_s
    removed = 0
    for stale in folder.glob(f".*{TEMPORARY_SUFFIX}"):
        with contextlib.suppress(FileNotFoundError):  # another writer cleaned it first
            if stale.stat().st_mtime < cutoff:
                stale.unlink()
                removed += 1
    return removed


def replace_atomically(path: StoragePath, write: Callable[[Path], object]) -> StoragePath:
    """Call `write(temporary)` and rename the temporary onto `path` (upload it in one PUT
    when `path` is on an object store)."""
    if is_remote(path):
        return _upload_atomically(path, write)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent)
    temporary = temporary_for(path)
    try:
        write(temporary)
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def _upload_atomically(path: StoragePath, write: Callable[[Path], object]) -> StoragePath:
    with tempfile.TemporaryDirectory(prefix="ml_assets_upload_") as folder:
        local = Path(folder) / path.name
        write(local)
        write_bytes(path, local.read_bytes())
    return path


def write_parquet_atomically(frame: pl.DataFrame, path: StoragePath) -> StoragePath:
    return replace_atomically(path, lambda t: frame.write_parquet(t, statistics=True))


def write_text_atomically(path: StoragePath, text: str) -> StoragePath:
    return replace_atomically(path, lambda t: t.write_text(text, encoding="utf-8"))
