"""Where drift results go: HTML + JSON per day, and a local Evidently workspace.

Files: `<reports_dir>/<kind dir>/<YYYY-MM-DD>.html` (Evidently's report) and `.json` (our
summary: share, per-column table, sample sizes, plus Evidently's own metric dump under
"evidently"). Each file is written to a temporary name and renamed, so a re-run replaces a day
whole and a killed run leaves no half file.

Workspace: `<reports_dir>/evidently_workspace`, one project (default "fraud drift") whose
dashboard plots each kind's drift share over time. Re-running a day deletes that day's earlier
snapshot of the same kind before adding the new one (Evidently's local workspace has no
upsert, and snapshots get fresh ids), so the dashboard holds one point per day and kind.
Writers take an exclusive file lock, because Dagster may run partitions side by side and the
workspace's JSON files are not safe under concurrent writers.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from ml_assets.atomic_files import write_text_atomically
from ml_assets.monitoring.drift import FEATURE_DRIFT, DriftResult
from ml_assets.storage import StoragePath, is_remote, storage_path

if TYPE_CHECKING:
    from evidently.ui.workspace import Project

WORKSPACE_DIR = "evidently_workspace"
PROJECT_NAME = "fraud drift"
# Directory under reports_dir per kind of drift report.
REPORT_DIRS = {FEATURE_DRIFT: "drift", "prediction_drift": "prediction_drift"}
PANEL_TITLES = {
    FEATURE_DRIFT: "Feature drift share over time",
    "prediction_drift": "Prediction drift share over time",
}


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    json: Path


def report_dir(reports_dir: StoragePath | str, kind: str = FEATURE_DRIFT) -> StoragePath:
    return storage_path(reports_dir) / REPORT_DIRS.get(kind, kind)


def write_drift_report(result: DriftResult, reports_dir: Path) -> ReportFiles:
    """Save the day's Evidently HTML and our JSON summary; returns both paths."""
    if result.day is None:
        raise ValueError("the drift result has no day; call compute_drift(..., day=<partition>)")
    folder = report_dir(reports_dir, result.kind)
    stem = result.day.isoformat()
    summary = result.to_dict()
    html = "<p>No Evidently snapshot was kept for this result.</p>"
    if result.snapshot is not None:
        summary["evidently"] = result.snapshot.dict()
        html = result.snapshot.get_html_str(as_iframe=False)
    return ReportFiles(
        html=write_text_atomically(folder / f"{stem}.html", html),
        json=write_text_atomically(
            folder / f"{stem}.json", json.dumps(summary, indent=1, default=str)
        ),
    )


def read_summaries(folder: Path) -> list[dict]:
    """Every day's JSON summary in a report folder, oldest first (non-date files ignored)."""
    out = []
    for path in sorted(storage_path(folder).glob("*.json"), key=lambda p: p.name):
        try:
            date.fromisoformat(path.stem)
        except ValueError:
            continue
        out.append(json.loads(path.read_text(encoding="utf-8")))
    return out


@contextmanager
def locked(folder: Path, name: str = ".lock") -> Iterator[None]:
    """An exclusive advisory lock on `folder/name` (POSIX) for the duration of the block.

    An object store has no locks: for a remote `folder` the lock file is local (keyed by the
    URL), which serializes the writers of one machine. Writers on several machines may then
    race on a read-modify-write (an index page, a per-day table); each write is still one
    atomic PUT, and the next write of that folder repairs what the race left out."""
    if is_remote(folder):
        digest = hashlib.sha256(str(folder).encode()).hexdigest()[:16]
        folder = Path(tempfile.gettempdir()) / "ml_assets_locks" / digest
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / name, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _project_id(workspace_dir: Path, project_name: str, kind: str) -> str:
    """The project's id, creating the project and the kind's dashboard panel on first use.

    Only that first use opens a full `Workspace`: its constructor parses every snapshot of
    the workspace (about 0.1 s each), which would make each day's publish cost grow with
    the history. Everything after goes through Evidently's file-level `LocalState`."""
    from evidently.ui.storage.local.base import LocalState

    state = LocalState(str(workspace_dir))
    for project_id in state.list_projects():
        if state.read_project(project_id).name != project_name:
            continue
        titles = {p.title for p in state.read_dashboard(project_id).panels}
        if PANEL_TITLES.get(kind, f"{kind} share over time") in titles:
            return str(project_id)
        break
    from evidently.ui.workspace import Workspace

    workspace = Workspace.create(str(workspace_dir))
    found = workspace.search_project(project_name)
    project = (
        found[0]
        if found
        else workspace.create_project(
            project_name, description="Daily drift of features and predictions"
        )
    )
    _ensure_panel(project, kind)
    return str(project.id)


