"""Seconds to produce one day's drift report: our approach against a naive Evidently report.

Ours: `compute_drift` (chosen methods, seeded samples of at most 20k rows a side) and the
day's HTML + JSON. Naive: `Report([DataDriftPreset()])` on the full pandas frames, with
Evidently's default methods and no sampling, and its HTML. Both compare a current day of N
rows with a reference of N rows over the same 25 columns (20 numeric features, 5 categorical).

    python bench/drift.py            # 10k, 100k and 1M rows (the naive 1M run takes ~40 s+)
    python bench/drift.py --quick    # 2k and 10k rows
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evidently import Report  # noqa: E402
from evidently.presets import DataDriftPreset  # noqa: E402

from ml_assets.data.generator import GeneratorConfig, generate_transactions  # noqa: E402
from ml_assets.monitoring.drift import compute_drift  # noqa: E402
from ml_assets.monitoring.drift_methods import DriftColumns  # noqa: E402
from ml_assets.monitoring.reports import write_drift_report  # noqa: E402

ROWS_PER_DAY = 50_000
CATEGORICAL = ("merchant_category", "merchant_country", "customer_country", "channel", "device")


def _features(frame: pl.DataFrame) -> pl.DataFrame:
    """Per-day entity aggregates named like feature-store columns: 20 numeric in all."""
    online = (pl.col("channel") == "online").cast(pl.Float64)
    abroad = (pl.col("merchant_country") != pl.col("customer_country")).cast(pl.Float64)
    night = (pl.col("event_time").dt.hour() < 5).cast(pl.Float64)
    day = pl.col("event_time").dt.date()
    c, m = ["customer_id", day], ["merchant_id", day]
    return frame.with_columns(
        hour=pl.col("event_time").dt.hour().cast(pl.Float64),
        log_amount=pl.col("amount").log1p(),
        customer__txn_count_1d=pl.len().over(c).cast(pl.Float64),
        customer__amount_sum_1d=pl.col("amount").sum().over(c),
        customer__amount_mean_1d=pl.col("amount").mean().over(c),
        customer__amount_max_1d=pl.col("amount").max().over(c),
        customer__amount_std_1d=pl.col("amount").std().over(c),
        customer__online_share_1d=online.mean().over(c),
        customer__cross_border_share_1d=abroad.mean().over(c),
        customer__night_share_1d=night.mean().over(c),
        merchant__txn_count_1d=pl.len().over(m).cast(pl.Float64),
        merchant__amount_sum_1d=pl.col("amount").sum().over(m),
        merchant__amount_mean_1d=pl.col("amount").mean().over(m),
        merchant__amount_max_1d=pl.col("amount").max().over(m),
        merchant__amount_std_1d=pl.col("amount").std().over(m),
        merchant__online_share_1d=online.mean().over(m),
        merchant__cross_border_share_1d=abroad.mean().over(m),
        merchant__night_share_1d=night.mean().over(m),
    )


NUMERIC = (
    "amount", "true_fraud_probability", "hour", "log_amount",
    "customer__txn_count_1d", "customer__amount_sum_1d", "customer__amount_mean_1d",
    "customer__amount_max_1d", "customer__amount_std_1d", "customer__online_share_1d",
    "customer__cross_border_share_1d", "customer__night_share_1d",
    "merchant__txn_count_1d", "merchant__amount_sum_1d", "merchant__amount_mean_1d",
    "merchant__amount_max_1d", "merchant__amount_std_1d", "merchant__online_share_1d",
    "merchant__cross_border_share_1d", "merchant__night_share_1d",
)  # fmt: skip
COLUMNS = DriftColumns(NUMERIC, CATEGORICAL)


def _rows(start: date, rows: int) -> pl.DataFrame:
    config = GeneratorConfig(transactions_per_day=ROWS_PER_DAY)
    frames, total, day = [], 0, start
    while total < rows:
        frame = _features(generate_transactions(day, config))
        frames.append(frame)
        total += frame.height
        day += timedelta(days=1)
    return pl.concat(frames).head(rows).select(COLUMNS.all)


def _ours(current: pl.DataFrame, reference: pl.DataFrame, out: Path) -> float:
    start = time.perf_counter()
    result = compute_drift(current, reference, COLUMNS, day=date(2026, 3, 1))
    write_drift_report(result, out)
    return time.perf_counter() - start


def _naive(current: pl.DataFrame, reference: pl.DataFrame, out: Path) -> float:
    start = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(current.to_pandas(), reference.to_pandas())
    snapshot.save_html(str(out / "naive.html"))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only (2k, 10k)")
    args = parser.parse_args()
    sizes = [2_000, 10_000] if args.quick else [10_000, 100_000, 1_000_000]
    print(f"{'rows':>10} {'ours (s)':>10} {'naive (s)':>10} {'naive/ours':>11}")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for rows in sizes:
            reference = _rows(date(2026, 1, 1), rows)
            current = _rows(date(2026, 3, 1), rows)
            ours = _ours(current, reference, out)
            naive = _naive(current, reference, out)
            print(f"{rows:>10,} {ours:>10.2f} {naive:>10.2f} {naive / ours:>10.1f}x", flush=True)


if __name__ == "__main__":
    main()
