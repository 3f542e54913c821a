"""Benchmark: our point-in-time join against pandas `merge_asof` and DuckDB's ASOF JOIN.

1M label rows against 30 days of customer feature rows (set BENCH_QUICK=1 or pass --quick for
a small run). Every contestant takes the latest feature row strictly before each row's time,
then nulls values older than their TTL; the script checks each result equals ours and prints
the timings side by side. Feast is reported only if it is already installed.

    python bench/pit_join.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import polars as pl
from polars.testing import assert_frame_equal

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ml_assets.features.pit import point_in_time_join  # noqa: E402
from ml_assets.features.registry import (  # noqa: E402
    CUSTOMER_FEATURES,
    FEATURE_TIME,
    FeatureSet,
)

START = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = 30
N_CUSTOMERS = 5_000


def _quick() -> bool:
    """--quick or BENCH_QUICK=1: 50k rows, so CI can run the comparison in seconds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50k rows instead of 1M")
    return parser.parse_args().quick or os.environ.get("BENCH_QUICK") == "1"


def make_features(feature_set: FeatureSet, rows_per_day: int, rng) -> pl.DataFrame:
    """Synthetic feature rows shaped like `compute_entity_features` output."""
    n = rows_per_day * DAYS
    seconds = np.sort(rng.integers(0, DAYS * 86_400, size=n))
    frame = pl.DataFrame(
        {
            feature_set.key: [f"C{i:05d}" for i in rng.integers(0, N_CUSTOMERS, size=n)],
            "feature_time": pl.Series(START.timestamp() * 1e6 + seconds * 1e6).cast(pl.Int64),
        }
    ).with_columns(pl.col("feature_time").cast(pl.Datetime("us", "UTC")))
    values = {
        spec.column: (
            pl.Series(rng.integers(1, 50, size=n)).cast(spec.polars_dtype)
            if spec.aggregation == "count"
            else pl.Series(rng.gamma(2.0, 40.0, size=n))
        )
        for spec in feature_set.features
    }
    return (
        frame.with_columns(**values)
        .unique([feature_set.key, "feature_time"])
        .sort("feature_time", feature_set.key)
    )


def make_rows(features: pl.DataFrame, key: str, n: int, rng) -> pl.DataFrame:
    """Label rows: half at exactly a feature row's time (a transaction's own event), half
    at random instants, in no particular order."""
    exact = features.select(key, pl.col("feature_time").alias("event_time")).sample(
        n // 2, with_replacement=True, seed=1
    )
    seconds = rng.integers(0, DAYS * 86_400, size=n - exact.height)
    random = pl.DataFrame(
        {
            key: [f"C{i:05d}" for i in rng.integers(0, N_CUSTOMERS, size=seconds.size)],
            "event_time": pl.Series(START.timestamp() * 1e6 + seconds * 1e6).cast(pl.Int64),
        }
    ).with_columns(pl.col("event_time").cast(pl.Datetime("us", "UTC")))
    rows = pl.concat([exact, random]).sample(fraction=1.0, shuffle=True, seed=2)
    return rows.with_columns(label_id=pl.int_range(pl.len()))


def pandas_join(rows: pd.DataFrame, features: pd.DataFrame, feature_set: FeatureSet):
    """The usual pandas way: sort, merge_asof by key backward without exact matches, mask TTL,
    restore the original order."""
    left = rows.reset_index(drop=True).assign(_order=np.arange(len(rows)))
    left = left.sort_values("event_time", kind="stable")
    right = features.rename(columns={"feature_time": feature_set.feature_time_column})
    right = right.sort_values(feature_set.feature_time_column, kind="stable")
    merged = pd.merge_asof(
        left,
        right,
        left_on="event_time",
        right_on=feature_set.feature_time_column,
        by=feature_set.key,
        direction="backward",
        allow_exact_matches=False,
    )
    age = merged["event_time"] - merged[feature_set.feature_time_column]
    for spec in feature_set.features:
        merged.loc[age > pd.Timedelta(spec.ttl), spec.column] = np.nan
    return merged.sort_values("_order").drop(columns="_order").reset_index(drop=True)


