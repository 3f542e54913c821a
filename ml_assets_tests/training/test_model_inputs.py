from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from ml_assets.training.model_inputs import (
    ModelInputs,
    derive_request_columns,
    derive_request_features,
)


def test_training_and_serving_derive_the_same_columns(frame: pl.DataFrame) -> None:
    sample = frame.head(50)
    offline = derive_request_features(sample)
    for i, row in enumerate(sample.iter_rows(named=True)):
        online = derive_request_columns({k: [v] for k, v in row.items()})
        for name, values in online.items():
            expected = offline[name][i]
            assert (np.isnan(values[0]) and expected is None) or values[0] == pytest.approx(
                expected
            ), name


def test_derived_values_follow_their_definition() -> None:
    row = {
        "event_time": datetime(2026, 2, 3, 3, 30, tzinfo=UTC),
        "amount": 300.0,
        "merchant_country": "US",
        "customer_country": "GB",
        "customer__amount_mean_30d": 100.0,
    }
    derived = derive_request_columns({k: [v] for k, v in row.items()})
    assert derived["hour_of_day"][0] == 3
    assert derived["is_night"][0] == 1
    assert derived["cross_border"][0] == 1
    assert derived["amount_ratio"][0] == pytest.approx(3.0)


def test_inputs_refuse_the_label_and_the_true_probability() -> None:
    with pytest.raises(ValueError, match="leak"):
        ModelInputs(numeric=("amount", "true_fraud_probability"))


def test_inputs_from_frame_take_features_and_derived_columns(frame: pl.DataFrame) -> None:
    inputs = ModelInputs.from_frame(frame)
    assert "customer__amount_mean_30d" in inputs.numeric
    assert "amount_ratio" in inputs.numeric
    assert "is_fraud" not in inputs.numeric and "true_fraud_probability" not in inputs.numeric


def test_absent_features_become_missing_and_absent_raw_columns_fail(frame: pl.DataFrame) -> None:
    inputs = ModelInputs.from_frame(frame)
    row = frame.row(0, named=True)
    del row["customer__txn_count_1h"]
    arrays = inputs.arrays(row)
    assert np.isnan(arrays.numeric[0, inputs.numeric.index("customer__txn_count_1h")])
    del row["channel"]
    with pytest.raises(ValueError, match="channel"):
        inputs.arrays(row)


def test_request_rows_give_the_arrays_of_the_training_frame(frame: pl.DataFrame) -> None:
    """The request path builds its matrix differently (one conversion for all columns); it
    must give what the frame path gives, nulls and an absent feature included."""
    inputs = ModelInputs.from_frame(frame)
    sample = frame.head(40).with_columns(
        pl.when(pl.int_range(pl.len()) % 3 == 0)
        .then(None)
        .otherwise(pl.col("customer__amount_mean_30d"))
        .alias("customer__amount_mean_30d")
    )
    rows = sample.to_dicts()
    del rows[1]["customer__txn_count_1h"]
    expected = inputs.arrays(sample.with_columns(
        pl.when(pl.int_range(pl.len()) == 1).then(None)
        .otherwise(pl.col("customer__txn_count_1h")).alias("customer__txn_count_1h")
    ))  # fmt: skip
    for got in (inputs.arrays(rows), inputs.arrays(rows[:1])):
        n = got.rows
        np.testing.assert_array_equal(got.numeric, expected.numeric[:n])
        for a, b in zip(got.categorical, expected.categorical, strict=True):
            assert a.tolist() == b[:n].tolist()