def _ensure_panel(project: Project, kind: str) -> None:
    from evidently.sdk.models import PanelMetric
    from evidently.sdk.panels import line_plot_panel

    title = PANEL_TITLES.get(kind, f"{kind} share over time")
    if any(p.title == title for p in project.dashboard.model().panels):
        return
    project.dashboard.add_panel(
        line_plot_panel(
            title=title,
            values=[
                PanelMetric(
                    legend="share of drifted columns",
                    metric="DriftedColumnsCount",
                    metric_labels={"value_type": "share"},
                    tags=[kind],
                )
            ],
            description="Share of watched columns whose drift score crossed its threshold",
        ),
        tab="Drift",
    )


SNAPSHOT_INDEX = ".ml_assets_snapshots.json"


def add_to_workspace(
    result: DriftResult, workspace_dir: Path, project_name: str = PROJECT_NAME
) -> str:
    """Add the day's snapshot to the workspace, replacing that day's earlier one of the same
    kind; returns the new snapshot id. The cost does not grow with the workspace's history."""
    from evidently.legacy.core import new_id
    from evidently.ui.storage.local.base import SNAPSHOTS_DIR_NAME, LocalState

    if result.snapshot is None or result.day is None:
        raise ValueError("add_to_workspace needs a result with a snapshot and a day")
    workspace_dir = Path(workspace_dir)
    with locked(workspace_dir, ".ml_assets.lock"):
        project_id = _project_id(workspace_dir, project_name, result.kind)
        state = LocalState(str(workspace_dir))
        # Our own small index of (kind, day) -> snapshot id finds a day's earlier snapshot
        # without listing or parsing the others.
        index_path = workspace_dir / SNAPSHOT_INDEX
        index = json.loads(index_path.read_text()) if index_path.exists() else {}
        key = f"{result.kind}/{result.day.isoformat()}"
        earlier = workspace_dir / project_id / SNAPSHOTS_DIR_NAME / f"{index.get(key)}.json"
        if key in index and earlier.exists():
            state.delete_snapshot(project_id, index[key])
        snapshot_id = str(new_id())
        state.write_snapshot(project_id, snapshot_id, result.snapshot.to_snapshot_model())
        index[key] = snapshot_id
        write_text_atomically(index_path, json.dumps(index, indent=1, sort_keys=True))
        return snapshot_id


def workspace_runs(workspace_dir: Path, project_name: str = PROJECT_NAME) -> list[dict[str, str]]:
    """(kind, day, snapshot id) of every snapshot in the project, for checks and tests."""
    from evidently.ui.workspace import Workspace

    workspace = Workspace.create(str(workspace_dir))
    found = workspace.search_project(project_name)
    if not found:
        return []
    project = found[0]
    out = []
    for snapshot_id in workspace.list_runs(project.id):
        run = workspace.get_run(project.id, snapshot_id)
        if run is not None:
            out.append(
                {
                    "kind": str(run.metadata.get("kind")),
                    "day": str(run.metadata.get("day")),
                    "id": str(snapshot_id),
                }
            )
    return sorted(out, key=lambda r: (r["kind"], r["day"]))
