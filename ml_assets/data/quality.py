"""Data-quality rules for a validated day, as plain functions returning pass/fail + evidence.

The asset attaches them as blocking checks; tests call them directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import polars as pl

from ml_assets.data.contracts import REQUIRED_TRANSACTION_COLUMNS
from ml_assets.data.pandera_schema import transaction_schema
from ml_assets.data.validation import failure_cases


@dataclass(frozen=True)
class Outcome:
    passed: bool
    description: str
    metadata: dict[str, object] = field(default_factory=dict)


def schema_outcome(valid: pl.DataFrame, day: date) -> Outcome:
    """The stored valid rows pass the schema again: the split let nothing through by mistake."""
    cases = failure_cases(valid, transaction_schema(day))
    return Outcome(
        passed=cases.height == 0,
        description="validated rows pass the schema"
        if cases.height == 0
        else f"{cases.height} failure(s) in validated rows, e.g. {cases.row(0, named=True)}",
        metadata={"failure_cases": cases.height},
    )


def conservation_outcome(raw_rows: int, valid_rows: int, quarantined_rows: int) -> Outcome:
    """Nothing is dropped silently: raw = valid + quarantined."""
    balance = raw_rows - valid_rows - quarantined_rows
    return Outcome(
        passed=balance == 0,
        description=f"raw {raw_rows} = valid {valid_rows} + quarantined {quarantined_rows}"
        if balance == 0
        else f"{balance} row(s) unaccounted for",
        metadata={
            "raw_rows": raw_rows,
            "valid_rows": valid_rows,
            "quarantined_rows": quarantined_rows,
        },
    )


def quarantine_share_outcome(valid_rows: int, quarantined_rows: int, max_share: float) -> Outcome:
    total = valid_rows + quarantined_rows
    share = quarantined_rows / total if total else 0.0
    return Outcome(
        passed=share <= max_share,
        description=f"quarantine share {share:.2%} (ceiling {max_share:.0%})",
        metadata={"quarantine_share": round(share, 6), "ceiling": max_share},
    )


def row_count_outcome(rows: int, trailing: dict[date, int], tolerance: float) -> Outcome:
    """Today's count within ±tolerance of the trailing days' mean; a first day has no bounds."""
    if not trailing:
        return Outcome(True, f"{rows} rows; no trailing days to compare with", {"rows": rows})
    mean = sum(trailing.values()) / len(trailing)
    low, high = mean * (1 - tolerance), mean * (1 + tolerance)
    return Outcome(
        passed=low <= rows <= high,
        description=f"{rows} rows vs trailing mean {mean:.0f} over {len(trailing)} day(s), "
        f"bounds [{low:.0f}, {high:.0f}]",
        metadata={
            "rows": rows,
            "trailing_mean": round(mean, 1),
            "low": round(low),
            "high": round(high),
        },
    )


def null_rates_outcome(valid: pl.DataFrame, max_share: float) -> Outcome:
    """Null share of every required column stays under the ceiling."""
    columns = [c for c in REQUIRED_TRANSACTION_COLUMNS if c in valid.columns]
    rates = valid.select(pl.col(columns).null_count()).row(0, named=True) if valid.height else {}
    shares = {c: (n / valid.height if valid.height else 0.0) for c, n in rates.items()}
    worst = max(shares, key=shares.get) if shares else None
    table = "| column | null share |\n|---|---|\n" + "\n".join(
        f"| {c} | {s:.3%} |" for c, s in shares.items()
    )
    return Outcome(
        passed=all(s <= max_share for s in shares.values()),
        description=f"worst null share {shares[worst]:.3%} in {worst}" if worst else "no rows",
        metadata={"null_rates": table, "ceiling": max_share},
    )


def combined_outcome(by_day: dict[date, Outcome]) -> Outcome:
    """One check result for a run over several days (a backfill range): it passes only if
    every day passes, and names the days that did not. A single day's outcome is unchanged."""
    if len(by_day) == 1:
        return next(iter(by_day.values()))
    failed = [day for day, outcome in by_day.items() if not outcome.passed]
    first, last = min(by_day), max(by_day)
    table = "| day | passed | result |\n|---|---|---|\n" + "\n".join(
        f"| {day} | {outcome.passed} | {outcome.description} |"
        for day, outcome in sorted(by_day.items())
    )
    return Outcome(
        passed=not failed,
        description=f"{len(failed)} of {len(by_day)} days failed ({first}..{last}): "
        + ", ".join(str(day) for day in failed)
        if failed
        else f"all {len(by_day)} days pass ({first}..{last})",
        metadata={"days": len(by_day), "failed_days": [str(d) for d in failed], "by_day": table},
    )
