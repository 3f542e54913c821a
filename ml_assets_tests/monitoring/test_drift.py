"""Drift flags scenario days and their columns, and stays quiet on clean days."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from ml_assets.monitoring.drift import (
    DriftResult,
    compute_drift,
    drift_markdown,
    evidently_drift_share,
)
from ml_assets.monitoring.drift_methods import DriftColumns, DriftMethods, calibrate_thresholds
from ml_assets_tests.support.synthetic import (
    AMOUNT_COLUMNS,
    CLEAN_DAYS,
    COLUMNS,
    INFLATION_DAYS,
    NEW_CATEGORY_DAYS,
    day_frame,
)


@pytest.fixture(scope="module")
def results(
    days: dict[date, pl.DataFrame], reference: pl.DataFrame, methods: DriftMethods
) -> dict[date, DriftResult]:
    return {
        day: compute_drift(frame, reference, COLUMNS, methods, day=day)
        for day, frame in days.items()
    }


def test_sensitivity_and_false_alarms(results: dict[date, DriftResult]) -> None:
    flagged = {day for day, r in results.items() if r.dataset_drift}
    sensitivity = len(flagged & set(INFLATION_DAYS)) / len(INFLATION_DAYS)
    false_alarm_rate = len(flagged & set(CLEAN_DAYS)) / len(CLEAN_DAYS)
    print(f"\nsensitivity {sensitivity:.2f} over {len(INFLATION_DAYS)} amount-inflation days")
    print(f"false alarms {false_alarm_rate:.2f} over {len(CLEAN_DAYS)} clean days")
    for day, r in sorted(results.items()):
        scores = {c.column: round(c.score, 3) for c in r.columns if c.kind == "numeric"}
        print(f"  {day} share={r.drift_share:.2f} drifted={r.drifted_columns} {scores}")
    assert sensitivity == 1
    assert false_alarm_rate == 0


def test_clean_days_have_no_drifted_column(results: dict[date, DriftResult]) -> None:
    for day in CLEAN_DAYS:
        assert results[day].drifted_columns == [], day


def test_inflation_flags_amount_and_amount_derived_columns_only(
    results: dict[date, DriftResult],
) -> None:
    for day in INFLATION_DAYS:
        assert set(results[day].drifted_columns) == set(AMOUNT_COLUMNS), day


def test_new_merchant_category_flags_merchant_category(
    reference: pl.DataFrame, methods: DriftMethods
) -> None:
    day = NEW_CATEGORY_DAYS[0]
    result = compute_drift(day_frame(day), reference, COLUMNS, methods, day=day)
    assert "merchant_category" in result.drifted_columns
    assert result.dataset_drift


def test_result_records_methods_thresholds_and_sampling(
    results: dict[date, DriftResult], reference: pl.DataFrame
) -> None:
    result = results[INFLATION_DAYS[0]]
    table = result.table()
    assert table["column"].to_list() == list(COLUMNS.all)
    by_kind = {row["column"]: row for row in table.iter_rows(named=True)}
    assert by_kind["amount"]["method"] == "wasserstein"
    assert by_kind["amount"]["threshold"] == DriftMethods().numeric_threshold  # not raised
    assert by_kind["channel"]["method"] == "jensenshannon"
    assert result.reference_rows == reference.height
    assert result.reference_sample_rows == 20_000 < reference.height
    assert result.sampled
    # Our verdicts and Evidently's agree on what drifted.
    assert evidently_drift_share(result.snapshot) == pytest.approx(result.drift_share)
    markdown = drift_markdown(result, only_drifted=True)
    assert "| amount | wasserstein" in markdown and "channel" not in markdown.split("\n\n")[1]


SMALL = DriftColumns(numeric=("amount",), categorical=("channel",))


def test_same_day_same_sample(days: dict[date, pl.DataFrame], reference: pl.DataFrame) -> None:
    day = INFLATION_DAYS[0]
    first = compute_drift(days[day], reference, SMALL, day=day)
    again = compute_drift(days[day], reference, SMALL, day=day)
    assert first.columns == again.columns
    assert first.seed == again.seed


def test_no_sampling_compares_every_row(
    days: dict[date, pl.DataFrame], reference: pl.DataFrame
) -> None:
    day = INFLATION_DAYS[0]
    result = compute_drift(days[day], reference, SMALL, day=day, sample_size=None)
    assert result.reference_sample_rows == reference.height and not result.sampled


def test_per_column_override(days: dict[date, pl.DataFrame], reference: pl.DataFrame) -> None:
    day = INFLATION_DAYS[0]
    methods = DriftMethods(per_column_threshold={"amount": 5.0})
    result = compute_drift(days[day], reference, SMALL, methods, day=day)
    assert "amount" not in result.drifted_columns
    assert result.table().filter(pl.col("column") == "amount")["threshold"][0] == 5.0


def test_missing_column_is_named(reference: pl.DataFrame) -> None:
    with pytest.raises(ValueError, match="nope"):
        compute_drift(reference, reference, DriftColumns(numeric=("nope",)))


def test_empty_current_is_explained(reference: pl.DataFrame) -> None:
    with pytest.raises(ValueError, match="current data is empty"):
        compute_drift(reference.head(0), reference, COLUMNS)


def test_infer_columns_skips_ids_and_times(reference: pl.DataFrame) -> None:
    inferred = DriftColumns.infer(reference)
    assert "amount" in inferred.numeric and "customer_id" not in inferred.all
    assert "event_time" not in inferred.all and "channel" in inferred.categorical


def test_calibration_raises_a_seasonal_column_and_keeps_the_floor(
    reference_days: list[pl.DataFrame],
) -> None:
    # A column with a strong weekly rhythm: its weekday level moves far more than noise.
    seasonal = [
        d.with_columns(weekly=pl.col("amount") * (1 + 0.5 * (i % 7 >= 5)))
        for i, d in enumerate(reference_days)
    ]
    columns = DriftColumns(numeric=("amount", "weekly"), categorical=("channel",))
    calibrated = calibrate_thresholds(seasonal, columns, sample_rows=5_000)
    assert calibrated.for_column("weekly", "numeric").threshold > 0.15
    assert calibrated.for_column("amount", "numeric").threshold == 0.15
    assert calibrated.for_column("channel", "categorical").threshold == 0.1
