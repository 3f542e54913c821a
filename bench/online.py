"""Benchmark: online feature reads as of a request time, embedded SQLite vs Redis.

Generates a few days of transactions with the demo's generator, validates them, writes their
events to each store (`write_events`: append + compaction per entity), then times
`get_online_features(store, feature_set, keys, at=...)` for 1 and 100 entities of each
feature set: one store read of the entities' event logs, and their features computed as of
`at` by the training set's point-in-time rule. Prints p50/p99 per backend and the ratio
Redis / SQLite. Redis runs only if `redis-server` is installed (started here on a free
loopback port, no persistence, stopped at the end). BENCH_QUICK=1 or --quick runs fewer
days and reads.

    python bench/online.py [--quick]
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ml_assets.data.generator import GeneratorConfig, generate_transactions  # noqa: E402
from ml_assets.data.validation import split_valid_quarantine  # noqa: E402
from ml_assets.features.online import (  # noqa: E402
    OnlineStore,
    RedisOnlineStore,
    SqliteOnlineStore,
    encode_events,
    get_online_features,
    write_events,
)
from ml_assets.features.registry import FEATURE_SETS, FeatureSet  # noqa: E402
from ml_assets_tests.support.servers import start_redis, stop_process  # noqa: E402

FIRST_DAY = date(2026, 2, 1)
BATCHES = (1, 100)


def validated_events(days: int, per_day: int) -> pl.DataFrame:
    """`days` generated days from FIRST_DAY, only the rows that pass validation."""
    config = GeneratorConfig(transactions_per_day=per_day)
    frames = []
    for i in range(days):
        day = FIRST_DAY + timedelta(days=i)
        frames.append(split_valid_quarantine(generate_transactions(day, config), day).valid)
    return pl.concat(frames)


def measure(
    store: OnlineStore, feature_set: FeatureSet, keys: list[str], batch: int, reads: int,
    at: datetime, rng: np.random.Generator,
) -> tuple[float, float]:  # fmt: skip
    """p50 and p99 in microseconds of `reads` reads of `batch` random keys as of `at`."""
    timings = []
    for _ in range(reads):
        chosen = [keys[i] for i in rng.integers(0, len(keys), size=batch)]
        started = time.perf_counter_ns()
        get_online_features(store, feature_set, chosen, at=at)
        timings.append((time.perf_counter_ns() - started) / 1_000)
    return float(np.percentile(timings, 50)), float(np.percentile(timings, 99))


def run_backend(store: OnlineStore, events: pl.DataFrame, reads: int, at: datetime) -> Results:
    """Write every feature set's events, then time the reads; returns (set, batch) -> p50/p99."""
    results: Results = {}
    for feature_set in FEATURE_SETS.values():
        started = time.perf_counter()
        entities = write_events(store, feature_set, events)
        seconds = time.perf_counter() - started
        print(f"  {feature_set.name}: wrote {events.height:,} events of {entities:,} entities "
              f"in {seconds:.2f} s ({events.height / seconds:,.0f} events/s)")  # fmt: skip
        keys = events[feature_set.key].unique().sort().to_list()
        rng = np.random.default_rng(7)  # the same keys for every backend
        measure(store, feature_set, keys, 1, min(reads, 50), at, rng)  # warm-up
        for batch in BATCHES:
            results[feature_set.name, batch] = measure(store, feature_set, keys, batch, reads,
                                                       at, rng)  # fmt: skip
    results[APPEND] = measure_appends(store, events, reads)
    return results


Results = dict[tuple[str, int], tuple[float, float]]
APPEND = ("append", 2)  # the results key of one transaction's append (customer + merchant)


def measure_appends(store: OnlineStore, events: pl.DataFrame, count: int) -> tuple[float, float]:
    """p50 and p99 in microseconds of appending one new event for a random customer and its
    merchant (the records of real events, re-identified so each counts as new)."""
    rng = np.random.default_rng(11)
    sets = list(FEATURE_SETS.values())
    timings = []
    for i in rng.integers(0, events.height, size=count):
        row = events.slice(int(i), 1).with_columns(pl.lit(f"bench-{len(timings)}").alias(
            "transaction_id"))  # fmt: skip
        records = {fs: encode_events(fs, row) for fs in sets}
        started = time.perf_counter_ns()
        store.append(records)
        timings.append((time.perf_counter_ns() - started) / 1_000)
    return float(np.percentile(timings, 50)), float(np.percentile(timings, 99))


def print_results(results: Results, base: Results | None = None) -> None:
    for (name, batch), (p50, p99) in results.items():
        what = (
            "one event to a customer + merchant"
            if (name, batch) == APPEND
            else f"{batch:>3} entities"
        )
        ratio = ""
        if base is not None:
            b50, b99 = base[name, batch]
            ratio = f"   vs SQLite: p50 x{p50 / b50:.2f}  p99 x{p99 / b99:.2f}"
        print(f"    {name:<18} {what}: p50 {p50:8.1f} us  p99 {p99:8.1f} us{ratio}")


def log_sizes(events: pl.DataFrame) -> str:
    parts = []
    for feature_set in FEATURE_SETS.values():
        counts = events.group_by(feature_set.key).len()["len"]
        parts.append(f"{feature_set.entity}: median {counts.median():.0f}, max {counts.max()}")
    return "; ".join(parts)


def main() -> None:
    quick = "--quick" in sys.argv or os.environ.get("BENCH_QUICK") == "1"
    days, per_day = (3, 5_000) if quick else (7, 20_000)
    reads = 300 if quick else 3_000
    events = validated_events(days, per_day)
    at = datetime.combine(FIRST_DAY + timedelta(days=days), datetime.min.time(), tzinfo=UTC)
    print(f"{events.height:,} validated events over {days} days; events per entity "
          f"({log_sizes(events)})")  # fmt: skip
    print(f"features read as of {at.isoformat()}, {reads} reads per figure")

    with tempfile.TemporaryDirectory() as folder:
        print("embedded SQLite")
        store = SqliteOnlineStore(Path(folder) / "online_store.sqlite")
        try:
            sqlite = run_backend(store, events, reads, at)
        finally:
            store.close()
        print_results(sqlite)

    executable = shutil.which("redis-server")
    if executable is None:
        print("Redis: skipped (redis-server not installed)")
        return
    process, url = start_redis(executable)
    try:
        print(f"Redis ({url})")
        store = RedisOnlineStore(url)
        try:
            redis = run_backend(store, events, reads, at)
        finally:
            store.close()
        print_results(redis, sqlite)
    finally:
        stop_process(process, timeout=10)


if __name__ == "__main__":
    main()
