"""S3 round trips per partition: the data + feature assets materialized through a real
`dg.materialize` with the warehouse on a local S3 (moto's server mode on loopback), once a
run per day and once as one range run (a backfill), with every request counted by the
server from its log. Prints requests per partition written, by kind (PUT, GET, LIST, ...).

    python bench/s3_round_trips.py [--days 5] [--rows-per-day 2000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import date
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ml_assets_tests.support.object_store import (  # noqa: E402
    forget_s3_clients,
    per_partition,
    round_trips,
    running_moto,
)
from ml_assets_tests.support.platforms import platform_for  # noqa: E402

START = date(2026, 3, 1)


def measure(days: int, rows: int, one_run: bool) -> str:
    with running_moto() as s3, pytest.MonkeyPatch.context() as env:
        for name, value in s3.env.items():
            env.setenv(name, value)
        env.setenv("ML_ASSETS_WAREHOUSE_URL", s3.url("warehouse"))
        forget_s3_clients()
        mark = s3.mark()
        with (
            tempfile.TemporaryDirectory() as home,
            platform_for(Path(home), start=START, days=days, rows_per_day=rows, one_run=one_run),
        ):
            written, kinds = round_trips(s3.requests(mark), "warehouse/")
        forget_s3_clients()
    return per_partition(written, kinds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument("--rows-per-day", type=int, default=2_000)
    args = parser.parse_args()
    for label, one_run in (("a run per day", False), ("one range run", True)):
        figure = measure(args.days, args.rows_per_day, one_run)
        print(f"data + features, {args.days} days, {label}: {figure}", flush=True)


if __name__ == "__main__":
    main()
