"""Split a day's raw rows into valid and quarantined, losing none.

pandera runs lazily so every failing row and every failed check is reported at once; each
quarantined row carries the checks and columns it failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import polars as pl

from ml_assets.data.contracts import INGEST_ERROR
from ml_assets.data.pandera_schema import transaction_schema

if TYPE_CHECKING:
    import pandera.polars as pa

ROW_INDEX = "_row"
REASON = "quarantine_reason"
FAILED_COLUMNS = "failed_columns"


class SchemaMismatchError(ValueError):
    """The frame as a whole does not fit the schema (a column of the wrong type)."""


@dataclass(frozen=True)
class ValidationSplit:
    valid: pl.DataFrame
    quarantined: pl.DataFrame

    @property
    def quarantine_share(self) -> float:
        total = self.valid.height + self.quarantined.height
        return self.quarantined.height / total if total else 0.0


def failure_cases(frame: pl.DataFrame, schema: pa.DataFrameSchema) -> pl.DataFrame:
    """pandera's failure cases of `frame` (empty when it passes). The frame is collected, so
    the data checks run, not only the schema checks."""
    import pandera.polars as pa

    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        return errors.failure_cases
    return pl.DataFrame(
        schema={"failure_case": pl.String, "schema_context": pl.String, "column": pl.String,
                "check": pl.String, "check_number": pl.Int32, "index": pl.Int32}
    )  # fmt: skip


def split_valid_quarantine(raw: pl.DataFrame, day: date) -> ValidationSplit:
    """Valid rows (without the ingest-error column) and quarantined rows with their reasons."""
    if INGEST_ERROR not in raw.columns:
        raw = raw.with_columns(pl.lit(None, dtype=pl.String).alias(INGEST_ERROR))
    cases = failure_cases(raw, transaction_schema(day))
    frame_level = cases.filter(pl.col("index").is_null())
    if frame_level.height:
        problems = "; ".join(
            f"{row['column']}: {row['check']} ({row['failure_case']})"
            for row in frame_level.iter_rows(named=True)
        )
        raise SchemaMismatchError(
            f"transactions of {day} do not fit the schema as a whole: {problems}. "
            "Check the landing files' column types against ml_assets/data/contracts.py."
        )
    reasons = (
        cases.group_by("index")
        .agg(
            pl.format("{}: {}", "column", "check")
            .unique(maintain_order=True)
            .str.join("; ")
            .alias(REASON),
            pl.col("column").unique(maintain_order=True).str.join(",").alias(FAILED_COLUMNS),
        )
        .rename({"index": ROW_INDEX})
        .with_columns(pl.col(ROW_INDEX).cast(pl.UInt32))
    )
    indexed = raw.with_row_index(ROW_INDEX)
    quarantined = (
        indexed.join(reasons, on=ROW_INDEX, how="inner")
        .with_columns(
            pl.when(pl.col(INGEST_ERROR).is_not_null())
            .then(pl.col(REASON) + " [" + pl.col(INGEST_ERROR) + "]")
            .otherwise(pl.col(REASON))
            .alias(REASON)
        )
        .sort(ROW_INDEX)
        .drop(ROW_INDEX)
    )
    valid = (
        indexed.join(reasons, on=ROW_INDEX, how="anti")
        .sort(ROW_INDEX)
        .drop(ROW_INDEX, INGEST_ERROR)
    )
    return ValidationSplit(valid=valid, quarantined=quarantined)
