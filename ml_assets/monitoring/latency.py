"""How fast, and by which path, were requests served each day? From the prediction log.

Percentiles say how slow the slow requests were; path shares say how often the endpoint fell
back (circuit open, timeout), answered from cache or sent the case to a human. A rising
fallback share with flat latency means the degradation is working and the model is not.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from ml_assets.monitoring.plots import plot_series

PATHS = ("model", "fallback", "cache", "review")
PERCENTILES = (50, 95, 99)


@dataclass(frozen=True)
class DailyLatency:
    day: date
    requests: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    path_shares: dict[str, float]

    def to_row(self) -> dict[str, object]:
        row: dict[str, object] = {
            "day": self.day, "requests": self.requests, "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms, "p99_ms": self.p99_ms,
        }  # fmt: skip
        row.update({f"{p}_share": self.path_shares.get(p, 0.0) for p in PATHS})
        return row


def daily_latency(log: pl.DataFrame, day: date) -> DailyLatency:
    """p50/p95/p99 of `latency_ms` and the share of requests per serving path for one day."""
    missing = sorted({"latency_ms", "path"} - set(log.columns))
    if missing:
        raise ValueError(f"prediction log lacks {missing}; see prediction_log_schema.py")
    if log.height == 0:
        raise ValueError(f"the prediction log of {day} is empty; was the endpoint serving?")
    latency = log["latency_ms"].drop_nulls().cast(pl.Float64).to_numpy()
    p50, p95, p99 = (
        (float(v) for v in np.percentile(latency, PERCENTILES)) if latency.size else (np.nan,) * 3
    )
    counts = log["path"].value_counts()
    shares = {p: 0.0 for p in PATHS}
    for path, count in counts.iter_rows():
        shares[str(path)] = count / log.height
    return DailyLatency(day, log.height, p50, p95, p99, shares)


def latency_by_day(log: pl.DataFrame) -> list[DailyLatency]:
    """`daily_latency` per day of `received_at`."""
    with_day = log.with_columns(pl.col("received_at").dt.date().alias("_day"))
    return [
        daily_latency(part, part["_day"][0])
        for part in with_day.sort("_day").partition_by("_day", maintain_order=True)
    ]


def latency_table(days: Iterable[DailyLatency]) -> pl.DataFrame:
    rows = [d.to_row() for d in days]
    schema = {"day": pl.Date, "requests": pl.Int64, "p50_ms": pl.Float64, "p95_ms": pl.Float64,
              "p99_ms": pl.Float64, **{f"{p}_share": pl.Float64 for p in PATHS}}  # fmt: skip
    return pl.DataFrame(rows, schema=schema).sort("day")


def plot_latency(table: pl.DataFrame, path: Path) -> Path:
    """Latency percentiles and path shares per day (PNG)."""
    return plot_series(
        table.sort("day"),
        {
            "latency (ms)": ["p50_ms", "p95_ms", "p99_ms"],
            "share of requests by path": [f"{p}_share" for p in PATHS],
        },
        path,
        "Serving latency and degradation per day",
    )
