"""Feature assets through real materializations: bounded reads, lineage, online = offline."""

from datetime import UTC, date, datetime, timedelta

import dagster as dg
import polars as pl
import pytest

from ml_assets.data.demo_source import land_days
from ml_assets.data.generator import GeneratorConfig
from ml_assets.definitions import build_assets, build_resources, defs
from ml_assets.features.assets import (
    CUSTOMER_FEATURES_KEY,
    TRAINING_SET,
    feature_lookback_days,
)
from ml_assets.features.online import get_online_features, open_online_store
from ml_assets.features.pit import point_in_time_join
from ml_assets.features.registry import CUSTOMER_FEATURES, MERCHANT_FEATURES
from ml_assets.settings import Settings
from ml_assets.warehouse import partition_path, read_partition

START = date(2026, 3, 1)
DAYS = 4
LAST = START + timedelta(days=DAYS - 1)


@pytest.fixture
def materialized(settings, instance, generator_config):
    list(land_days(settings.landing_dir, START, DAYS, generator_config))
    for offset in range(DAYS):
        result = dg.materialize(
            build_assets(settings),
            selection=dg.AssetSelection.groups("data", "features"),
            partition_key=(START + timedelta(days=offset)).isoformat(),
            resources=build_resources(settings),
            instance=instance,
        )
        assert result.success
    return settings, instance


def test_day_reads_only_its_window():
    graph = defs.resolve_asset_graph()
    day = "2026-06-15"
    parents = graph.get_parent_partition_keys_for_child(
        day, dg.AssetKey("validated_transactions"), CUSTOMER_FEATURES_KEY
    ).partitions_subset.get_partition_keys()
    assert sorted(parents)[0] == "2026-05-16" and sorted(parents)[-1] == day
    assert len(parents) == 31  # the day and the 30 before it: flat cost as history grows
    training_parents = graph.get_parent_partition_keys_for_child(
        day, CUSTOMER_FEATURES_KEY, TRAINING_SET
    ).partitions_subset.get_partition_keys()
    assert len(training_parents) == feature_lookback_days(Settings().label_delay_max_days) + 1


def test_partition_outside_the_window_is_never_read(materialized):
    settings, instance = materialized
    # Corrupt a day the next feature run must not touch: any read of it would fail.
    next_day = LAST + timedelta(days=1)
    list(land_days(settings.landing_dir, next_day, 1, GeneratorConfig(transactions_per_day=500)))
    dg.materialize(
        build_assets(settings)[:3],
        partition_key=next_day.isoformat(),
        resources=build_resources(settings),
        instance=instance,
    )
    outside = START - timedelta(days=40)
    garbage = partition_path(settings.warehouse_dir, "validated_transactions", outside)
    garbage.parent.mkdir(parents=True)
    garbage.write_bytes(b"not parquet")
    result = dg.materialize(
        build_assets(settings),
        selection=[CUSTOMER_FEATURES_KEY],
        partition_key=next_day.isoformat(),
        resources=build_resources(settings),
        instance=instance,
    )
    assert result.success


def test_feature_metadata_lists_versions(materialized):
    _, instance = materialized
    event = instance.get_latest_materialization_event(CUSTOMER_FEATURES_KEY).asset_materialization
    assert event.metadata["feature_set_version"].value == CUSTOMER_FEATURES.version
    table = event.metadata["features"].value
    for spec in CUSTOMER_FEATURES.features:
        assert f"| {spec.column} |" in table and spec.version in table


def test_training_set_is_point_in_time_with_lineage(materialized):
    settings, instance = materialized
    rows = read_partition(settings.warehouse_dir, "training_set", LAST)
    assert rows.height > 0
    assert (
        rows["customer__feature_time"].drop_nulls()
        < rows.filter(pl.col("customer__feature_time").is_not_null())["event_time"]
    ).all()
    assert (
        rows["merchant__feature_time"].drop_nulls()
        < rows.filter(pl.col("merchant__feature_time").is_not_null())["event_time"]
    ).all()
    metadata = instance.get_latest_materialization_event(
        TRAINING_SET
    ).asset_materialization.metadata
    lineage = metadata["input_data_versions"].value
    assert set(lineage) == {
        "transaction_labels",
        "review_labels",
        "validated_transactions",
        "customer_features",
        "merchant_features",
    }
    assert set(lineage["customer_features"]) == {
        (START + timedelta(days=i)).isoformat() for i in range(DAYS)
    }
    assert metadata["feature_versions"].value["customer_features"] == CUSTOMER_FEATURES.version


def test_online_values_equal_offline_as_of_the_same_instant(materialized):
    settings, _ = materialized
    at = datetime(LAST.year, LAST.month, LAST.day, tzinfo=UTC) + timedelta(days=1)
    store = open_online_store("", settings.home)
    for feature_set, table in (
        (CUSTOMER_FEATURES, "customer_features"),
        (MERCHANT_FEATURES, "merchant_features"),
    ):
        offline_features = pl.concat(
            read_partition(settings.warehouse_dir, table, START + timedelta(days=i))
            for i in range(DAYS)
        )
        keys = offline_features[feature_set.key].unique().sort().head(50).to_list()
        probe = pl.DataFrame({feature_set.key: keys, "event_time": [at] * len(keys)}).with_columns(
            pl.col("event_time").dt.cast_time_unit("us")
        )
        offline = point_in_time_join(probe, offline_features, feature_set)
        online = get_online_features(store, feature_set, keys, at=at)
        for expected, served in zip(offline.iter_rows(named=True), online, strict=True):
            for column in feature_set.columns:
                assert served[column] == pytest.approx(expected[column], nan_ok=True), column
    store.close()
