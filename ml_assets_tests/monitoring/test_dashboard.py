"""The Grafana dashboard: built with grafana-foundation-sdk, checked in as its output, and
every metric its PromQL (and the alert rules') names is one the platform exports."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from ml_assets.monitoring.dashboard import build_dashboard, dashboard_exprs
from ml_assets.monitoring.exporter import PREFIX, daily_figures
from ml_assets.serving.metrics import ServingMetrics
from ml_assets_tests.support.reports import write_reports
from ml_assets_tests.support.servers import DEPLOY_PROMETHEUS

CHECKED_IN = DEPLOY_PROMETHEUS.parent / "grafana" / "ml_assets_dashboard.json"
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and",
            "or", "unless", "offset", "le", "inf", "nan"}  # fmt: skip
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def metric_names(expr: str) -> set[str]:
    """The metric (or recorded series) names a PromQL expression selects."""
    expr = re.sub(r'"[^"]*"', "", expr)  # label values, strings
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expr)  # matchers, ranges
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = re.findall(r"(?<![\w:.$])([a-zA-Z_:][\w:]*)\b(?!\s*\()", expr)
    return {n for n in names if n.lower() not in KEYWORDS}


def _rules() -> list[dict]:
    groups = yaml.safe_load((DEPLOY_PROMETHEUS / "alerts.yml").read_text())["groups"]
    return [r for g in groups for r in g["rules"]]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Every series name the endpoint, the exporter, the recording rules and Prometheus
    itself (`up`) provide."""
    names = {"up"}
    for family in ServingMetrics().registry.collect():
        names |= {family.name + suffix for suffix in SUFFIXES[family.type]}
    reports = tmp_path_factory.mktemp("reports")
    write_reports(reports)
    names |= {PREFIX + figure.name for figure in daily_figures(reports)}
    return names | {r["record"] for r in _rules() if "record" in r}


def test_metric_names_are_read_from_promql() -> None:
    expr = (
        'sum by (decision) (rate(a_total{path="x"}[5m])) / ignoring (decision) group_left '
        "sum(rate(a_total[$__rate_interval])) > bool b:rule:5m or histogram_quantile(0.99, c)"
    )
    assert metric_names(expr) == {"a_total", "b:rule:5m", "c"}


def test_the_checked_in_dashboard_is_the_builders_output() -> None:
    assert json.loads(CHECKED_IN.read_text()) == build_dashboard(), (
        "deploy/grafana/ml_assets_dashboard.json is stale: run `ml-assets dashboard`"
    )


def test_the_dashboard_has_the_model_panels() -> None:
    panels = {p["title"]: p for p in build_dashboard()["panels"] if p["type"] != "row"}
    assert {"Score distribution", "Decisions", "Latency percentiles (/predict)",
            "Fallback reasons", "Drift share", "Served AUC over time"} <= set(panels)  # fmt: skip
    assert panels["Score distribution"]["type"] == "heatmap"
    legends = [t["legendFormat"] for t in panels["Latency percentiles (/predict)"]["targets"]]
    assert legends == ["p50", "p95", "p99"]
    for panel in panels.values():
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]


def test_every_panel_and_rule_names_only_metrics_that_exist(exported: set[str]) -> None:
    exprs = dashboard_exprs(build_dashboard()) + [r["expr"] for r in _rules()]
    for expr in exprs:
        named = metric_names(expr)
        assert named, expr
        assert named <= exported, f"{expr!r} names {named - exported}, which nothing exports"
