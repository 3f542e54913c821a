"""Monitoring assets through real materializations: a champion trained on clean days, then
days with amount inflation. The drift reports flag the scenario days and not the clean days,
performance equals a direct computation, the index page's links resolve, latency comes from
the prediction log, and the retrain sensor fires once per ongoing drift episode."""

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import numpy as np
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score

from ml_assets.automation.retrain_sensor import drift_retrain_sensor
from ml_assets.data.scenarios import Scenario
from ml_assets.monitoring.assets import (
    DRIFT_REPORT,
    MODEL_PERFORMANCE,
    PREDICTION_DRIFT,
    SCORED_TRANSACTIONS,
    SERVING_LATENCY,
)
from ml_assets.serving.prediction_log import prediction_log_root, write_log_file
from ml_assets.training.assets import StudentTrainingConfig, TeacherTrainingConfig
from ml_assets.warehouse import read_partition
from ml_assets_tests.support.platforms import Platform, day_keys, failures, platform_for

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("monitoring_assets")]

START = date(2026, 4, 1)
DAYS = 14
ROWS_PER_DAY = 2_500
DRIFT_START = START + timedelta(days=11)  # the last three days are inflated
DAY_KEYS = day_keys(START, DAYS)
CLEAN_AFTER_TRAINING = DAY_KEYS[8:11]
SCENARIO_DAYS = DAY_KEYS[11:]
TRAINING = dg.RunConfig(
    ops={
        "teacher_model": TeacherTrainingConfig(
            window_days=8, holdout_days=2, validation_days=2, num_boost_round=300,
            end_date=DRIFT_START.isoformat(),
        ),
        "student_model": StudentTrainingConfig(epochs=3, max_rows=30_000),
    }
)  # fmt: skip


def _run(platform: Platform, selection, partition=None, run_config=None):
    result = platform.materialize(selection, partition=partition, run_config=run_config)
    assert result.success, failures(result)
    return result


@pytest.fixture(scope="module")
def monitored(tmp_path_factory) -> Iterator[Platform]:
    """Every day's data and features, a champion trained on the clean days before the drift,
    and every day scored and monitored; each day's checks are in `partition_checks`."""
    with platform_for(
        tmp_path_factory.mktemp("monitoring_assets"),
        start=START,
        days=DAYS,
        rows_per_day=ROWS_PER_DAY,
        scenarios=(Scenario("amount_inflation", DRIFT_START, START + timedelta(days=DAYS)),),
        daily=dg.AssetSelection.groups("data", "features"),
    ) as platform:
        _run(platform, dg.AssetSelection.groups("models"), run_config=TRAINING)
        for day in DAY_KEYS:
            _run(platform, [SCORED_TRANSACTIONS], day)
        rest = [DRIFT_REPORT, PREDICTION_DRIFT, MODEL_PERFORMANCE, SERVING_LATENCY]
        for day in DAY_KEYS:
            _run(platform, rest, day)
        yield platform


def test_scenario_days_drift_and_clean_days_do_not(monitored):
    shares = {d: monitored.metadata(DRIFT_REPORT, d)["drift_share"] for d in DAY_KEYS}
    drifted = {d: monitored.metadata(DRIFT_REPORT, d)["drifted_columns"] for d in DAY_KEYS}
    sensitivity = np.mean(
        [re.search(r"\| amount \|", drifted[d]) is not None for d in SCENARIO_DAYS]
    )
    false_alarms = np.mean(
        [re.search(r"\| amount \|", drifted[d]) is not None for d in CLEAN_AFTER_TRAINING]
    )
    print(
        f"\namount flagged on {sensitivity:.0%} of scenario days, {false_alarms:.0%} of clean days"
    )
    print({d: round(s, 3) for d, s in shares.items()})
    assert sensitivity == 1.0 and false_alarms == 0.0
    assert min(shares[d] for d in SCENARIO_DAYS) > max(shares[d] for d in CLEAN_AFTER_TRAINING)
    assert all(shares[d] >= 0.1 for d in SCENARIO_DAYS)


def test_drift_check_warns_without_blocking(monitored):
    drift = {
        day: checks["drift_share_below_threshold"]
        for day, checks in monitored.partition_checks.items()
    }
    assert set(drift) == set(DAY_KEYS)  # every day's run succeeded, drifted or not
    assert all(not drift[d].passed for d in SCENARIO_DAYS)
    assert all(drift[d].passed for d in CLEAN_AFTER_TRAINING)
    assert all(c.severity == dg.AssetCheckSeverity.WARN for c in drift.values())


def test_index_lists_every_day_and_its_links_resolve(monitored):
    for kind in ("drift", "prediction_drift"):
        index = monitored.settings.reports_dir / kind / "index.html"
        html = index.read_text()
        links = re.findall(r'href="([^"]+)"', html)
        for day in DAY_KEYS:
            assert day in html
        assert links and all((index.parent / link).exists() for link in links), links


def test_performance_matches_a_direct_computation(monitored):
    day = DAY_KEYS[6]
    scored = read_partition(monitored.settings.warehouse_dir, "scored_transactions", day)
    labels = pl.concat(
        read_partition(monitored.settings.warehouse_dir, "transaction_labels", d)
        for d in DAY_KEYS[7:10]
    )
    joined = scored.join(labels.select("transaction_id", "is_fraud"), on="transaction_id")
    expected = roc_auc_score(joined["is_fraud"].to_numpy(), joined["score"].to_numpy())
    metadata = monitored.metadata(MODEL_PERFORMANCE, day)
    assert metadata["labelled_rows"] == joined.height
    assert metadata["roc_auc"] == pytest.approx(expected, abs=1e-9)
    assert (monitored.settings.reports_dir / "performance" / "performance.png").stat().st_size > 0


def test_last_day_has_no_labels_yet(monitored):
    assert monitored.metadata(MODEL_PERFORMANCE, DAY_KEYS[-1])["labelled_rows"] == 0


def test_latency_from_the_prediction_log(monitored):
    day = DAY_KEYS[-1]
    assert monitored.metadata(SERVING_LATENCY, day)["requests"] == 0
    latencies = np.linspace(1.0, 100.0, 200)
    paths = ["model"] * 180 + ["fallback"] * 20
    records = [
        {"request_id": str(i), "received_at": datetime(2026, 4, 14, 12, tzinfo=UTC),
         "transaction_id": f"t{i}", "score": 0.1, "decision": "approve", "path": path,
         "latency_ms": float(ms), "amount": 10.0}
        for i, (ms, path) in enumerate(zip(latencies, paths, strict=True))
    ]  # fmt: skip
    write_log_file(prediction_log_root(monitored.settings.home), day, records)
    result = _run(monitored, [SERVING_LATENCY], day)
    metadata = monitored.metadata(SERVING_LATENCY, day)
    assert metadata["requests"] == 200
    assert metadata["p99_ms"] == pytest.approx(np.percentile(latencies, 99))
    (check,) = result.get_asset_check_evaluations()
    assert not check.passed  # 10% fallback is above the 5% ceiling: a warning
    assert check.severity == dg.AssetCheckSeverity.WARN


def test_retrain_sensor_fires_once_per_ongoing_episode(monitored):
    first = list(drift_retrain_sensor.evaluate_tick(monitored.sensor_context()).run_requests)
    assert [r.run_key for r in first] == [f"drift-episode-{SCENARIO_DAYS[0]}"]
    again = list(drift_retrain_sensor.evaluate_tick(monitored.sensor_context()).run_requests)
    assert [r.run_key for r in again] == [r.run_key for r in first]  # Dagster runs a key once
