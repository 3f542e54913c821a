"""What monitoring looks at, built from the warehouse's tables: one row per transaction with
the feature values the model saw, the champion's batch scores, and the drift reference."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from ml_assets.features.registry import CUSTOMER_FEATURES, FEATURE_TIME, MERCHANT_FEATURES
from ml_assets.monitoring.drift_methods import DriftColumns, DriftMethods
from ml_assets.serving.decisions import decide_many
from ml_assets.warehouse import write_atomically

DRIFT_COLUMNS = DriftColumns(
    numeric=("amount", *CUSTOMER_FEATURES.columns, *MERCHANT_FEATURES.columns),
    categorical=("channel", "device", "merchant_category"),
)
SCORED_COLUMNS = [
    "transaction_id", "received_at", "customer_id", "merchant_id", "amount", "channel",
    "merchant_category", "score", "decision", "model_name", "model_version",
]  # fmt: skip


def transaction_days(label_days: Sequence[str]) -> list[str]:
    """The transaction days a model learned from, given its training_set (label-arrival)
    partitions: labels arrive at least a day late, so label day E covers transactions up to
    E-1. Using the label days themselves would put the day after the window, possibly
    already drifted, into the reference."""
    return [(date.fromisoformat(d) - timedelta(days=1)).isoformat() for d in sorted(label_days)]


def drift_frame(
    transactions: pl.DataFrame, customer: pl.DataFrame, merchant: pl.DataFrame
) -> pl.DataFrame:
    """Each transaction with its customer's and merchant's feature state right after it (the
    day's feature rows are keyed by event time), limited to the monitored columns."""
    frame = transactions
    for feature_set, features in ((CUSTOMER_FEATURES, customer), (MERCHANT_FEATURES, merchant)):
        frame = frame.join(
            features.rename({FEATURE_TIME: "event_time"}),
            on=[feature_set.key, "event_time"],
            how="left",
        )
    return frame.select(DRIFT_COLUMNS.all)


def score_frame(
    rows: pl.DataFrame,
    scores: np.ndarray,
    model_name: str,
    model_version: str,
    review_low: float,
    decline_at: float,
) -> pl.DataFrame:
    """Batch scores in the prediction log's shape, so monitoring reads both the same way."""
    return rows.with_columns(
        received_at=pl.col("event_time"),
        score=pl.Series(scores, dtype=pl.Float64),
        decision=pl.Series(decide_many(scores, review_low, decline_at)),
        model_name=pl.lit(model_name),
        model_version=pl.lit(str(model_version)),
    ).select(SCORED_COLUMNS)


def cached_frame(path: Path, compute: Callable[[], pl.DataFrame]) -> pl.DataFrame:
    """A reference sample built once per reference window and reused by every day."""
    if path.exists():
        return pl.read_parquet(path)
    frame = compute()
    write_atomically(frame, path)
    return frame


def cached_methods(path: Path, compute: Callable[[], DriftMethods]) -> tuple[DriftMethods, bool]:
    """Calibrated thresholds for one reference window, computed once and reused by every day
    compared with that window. Returns (methods, whether they came from the cache)."""
    if path.exists():
        return DriftMethods(**json.loads(path.read_text())), True
    methods = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(asdict(methods), indent=2, sort_keys=True))
    temporary.replace(path)
    return methods, False


def read_prediction_log(home: Path, day: str) -> pl.DataFrame:
    """Every answer the endpoint logged on `day` (empty, with the log's schema, if none)."""
    from ml_assets.serving.prediction_log_schema import PREDICTION_LOG_DIR, PREDICTION_LOG_SCHEMA

    files = sorted((Path(home) / PREDICTION_LOG_DIR / f"date={day}").glob("*.parquet"))
    if not files:
        return pl.DataFrame(schema=PREDICTION_LOG_SCHEMA)
    return pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed")
