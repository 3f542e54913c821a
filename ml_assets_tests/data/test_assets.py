"""The data assets through real `dg.materialize` runs on a real (temporary) instance."""

from dataclasses import replace
from datetime import date, timedelta

import dagster as dg
import polars as pl
import pytest

from ml_assets.data import assets as data
from ml_assets.data.demo_source import land_days
from ml_assets.data.generator import GeneratorConfig
from ml_assets.data.partitions import daily_partitions
from ml_assets.data.scenarios import Scenario
from ml_assets.definitions import build_resources
from ml_assets.warehouse import partition_path, read_partition

DAY = date(2026, 3, 4)


def _land(settings, config, start=DAY, days=1):
    return dict(land_days(settings.landing_dir, start, days, config))


def _materialize(settings, instance, day, assets=None):
    return dg.materialize(
        assets or data.build_data_assets(daily_partitions(settings.partitions_start)),
        partition_key=day.isoformat(),
        resources=build_resources(settings),
        instance=instance,
        raise_on_error=False,
    )


def _checks(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_a_day_materializes_with_passing_checks_and_metadata(settings, instance, generator_config):
    _land(settings, generator_config)
    result = _materialize(settings, instance, DAY)
    assert result.success
    checks = _checks(result)
    assert set(checks) == {
        "schema",
        "rows_conserved",
        "quarantine_share",
        "row_count_in_bounds",
        "null_rates",
    }
    assert all(c.passed for c in checks.values())
    for key in (data.RAW_TRANSACTIONS, data.VALIDATED_TRANSACTIONS, data.TRANSACTION_LABELS):
        event = instance.get_latest_materialization_event(key).asset_materialization
        assert event.partition == DAY.isoformat()
        metadata = event.metadata
        assert {"dagster/row_count", "dagster/column_schema", "path", "data_version"} <= set(
            metadata
        )
        assert (
            metadata["dagster/row_count"].value
            == read_partition(settings.warehouse_dir, key.path[0], DAY).height
        )


def test_rematerializing_a_day_is_idempotent(settings, instance, generator_config):
    _land(settings, generator_config)
    _materialize(settings, instance, DAY)
    first = instance.get_latest_materialization_event(
        data.VALIDATED_TRANSACTIONS
    ).asset_materialization
    _materialize(settings, instance, DAY)
    second = instance.get_latest_materialization_event(
        data.VALIDATED_TRANSACTIONS
    ).asset_materialization
    assert first.metadata["data_version"] == second.metadata["data_version"]
    folder = partition_path(settings.warehouse_dir, "validated_transactions", DAY).parent
    assert [p.name for p in folder.iterdir()] == ["data.parquet"]
    validated = read_partition(settings.warehouse_dir, "validated_transactions", DAY)
    assert validated["transaction_id"].is_unique().all()


def test_scenario_day_quarantines_rows_and_still_passes(settings, instance, generator_config):
    broken = GeneratorConfig(
        transactions_per_day=generator_config.transactions_per_day,
        scenarios=(Scenario("broken_upstream", DAY, DAY),),
    )
    rows = _land(settings, broken)[DAY]
    result = _materialize(settings, instance, DAY)
    assert result.success
    quarantined = read_partition(settings.warehouse_dir, "quarantined_transactions", DAY)
    valid = read_partition(settings.warehouse_dir, "validated_transactions", DAY)
    assert quarantined.height > 0.1 * rows
    assert valid.height + quarantined.height == rows
    assert _checks(result)["rows_conserved"].passed


def test_failed_check_blocks_downstream(settings, instance, generator_config, monkeypatch):
    settings = replace(settings, max_quarantine_share=0.01)
    broken = GeneratorConfig(
        transactions_per_day=generator_config.transactions_per_day,
        scenarios=(Scenario("broken_upstream", DAY, DAY),),
    )
    _land(settings, broken)

    partitions = daily_partitions(settings.partitions_start)

    @dg.asset(deps=[data.VALIDATED_TRANSACTIONS], partitions_def=partitions)
    def downstream_of_validated() -> None:
        raise AssertionError("a failed blocking check must stop downstream assets")

    result = _materialize(
        settings, instance, DAY, [*data.build_data_assets(partitions), downstream_of_validated]
    )
    assert not result.success
    check = _checks(result)["quarantine_share"]
    assert not check.passed and "ceiling 1%" in check.description
    assert instance.get_latest_materialization_event(dg.AssetKey("downstream_of_validated")) is None
    # The quarantine is kept even when the day is blocked: nothing is lost.
    assert read_partition(settings.warehouse_dir, "quarantined_transactions", DAY).height > 0


def test_row_count_check_compares_with_trailing_days(settings, instance, generator_config):
    _land(settings, generator_config, DAY - timedelta(days=3), 3)
    for offset in (3, 2, 1):
        _materialize(settings, instance, DAY - timedelta(days=offset))
    small = GeneratorConfig(transactions_per_day=generator_config.transactions_per_day // 4)
    _land(settings, small)
    check = _checks(_materialize(settings, instance, DAY))["row_count_in_bounds"]
    assert not check.passed
    assert "over 3 day(s)" in check.description


def test_missing_required_column_fails_the_run_with_its_name(settings, instance, generator_config):
    from ml_assets.data.generator import generate_transactions
    from ml_assets.data.landing import write_landing_file

    write_landing_file(
        settings.landing_dir,
        DAY,
        "transactions",
        generate_transactions(DAY, generator_config).drop("merchant_id"),
    )
    result = _materialize(settings, instance, DAY)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "merchant_id" in str(failure.step_failure_data.error)


@pytest.mark.parametrize("fmt", ["csv"])
def test_csv_landing_day_materializes(settings, instance, generator_config, fmt):
    list(land_days(settings.landing_dir, DAY, 1, generator_config, fmt))
    assert _materialize(settings, instance, DAY).success
    labels = read_partition(settings.warehouse_dir, "transaction_labels", DAY)
    assert labels.schema["is_fraud"] == pl.Int8
