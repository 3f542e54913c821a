"""The endpoint's parts on their own: breaker, cache, micro-batcher, token bucket, log."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from ml_assets.serving.batcher import MicroBatcher
from ml_assets.serving.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from ml_assets.serving.cache import TTLCache
from ml_assets.serving.config import ServingConfig
from ml_assets.serving.fallback import heuristic_score
from ml_assets.serving.gateway import TokenBucket, key_matches
from ml_assets.serving.metrics import ServingMetrics
from ml_assets.serving.prediction_log import PREDICTION_LOG_SCHEMA, PredictionLogWriter
from ml_assets.serving.shadow import ShadowWorker
from ml_assets.settings import DecisionThresholds
from ml_assets_tests.support.worlds import metric_value


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_half_opens_with_one_trial_and_closes() -> None:
    clock, changes = Clock(), []
    breaker = CircuitBreaker(failures=2, reset_s=5, on_change=changes.append, clock=clock)
    breaker.record_failure()
    assert breaker.allow() and breaker.state == CLOSED
    breaker.record_failure()
    assert breaker.state == OPEN and not breaker.allow()
    clock.now = 5
    assert breaker.state == HALF_OPEN
    assert breaker.allow()  # the one trial
    assert not breaker.allow()  # everyone else keeps the fallback meanwhile
    breaker.record_failure()  # the trial failed: open again for reset_s
    assert breaker.state == OPEN and not breaker.allow()
    clock.now = 10
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state == CLOSED and breaker.allow()
    assert changes == [OPEN, HALF_OPEN, OPEN, HALF_OPEN, CLOSED]


def test_cache_expires_evicts_and_clears() -> None:
    clock = Clock()
    cache: TTLCache[int] = TTLCache(max_size=2, ttl_s=10, clock=clock)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3)  # evicts b, the least recently used
    assert cache.get("b") is None and cache.get("c") == 3
    clock.now = 11
    assert cache.get("a") is None
    cache.put("d", 4)
    cache.clear()
    assert cache.get("d") is None and len(cache) == 0


def _run_batcher(max_size: int, max_wait_s: float, n: int) -> list[int]:
    sizes: list[int] = []
    gate = threading.Event()

    def process(items: list[int]) -> list[int]:
        gate.wait(5)  # the "model" is busy until every request has queued
        return [i * 2 for i in items]

    batcher = MicroBatcher(process, max_size=max_size, max_wait_s=max_wait_s,
                           on_batch=sizes.append)  # fmt: skip
    batcher.start()

    async def main() -> list[int]:
        futures = [batcher.submit(0)]
        for _ in range(500):  # wait until the worker is busy with the first request
            if sizes:
                break
            await asyncio.sleep(0.01)
        futures += [batcher.submit(i) for i in range(1, n)]
        gate.set()
        return list(await asyncio.gather(*futures))

    try:
        assert asyncio.run(main()) == [i * 2 for i in range(n)]
    finally:
        batcher.stop()
    return sizes


def test_micro_batcher_takes_what_queued_while_the_model_was_busy() -> None:
    sizes = _run_batcher(max_size=8, max_wait_s=0.0, n=20)
    assert sizes == [1, 8, 8, 3]  # the first request never waits for company


def test_micro_batching_off_is_one_call_per_request() -> None:
    assert _run_batcher(max_size=1, max_wait_s=0.0, n=5) == [1] * 5


def test_a_failing_batch_fails_each_caller() -> None:
    def process(items: list[int]) -> list[int]:
        raise RuntimeError("boom")

    batcher = MicroBatcher(process, max_size=4)
    batcher.start()

    async def main() -> None:
        with pytest.raises(RuntimeError, match="boom"):
            await batcher.submit(1)

    try:
        asyncio.run(main())
    finally:
        batcher.stop()


def test_token_bucket_refills_per_key() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=2, burst=2, clock=clock)
    assert [bucket.take("k") for _ in range(2)] == [0, 0]
    assert bucket.take("k") == pytest.approx(0.5)
    assert bucket.take("other") == 0
    clock.now = 0.5
    assert bucket.take("k") == 0


def test_key_matching_checks_every_key() -> None:
    assert key_matches("b", ("a", "b"))
    assert not key_matches("c", ("a", "b"))
    assert not key_matches("", ("a",))


def test_prediction_log_writes_the_contract_per_day(tmp_path: Path) -> None:
    writer = PredictionLogWriter(tmp_path, flush_s=60)
    base = {c: None for c in PREDICTION_LOG_SCHEMA}
    days = [datetime(2026, 3, 1, 23, 59, tzinfo=UTC), datetime(2026, 3, 2, 0, 1, tzinfo=UTC)]
    writer.append(
        {
            **base,
            "request_id": str(i),
            "received_at": days[1],
            "event_time": days[i % 2],
            "score": 0.1,
            "amount": 1.0,
        }  # fmt: skip
        for i in range(5)
    )
    writer.start()
    writer.close()  # flushes
    files = sorted((tmp_path / "prediction_log").glob("date=*/*.parquet"))
    # By the day the transaction happened, like the warehouse, whenever it was answered.
    assert [f.parent.name for f in files] == ["date=2026-03-01", "date=2026-03-02"]
    frame = pl.concat([pl.read_parquet(f) for f in files])
    assert dict(frame.schema) == PREDICTION_LOG_SCHEMA and frame.height == 5
    assert not list((tmp_path / "prediction_log").rglob("*.tmp"))


def test_fallback_rules_rank_the_obvious_cases() -> None:
    noon, three_am = datetime(2026, 3, 1, 12, tzinfo=UTC), datetime(2026, 3, 1, 3, tzinfo=UTC)
    calm = {
        "amount": 20.0, "merchant_country": "US", "customer_country": "US",
        "channel": "card_present", "merchant_category": "grocery", "event_time": noon,
    }  # fmt: skip
    wild = {
        **calm, "amount": 2_000.0, "merchant_country": "GB", "channel": "online",
        "merchant_category": "jewelry", "event_time": three_am,
    }  # fmt: skip
    usual = {"customer__amount_mean_30d": 25.0, "customer__txn_count_1h": 0}
    assert heuristic_score(calm, usual) < 0.05
    assert heuristic_score(wild, {**usual, "customer__txn_count_1h": 4}) > 0.7
    assert 0 < heuristic_score(wild, {}) < 1  # unknown customer: no mean to compare


def test_config_reads_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ML_ASSETS_HOME", str(tmp_path))
    monkeypatch.setenv("ML_ASSETS_API_KEY", "k1, k2")
    monkeypatch.setenv("ML_ASSETS_MICRO_BATCHING", "0")
    monkeypatch.setenv("ML_ASSETS_CANARY", "0")
    monkeypatch.setenv("ML_ASSETS_SHADOW_ALIAS", "next")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    config = ServingConfig.from_env()
    assert config.api_keys == ("k1", "k2")
    assert not config.micro_batching
    assert not config.canary and config.shadow
    assert (config.canary_alias, config.shadow_alias) == ("canary", "next")
    assert config.resolved_tracking_uri == f"sqlite:///{tmp_path}/mlflow/mlflow.db"
    with pytest.raises(ValueError, match="review_low"):
        ServingConfig(decisions=DecisionThresholds(review_low=0.9, decline_at=0.5))


def test_serving_imports_only_the_read_side_of_its_contracts() -> None:
    """Every module of `ml_assets.serving`, imported together, pulls in neither dagster nor the
    registry's write side nor any asset module: serving reads the online store and the
    registry loader, nothing else of the training side."""
    import subprocess
    import sys

    code = (
        "import importlib, pkgutil, sys, ml_assets.serving as s\n"
        "for m in pkgutil.iter_modules(s.__path__):\n"
        "    importlib.import_module(f'{s.__name__}.{m.name}')\n"
        "bad = [m for m in sys.modules if m == 'dagster' or m.endswith('registry_writer')"
        " or m.endswith('.assets') or m.startswith('ml_assets.automation')]\n"
        "print(','.join(sorted(bad)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"serving imported {result.stdout.strip()}"


AGREEMENT = "ml_assets_serving_shadow_agreement"


def test_shadow_agreement_covers_the_current_shadow_version_only() -> None:
    metrics = ServingMetrics()
    worker = ShadowWorker(None, str, lambda records: None, metrics)  # type: ignore[arg-type]
    worker._count_agreement("2", agreed=3, scored=4)
    worker._count_agreement("2", agreed=1, scored=4)
    assert metric_value(metrics.render().decode(), AGREEMENT) == 0.5
    worker._count_agreement("3", agreed=1, scored=1)  # a new shadow starts afresh
    assert metric_value(metrics.render().decode(), AGREEMENT) == 1.0
