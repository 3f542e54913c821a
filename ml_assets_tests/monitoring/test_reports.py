"""Reports land as files, the index lists every day with working relative links, and the
Evidently workspace keeps one snapshot per day and kind, also after a re-run."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from ml_assets.monitoring.drift import DriftResult, compute_drift
from ml_assets.monitoring.drift_methods import DriftColumns
from ml_assets.monitoring.publish import publish_drift
from ml_assets.monitoring.reports import WORKSPACE_DIR, workspace_runs
from ml_assets_tests.support.synthetic import CLEAN_DAYS, INFLATION_DAYS

COLUMNS = DriftColumns(numeric=("amount", "customer__amount_sum_1d"), categorical=("channel",))
REPORT_DAYS = [CLEAN_DAYS[-1], INFLATION_DAYS[0], INFLATION_DAYS[1]]


@pytest.fixture(scope="module")
def results(days: dict[date, pl.DataFrame], reference: pl.DataFrame) -> list[DriftResult]:
    return [compute_drift(days[d], reference, COLUMNS, day=d) for d in REPORT_DAYS]


@pytest.fixture(scope="module")
def published(results: list[DriftResult], tmp_path_factory: pytest.TempPathFactory) -> Path:
    reports_dir = tmp_path_factory.mktemp("reports")
    for result in results:
        publish_drift(result, reports_dir)
    publish_drift(results[1], reports_dir)  # a re-run of one day
    return reports_dir


def test_files_per_day(published: Path) -> None:
    folder = published / "drift"
    for day in REPORT_DAYS:
        assert (folder / f"{day}.html").stat().st_size > 10_000  # Evidently's full page
        summary = json.loads((folder / f"{day}.json").read_text())
        assert summary["day"] == day.isoformat()
        assert {c["column"] for c in summary["columns"]} == set(COLUMNS.all)
        assert summary["evidently"]["metrics"]
    assert not list(folder.glob("*.tmp"))


def test_index_lists_every_day_with_resolving_links(published: Path) -> None:
    folder = published / "drift"
    page = (folder / "index.html").read_text()
    for day in REPORT_DAYS:
        assert day.isoformat() in page
    links = re.findall(r'(?:href|src)="([^"]+)"', page)
    assert len([link for link in links if link.endswith(".html")]) == len(REPORT_DAYS)
    for link in links:
        assert not link.startswith(("/", "http")), link  # relative
        assert (folder / link).is_file(), link
    assert "drift_share.png" in links
    assert "amount" in page  # drifted columns of the inflation days are listed


def test_workspace_has_one_snapshot_per_day_after_rerun(published: Path) -> None:
    runs = workspace_runs(published / WORKSPACE_DIR)
    assert [r["day"] for r in runs] == [d.isoformat() for d in REPORT_DAYS]
    assert {r["kind"] for r in runs} == {"feature_drift"}


def test_workspace_dashboard_has_drift_share_panel(published: Path) -> None:
    from evidently.ui.workspace import Workspace

    workspace = Workspace.create(str(published / WORKSPACE_DIR))
    (project,) = workspace.search_project("fraud drift")
    panels = project.dashboard.model().panels
    assert [p.title for p in panels] == ["Feature drift share over time"]
    (value,) = panels[0].values
    assert value.metric.endswith("DriftedColumnsCount")
    assert value.metric_labels == {"value_type": "share"}


def test_report_needs_a_day(results: list[DriftResult], tmp_path: Path) -> None:
    from dataclasses import replace

    with pytest.raises(ValueError, match="no day"):
        publish_drift(replace(results[0], day=None), tmp_path, workspace=False)
