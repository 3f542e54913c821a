"""What "normal" means for monitoring: the champion's training days, and what depends only
on them (calibrated drift thresholds, a reference sample), computed once per reference
window and cached under the reports folder for every later day compared with it."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from ml_assets.atomic_files import write_parquet_atomically, write_text_atomically
from ml_assets.features.registry import CUSTOMER_FEATURES, MERCHANT_FEATURES
from ml_assets.monitoring.drift_methods import DriftColumns, DriftMethods, calibrate_thresholds
from ml_assets.storage import StoragePath, exists, read_bytes, read_parquet, storage_path
from ml_assets.training.registry_reader import (
    CHAMPION,
    STUDENT_MODEL_NAME,
    recover_lineage,
    resolve_version,
)

REFERENCE_ROWS = 50_000


class NoChampionError(LookupError):
    """Monitoring compares with the champion's training days, and there is no champion."""


def transaction_days(label_days: Sequence[str]) -> list[str]:
    """The transaction days a model learned from, given its training_set (label-arrival)
    partitions: labels arrive at least a day late, so label day E covers transactions up to
    E-1. Using the label days themselves would put the day after the window, possibly
    already drifted, into the reference."""
    return [(date.fromisoformat(d) - timedelta(days=1)).isoformat() for d in sorted(label_days)]


def champion_reference(tracking_uri: str) -> tuple[str, list[str]]:
    """The champion's version and the transaction days it was trained on."""
    version = resolve_version(tracking_uri, STUDENT_MODEL_NAME, CHAMPION)
    if version is None:
        raise NoChampionError(
            "monitoring compares each day with the champion's training window, and there is no "
            "champion yet: materialize the models group (teacher_model .. deployed_model) first"
        )
    label_days = recover_lineage(STUDENT_MODEL_NAME, version, tracking_uri).training_partitions
    return version, transaction_days(label_days)


def at_most(frame: pl.DataFrame, rows: int = REFERENCE_ROWS) -> pl.DataFrame:
    """A seeded sample: drift methods on distributions need thousands of rows, not millions."""
    return frame.sample(rows, seed=0) if frame.height > rows else frame


def reference_folder(reports_dir: StoragePath | str, kind: str, days: list[str]) -> StoragePath:
    """Where what depends only on the reference window is kept (thresholds, a sample)."""
    if not days:
        raise FileNotFoundError(
            f"none of the champion's training days have the tables {kind} needs; materialize "
            "data and features for them first"
        )
    versions = f"{days}{CUSTOMER_FEATURES.version}{MERCHANT_FEATURES.version}"
    return (
        storage_path(reports_dir)
        / kind
        / "reference"
        / hashlib.sha256(versions.encode()).hexdigest()[:12]
    )


def cached_frame(path: StoragePath, compute: Callable[[], pl.DataFrame]) -> pl.DataFrame:
    """A frame built once per reference window and reused by every day."""
    if exists(path):
        return read_parquet(path)
    frame = compute()
    write_parquet_atomically(frame, path)
    return frame


def cached_methods(
    path: StoragePath, compute: Callable[[], DriftMethods]
) -> tuple[DriftMethods, bool]:
    """Calibrated thresholds for one reference window, computed once and reused by every day
    compared with that window. Returns (methods, whether they came from the cache)."""
    if exists(path):
        return DriftMethods(**json.loads(read_bytes(path))), True
    methods = compute()
    write_text_atomically(path, json.dumps(asdict(methods), indent=2, sort_keys=True))
    return methods, False


@dataclass(frozen=True)
class DriftReference:
    """The drift reference of one window: a sample, thresholds calibrated on its clean days."""

    days: list[str]
    sample: pl.DataFrame
    methods: DriftMethods
    thresholds_cached: bool


def drift_reference(
    folder: Path,
    days: list[str],
    day_frame: Callable[[str], pl.DataFrame],
    columns: DriftColumns,
) -> DriftReference:
    """The reference of `days` (each read by `day_frame`), from the cache in `folder` when
    an earlier day already built it; the days are read at most once either way."""

    @functools.cache
    def frames() -> list[pl.DataFrame]:
        return [day_frame(d) for d in days]

    methods, cached = cached_methods(
        folder / "thresholds.json", lambda: calibrate_thresholds(frames(), columns)
    )
    sample = cached_frame(folder / "reference.parquet", lambda: at_most(pl.concat(frames())))
    return DriftReference(days, sample, methods, cached)
