"""Ingest throughput: landing file -> validated partition, ours (polars + pandera's polars
backend) against the common alternative (pandas + pandera's pandas backend), same rules.

    python bench/ingest.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pandera.pandas as ppa
import polars as pl

from ml_assets.data.contracts import CHANNELS, DEVICES
from ml_assets.data.generator import GeneratorConfig, generate_transactions
from ml_assets.data.landing import read_transactions, write_landing_file
from ml_assets.data.pandera_schema import MAX_AMOUNT
from ml_assets.data.scenarios import Scenario
from ml_assets.data.validation import split_valid_quarantine
from ml_assets.warehouse import write_partition

DAY = date(2026, 3, 4)


def pandas_schema(day: date) -> ppa.DataFrameSchema:
    start = pd.Timestamp(datetime(day.year, day.month, day.day, tzinfo=UTC))
    end = start + timedelta(days=1) - timedelta(microseconds=1)
    text = {"dtype": str, "nullable": False}
    country = ppa.Check.str_matches(r"^[A-Z]{2}$")
    return ppa.DataFrameSchema(
        {
            "transaction_id": ppa.Column(unique=True, **text),
            "event_time": ppa.Column("datetime64[us, UTC]", ppa.Check.in_range(start, end)),
            "customer_id": ppa.Column(**text),
            "merchant_id": ppa.Column(**text),
            "merchant_category": ppa.Column(**text),
            "merchant_country": ppa.Column(checks=country, **text),
            "customer_country": ppa.Column(checks=country, **text),
            "amount": ppa.Column(float, [ppa.Check.gt(0), ppa.Check.le(MAX_AMOUNT)]),
            "channel": ppa.Column(checks=ppa.Check.isin(CHANNELS), **text),
            "device": ppa.Column(checks=ppa.Check.isin(DEVICES), **text),
        },
        strict=False,
    )


def pandas_ingest(landing: Path, out: Path) -> int:
    frame = pd.read_parquet(landing / f"date={DAY}" / "transactions.parquet")
    try:
        pandas_schema(DAY).validate(frame, lazy=True)
        bad = pd.Index([])
    except ppa.errors.SchemaErrors as errors:
        bad = pd.Index(errors.failure_cases["index"].dropna().unique())
    valid = frame.drop(index=bad)
    valid.to_parquet(out / "valid.parquet")
    frame.loc[bad].to_parquet(out / "quarantine.parquet")
    return len(valid)


def our_ingest(landing: Path, out: Path) -> int:
    raw = read_transactions(landing, DAY).frame
    split = split_valid_quarantine(raw, DAY)
    write_partition(out, "validated", DAY, split.valid)
    write_partition(out, "quarantined", DAY, split.quarantined)
    return split.valid.height


def timed(fn, *args) -> tuple[float, int]:
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    config = GeneratorConfig(
        transactions_per_day=args.rows, scenarios=(Scenario("broken_upstream", DAY, DAY),)
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        frame = generate_transactions(DAY, config)
        write_landing_file(root / "landing", DAY, "transactions", frame)
        broken = frame["amount"].null_count()
        print(f"{frame.height:,} rows, {broken:,} of them broken (broken_upstream)")
        ours, peer = [], []
        for i in range(args.repeat):
            (root / f"pd{i}").mkdir()
            t_ours, kept_ours = timed(our_ingest, root / "landing", root / f"ours{i}")
            t_peer, kept_peer = timed(pandas_ingest, root / "landing", root / f"pd{i}")
            assert kept_ours == kept_peer, (
                f"valid rows differ: ours {kept_ours}, pandas {kept_peer}"
            )
            ours.append(t_ours)
            peer.append(t_peer)
        best_ours, best_peer = min(ours), min(peer)
        print(f"{'':28}{'seconds':>10}{'rows/s':>14}")
        print(f"{'ours (polars + pandera)':28}{best_ours:>10.2f}{frame.height / best_ours:>14,.0f}")
        print(
            f"{'pandas + pandera (pandas)':28}{best_peer:>10.2f}{frame.height / best_peer:>14,.0f}"
        )
        print(
            f"ratio: ours is {best_peer / best_ours:.1f}x the throughput of pandas + pandera "
            f"(best of {args.repeat}; same rules, same {kept_ours:,} valid rows)"
        )


if __name__ == "__main__":
    pl.Config.set_tbl_rows(5)
    main()
