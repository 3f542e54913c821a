"""The endpoint's Prometheus metrics, in a registry of its own per app.

A registry per app (instead of the global default) lets several apps live in one process,
as they do in the tests and the in-process benchmark, without duplicate-metric errors.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ml_assets.serving.breaker import STATE_VALUES

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
DIFF_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
# Fine at both ends, where fraud scores crowd (most near 0) and where declines happen.
SCORE_BUCKETS = (
    0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0
)  # fmt: skip
CONTENT_TYPE = CONTENT_TYPE_LATEST


class ServingMetrics:
    """Counters, histograms and gauges named `ml_assets_serving_*`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        p = "ml_assets_serving_"
        self.http_requests = Counter(
            p + "http_requests", "HTTP requests by route and status code", ["route", "status"],
            registry=r,
        )  # fmt: skip
        self.predictions = Counter(
            p + "predictions", "Answers by the path that answered, the decision, and the "
            "rollout stage (arm: champion, canary) whose model answered or was asked",
            ["path", "decision", "arm"], registry=r,
        )  # fmt: skip
        self.canary_diverted = Counter(
            p + "canary_diverted", "Canary customers not answered by the canary, by reason "
            "(error, breaker_open: the champion answered; timeout, batch_error: the rules)",
            ["reason"], registry=r,
        )  # fmt: skip
        self.canary_share = Gauge(
            p + "canary_share", "Share of customers routed to the canary (0 without one)",
            registry=r,
        )  # fmt: skip
        self.score = Histogram(
            p + "score", "Served score by answering path (the dashboard's distribution)",
            ["path"], buckets=SCORE_BUCKETS, registry=r,
        )  # fmt: skip
        self.degraded = Counter(
            p + "degraded", "Answers not from the model, by reason", ["reason"], registry=r
        )
        self.request_latency = Histogram(
            p + "request_latency_seconds", "Server-side request latency", ["route"],
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.model_latency = Histogram(
            p + "model_latency_seconds", "Feature read plus model call per batch",
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.batch_size = Histogram(
            p + "batch_size", "Rows per model call", buckets=BATCH_BUCKETS, registry=r
        )
        self.breaker_state = Gauge(
            p + "breaker_state", "Circuit breaker: 0 closed, 1 half-open, 2 open", registry=r
        )
        self.breaker_transitions = Counter(
            p + "breaker_transitions", "Breaker state changes, by new state", ["state"],
            registry=r,
        )  # fmt: skip
        self.rag_latency = Histogram(
            p + "rag_latency_seconds", "RAG query latency by stage (embed, search, generate, "
            "total)", ["stage"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.rag_cache = Counter(
            p + "rag_cache",
            "RAG semantic-cache lookups by outcome (hit, miss)",
            ["outcome"],
            registry=r,
        )
        self.cache_hits = Counter(p + "cache_hits", "Answers served from the cache", registry=r)
        self.cache_misses = Counter(p + "cache_misses", "Cache lookups that missed", registry=r)
        self.shadow = Counter(
            p + "shadow", "Shadow scorings by outcome (agree, disagree, error, dropped)",
            ["outcome"], registry=r,
        )  # fmt: skip
        self.shadow_diff = Histogram(
            p + "shadow_score_diff", "|shadow - answered| score", buckets=DIFF_BUCKETS,
            registry=r,
        )  # fmt: skip
        self.shadow_agreement = Gauge(
            p + "shadow_agreement", "Share of shadow-scored answers whose decision the shadow "
            "model would have given, since the current shadow version loaded", registry=r,
        )  # fmt: skip
        self.shadow_latency = Histogram(
            p + "shadow_latency_seconds", "Shadow model call per answered request",
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.review_enqueued = Counter(
            p + "review_enqueued", "Requests sent to the human-review queue", registry=r
        )
        self.unknown_entities = Counter(
            p + "unknown_entities", "Requests naming an entity the online store lacks",
            ["entity"], registry=r,
        )  # fmt: skip
        self.rate_limited = Counter(p + "rate_limited", "Requests refused with 429", registry=r)
        self.model_info = Gauge(
            p + "model_info", "1 for the loaded model of each stage (champion, canary, shadow)",
            ["role", "name", "version"], registry=r,
        )  # fmt: skip
        self.reloads = Counter(
            p + "model_reloads", "Model swaps and refused loads", ["role", "outcome"], registry=r
        )
        self.log_rows = Counter(
            p + "prediction_log_rows", "Rows written to the prediction log", registry=r
        )
        self.breaker_state.set(0)

    def on_breaker_change(self, state: str) -> None:
        self.breaker_state.set(STATE_VALUES[state])
        self.breaker_transitions.labels(state=state).inc()

    def set_model(self, role: str, name: str | None, version: str | None) -> None:
        """Keep one `model_info` series per role: the model currently loaded."""
        for sample in list(self.model_info.collect()[0].samples):
            if sample.labels.get("role") == role:
                self.model_info.remove(role, sample.labels["name"], sample.labels["version"])
        if name is not None and version is not None:
            self.model_info.labels(role=role, name=name, version=version).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)
