"""The monitoring reports on an object store (`ML_ASSETS_REPORTS_URL`), against the local S3:
the reports' own writers (drift JSON + HTML, the index page and its picture, the per-day
served table and its picture) store the same files as on disk, and the Prometheus exporter
reads the same figures from the bucket."""

from __future__ import annotations

from ml_assets.monitoring.drift import FEATURE_DRIFT
from ml_assets.monitoring.exporter import daily_figures
from ml_assets.monitoring.publish import publish_drift
from ml_assets.monitoring.reports import read_summaries, report_dir
from ml_assets.storage import storage_path
from ml_assets_tests.support.reports import NEWEST, drift_result, write_reports


def relative_files(root) -> set[str]:
    prefix = str(root).rstrip("/") + "/"
    return {str(p).removeprefix(prefix) for p in root.rglob("*") if p.is_file()}


def test_reports_in_the_bucket_match_reports_on_disk(s3, tmp_path):
    remote = storage_path(s3.url("reports"))
    local = tmp_path / "reports"
    for root in (remote, local):
        write_reports(root)
        publish_drift(drift_result(FEATURE_DRIFT, NEWEST, 3, 0.1), root, workspace=False)
    assert relative_files(remote) == {
        name for name in relative_files(local) if not name.split("/")[-1].startswith(".")
    }  # lock files stay local
    assert read_summaries(report_dir(remote)) == read_summaries(report_dir(local))
    assert (report_dir(remote) / "index.html").read_text() == (
        report_dir(local) / "index.html"
    ).read_text()
    assert daily_figures(remote) == daily_figures(local)
    assert daily_figures(s3.url("reports"))  # as `ml-assets exporter` gets it: a URL string
