"""Named drift scenarios that can be switched on for a date range.

They change the generated stream the way real upstream changes do, so drift reports and the
quarantine have something to find: prices rise, a new merchant category appears, or an
upstream bug nulls and mis-codes columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

SCENARIO_NAMES = ("amount_inflation", "new_merchant_category", "broken_upstream")
INFLATION_FACTOR = 1.6
NEW_CATEGORY = "crypto_exchange"
NEW_CATEGORY_SHARE = 0.15
NEW_CATEGORY_LOGIT_SHIFT = 1.8
BROKEN_AMOUNT_NULL_SHARE = 0.12
BROKEN_CHANNEL_SHARE = 0.04


@dataclass(frozen=True)
class Scenario:
    """A scenario switched on from `start` to `end`, both inclusive."""

    name: str
    start: date
    end: date

    def __post_init__(self) -> None:
        if self.name not in SCENARIO_NAMES:
            raise ValueError(
                f"unknown scenario {self.name!r}: choose one of {', '.join(SCENARIO_NAMES)}"
            )
        if self.end < self.start:
            raise ValueError(f"scenario {self.name}: end {self.end} is before start {self.start}")

    def covers(self, day: date) -> bool:
        return self.start <= day <= self.end

    @classmethod
    def parse(cls, text: str) -> Scenario:
        """Read `name@YYYY-MM-DD..YYYY-MM-DD` (or `name@YYYY-MM-DD` for one day)."""
        name, _, span = text.partition("@")
        if not span:
            raise ValueError(
                f"scenario {text!r}: expected name@START..END, e.g. {name}@2026-03-01..2026-03-05"
            )
        start, _, end = span.partition("..")
        return cls(name, date.fromisoformat(start), date.fromisoformat(end or start))


def _inflate_amounts(frame: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    # Prices rise; fraud behaviour does not, so a model trained before sees inflated risk.
    return frame.with_columns((pl.col("amount") * INFLATION_FACTOR).round(2))


def _add_new_category(frame: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    n = frame.height
    moved = rng.random(n) < NEW_CATEGORY_SHARE
    new_merchants = np.array([f"M9{i:03d}" for i in rng.integers(0, 40, size=n)])
    logit = np.log(frame["true_fraud_probability"].to_numpy()) - np.log1p(
        -frame["true_fraud_probability"].to_numpy()
    )
    shifted = 1.0 / (1.0 + np.exp(-(logit + NEW_CATEGORY_LOGIT_SHIFT)))
    probability = np.where(moved, shifted, frame["true_fraud_probability"].to_numpy())
    redrawn = (rng.random(n) < probability).astype(np.int8)
    return frame.with_columns(
        merchant_id=pl.when(pl.Series(moved))
        .then(pl.Series(new_merchants))
        .otherwise("merchant_id"),
        merchant_category=pl.when(pl.Series(moved))
        .then(pl.lit(NEW_CATEGORY))
        .otherwise("merchant_category"),
        channel=pl.when(pl.Series(moved)).then(pl.lit("online")).otherwise("channel"),
        true_fraud_probability=pl.Series(probability),
        _is_fraud=pl.when(pl.Series(moved)).then(pl.Series(redrawn)).otherwise("_is_fraud"),
    )


def _break_upstream(frame: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    n = frame.height
    null_amount = rng.random(n) < BROKEN_AMOUNT_NULL_SHARE
    bad_channel = rng.random(n) < BROKEN_CHANNEL_SHARE
    return frame.with_columns(
        amount=pl.when(pl.Series(null_amount)).then(None).otherwise("amount"),
        channel=pl.when(pl.Series(bad_channel))
        .then(pl.col("channel").str.to_uppercase() + "_V2")
        .otherwise("channel"),
    )


_APPLY = {
    "amount_inflation": _inflate_amounts,
    "new_merchant_category": _add_new_category,
    "broken_upstream": _break_upstream,
}


def apply_scenarios(
    frame: pl.DataFrame, day: date, scenarios: tuple[Scenario, ...], seed: int
) -> pl.DataFrame:
    """Apply every scenario that covers `day`, each with its own random stream so a scenario
    never changes the rows of a clean day or of another scenario."""
    for scenario in scenarios:
        if scenario.covers(day):
            index = SCENARIO_NAMES.index(scenario.name) + 1
            rng = np.random.default_rng([seed, day.toordinal(), index])
            frame = _APPLY[scenario.name](frame, rng)
    return frame
