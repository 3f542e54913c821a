"""The rows monitoring looks at, built from the warehouse's tables: each transaction with the
feature values the model saw (for drift), and the champion's batch scores in the prediction
log's shape (for performance and prediction drift)."""

from __future__ import annotations

import numpy as np
import polars as pl

from ml_assets.features.registry import CUSTOMER_FEATURES, FEATURE_TIME, MERCHANT_FEATURES
from ml_assets.monitoring.drift_methods import DriftColumns
from ml_assets.serving.decisions import decide_many
from ml_assets.settings import DecisionThresholds

DRIFT_COLUMNS = DriftColumns(
    numeric=("amount", *CUSTOMER_FEATURES.columns, *MERCHANT_FEATURES.columns),
    categorical=("channel", "device", "merchant_category"),
)
SCORED_COLUMNS = [
    "transaction_id", "received_at", "customer_id", "merchant_id", "amount", "channel",
    "merchant_category", "score", "decision", "model_name", "model_version",
]  # fmt: skip


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
    thresholds: DecisionThresholds,
) -> pl.DataFrame:
    """Batch scores in the prediction log's shape, decided by the endpoint's own rule, so
    monitoring reads both the same way."""
    return rows.with_columns(
        received_at=pl.col("event_time"),
        score=pl.Series(scores, dtype=pl.Float64),
        decision=pl.Series(decide_many(scores, thresholds)),
        model_name=pl.lit(model_name),
        model_version=pl.lit(str(model_version)),
    ).select(SCORED_COLUMNS)
