from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from ml_assets.features.compute import compute_entity_features, day_bounds, empty_features
from ml_assets.features.registry import CUSTOMER_FEATURES, FEATURE_SETS, MERCHANT_FEATURES
from ml_assets_tests.support.reference import aggregate


@pytest.fixture(scope="module", params=sorted(FEATURE_SETS))
def computed(request, transactions, day):
    feature_set = FEATURE_SETS[request.param]
    return feature_set, compute_entity_features(transactions, feature_set, day)


def test_one_row_per_entity_and_event_time_of_the_day(computed, transactions, day):
    feature_set, features = computed
    start, end = day_bounds(day)
    expected = (
        transactions.filter(pl.col("event_time").is_between(start, end, "left"))
        .select(feature_set.key, pl.col("event_time").alias("feature_time"))
        .unique()
        .sort("feature_time", feature_set.key)
    )
    assert features.select(feature_set.key, "feature_time").equals(expected)
    assert features.schema == pl.Schema(feature_set.schema())


def test_rows_are_deterministic(computed, transactions, day):
    feature_set, features = computed
    again = compute_entity_features(transactions.reverse(), feature_set, day)
    assert again.equals(features)


def _source_value(source: str, row: dict) -> float:
    """The registry's sources, written out by hand for the reference."""
    return {
        "1": 1.0,
        "amount": row["amount"],
        "CAST(channel = 'online' AS DOUBLE)": float(row["channel"] == "online"),
        "CAST(merchant_country <> customer_country AS DOUBLE)": float(
            row["merchant_country"] != row["customer_country"]
        ),
        "CAST(EXTRACT(HOUR FROM event_time) < 5 AS DOUBLE)": float(row["event_time"].hour < 5),
    }[source]


def test_values_match_a_plain_recomputation_on_real_data(computed, transactions):
    feature_set, features = computed
    for row in features.sample(25, seed=1).iter_rows(named=True):
        history = transactions.filter(pl.col(feature_set.key) == row[feature_set.key]).to_dicts()
        for spec in feature_set.features:
            window = [
                _source_value(spec.source, event)
                for event in history
                if row["feature_time"] - spec.window <= event["event_time"] <= row["feature_time"]
            ]
            expected, actual = aggregate(spec.aggregation, window), row[spec.column]
            assert (expected is None) == (actual is None), spec.column
            if expected is not None:
                assert math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-9), spec.column


def test_events_after_the_day_or_before_the_history_are_ignored(transactions, day):
    start, end = day_bounds(day)
    feature_set = MERCHANT_FEATURES
    reference = compute_entity_features(transactions, feature_set, day)
    window = transactions.filter(
        pl.col("event_time").is_between(start - feature_set.max_window, end, "left")
    )
    later = window.filter(pl.col("event_time") >= start).with_columns(
        pl.col("event_time") + timedelta(days=1)
    )
    assert compute_entity_features(pl.concat([window, later]), feature_set, day).equals(reference)


def test_a_day_without_events_gives_an_empty_table(transactions, day):
    later = day + timedelta(days=5)
    features = compute_entity_features(transactions, CUSTOMER_FEATURES, later)
    assert features.is_empty()
    assert features.schema == empty_features(CUSTOMER_FEATURES).schema


def test_missing_columns_are_named(day):
    events = pl.DataFrame({"customer_id": ["C1"], "event_time": [datetime(2026, 1, 1, tzinfo=UTC)]})
    with pytest.raises(ValueError, match=r"lack columns \['amount', 'channel'"):
        compute_entity_features(events, CUSTOMER_FEATURES, day)
