"""A backfill run over a range of days stores, for every day, exactly what a run of that day
alone stores: the same rows (frame equality per table per day) and the same per-day metadata,
through a real Dagster instance and the warehouse IO manager."""

from datetime import date

import dagster as dg
import polars as pl
import pytest

from ml_assets.data.assets import LANDING_FINGERPRINT, RAW_TRANSACTIONS
from ml_assets.data.landing import landing_fingerprint
from ml_assets.data.scenarios import Scenario
from ml_assets.features.assets import CUSTOMER_FEATURES_KEY, TRAINING_SET
from ml_assets.resources import table_name
from ml_assets.warehouse import partition_path, read_partition
from ml_assets_tests.support.platforms import Platform, day_keys, platform_for

START = date(2026, 3, 1)
DAYS = 5
ROWS_PER_DAY = 2_000
# Prices inflate on the last days, so days differ and a day written under another's key shows.
SCENARIOS = (Scenario("amount_inflation", date(2026, 3, 4), date(2026, 3, 5)),)
TABLES = [
    "raw_transactions",
    "validated_transactions",
    "quarantined_transactions",
    "transaction_labels",
    "customer_features",
    "merchant_features",
    "training_set",
]


def stored(platform: Platform) -> dict[tuple[str, str], pl.DataFrame]:
    root = platform.settings.warehouse_dir
    return {(t, d): read_partition(root, t, d) for t in TABLES for d in day_keys(START, DAYS)}


@pytest.fixture(scope="module")
def single_and_range(tmp_path_factory):
    """The same landed days materialized one run per day, and in one range run."""
    built = {}
    for mode, one_run in (("single", False), ("range", True)):
        home = tmp_path_factory.mktemp(mode)
        with platform_for(
            home,
            start=START,
            days=DAYS,
            rows_per_day=ROWS_PER_DAY,
            scenarios=SCENARIOS,
            one_run=one_run,
        ) as platform:
            built[mode] = (platform, stored(platform))
    return built


def test_each_day_of_a_range_run_equals_its_single_day_run(single_and_range):
    (_, single), (_, ranged) = single_and_range["single"], single_and_range["range"]
    assert single.keys() == ranged.keys()
    for (table, day), frame in single.items():
        assert ranged[(table, day)].equals(frame), f"{table} {day} differs from its single run"
    # Every table has rows (the first day's labels refer to days before the data began).
    for table in set(TABLES) - {"quarantined_transactions"}:
        assert sum(single[(table, d)].height for d in day_keys(START, DAYS)) > 0, table
    # The days really differ, so equality above is not one day compared with itself.
    raw = [single[("raw_transactions", d)]["amount"].sum() for d in day_keys(START, DAYS)]
    assert len(set(raw)) == DAYS


def test_a_range_run_is_one_run_with_one_file_per_day(single_and_range):
    ranged, _ = single_and_range["range"]
    runs = ranged.instance.get_run_records()
    assert len(runs) == 1
    for day in day_keys(START, DAYS):
        folder = partition_path(ranged.settings.warehouse_dir, "customer_features", day).parent
        assert [p.name for p in folder.iterdir()] == ["data.parquet"]


def test_per_day_metadata_of_a_range_run_is_that_days(single_and_range):
    """The landing sensor reads each day's landing fingerprint, the UI each day's figures: a
    range run records every day's own, not one value for all."""
    single, _ = single_and_range["single"]
    ranged, _ = single_and_range["range"]
    days = day_keys(START, DAYS)
    fingerprints = [ranged.metadata(RAW_TRANSACTIONS, d)[LANDING_FINGERPRINT] for d in days]
    assert fingerprints == [landing_fingerprint(ranged.settings.landing_dir, d) for d in days]
    events = [ranged.metadata(CUSTOMER_FEATURES_KEY, d)["events_read"] for d in days]
    assert events == [single.metadata(CUSTOMER_FEATURES_KEY, d)["events_read"] for d in days]
    assert len(set(fingerprints)) == len(set(events)) == DAYS


def test_range_run_checks_judge_every_day(single_and_range):
    ranged, _ = single_and_range["range"]
    (run,) = ranged.instance.get_run_records()
    events = ranged.instance.all_logs(
        run.dagster_run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
    )
    evaluations = [e.dagster_event.event_specific_data for e in events]
    assert len(evaluations) == 5
    for evaluation in evaluations:
        assert evaluation.passed, evaluation.description
        assert evaluation.metadata["days"].value == DAYS


def test_training_set_lineage_of_a_range_run_is_each_days_own(single_and_range):
    single, _ = single_and_range["single"]
    ranged, _ = single_and_range["range"]
    for day in day_keys(START, DAYS):
        lineage = ranged.metadata(TRAINING_SET, day)["input_data_versions"]
        assert lineage == single.metadata(TRAINING_SET, day)["input_data_versions"]
        assert sorted(lineage[table_name(CUSTOMER_FEATURES_KEY)])[-1] == day
