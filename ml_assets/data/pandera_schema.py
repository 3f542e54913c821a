"""The pandera (polars backend) schema that decides which landed rows are valid.

Built per day so that "the event happened on the partition's day" is a check like any other.
Extra columns pass (schema evolution); the contract columns are checked row by row.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import polars as pl

from ml_assets.data.contracts import CHANNELS, DEVICES, INGEST_ERROR, TIMESTAMP

if TYPE_CHECKING:
    import pandera.polars as pa

MAX_AMOUNT = 1_000_000.0


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1) - timedelta(microseconds=1)


def transaction_schema(day: date) -> pa.DataFrameSchema:
    """The rules one day's transactions must pass to leave quarantine."""
    import pandera.polars as pa

    start, end = _day_bounds(day)
    text = {"dtype": pl.String, "nullable": False}
    country = pa.Check.str_matches(r"^[A-Z]{2}$", error="country must be an ISO-3166 alpha-2 code")
    return pa.DataFrameSchema(
        {
            "transaction_id": pa.Column(unique=True, **text),
            "event_time": pa.Column(
                TIMESTAMP,
                pa.Check.in_range(start, end, error=f"event_time must fall on {day}"),
                nullable=False,
            ),
            "customer_id": pa.Column(**text),
            "merchant_id": pa.Column(**text),
            "merchant_category": pa.Column(**text),
            "merchant_country": pa.Column(checks=country, **text),
            "customer_country": pa.Column(checks=country, **text),
            "amount": pa.Column(
                pl.Float64,
                [pa.Check.gt(0), pa.Check.le(MAX_AMOUNT)],
                nullable=False,
            ),
            "channel": pa.Column(checks=pa.Check.isin(CHANNELS), **text),
            "device": pa.Column(checks=pa.Check.isin(DEVICES), **text),
            "true_fraud_probability": pa.Column(
                pl.Float64, pa.Check.in_range(0.0, 1.0), nullable=True, required=False
            ),
            INGEST_ERROR: pa.Column(
                pl.String,
                pa.Check(
                    lambda data: data.lazyframe.select(pl.col(data.key).is_null()),
                    error="value could not be read as its contract type",
                ),
                nullable=True,
                required=False,
            ),
        },
        strict=False,
        name="validated_transactions",
    )