def _quoted(name: str) -> str:
    """A SQL identifier: feature columns carry `__` and could carry characters SQL reserves."""
    return '"' + name.replace('"', '""') + '"'


def _ttl_masked(feature_set: FeatureSet, time_column: str) -> str:
    """One SELECT item per feature: null when its age exceeds its TTL (`registry.is_stale`,
    age > ttl, in whole microseconds as the timestamps are)."""
    as_of = feature_set.feature_time_column
    age = f"epoch_us(l.{_quoted(time_column)}) - epoch_us(r.{_quoted(as_of)})"
    return ", ".join(
        f"CASE WHEN {age} > {spec.ttl // timedelta(microseconds=1)} THEN NULL "
        f"ELSE r.{_quoted(spec.column)} END AS {_quoted(spec.column)}"
        for spec in feature_set.features
    )


def duckdb_join(
    rows: pl.DataFrame, features: pl.DataFrame, feature_set: FeatureSet, time_column="event_time"
) -> pl.DataFrame:
    """DuckDB's ASOF LEFT JOIN with `>` (strictly before), TTL masked in SQL, in row order. Only
    the key, time and a row number go to DuckDB; the added columns come back in row order and
    are put beside `rows` untouched."""
    key, as_of = feature_set.key, feature_set.feature_time_column
    left = rows.select(key, time_column).with_row_index("__row")
    right = features.select(
        key, pl.col(FEATURE_TIME).cast(rows.schema[time_column]).alias(as_of), *feature_set.columns
    )
    sql = f"""
        SELECT r.{_quoted(as_of)}, {_ttl_masked(feature_set, time_column)}
        FROM left_rows l ASOF LEFT JOIN right_rows r
          ON l.{_quoted(key)} = r.{_quoted(key)} AND l.{_quoted(time_column)} > r.{_quoted(as_of)}
        ORDER BY l.__row
    """
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        con.register("left_rows", left)
        con.register("right_rows", right)
        added = con.sql(sql).pl()
    return pl.concat([rows, added], how="horizontal")


def _best_of(repeats: int, run) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> None:
    quick = _quick()
    n_rows, per_day = (50_000, 2_000) if quick else (1_000_000, 20_000)
    rng = np.random.default_rng(7)
    feature_set = CUSTOMER_FEATURES
    features = make_features(feature_set, per_day, rng)
    rows = make_rows(features, feature_set.key, n_rows, rng)
    print(f"{rows.height:,} rows against {features.height:,} feature rows ({DAYS} days)")

    repeats = 3
    ours_s, ours = _best_of(repeats, lambda: point_in_time_join(rows, features, feature_set))
    rows_pd, features_pd = rows.to_pandas(), features.to_pandas()
    pandas_s, theirs = _best_of(repeats, lambda: pandas_join(rows_pd, features_pd, feature_set))
    duck_s, duck = _best_of(repeats, lambda: duckdb_join(rows, features, feature_set))

    expected = pl.from_pandas(theirs).select(ours.columns)
    assert_frame_equal(ours, expected, check_dtypes=False)
    assert_frame_equal(ours, duck)  # same rows in the same order, same dtypes
    by = [feature_set.key, "event_time", "label_id"]
    assert_frame_equal(ours.sort(by), duck.sort(by))
    print("results identical: ours = pandas = duckdb")
    print(f"{'contestant':<26}{'best of ' + str(repeats):>12}{'vs ours':>10}")
    for name, seconds in (
        ("ours (polars join_asof)", ours_s),
        ("pandas merge_asof", pandas_s),
        ("duckdb ASOF JOIN", duck_s),
    ):
        print(f"{name:<26}{seconds:>10.3f} s{ours_s / seconds:>9.2f}x")
    print("(vs ours > 1 means faster than ours)")
    try:
        import feast  # noqa: F401
    except ImportError:
        print("feast: not installed, skipped (pip install feast to compare its offline store)")
    else:
        print("feast: installed, but a Feast repo setup is not part of this benchmark; skipped")


if __name__ == "__main__":
    main()
