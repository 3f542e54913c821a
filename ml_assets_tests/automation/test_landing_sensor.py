import json
import os
from datetime import date

import dagster as dg

from ml_assets.automation.landing_sensor import landing_sensor
from ml_assets.data.demo_source import land_days
from ml_assets.definitions import build_resources

START = date(2026, 3, 1)


def _tick(settings, instance, cursor=None) -> dg.SensorResult:
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources=build_resources(settings)
    )
    return landing_sensor(context)


def test_requests_each_new_day_once_and_changed_days_again(settings, instance, generator_config):
    list(land_days(settings.landing_dir, START, 3, generator_config))
    first = _tick(settings, instance)
    assert [r.partition_key for r in first.run_requests] == [
        "2026-03-01",
        "2026-03-02",
        "2026-03-03",
    ]
    assert len({r.run_key for r in first.run_requests}) == 3

    assert _tick(settings, instance, first.cursor).run_requests == []

    changed = settings.landing_dir / "date=2026-03-02" / "transactions.parquet"
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 1_000_000))
    again = _tick(settings, instance, first.cursor)
    assert [r.partition_key for r in again.run_requests] == ["2026-03-02"]
    assert again.run_requests[0].run_key != first.run_requests[1].run_key
    assert json.loads(again.cursor)["2026-03-02"] == again.run_requests[0].run_key.split(":")[1]


def test_days_outside_the_partitions_are_skipped(settings, instance, generator_config):
    list(land_days(settings.landing_dir, date(2025, 12, 31), 2, generator_config))
    result = _tick(settings, instance)
    assert [r.partition_key for r in result.run_requests] == ["2026-01-01"]


def test_empty_landing_zone_requests_nothing(settings, instance):
    assert _tick(settings, instance).run_requests == []


def test_days_already_ingested_with_the_same_files_are_not_requested(
    settings, instance, generator_config
):
    """After the demo (or a backfill) ingested a day, a fresh sensor cursor must not ingest it
    again; a file that changes afterwards still is."""
    from ml_assets.data.assets import build_data_assets
    from ml_assets.data.partitions import daily_partitions

    list(land_days(settings.landing_dir, START, 2, generator_config))
    result = dg.materialize(
        build_data_assets(daily_partitions(settings.partitions_start)),
        partition_key="2026-03-01",
        resources=build_resources(settings),
        instance=instance,
    )
    assert result.success
    tick = _tick(settings, instance)
    assert [r.partition_key for r in tick.run_requests] == ["2026-03-02"]
    changed = settings.landing_dir / "date=2026-03-01" / "labels.parquet"
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 1_000_000))
    assert [r.partition_key for r in _tick(settings, instance, tick.cursor).run_requests] == [
        "2026-03-01"
    ]
