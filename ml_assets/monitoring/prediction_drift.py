"""Has what the model serves moved? Drift of served scores and decisions against a reference.

The same machinery as feature drift (`compute_drift`), on the prediction log: a shift in the
score distribution or in the approve/review/decline mix is often the first visible sign that
inputs or the model changed, days before labels arrive to measure quality.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from ml_assets.monitoring.drift import SAMPLE_ROWS, DriftResult, compute_drift
from ml_assets.monitoring.drift_methods import DriftColumns, DriftMethods

PREDICTION_DRIFT = "prediction_drift"
PREDICTION_COLUMNS = DriftColumns(numeric=("score",), categorical=("decision",))
# Two columns only: one of them moving is already half of what we watch, so a day counts as
# drifted as soon as either the score or the decision mix moves.
PREDICTION_DRIFT_SHARE = 0.5


def served_rows(log: pl.DataFrame) -> pl.DataFrame:
    """Rows that carry a served score (a request routed to review may have none)."""
    if "score" not in log.columns:
        raise ValueError("prediction log lacks 'score'; see serving/prediction_log_schema.py")
    return log.filter(pl.col("score").is_not_null())


def compute_prediction_drift(
    current_log: pl.DataFrame,
    reference_log: pl.DataFrame,
    *,
    day: date | None = None,
    columns: DriftColumns = PREDICTION_COLUMNS,
    methods: DriftMethods | None = None,
    share_threshold: float = PREDICTION_DRIFT_SHARE,
    sample_size: int | None = SAMPLE_ROWS,
    seed: int = 0,
) -> DriftResult:
    """Drift of the day's served scores and decisions against a reference window of the log."""
    return compute_drift(
        served_rows(current_log),
        served_rows(reference_log),
        columns,
        methods,
        day=day,
        kind=PREDICTION_DRIFT,
        share_threshold=share_threshold,
        sample_size=sample_size,
        seed=seed,
    )
