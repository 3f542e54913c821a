"""Drift of served scores and decisions: the same machinery on the prediction log."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from ml_assets.monitoring.prediction_drift import PREDICTION_DRIFT, compute_prediction_drift
from ml_assets.monitoring.publish import publish_drift
from ml_assets_tests.support.synthetic import CLEAN_DAYS, INFLATION_DAYS, toy_prediction_log


@pytest.fixture(scope="module")
def reference_log(reference: pl.DataFrame) -> pl.DataFrame:
    return toy_prediction_log(reference, seed=0)


@pytest.mark.parametrize(("day", "drifted"), [(CLEAN_DAYS[2], False), (INFLATION_DAYS[0], True)])
def test_scores_drift_with_amount_inflation(
    day: date, drifted: bool, days: dict[date, pl.DataFrame], reference_log: pl.DataFrame
) -> None:
    log = toy_prediction_log(days[day], seed=day.toordinal())
    result = compute_prediction_drift(log, reference_log, day=day)
    assert result.kind == PREDICTION_DRIFT
    assert [c.column for c in result.columns] == ["score", "decision"]
    assert result.dataset_drift is drifted
    assert ("score" in result.drifted_columns) is drifted


def test_unscored_requests_are_left_out(
    days: dict[date, pl.DataFrame], reference_log: pl.DataFrame, tmp_path
) -> None:
    day = CLEAN_DAYS[0]
    log = toy_prediction_log(days[day], seed=1)
    log = log.with_columns(
        score=pl.when(pl.col("path") == "review").then(None).otherwise(pl.col("score"))
    )
    result = compute_prediction_drift(log, reference_log, day=day)
    assert result.current_rows == log.filter(pl.col("score").is_not_null()).height
    published = publish_drift(result, tmp_path, workspace=False)
    assert published.html.parent.name == "prediction_drift"
    assert (published.html.parent / "index.html").is_file()
