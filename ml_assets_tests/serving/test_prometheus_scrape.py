"""The monitoring stack against real components: Prometheus (Debian's package) on loopback
with deploy/prometheus/'s configuration and rules scrapes a running endpoint serving a real
model and the daily-figures exporter; p99, the decision shares, the recording rules, an
alert and every dashboard query are read back through its HTTP API."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ml_assets.monitoring.dashboard import build_dashboard, dashboard_exprs
from ml_assets.monitoring.exporter import start_exporter
from ml_assets.serving.app import create_app
from ml_assets.serving.local_server import free_port
from ml_assets_tests.support.reports import write_reports
from ml_assets_tests.support.servers import (
    prometheus_config,
    prometheus_query,
    require_binary,
    running_prometheus,
    wait_for_query,
)
from ml_assets_tests.support.worlds import ControlledRegistry, World

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("serving")]
ENDPOINT = 'job="ml_assets_endpoint"'
LATENCY = "ml_assets_serving_request_latency_seconds_bucket"
# A small domestic grocery purchase at a terminal: the rules score it far below review.
BENIGN = {
    "amount": 5.0,
    "channel": "card_present",
    "device": "terminal",
    "merchant_category": "grocery",
    "merchant_country": "US",
    "customer_country": "US",
}


def _p99_bucket(metrics_text: str) -> tuple[float, float]:
    """The (lower, upper] bounds of the /predict latency bucket holding the 99th percentile,
    from the endpoint's own cumulative histogram."""
    buckets = sorted(
        (float(s.labels["le"]), s.value)
        for family in text_string_to_metric_families(metrics_text)
        for s in family.samples
        if s.name == LATENCY and s.labels.get("route") == "/predict"
    )
    rank = 0.99 * buckets[-1][1]
    for i, (bound, count) in enumerate(buckets):
        if count >= rank:
            lower = buckets[i - 1][0] if i else 0.0
            # Prometheus answers the highest finite bound when the rank falls in +Inf.
            return (lower, lower) if math.isinf(bound) else (lower, bound)
    raise AssertionError("no /predict latency observed")


def _value(result: list[dict]) -> float:
    assert len(result) == 1, result
    return float(result[0]["value"][1])


def test_prometheus_scrapes_the_endpoint_and_the_exporter_and_evaluates_the_rules(
    world: World, tmp_path: Path
) -> None:
    prometheus = require_binary("prometheus", "prometheus")
    reports = tmp_path / "reports"
    write_reports(reports, drifted=2)  # newest day drifted: DriftShareHigh must fire
    exporter_port = free_port()
    exporter, _ = start_exporter(reports, "127.0.0.1", exporter_port)
    registry = ControlledRegistry(world.tracking_uri)
    config = world.config(tmp_path, breaker_failures=100, cache_size=0)
    decisions: Counter[str] = Counter()

    def predict(i: int, fail: bool = False) -> None:
        """One /predict; a failing model makes the rules answer a benign transaction, which
        they would approve, so the endpoint answers (fallback, review) every time."""
        registry.loaded[world.versions[0]].mode = "fail" if fail else "ok"
        body = world.transaction(i, transaction_id=f"prom-{i}-{fail}", **(BENIGN if fail else {}))
        answer = client.post("/predict", json=body)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        if fail:
            assert (body["path"], body["decision"]) == ("fallback", "review"), body
        decisions[body["decision"]] += 1

    try:
        with world.serve(create_app(config, registry=registry)) as client:
            # Answers before the first scrape, so the /predict latency and fallback series
            # exist from the start: rate() counts only increases after a series' first sample.
            predict(0)
            predict(0, fail=True)
            targets = {"ml_assets_endpoint": client.base_url.netloc.decode(),
                       "ml_assets_monitoring": f"127.0.0.1:{exporter_port}"}  # fmt: skip
            with running_prometheus(prometheus, prometheus_config(targets)) as api:
                for job in targets:
                    wait_for_query(api, f'up{{job="{job}"}} == 1')
                # Two rounds with a scrape between: each series seen in the first round has
                # an increase in the second, which is what rate() and the rules see.
                for first in (1, 41):
                    for i in range(first, first + 40):
                        predict(i, fail=i % 20 == 0)  # 2 more answers by the rules a round
                    total = sum(decisions.values())
                    wait_for_query(api, f"sum(ml_assets_serving_predictions_total{{{ENDPOINT}}})",
                                   lambda r, total=total: r and _value(r) == total)  # fmt: skip
                metrics_text = client.get("/metrics").text

                # p99 of /predict through Prometheus, inside the endpoint's own bucket.
                p99 = _value(
                    prometheus_query(
                        api,
                        f"histogram_quantile(0.99, sum by (le) "
                        f'({LATENCY}{{{ENDPOINT},route="/predict"}}))',
                    )
                )
                lower, upper = _p99_bucket(metrics_text)
                assert lower <= p99 <= upper, (p99, lower, upper)

                # Decision shares through Prometheus equal the answers the client received.
                shares = prometheus_query(
                    api, f"sum by (decision) (ml_assets_serving_predictions_total{{{ENDPOINT}}})"
                    f" / scalar(sum(ml_assets_serving_predictions_total{{{ENDPOINT}}}))",
                )  # fmt: skip
                got = {r["metric"]["decision"]: float(r["value"][1]) for r in shares}
                assert got == pytest.approx({d: n / total for d, n in decisions.items()})

                # The recording rules of alerts.yml evaluate on the scraped series.
                # (A decision first seen mid-traffic is recorded once it has two samples.)
                recorded = wait_for_query(
                    api, "ml_assets:endpoint_decision_share:rate5m",
                    lambda r: {x["metric"]["decision"] for x in r} == set(decisions),
                )  # fmt: skip
                assert sum(float(r["value"][1]) for r in recorded) == pytest.approx(1.0)
                # rate() extrapolates over a window longer than this traffic, so a rate
                # share is near the counted one, not equal: some, and far from all.
                wait_for_query(api, 'ml_assets:endpoint_path_share:rate5m{path="fallback"}',
                               lambda r: r and 0 < _value(r) < 0.5)  # fmt: skip
                recorded_p99 = _value(wait_for_query(
                    api, "ml_assets:endpoint_latency_p99_seconds:rate5m"))  # fmt: skip
                assert 0 < recorded_p99 <= 5.0  # within the histogram's finite buckets
                # The rules review what they would approve: no unscored approval is recorded.
                assert prometheus_query(api, "ml_assets:endpoint_unscored_approval_share:rate5m"
                                        " > 0") == []  # fmt: skip

                # The exporter's daily figures fire the drift alert, and only that one.
                firing = wait_for_query(api, 'ALERTS{alertstate="firing"}')
                assert {(a["metric"]["alertname"], a["metric"].get("kind")) for a in firing} == {
                    ("DriftShareHigh", "feature_drift")
                }

                # Every dashboard query runs on this Prometheus and returns data.
                for expr in dashboard_exprs(build_dashboard()):
                    query = expr.replace("$__rate_interval", "1m")
                    assert prometheus_query(api, query), f"no data for panel query {expr!r}"
    finally:
        exporter.shutdown()
