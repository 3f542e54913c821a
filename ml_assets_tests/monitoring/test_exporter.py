"""The daily-figures exporter over reports written by the monitoring assets' own writers."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client import generate_latest

from ml_assets.monitoring.assets import SERVED_REPORTS
from ml_assets.monitoring.exporter import daily_figures, exporter_registry
from ml_assets.monitoring.served import SKEW_LIMITS
from ml_assets_tests.support.reports import NEWEST, add_served_day, served_day, write_reports
from ml_assets_tests.support.servers import free_port, stop_process
from ml_assets_tests.support.worlds import metric_value


def _midnight(day) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


def test_the_newest_days_figures_are_exported_with_their_limits(tmp_path: Path) -> None:
    write_reports(tmp_path, drifted=3, skewed_share=0.004)
    text = generate_latest(exporter_registry(tmp_path)).decode()

    def value(name: str, **labels: str) -> float:
        return metric_value(text, "ml_assets_monitoring_" + name, **labels)

    # Drift: the newest day's share (3 of 10 columns), not the calm days before it.
    assert value("drift_share", kind="feature_drift") == 0.3
    assert value("drift_share_threshold", kind="feature_drift") == 0.1
    assert value("drifted_columns", kind="feature_drift") == 3
    assert value("drift_share_threshold", kind="prediction_drift") == 0.5
    newest = _midnight(NEWEST)
    assert value("report_day_timestamp_seconds", report="feature_drift") == newest
    # Served: the newest day's skew; its AUC is not known yet, so the AUC is the day before's.
    assert value("served_skewed_share") == 0.004
    assert value("report_day_timestamp_seconds", report=SERVED_REPORTS) == newest
    assert value("served_roc_auc") == 0.91
    assert value("batch_roc_auc") == 0.912
    assert value("report_day_timestamp_seconds", report="served_performance_labelled") == (
        _midnight(NEWEST - timedelta(days=1))
    )
    assert value("served_skewed_share_limit") == SKEW_LIMITS.max_skewed_share
    assert value("served_auc_gap_limit") == SKEW_LIMITS.max_auc_gap


def test_a_rerun_day_and_newly_arrived_labels_show_at_the_next_scrape(tmp_path: Path) -> None:
    write_reports(tmp_path)
    registry = exporter_registry(tmp_path)
    add_served_day(tmp_path, served_day(NEWEST, roc_auc=0.88, skewed_share=0.05))  # labels
    text = generate_latest(registry).decode()
    assert metric_value(text, "ml_assets_monitoring_served_roc_auc") == 0.88
    assert metric_value(text, "ml_assets_monitoring_served_skewed_share") == 0.05


def test_an_empty_reports_dir_exports_nothing_and_does_not_fail(tmp_path: Path) -> None:
    assert daily_figures(tmp_path / "never_written") == []
    (tmp_path / "drift").mkdir()
    (tmp_path / "drift" / "index.json").write_text("{}")  # not a day: ignored
    assert daily_figures(tmp_path) == []


@pytest.mark.slow
def test_the_exporter_command_serves_the_data_dirs_reports(tmp_path: Path) -> None:
    write_reports(tmp_path / "reports", drifted=4)
    port = free_port()
    env = {**os.environ, "ML_ASSETS_HOME": str(tmp_path)}
    command = [sys.executable, "-m", "ml_assets.cli", "exporter", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert "/metrics" in process.stdout.readline()  # printed once it listens
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        assert metric_value(text, "ml_assets_monitoring_drift_share", kind="feature_drift") == 0.4
    finally:
        stop_process(process)
