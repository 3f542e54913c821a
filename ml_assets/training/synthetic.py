"""A small labelled training frame straight from the generator, for tests and benchmarks.

The rolling columns here are stand-ins with the feature store's naming
(`customer__amount_mean_30d`, ...) so the models can be exercised without the warehouse;
the platform's real training set takes its features from `ml_assets.features`.
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from ml_assets.data.generator import GeneratorConfig, generate_labels, generate_transactions
from ml_assets.training.model_inputs import LABEL_COLUMN, TIME_COLUMN


def _stand_in_features(transactions: pl.DataFrame) -> pl.DataFrame:
    """Point-in-time rolling features (strictly before each event) per customer/merchant."""
    # Rolling counts are rolling sums of an all-ones column.
    frame = transactions.sort(TIME_COLUMN).with_columns(_one=pl.lit(1.0))
    return frame.with_columns(
        customer__amount_mean_30d=pl.col("amount")
        .rolling_mean_by(TIME_COLUMN, window_size="30d", closed="left")
        .over("customer_id"),
        customer__txn_count_1h=pl.col("_one")
        .rolling_sum_by(TIME_COLUMN, window_size="1h", closed="left")
        .over("customer_id"),
        customer__txn_count_24h=pl.col("_one")
        .rolling_sum_by(TIME_COLUMN, window_size="24h", closed="left")
        .over("customer_id"),
        merchant__txn_count_24h=pl.col("_one")
        .rolling_sum_by(TIME_COLUMN, window_size="24h", closed="left")
        .over("merchant_id"),
    ).drop("_one")


def labelled_frame(
    start: date,
    days: int,
    transactions_per_day: int = 8_000,
    history_days: int = 7,
    seed: int = 7,
) -> pl.DataFrame:
    """Labelled transactions of `days` days from `start`, with stand-in features computed
    over `history_days` earlier days too; unlabelled rows are dropped."""
    config = GeneratorConfig(seed=seed, transactions_per_day=transactions_per_day)
    first = start - timedelta(days=history_days)
    transactions = pl.concat(
        [
            generate_transactions(first + timedelta(days=i), config)
            for i in range(history_days + days)
        ]
    )
    featured = _stand_in_features(transactions).filter(pl.col(TIME_COLUMN).dt.date() >= start)
    last_label_day = start + timedelta(days=days - 1 + config.label_delay_max_days)
    labels = pl.concat(
        [
            generate_labels(start + timedelta(days=i), config)
            for i in range((last_label_day - start).days + 1)
        ]
    ).select("transaction_id", LABEL_COLUMN)
    return featured.join(labels, on="transaction_id", how="inner").sort(TIME_COLUMN)
