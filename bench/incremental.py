"""Incremental cost: seconds to materialize the features of one new day after 1, 7, 30 and
90 days of history, through a real `dg.materialize`. Beside it, the same computation reading
the whole history (what an upstream mapping without a window would do). The windowed cost
should stop growing once the longest window (30 days) is full.

    python bench/incremental.py [--rows-per-day 20000] [--quick]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
from tqdm import tqdm

from ml_assets.data.generator import GeneratorConfig, generate_transactions
from ml_assets.data.validation import split_valid_quarantine
from ml_assets.features.assets import CUSTOMER_FEATURES_KEY, MERCHANT_FEATURES_KEY
from ml_assets.features.compute import compute_entity_features
from ml_assets.features.registry import CUSTOMER_FEATURES, MERCHANT_FEATURES
from ml_assets.settings import Settings
from ml_assets.warehouse import partition_path, write_partition

START = date(2026, 1, 1)


def land_validated(settings: Settings, days: int, rows: int) -> None:
    config = GeneratorConfig(transactions_per_day=rows)
    for offset in tqdm(range(days), desc="writing validated history", unit="day"):
        day = START + timedelta(days=offset)
        valid = split_valid_quarantine(generate_transactions(day, config), day).valid
        write_partition(settings.warehouse_dir, "validated_transactions", day, valid)


def windowed_seconds(settings: Settings, day: date, instance: dg.DagsterInstance) -> float:
    from ml_assets.definitions import build_assets, build_resources

    start = time.perf_counter()
    result = dg.materialize(
        build_assets(settings), selection=[CUSTOMER_FEATURES_KEY, MERCHANT_FEATURES_KEY],
        partition_key=day.isoformat(), resources=build_resources(settings), instance=instance,
    )  # fmt: skip
    assert result.success
    return time.perf_counter() - start


def compute_seconds(settings: Settings, day: date, days_read: int) -> float:
    """Read `days_read` days up to `day` and compute its features, without Dagster."""
    start = time.perf_counter()
    first = max(0, (day - START).days + 1 - days_read)
    paths = [
        partition_path(settings.warehouse_dir, "validated_transactions", START + timedelta(days=i))
        for i in range(first, (day - START).days + 1)
    ]
    events = pl.concat([pl.read_parquet(p) for p in paths])
    for feature_set in (CUSTOMER_FEATURES, MERCHANT_FEATURES):
        compute_entity_features(events, feature_set, day)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows-per-day", type=int, default=20_000)
    parser.add_argument("--quick", action="store_true", help="5k rows a day")
    args = parser.parse_args()
    rows = 5_000 if args.quick else args.rows_per_day
    histories = [1, 7, 30, 90]
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["ML_ASSETS_HOME"] = str(Path(tmp) / "home")
        settings = Settings.from_env()
        land_validated(settings, max(histories) + 1, rows)
        with dg.instance_for_test(temp_dir=tmp) as instance:
            windowed_seconds(settings, START + timedelta(days=1), instance)  # warm-up
            print(f"\n{rows:,} transactions a day; one new day's customer + merchant features")
            print(
                f"{'history':>8}{'materialize s':>15}{'ratio to 1d':>13}"
                f"{'compute s (window)':>20}{'compute s (all history)':>25}{'all/window':>12}"
            )
            base = None
            for history in histories:
                day = START + timedelta(days=history)
                run = min(windowed_seconds(settings, day, instance) for _ in range(3))
                window = min(compute_seconds(settings, day, 31) for _ in range(3))
                whole = min(compute_seconds(settings, day, history + 1) for _ in range(3))
                base = base or run
                print(
                    f"{history:>7}d{run:>15.2f}{run / base:>13.2f}"
                    f"{window:>20.2f}{whole:>25.2f}{whole / window:>12.2f}"
                )


if __name__ == "__main__":
    main()
