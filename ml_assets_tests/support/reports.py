"""Monitoring reports on disk as the assets write them (their own writers), for the
exporter, dashboard and Prometheus tests: drift JSON per day and the served daily table."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from ml_assets.monitoring.assets import SERVED_REPORTS
from ml_assets.monitoring.drift import ColumnDrift, DriftResult
from ml_assets.monitoring.reports import write_drift_report
from ml_assets.monitoring.series import upsert_day
from ml_assets.monitoring.served import ServedPerformance, ServingSkew, daily_row, plot_served

NEWEST = date(2026, 3, 10)


def drift_result(kind: str, day: date, drifted: int, threshold: float) -> DriftResult:
    """A day of `kind` drift over ten columns of which `drifted` crossed their threshold."""
    columns = tuple(
        ColumnDrift(f"c{i}", "numeric", "wasserstein", 0.1, 0.5 if i < drifted else 0.01,
                    i < drifted)
        for i in range(10)
    )  # fmt: skip
    return DriftResult(kind, day, columns, drifted / 10, threshold, 1000, 5000, 1000, 5000, 0)


def served_day(
    day: date, roc_auc: float | None, skewed_share: float, auc_gap: float | None = None
) -> dict[str, object]:
    """One row of served_performance's daily table; label-based figures None when
    `roc_auc` is (the labels have not arrived)."""
    labelled = roc_auc is not None
    gap = auc_gap or 0.0
    performance = ServedPerformance(
        day=day, answers=1000, labelled_rows=950 if labelled else 0,
        positives=20 if labelled else 0, roc_auc=roc_auc, pr_auc=0.5 if labelled else None,
        decline_precision=None, decline_recall=None, flagged_precision=None,
        flagged_recall=None, false_decline_rate=0.002 if labelled else None, review_load=0.03,
        fraud_amount_caught=0.8 if labelled else None, fallback_share=0.01,
        fallback_by_reason={"timeout": 0.01}, batch_rows=950 if labelled else 0,
        batch_roc_auc=roc_auc + gap if labelled else None, batch_fraud_amount_caught=None,
    )  # fmt: skip
    skew = ServingSkew(
        compared=990, unmatched=0, differ_share=skewed_share, skewed_share=skewed_share,
        decision_mismatch_share=0.0, max_abs_diff=0.02, labelled_rows=940,
        served_roc_auc=roc_auc, batch_roc_auc=roc_auc + gap if labelled else None,
    )  # fmt: skip
    return daily_row(performance, skew)


def write_reports(reports_dir: Path, drifted: int = 2, skewed_share: float = 0.001) -> None:
    """Three days of feature and prediction drift (the newest with `drifted` of ten feature
    columns drifted, threshold 0.1; prediction drift calm) and three served days: the newest
    without labels yet, the one before with AUC 0.91 (batch 0.912)."""
    for back in (2, 1, 0):
        day = NEWEST - timedelta(days=back)
        write_drift_report(drift_result("feature_drift", day, drifted if back == 0 else 0, 0.1),
                           reports_dir)  # fmt: skip
        write_drift_report(drift_result("prediction_drift", day, 0, 0.5), reports_dir)
        roc_auc = None if back == 0 else 0.90 + back * 0.01
        add_served_day(reports_dir, served_day(day, roc_auc, skewed_share, 0.002))


def add_served_day(reports_dir: Path, row: dict) -> None:
    """Upsert one served day as `served_performance` does, its picture redrawn."""
    served = reports_dir / SERVED_REPORTS
    upsert_day(served / "daily.parquet", row,
               lambda table: plot_served(table, served / "served_performance.png"))  # fmt: skip
