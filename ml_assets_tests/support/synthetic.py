"""Synthetic rows the tests and benches build without running the platform: generated
transaction histories, per-row features named like the feature store's, fresh online-store
rows, and prediction logs scored by a fixed toy model.

Every builder is deterministic in its arguments, so session fixtures and benches that call
it twice get the same rows."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl

from ml_assets.data.generator import GeneratorConfig, generate_transactions
from ml_assets.data.scenarios import Scenario
from ml_assets.monitoring.drift_methods import DriftColumns

# -- the feature-store tests: one day and the 31 days before it (enough for 30d windows) ------
FEATURE_DAY = date(2026, 2, 10)
FEATURE_HISTORY_DAYS = 31
FEATURE_CONFIG = GeneratorConfig(transactions_per_day=600)


def feature_history(
    day: date = FEATURE_DAY,
    history_days: int = FEATURE_HISTORY_DAYS,
    config: GeneratorConfig = FEATURE_CONFIG,
) -> pl.DataFrame:
    """Validated-shape transactions of `day` and the `history_days` days before it."""
    days = [day - timedelta(days=i) for i in range(history_days, -1, -1)]
    return pl.concat([generate_transactions(d, config) for d in days])


# -- the monitoring tests: a clean reference, clean days, then drift scenarios ---------------
ROWS_PER_DAY = 4_000
REFERENCE_START = date(2026, 2, 1)
REFERENCE_DAYS = 14  # two whole weeks, so every weekday is in the reference
CLEAN_DAYS = [date(2026, 2, 15) + timedelta(days=i) for i in range(7)]
INFLATION_DAYS = [date(2026, 2, 22) + timedelta(days=i) for i in range(5)]
NEW_CATEGORY_DAYS = [date(2026, 3, 5), date(2026, 3, 6)]
AMOUNT_COLUMNS = ("amount", "customer__amount_sum_1d", "merchant__amount_mean_1d")

DRIFT_CONFIG = GeneratorConfig(
    transactions_per_day=ROWS_PER_DAY,
    scenarios=(
        Scenario("amount_inflation", INFLATION_DAYS[0], INFLATION_DAYS[-1]),
        Scenario("new_merchant_category", NEW_CATEGORY_DAYS[0], NEW_CATEGORY_DAYS[-1]),
    ),
)
COLUMNS = DriftColumns(
    numeric=(
        "amount",
        "hour",
        "customer__amount_sum_1d",
        "customer__txn_count_1d",
        "merchant__amount_mean_1d",
    ),
    categorical=("merchant_category", "merchant_country", "customer_country", "channel", "device"),
)


def with_features(day_rows: pl.DataFrame) -> pl.DataFrame:
    """Per-row features of one day, named like the feature store's (`<entity>__<name>`):
    enough amount-derived and count features to exercise the drift code without the store."""
    return day_rows.with_columns(
        hour=pl.col("event_time").dt.hour().cast(pl.Float64),
        customer__amount_sum_1d=pl.col("amount").sum().over("customer_id"),
        customer__txn_count_1d=pl.len().over("customer_id").cast(pl.Int64),
        merchant__amount_mean_1d=pl.col("amount").mean().over("merchant_id"),
    )


def day_frame(day: date) -> pl.DataFrame:
    """One generated day of the drift calendar, with its per-row features."""
    return with_features(generate_transactions(day, DRIFT_CONFIG))


def reference_frames() -> list[pl.DataFrame]:
    """The clean reference window, one frame per day."""
    return [day_frame(REFERENCE_START + timedelta(days=i)) for i in range(REFERENCE_DAYS)]


def watched_days() -> dict[date, pl.DataFrame]:
    """Clean days after the reference window, then amount-inflation days."""
    return {day: day_frame(day) for day in CLEAN_DAYS + INFLATION_DAYS}


def toy_prediction_log(transactions: pl.DataFrame, seed: int) -> pl.DataFrame:
    """A prediction log in the serving contract's shape, scored by a fixed function of the
    amount and category (so amount inflation moves the served scores, as it would in life)."""
    rng = np.random.default_rng(seed)
    n = transactions.height
    risky = transactions["merchant_category"].is_in(["electronics", "gaming", "jewelry"])
    logit = (
        -6.0
        + 0.8 * np.log(transactions["amount"].to_numpy())
        + 1.0 * risky.to_numpy()
        + rng.normal(0, 0.3, n)
    )
    score = 1 / (1 + np.exp(-logit))
    decision = np.where(score > 0.5, "decline", np.where(score > 0.1, "review", "approve"))
    path = rng.choice(["model", "fallback", "cache", "review"], size=n, p=[0.9, 0.03, 0.05, 0.02])
    latency = np.where(path == "cache", 0.3, 1.0) * rng.lognormal(1.2, 0.4, n)
    return pl.DataFrame(
        {
            "request_id": [f"R{seed}-{i}" for i in range(n)],
            "received_at": transactions["event_time"],
            "transaction_id": transactions["transaction_id"],
            "amount": transactions["amount"],
            "score": score,
            "decision": decision,
            "path": path,
            "model_version": "1",
            "latency_ms": latency,
        }
    )
