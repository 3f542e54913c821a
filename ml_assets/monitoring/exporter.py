"""The monitoring assets' daily figures as Prometheus metrics, so alerts and dashboards see
drift and served-vs-batch skew beside the endpoint's live metrics.

The assets already write everything under the reports dir (`drift/<day>.json`,
`prediction_drift/<day>.json`, `served_performance/daily.parquet`); this collector reads
those files at each scrape instead of having each asset push, so it needs no state, no
pushgateway and no Dagster run, survives restarts, and always shows what the files say.
Limits are exported beside the figures (`*_threshold`, `*_limit`) so the alert rules compare
with the platform's own numbers rather than copies of them.

Each figure is the newest day's. Label-based served figures (AUC, fraud amount caught) come
from the newest day whose labels have arrived, since the newest day has none yet.
`ml_assets_monitoring_report_day_timestamp_seconds{report}` says which day each one is.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from ml_assets.monitoring.assets import SERVED_REPORTS
from ml_assets.monitoring.reports import REPORT_DIRS
from ml_assets.monitoring.served import SKEW_LIMITS
from ml_assets.storage import StoragePath, read_parquet, storage_path

PREFIX = "ml_assets_monitoring_"
SERVED_TABLE = "daily.parquet"
LABELLED = "served_performance_labelled"
# daily.parquet column -> (metric suffix, help). Skew figures are judged on model answers.
SERVED_FIGURES = {
    "answers": ("served_answers", "Transactions the endpoint answered that day"),
    "fallback_share": ("served_fallback_share", "Share of answers the model did not give"),
    "review_load": ("served_review_load", "Share of answers sent to review"),
    "skew_skewed_share": (
        "served_skewed_share",
        "Share of model answers off their batch re-score by more than the score tolerance",
    ),
    "skew_decision_mismatch_share": (
        "served_decision_mismatch_share",
        "Share of model answers whose decision differs from the batch decision",
    ),
}
LABELLED_FIGURES = {
    "roc_auc": ("served_roc_auc", "ROC-AUC of the served scores on the labelled answers"),
    "batch_roc_auc": ("batch_roc_auc", "ROC-AUC of the batch re-scores of the same rows"),
    "skew_auc_gap": ("served_auc_gap", "|served AUC - batch AUC| on the same labelled rows"),
    "fraud_amount_caught": ("served_fraud_amount_caught", "Fraud amount declined or reviewed"),
    "false_decline_rate": ("served_false_decline_rate", "Legit transactions declined / legit"),
    "labelled_rows": ("served_labelled_rows", "Answers whose label has arrived"),
}


@dataclass(frozen=True)
class Figure:
    """One exported sample: `PREFIX + name{labels} value`."""

    name: str
    help: str
    value: float
    labels: tuple[tuple[str, str], ...] = ()


def _day_seconds(day: date | str) -> float:
    day = date.fromisoformat(day) if isinstance(day, str) else day
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


def _newest_summary(folder: StoragePath) -> dict | None:
    """The newest `<YYYY-MM-DD>.json` of a drift folder (file names sort by day)."""
    days = []
    for path in folder.glob("*.json"):
        try:
            days.append((date.fromisoformat(path.stem), path))
        except ValueError:
            continue
    return json.loads(max(days)[1].read_text(encoding="utf-8")) if days else None


def drift_figures(reports_dir: StoragePath | str) -> list[Figure]:
    """Drift share, its threshold and the drifted column count of each kind's newest day."""
    out = []
    for kind, folder in REPORT_DIRS.items():
        summary = _newest_summary(storage_path(reports_dir) / folder)
        if summary is None:
            continue
        labels = (("kind", kind),)
        out += [
            Figure(
                "drift_share",
                "Share of watched columns that drifted",
                summary["drift_share"],
                labels,
            ),  # fmt: skip
            Figure(
                "drift_share_threshold",
                "Drift share at which a day counts as drifted",
                summary["share_threshold"],
                labels,
            ),  # fmt: skip
            Figure(
                "drifted_columns",
                "Watched columns that drifted",
                len(summary["drifted_columns"]),
                labels,
            ),  # fmt: skip
            Figure(
                "report_day_timestamp_seconds",
                "The day (00:00 UTC) each report describes",
                _day_seconds(summary["day"]),
                (("report", kind),),
            ),  # fmt: skip
        ]
    return out


def _defined(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _row_figures(row: dict, figures: dict[str, tuple[str, str]]) -> list[Figure]:
    return [
        Figure(name, help_text, float(row[column]))
        for column, (name, help_text) in figures.items()
        if _defined(row.get(column))
    ]


def served_figures(reports_dir: StoragePath | str) -> list[Figure]:
    """The newest served day's figures, its label-based figures from the newest labelled
    day, and the skew limits of `served_matches_batch`."""
    path = storage_path(reports_dir) / SERVED_REPORTS / SERVED_TABLE
    try:
        table = read_parquet(path).sort("day")
    except FileNotFoundError:
        return []
    if table.height == 0:
        return []
    day_help = "The day (00:00 UTC) each report describes"
    newest = table.row(-1, named=True)
    out = _row_figures(newest, SERVED_FIGURES)
    out.append(Figure("report_day_timestamp_seconds", day_help, _day_seconds(newest["day"]),
                      (("report", SERVED_REPORTS),)))  # fmt: skip
    labelled = [r for r in table.iter_rows(named=True) if _defined(r.get("roc_auc"))]
    if labelled:
        out += _row_figures(labelled[-1], LABELLED_FIGURES)
        out.append(Figure("report_day_timestamp_seconds", day_help,
                          _day_seconds(labelled[-1]["day"]), (("report", LABELLED),)))  # fmt: skip
    out += [
        Figure(
            "served_skewed_share_limit",
            "served_matches_batch: highest skewed share",
            SKEW_LIMITS.max_skewed_share,
        ),  # fmt: skip
        Figure(
            "served_auc_gap_limit", "served_matches_batch: highest AUC gap", SKEW_LIMITS.max_auc_gap
        ),  # fmt: skip
    ]
    return out


def daily_figures(reports_dir: StoragePath | str) -> list[Figure]:
    """Every figure the exporter serves, read from the files under `reports_dir` now."""
    return drift_figures(reports_dir) + served_figures(reports_dir)


class ReportsCollector(Collector):
    """A prometheus-client collector that reads the reports dir at every scrape."""

    def __init__(self, reports_dir: StoragePath | str) -> None:
        self.reports_dir = storage_path(reports_dir)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families: dict[str, GaugeMetricFamily] = {}
        for figure in daily_figures(self.reports_dir):
            name = PREFIX + figure.name
            if name not in families:
                families[name] = GaugeMetricFamily(
                    name, figure.help, labels=[k for k, _ in figure.labels]
                )
            families[name].add_metric([v for _, v in figure.labels], figure.value)
        yield from families.values()


def exporter_registry(reports_dir: StoragePath | str) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(ReportsCollector(reports_dir))
    return registry


def start_exporter(reports_dir: StoragePath | str, host: str = "127.0.0.1", port: int = 9108):
    """Serve `/metrics` for `reports_dir` on `host:port` in a daemon thread; returns the
    server (call `.shutdown()`) and its thread."""
    from prometheus_client import start_http_server

    return start_http_server(port, addr=host, registry=exporter_registry(reports_dir))
