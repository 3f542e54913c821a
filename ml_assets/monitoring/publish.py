"""Publish a day's drift result everywhere a person looks: files, index page, workspace."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ml_assets.monitoring.drift import DriftResult
from ml_assets.monitoring.index_page import write_index
from ml_assets.monitoring.reports import (
    WORKSPACE_DIR,
    add_to_workspace,
    report_dir,
    write_drift_report,
)
from ml_assets.storage import StoragePath

INDEX_TITLES = {"feature_drift": "Feature drift reports", "prediction_drift": "Prediction drift"}


@dataclass(frozen=True)
class Published:
    html: Path
    json: Path
    index: Path
    snapshot_id: str | None


def publish_drift(
    result: DriftResult,
    reports_dir: StoragePath | str,
    workspace: bool = True,
    workspace_dir: Path | None = None,
) -> Published:
    """Write the day's HTML + JSON, rebuild the kind's index page and (by default) add the
    snapshot to the Evidently workspace (`workspace_dir`, by default
    `<reports_dir>/evidently_workspace`; a local folder), replacing an earlier run of that
    day."""
    files = write_drift_report(result, reports_dir)
    index = write_index(
        report_dir(reports_dir, result.kind), INDEX_TITLES.get(result.kind, result.kind)
    )
    snapshot_id = None
    if workspace:
        snapshot_id = add_to_workspace(result, workspace_dir or Path(reports_dir) / WORKSPACE_DIR)
    return Published(html=files.html, json=files.json, index=index, snapshot_id=snapshot_id)
