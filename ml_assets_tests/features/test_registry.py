from __future__ import annotations

import dataclasses
from datetime import timedelta

import polars as pl
import pytest

from ml_assets.features.registry import (
    CUSTOMER_FEATURES,
    FEATURE_SETS,
    MERCHANT_FEATURES,
    FeatureSet,
    FeatureSpec,
    format_registry_table,
    history_days,
    is_stale,
    max_window,
)


def _spec(**changes) -> FeatureSpec:
    base = FeatureSpec("amount_sum_1h", "customer", timedelta(hours=1), "sum", "amount")
    return dataclasses.replace(base, **changes)


@pytest.mark.parametrize(
    "change",
    [
        {"window": timedelta(hours=2)},
        {"aggregation": "mean"},
        {"source": "amount * 2"},
        {"ttl": timedelta(minutes=30)},
        {"name": "amount_total_1h"},
    ],
)
def test_version_changes_with_the_definition(change):
    assert _spec(**change).version != _spec().version


def test_version_ignores_the_description_and_is_stable():
    assert _spec(description="docs only").version == _spec().version
    assert len(_spec().version) == 10


def test_feature_set_version_follows_its_features():
    changed = dataclasses.replace(CUSTOMER_FEATURES.features[0], window=timedelta(hours=2))
    edited = FeatureSet(
        CUSTOMER_FEATURES.name, "customer", (changed, *CUSTOMER_FEATURES.features[1:])
    )
    assert edited.version != CUSTOMER_FEATURES.version
    same = FeatureSet(CUSTOMER_FEATURES.name, "customer", CUSTOMER_FEATURES.features)
    assert same.version == CUSTOMER_FEATURES.version


def test_ttl_defaults_to_the_window():
    assert _spec().ttl == timedelta(hours=1)
    assert _spec(ttl=timedelta(minutes=5)).ttl == timedelta(minutes=5)


def test_columns_are_prefixed_by_entity():
    assert "customer__txn_count_1h" in CUSTOMER_FEATURES.columns
    assert "merchant__night_share_7d" in MERCHANT_FEATURES.columns
    assert CUSTOMER_FEATURES.key == "customer_id"
    assert MERCHANT_FEATURES.feature_time_column == "merchant__feature_time"


def test_registry_covers_the_fraud_signals():
    customer = set(CUSTOMER_FEATURES.columns)
    assert {
        "customer__txn_count_1h", "customer__amount_mean_30d", "customer__amount_std_30d",
        "customer__online_share_7d", "customer__cross_border_share_30d",
    } <= customer  # fmt: skip
    assert set(MERCHANT_FEATURES.columns) == {
        "merchant__txn_count_1d", "merchant__txn_count_7d", "merchant__amount_mean_7d",
        "merchant__online_share_7d", "merchant__cross_border_share_7d", "merchant__night_share_7d",
    }  # fmt: skip


def test_max_window_and_history_days():
    assert max_window("customer") == timedelta(days=30)
    assert max_window("merchant") == timedelta(days=7)
    assert history_days("customer") == 30
    with pytest.raises(ValueError, match="no feature set for entity 'shop'"):
        max_window("shop")


def test_sources_evaluate_on_validated_columns(transactions):
    for feature_set in FEATURE_SETS.values():
        values = transactions.head(50).select(
            spec.source_expr().alias(spec.name) for spec in feature_set.features
        )
        assert all(dtype.is_numeric() for dtype in values.dtypes)
    is_night = pl.sql_expr("CAST(EXTRACT(HOUR FROM event_time) < 5 AS DOUBLE)")
    hours = transactions.select(pl.col("event_time").dt.hour(), is_night.alias("night"))
    assert hours.filter(pl.col("night") == 1.0)["event_time"].max() == 4


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"entity": "shop"}, "entity 'shop' is unknown"),
        ({"aggregation": "median"}, "aggregation 'median' is unknown"),
        ({"dtype": "Int8"}, "dtype 'Int8' is unknown"),
        ({"window": timedelta(0)}, "window must be positive"),
    ],
)
def test_invalid_specs_name_the_problem(change, message):
    with pytest.raises(ValueError, match=message):
        _spec(**change)


def test_feature_set_rejects_mixed_entities_and_duplicates():
    merchant = dataclasses.replace(_spec(), entity="merchant")
    with pytest.raises(ValueError, match="another entity"):
        FeatureSet("mixed", "customer", (_spec(), merchant))
    with pytest.raises(ValueError, match="more than once"):
        FeatureSet("dup", "customer", (_spec(), _spec()))


def test_registry_table_lists_every_feature():
    table = format_registry_table()
    for feature_set in FEATURE_SETS.values():
        assert feature_set.version in table
        for spec in feature_set.features:
            assert spec.column in table and spec.version in table
    assert all(line == line.rstrip() for line in table.splitlines())


def test_is_stale_is_one_rule_for_values_and_expressions():
    ttl = timedelta(hours=1)
    assert not is_stale(timedelta(hours=1), ttl)
    assert is_stale(timedelta(hours=1, microseconds=1), ttl)
    ages = pl.DataFrame({"age": [timedelta(hours=1), timedelta(hours=1, microseconds=1)]})
    assert ages.select(is_stale(pl.col("age"), ttl))["age"].to_list() == [False, True]
