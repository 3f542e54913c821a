from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from ml_assets.data.generator import generate_labels
from ml_assets.features.compute import compute_entity_features
from ml_assets.features.pit import point_in_time_join
from ml_assets.features.registry import (
    CUSTOMER_FEATURES,
    MERCHANT_FEATURES,
    FeatureSet,
    FeatureSpec,
)

T0 = datetime(2026, 3, 2, 12, tzinfo=UTC)
TTL_SET = FeatureSet(
    "ttl_customer",
    "customer",
    (
        FeatureSpec("count_1d", "customer", timedelta(days=1), "count", "1", "Int64"),
        FeatureSpec(
            "sum_1d_fresh", "customer", timedelta(days=1), "sum", ttl=timedelta(minutes=10)
        ),
    ),
)


def _events(*minutes: int, customer: str = "C1") -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer_id": [customer] * len(minutes),
            "event_time": [T0 + timedelta(minutes=m) for m in minutes],
            "amount": [10.0] * len(minutes),
        },
        schema_overrides={"event_time": pl.Datetime("us", "UTC")},
    )


def _rows(*moments: datetime | None, customer: str = "C1") -> pl.DataFrame:
    return pl.DataFrame(
        {"customer_id": [customer] * len(moments), "event_time": list(moments)},
        schema={"customer_id": pl.String, "event_time": pl.Datetime("us", "UTC")},
    )


def _features(events: pl.DataFrame) -> pl.DataFrame:
    return compute_entity_features(events, TTL_SET, T0.date())


def test_the_row_own_event_and_later_ones_never_leak():
    features = _features(_events(0, 5))
    joined = point_in_time_join(_rows(T0, T0 + timedelta(minutes=5)), features, TTL_SET)
    assert joined["customer__count_1d"].to_list() == [None, 1]
    assert joined["customer__feature_time"].to_list() == [None, T0]


def test_stale_values_are_null_offline_at_exactly_the_ttl_boundary():
    features = _features(_events(0))
    moments = [T0 + timedelta(minutes=10), T0 + timedelta(minutes=10, microseconds=1)]
    joined = point_in_time_join(_rows(*moments), features, TTL_SET)
    assert joined["customer__sum_1d_fresh"].to_list() == [10.0, None]
    # Other features of the same row keep their own, longer TTL.
    assert joined["customer__count_1d"].to_list() == [1, 1]
    assert joined["customer__feature_time"].to_list() == [T0, T0]


def test_order_count_and_unmatched_rows_are_kept():
    features = _features(_events(0, 5))
    rows = pl.concat(
        [
            _rows(T0 + timedelta(hours=1), None, T0 + timedelta(minutes=1)),
            _rows(T0 + timedelta(hours=1), customer="nobody"),
            _rows(T0 + timedelta(hours=1)),  # a duplicate row stays a duplicate
        ]
    ).with_columns(tag=pl.int_range(pl.len()))
    joined = point_in_time_join(rows, features, TTL_SET)
    assert joined.select(rows.columns).equals(rows)
    assert joined["customer__count_1d"].to_list() == [2, None, 1, None, 2]


def test_customer_and_merchant_sets_join_onto_labels(transactions, day, generator_config):
    """Labels arriving on day D belong to D-1..D-3: join the features of those days."""
    labels = generate_labels(day, generator_config)
    features = {
        fs.name: pl.concat(
            compute_entity_features(transactions, fs, day - timedelta(days=back))
            for back in (1, 2, 3)
        )
        for fs in (CUSTOMER_FEATURES, MERCHANT_FEATURES)
    }
    joined = point_in_time_join(labels, features["customer_features"], CUSTOMER_FEATURES)
    joined = point_in_time_join(joined, features["merchant_features"], MERCHANT_FEATURES)
    assert joined.select(labels.columns).equals(labels)
    assert joined["customer__txn_count_30d"].null_count() < labels.height
    # Only a merchant's first transaction of D-3 lacks an earlier feature row here.
    assert joined["merchant__txn_count_7d"].null_count() < labels.height // 3
    assert (joined["merchant__feature_time"] < joined["event_time"]).all()


def test_missing_columns_name_what_to_pass():
    features = _features(_events(0))
    with pytest.raises(ValueError, match=r"rows lack columns \['event_time'\]"):
        point_in_time_join(pl.DataFrame({"customer_id": ["C1"]}), features, TTL_SET)
    with pytest.raises(ValueError, match="feature table lacks columns"):
        point_in_time_join(_rows(T0), features.drop("customer__count_1d"), TTL_SET)
    joined = point_in_time_join(_rows(T0), features, TTL_SET)
    with pytest.raises(ValueError, match="already carry feature columns"):
        point_in_time_join(joined, features, TTL_SET)


def test_custom_time_column():
    features = _features(_events(0))
    rows = _rows(T0 + timedelta(minutes=3)).rename({"event_time": "scored_at"})
    joined = point_in_time_join(rows, features, TTL_SET, time_column="scored_at")
    assert joined["customer__sum_1d_fresh"].to_list() == [10.0]
