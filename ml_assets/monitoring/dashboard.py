"""The Grafana dashboard of the model's metrics, built with grafana-foundation-sdk.

Built in code rather than exported from a Grafana UI so each panel's PromQL is reviewed
like code and a test can check that every metric it names exists (the endpoint's
`ml_assets_serving_*` and the exporter's `ml_assets_monitoring_*`). The JSON checked in
under deploy/grafana/ is this function's output (`ml-assets dashboard`); a test holds the
two equal. Panels query a `${datasource}` variable, so the JSON imports into any Grafana
with a Prometheus data source.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

UID = "ml-assets-model"
TITLE = "ml_assets: fraud model"
PREDICT = 'route="/predict"'


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True)
class PanelSpec:
    """What a panel shows: its kind (timeseries or heatmap), queries, unit and help."""

    title: str
    description: str
    queries: tuple[Query, ...]
    unit: str = "short"
    kind: str = "timeseries"
    stacked: bool = False


def _quantile(q: float) -> Query:
    expr = (
        f"histogram_quantile({q}, sum by (le) (rate("
        f"ml_assets_serving_request_latency_seconds_bucket{{{PREDICT}}}[$__rate_interval])))"
    )
    return Query(expr, f"p{round(q * 100)}")


ENDPOINT_PANELS = (
    PanelSpec(
        "Score distribution",
        "Served scores of the model's answers per interval (histogram buckets): a shift here "
        "is often the first sign of drift, days before labels arrive.",
        (
            Query(
                'sum by (le) (increase(ml_assets_serving_score_bucket{path=~"model|review"}'
                "[$__rate_interval]))",
                "{{le}}",
            ),
        ),  # fmt: skip
        kind="heatmap",
    ),
    PanelSpec(
        "Decisions",
        "Share of answers by decision (approve, review, decline), all replicas.",
        (
            Query(
                "sum by (decision) (rate(ml_assets_serving_predictions_total[$__rate_interval]))"
                " / ignoring (decision) group_left sum(rate("
                "ml_assets_serving_predictions_total[$__rate_interval]))",
                "{{decision}}",
            ),
        ),
        unit="percentunit",
        stacked=True,
    ),  # fmt: skip
    PanelSpec(
        "Latency percentiles (/predict)",
        "Server-side p50/p95/p99 of single-transaction requests; the budget is p99 <= 10 ms.",
        (_quantile(0.5), _quantile(0.95), _quantile(0.99)),
        unit="s",
    ),
    PanelSpec(
        "Fallback reasons",
        "Answers the model did not give, by reason (breaker_open, model_error, timeout, "
        "no_model), per second.",
        (
            Query(
                "sum by (reason) (rate(ml_assets_serving_degraded_total[$__rate_interval]))",
                "{{reason}}",
            ),
        ),  # fmt: skip
        unit="reqps",
        stacked=True,
    ),
    PanelSpec(
        "Circuit breaker",
        "Per replica: 0 closed, 1 half-open, 2 open (the rules answer).",
        (Query("ml_assets_serving_breaker_state", "{{instance}}"),),
    ),
)
DAILY_PANELS = (
    PanelSpec(
        "Drift share",
        "Share of watched columns that drifted on the newest monitored day, beside the share "
        "at which a day counts as drifted (ml-assets exporter).",
        (
            Query("ml_assets_monitoring_drift_share", "{{kind}}"),
            Query("ml_assets_monitoring_drift_share_threshold", "{{kind}} threshold"),
        ),
        unit="percentunit",
    ),  # fmt: skip
    PanelSpec(
        "Served AUC over time",
        "ROC-AUC of what the endpoint served on the newest labelled day, beside the batch "
        "re-scores of the same transactions.",
        (
            Query("ml_assets_monitoring_served_roc_auc", "served"),
            Query("ml_assets_monitoring_batch_roc_auc", "batch re-score"),
        ),
    ),  # fmt: skip
    PanelSpec(
        "Served vs batch skew",
        "Share of model answers off their batch re-score by more than the tolerance, and the "
        "limit of the served_matches_batch check.",
        (
            Query("ml_assets_monitoring_served_skewed_share", "skewed share"),
            Query("ml_assets_monitoring_served_skewed_share_limit", "limit"),
        ),
        unit="percentunit",
    ),  # fmt: skip
)
ROWS = {"Endpoint (live)": ENDPOINT_PANELS, "Daily monitoring figures": DAILY_PANELS}


def _panel(spec: PanelSpec, datasource: Any, panel_id: int) -> Any:
    from grafana_foundation_sdk.builders import common, heatmap, prometheus, timeseries
    from grafana_foundation_sdk.models.common import StackingMode
    from grafana_foundation_sdk.models.prometheus import PromQueryFormat

    if spec.kind == "heatmap":
        panel = heatmap.Panel().calculate(False)
    else:
        panel = timeseries.Panel().fill_opacity(20 if spec.stacked else 0)
        if spec.stacked:
            panel = panel.stacking(common.StackingConfig().mode(StackingMode.NORMAL))
    panel = panel.title(spec.title).description(spec.description).unit(spec.unit)
    panel = panel.id(panel_id).datasource(datasource).height(8).span(12)
    for ref, query in zip("ABCDEFGH", spec.queries, strict=False):
        target = prometheus.Dataquery().expr(query.expr).legend_format(query.legend).ref_id(ref)
        if spec.kind == "heatmap":
            target = target.format(PromQueryFormat.HEATMAP)
        panel = panel.with_target(target)
    return panel


def build_dashboard() -> dict[str, Any]:
    """The dashboard as Grafana's JSON model (a dict)."""
    from grafana_foundation_sdk.builders.dashboard import Dashboard, DatasourceVariable, Row
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models.dashboard import DataSourceRef

    datasource = DataSourceRef(type_val="prometheus", uid="${datasource}")
    builder = (
        Dashboard(TITLE)
        .uid(UID)
        .tags(["ml_assets", "fraud"])
        .refresh("30s")
        .time("now-6h", "now")
        .with_variable(DatasourceVariable("datasource").label("Prometheus").type("prometheus"))
    )
    panel_id = 0
    for row, specs in ROWS.items():
        panel_id += 1
        builder = builder.with_row(Row(row).id(panel_id))
        for spec in specs:
            panel_id += 1
            builder = builder.with_panel(_panel(spec, datasource, panel_id))
    # Through the SDK's encoder, back to plain JSON types.
    return json.loads(json.dumps(builder.build(), cls=JSONEncoder))


def dashboard_exprs(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression of the dashboard's panels."""
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", []) if "expr" in t]


def write_dashboard(path: Path) -> Path:
    from ml_assets.atomic_files import write_text_atomically

    text = json.dumps(build_dashboard(), indent=2, sort_keys=True) + "\n"
    return write_text_atomically(Path(path), text)
