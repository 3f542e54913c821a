"""Daily performance equals a direct sklearn/numpy computation on the same labels."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from ml_assets.monitoring.performance import (
    daily_performance,
    join_scores_labels,
    performance_by_day,
    performance_table,
    performance_trend,
    plot_performance,
)
from ml_assets_tests.support.synthetic import CLEAN_DAYS, toy_prediction_log

REVIEW_SHARE = 0.02


@pytest.fixture(scope="module")
def scored(days: dict[date, pl.DataFrame]) -> pl.DataFrame:
    logs, labels = [], []
    for i, day in enumerate(CLEAN_DAYS[:4]):
        tx = days[day]
        logs.append(toy_prediction_log(tx, seed=i))
        rng = np.random.default_rng(i)
        # Labels drawn from the generator's true probability; fraud is rare, so raise it for
        # a test that must see positives every day.
        p = np.clip(tx["true_fraud_probability"].to_numpy() * 20, 0, 1)
        labels.append(
            tx.select("transaction_id").with_columns(
                is_fraud=pl.Series((rng.random(tx.height) < p).astype(np.int8))
            )
        )
    log = pl.concat(logs)
    # A retried request: the same transaction scored twice counts once.
    log = pl.concat([log, log.head(5).with_columns(pl.col("received_at").dt.offset_by("1s"))])
    return join_scores_labels(log, pl.concat(labels))


def _direct(part: pl.DataFrame) -> dict[str, float]:
    y = part["is_fraud"].to_numpy().astype(float)
    p = part["score"].to_numpy()
    amount = part["amount"].to_numpy()
    k = max(1, int(round(len(p) * REVIEW_SHARE)))
    top = np.argsort(-p, kind="stable")[:k]
    bins = np.minimum((p * 10).astype(int), 9)
    ece = sum(
        (bins == b).sum() / len(p) * abs(y[bins == b].mean() - p[bins == b].mean())
        for b in range(10)
        if (bins == b).any()
    )
    return {
        "roc_auc": roc_auc_score(y, p),
        "pr_auc": average_precision_score(y, p),
        "ece": ece,
        "fraud_amount_caught": (amount[top] * y[top]).sum() / (amount * y).sum(),
    }


def test_one_row_per_transaction(scored: pl.DataFrame) -> None:
    assert scored["transaction_id"].n_unique() == scored.height


def test_daily_metrics_equal_direct_computation(scored: pl.DataFrame) -> None:
    days = performance_by_day(scored, review_share=REVIEW_SHARE)
    assert [d.day for d in days] == CLEAN_DAYS[:4]
    for daily in days:
        part = scored.filter(pl.col("day") == daily.day)
        expected = _direct(part)
        assert daily.rows == part.height and daily.positives == part["is_fraud"].sum()
        for metric, value in expected.items():
            assert getattr(daily, metric) == pytest.approx(value, rel=1e-9), metric


def test_table_trend_and_plot(scored: pl.DataFrame, tmp_path) -> None:
    table = performance_table(performance_by_day(scored, REVIEW_SHARE))
    assert table.height == 4 and table["day"].is_sorted()
    trend = performance_trend(table, window=2)
    assert trend["roc_auc_2d"][1] == pytest.approx((table["roc_auc"][0] + table["roc_auc"][1]) / 2)
    png = plot_performance(table, tmp_path / "performance.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_single_class_day_has_no_auc(scored: pl.DataFrame) -> None:
    day = CLEAN_DAYS[0]
    negatives = scored.filter((pl.col("day") == day) & (pl.col("is_fraud") == 0))
    daily = daily_performance(negatives, day)
    assert daily.roc_auc is None and daily.positives == 0


def test_no_rows_is_explained(scored: pl.DataFrame) -> None:
    with pytest.raises(ValueError, match="labels arrived"):
        daily_performance(scored.head(0), CLEAN_DAYS[0])
