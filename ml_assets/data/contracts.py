"""Column contracts of the landing zone: which columns a file must carry and their types.

A user's own data enters the platform by matching these contracts. Columns beyond them
are kept and recorded (schema evolution); a missing required column fails ingestion.
"""

from __future__ import annotations

import polars as pl

TIMESTAMP = pl.Datetime("us", "UTC")

REQUIRED_TRANSACTION_COLUMNS: dict[str, pl.DataType] = {
    "transaction_id": pl.String(),
    "event_time": TIMESTAMP,
    "customer_id": pl.String(),
    "merchant_id": pl.String(),
    "merchant_category": pl.String(),
    "merchant_country": pl.String(),
    "customer_country": pl.String(),
    "amount": pl.Float64(),
    "channel": pl.String(),
    "device": pl.String(),
}
# Known optional columns: typed when present, never required. The true fraud probability
# exists only for generated data and is used for evaluation, never as a model input.
OPTIONAL_TRANSACTION_COLUMNS: dict[str, pl.DataType] = {
    "true_fraud_probability": pl.Float64(),
}
TRANSACTION_COLUMNS = [*REQUIRED_TRANSACTION_COLUMNS, *OPTIONAL_TRANSACTION_COLUMNS]

LABEL_SCHEMA: dict[str, pl.DataType] = {
    "transaction_id": pl.String(),
    "event_time": TIMESTAMP,
    "customer_id": pl.String(),
    "merchant_id": pl.String(),
    "label_time": TIMESTAMP,
    "is_fraud": pl.Int8(),
}
LABEL_COLUMNS = list(LABEL_SCHEMA)

CHANNELS = ("card_present", "contactless", "online")
DEVICES = ("terminal", "mobile", "desktop")
# Written by ingestion for a row whose value could not be read as its contract's type.
INGEST_ERROR = "_ingest_error"
