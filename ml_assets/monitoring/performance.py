"""How good were yesterday's decisions, now that labels have arrived? Quality per day.

Labels come 1-3 days late, so day D's performance is computed once its transactions' labels
have landed: predictions are joined to labels by transaction and grouped by the day they were
scored. Reviewers' labels count beside the chargebacks, one label per transaction by the rule
of `ml_assets.data.labels` (a chargeback overrules a review). The metric functions are the
evaluation's own (`ml_assets.training.evaluation`), so a model's offline and online numbers
are computed the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import polars as pl

from ml_assets.data.labels import SOURCE, resolve_labels
from ml_assets.monitoring.plots import plot_series
from ml_assets.training.evaluation import (
    REVIEW_SHARE,
    expected_calibration_error,
    fraud_amount_caught,
    pr_auc,
    roc_auc,
)

SCORE, LABEL, AMOUNT, DAY = "score", "is_fraud", "amount", "day"


@dataclass(frozen=True)
class DailyPerformance:
    day: date
    rows: int
    positives: int
    roc_auc: float | None
    pr_auc: float | None
    ece: float
    fraud_amount_caught: float
    review_share: float


def join_scores_labels(predictions: pl.DataFrame, labels: pl.DataFrame) -> pl.DataFrame:
    """Scored transactions with their label and the day they were scored.

    A transaction scored more than once (a retry, a cache hit) counts once, with its last
    score; transactions without a label yet are left out. Labels of several sources (a
    `source` column) are resolved to one per transaction, and the winning source is kept.
    """
    needed = {"transaction_id", "received_at", SCORE, AMOUNT}
    missing = sorted(needed - set(predictions.columns))
    if missing:
        raise ValueError(f"predictions lack {missing}; pass the prediction log")
    if not {"transaction_id", LABEL} <= set(labels.columns):
        raise ValueError(f"labels need 'transaction_id' and '{LABEL}'")
    scored = (
        predictions.filter(pl.col(SCORE).is_not_null())
        .sort("received_at")
        .unique("transaction_id", keep="last")
        .select("transaction_id", pl.col("received_at").dt.date().alias(DAY), SCORE, AMOUNT)
    )
    if SOURCE in labels.columns:
        labels = resolve_labels(labels).select("transaction_id", LABEL, SOURCE)
    else:
        labels = labels.select("transaction_id", LABEL).unique("transaction_id", keep="last")
    return scored.join(labels, on="transaction_id", how="inner")


def daily_performance(
    scored: pl.DataFrame, day: date, review_share: float = REVIEW_SHARE
) -> DailyPerformance:
    """AUC, PR-AUC, calibration error and fraud amount caught at a review budget (the top
    `review_share` of scores) for one day's labelled, scored rows."""
    missing = sorted({SCORE, LABEL, AMOUNT} - set(scored.columns))
    if missing:
        raise ValueError(f"scored rows lack {missing}; build them with join_scores_labels")
    y = scored[LABEL].cast(pl.Float64).to_numpy()
    p = scored[SCORE].cast(pl.Float64).to_numpy()
    if len(y) == 0:
        raise ValueError(f"no labelled, scored rows for {day}; have its labels arrived yet?")
    return DailyPerformance(
        day=day,
        rows=len(y),
        positives=int(y.sum()),
        roc_auc=roc_auc(y, p),
        pr_auc=pr_auc(y, p),
        ece=expected_calibration_error(y, p),
        fraud_amount_caught=fraud_amount_caught(
            y, p, scored[AMOUNT].cast(pl.Float64).to_numpy(), review_share
        ),
        review_share=review_share,
    )


def performance_by_day(
    scored: pl.DataFrame, review_share: float = REVIEW_SHARE
) -> list[DailyPerformance]:
    """`daily_performance` for every day in `scored` (which has a `day` column)."""
    return [
        daily_performance(part, part[DAY][0], review_share)
        for part in scored.sort(DAY).partition_by(DAY, maintain_order=True)
    ]


def performance_table(days: Iterable[DailyPerformance]) -> pl.DataFrame:
    """One row per day, sorted: the daily metrics table the plot and trends read."""
    rows = [asdict(d) for d in days]
    schema = {
        DAY: pl.Date, "rows": pl.Int64, "positives": pl.Int64, "roc_auc": pl.Float64,
        "pr_auc": pl.Float64, "ece": pl.Float64, "fraud_amount_caught": pl.Float64,
        "review_share": pl.Float64,
    }  # fmt: skip
    return pl.DataFrame(rows, schema=schema).sort(DAY)


def performance_trend(table: pl.DataFrame, window: int = 7) -> pl.DataFrame:
    """The daily table with trailing means over `window` reported days (daily AUC on a few
    dozen frauds is noisy; the trend is what to alert on)."""
    metrics = ["roc_auc", "pr_auc", "ece", "fraud_amount_caught"]
    return table.sort(DAY).with_columns(
        pl.col(m).rolling_mean(window, min_samples=1).alias(f"{m}_{window}d") for m in metrics
    )


def plot_performance(table: pl.DataFrame, path: Path) -> Path:
    """Time series of the daily metrics (PNG)."""
    return plot_series(
        table.sort(DAY),
        {
            "ranking": ["roc_auc", "pr_auc"],
            "calibration error": ["ece"],
            "share of fraud amount caught at the review budget": ["fraud_amount_caught"],
        },
        path,
        "Model performance per day",
    )
