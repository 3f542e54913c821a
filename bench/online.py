"""Benchmark: latency of online feature reads, embedded SQLite and Redis.

Loads the latest customer features of 5,000 entities, then times `get_online_features` for 1
and 100 entities and prints p50/p99. Redis runs only if `redis-server` is installed (started
here on a free loopback port). BENCH_QUICK=1 or --quick runs fewer reads.

    python bench/online.py [--quick]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ml_assets.features.online import (  # noqa: E402
    OnlineStore,
    RedisOnlineStore,
    SqliteOnlineStore,
    get_online_features,
)
from ml_assets.features.registry import CUSTOMER_FEATURES  # noqa: E402
from ml_assets_tests.support.servers import start_redis as start_local_redis  # noqa: E402

N_ENTITIES = 5_000
AT = datetime(2026, 2, 1, 12, tzinfo=UTC)


def latest_rows(rng) -> pl.DataFrame:
    feature_set = CUSTOMER_FEATURES
    ages = rng.integers(0, 3_600 * 48, size=N_ENTITIES)
    frame = pl.DataFrame(
        {
            feature_set.key: [f"C{i:05d}" for i in range(N_ENTITIES)],
            "feature_time": [AT - timedelta(seconds=int(a)) for a in ages],
        }
    ).with_columns(pl.col("feature_time").dt.cast_time_unit("us"))
    return frame.with_columns(
        **{
            spec.column: pl.Series(rng.gamma(2.0, 40.0, size=N_ENTITIES)).cast(spec.polars_dtype)
            for spec in feature_set.features
        }
    )


def measure(store: OnlineStore, batch: int, reads: int, rng) -> tuple[float, float]:
    keys = [f"C{i:05d}" for i in range(N_ENTITIES)]
    timings = []
    for _ in range(reads):
        chosen = [keys[i] for i in rng.integers(0, N_ENTITIES, size=batch)]
        started = time.perf_counter_ns()
        get_online_features(store, CUSTOMER_FEATURES, chosen, at=AT)
        timings.append((time.perf_counter_ns() - started) / 1_000)
    return float(np.percentile(timings, 50)), float(np.percentile(timings, 99))


def report(name: str, store: OnlineStore, rows: pl.DataFrame, reads: int, rng) -> None:
    started = time.perf_counter()
    store.write(CUSTOMER_FEATURES, rows)
    print(f"{name}: wrote {rows.height:,} entities in {time.perf_counter() - started:.2f} s")
    for batch in (1, 100):
        p50, p99 = measure(store, batch, reads, rng)
        print(f"  {batch:>3} entities: p50 {p50:8.1f} us   p99 {p99:8.1f} us   ({reads} reads)")


def start_redis() -> tuple[subprocess.Popen, str] | None:
    executable = shutil.which("redis-server")
    if executable is None:
        return None
    try:
        return start_local_redis(executable)
    except RuntimeError:
        return None


def main() -> None:
    quick = "--quick" in sys.argv or os.environ.get("BENCH_QUICK") == "1"
    reads = 200 if quick else 3_000
    rng = np.random.default_rng(7)
    rows = latest_rows(rng)
    with tempfile.TemporaryDirectory() as folder:
        store = SqliteOnlineStore(Path(folder) / "online_store.sqlite")
        report("embedded SQLite", store, rows, reads, rng)
        store.close()
    started = start_redis()
    if started is None:
        print("Redis: skipped (redis-server not installed or did not start)")
        return
    process, url = started
    try:
        store = RedisOnlineStore(url)
        report(f"Redis ({url})", store, rows, reads, rng)
        store.close()
    finally:
        process.terminate()
        process.wait(timeout=10)


if __name__ == "__main__":
    main()
