"""The one atomic write of the platform: a reader sees the old file or the new one, never
half of one, and a writer killed mid-write leaves no temporary behind for ever.

Every file the platform writes for others to read (warehouse partitions, the prediction log,
reports, pictures, caches, landed files) goes through `replace_atomically`: write to a
hidden temporary in the target's folder, fsync, rename over the target. A temporary that a
killed writer left in that folder is removed by the next write there once it is older than
`STALE_AFTER_S` (younger ones may belong to a writer that is still running).
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import polars as pl

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


def replace_atomically(path: Path, write: Callable[[Path], object]) -> Path:
    """Call `write(temporary)` and rename the temporary onto `path`."""
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


def write_parquet_atomically(frame: pl.DataFrame, path: Path) -> Path:
    return replace_atomically(path, lambda t: frame.write_parquet(t, statistics=True))


def write_text_atomically(path: Path, text: str) -> Path:
    return replace_atomically(path, lambda t: t.write_text(text, encoding="utf-8"))
