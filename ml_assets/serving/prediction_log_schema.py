"""The prediction log's columns: the contract between the endpoint that writes it and the
monitoring assets that read it. Daily-partitioned Parquet under
`<ML_ASSETS_HOME>/prediction_log/date=YYYY-MM-DD/*.parquet` (many files a day, one per flush)."""

from __future__ import annotations

import polars as pl

TIMESTAMP = pl.Datetime("us", "UTC")

PREDICTION_LOG_SCHEMA: dict[str, pl.DataType] = {
    "request_id": pl.String(),
    "received_at": TIMESTAMP,
    "transaction_id": pl.String(),
    "customer_id": pl.String(),
    "merchant_id": pl.String(),
    "amount": pl.Float64(),
    "score": pl.Float64(),
    "decision": pl.String(),  # approve | review | decline
    "path": pl.String(),  # model | fallback | cache | review
    "model_name": pl.String(),
    "model_version": pl.String(),
    "latency_ms": pl.Float64(),
    "shadow_score": pl.Float64(),  # null when no challenger scored the request
    "shadow_version": pl.String(),
}
PREDICTION_LOG_DIR = "prediction_log"
