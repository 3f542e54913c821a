"""Reviewers' decisions on the human-review queue: their store's contract, and their labels.

The endpoint records each decision (`POST /review/{transaction_id}`) in the review store, a
SQLite file in the data dir's serving folder, beside the queue it decides. The endpoint
writes that table and the `review_labels` asset reads it, so its contract (file, table,
columns, decision values) lives here, in the lower layer both may import.

`fraud` and `legitimate` become labels (source `review`, see `ml_assets.data.labels`).
`escalate` hands the item to a second reviewer: it records who looked, and is no label.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import polars as pl

from ml_assets.data.contracts import TIMESTAMP
from ml_assets.data.labels import REVIEW, SOURCE, SOURCED_LABEL_SCHEMA

FILENAME = "review_queue.sqlite"
DECISIONS_TABLE = "review_decisions"
FRAUD, LEGITIMATE, ESCALATE = "fraud", "legitimate", "escalate"
DECISIONS = (FRAUD, LEGITIMATE, ESCALATE)
IS_FRAUD = {FRAUD: 1, LEGITIMATE: 0}  # the decisions that are labels

# One row per decision, never updated: an escalation and the final decision are two rows.
# Times are ISO-8601 in UTC with microseconds, so text order is time order.
DECISIONS_DDL = f"""
CREATE TABLE IF NOT EXISTS {DECISIONS_TABLE} (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    transaction_id TEXT NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ({", ".join(f"'{d}'" for d in DECISIONS)})),
    reviewer_id TEXT NOT NULL,
    note TEXT,
    decided_at TEXT NOT NULL,
    event_time TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    merchant_id TEXT NOT NULL
)
"""
DECISION_SCHEMA: dict[str, pl.DataType] = {
    "transaction_id": pl.String(),
    "decision": pl.String(),
    "reviewer_id": pl.String(),
    "note": pl.String(),
    "decided_at": TIMESTAMP,
    "event_time": TIMESTAMP,
    "customer_id": pl.String(),
    "merchant_id": pl.String(),
}


def review_store(serving_dir: Path) -> Path:
    """The review store of a data dir's serving folder (`Settings.serving_dir`)."""
    return serving_dir / FILENAME


def utc_text(moment: datetime) -> str:
    """A time as the store keeps it: UTC, microseconds, so text order is time order."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def read_decisions(store: Path, day: date) -> pl.DataFrame:
    """The decisions recorded on `day` (UTC), oldest first; none when the store or its
    table does not exist yet (no reviewer has decided anything)."""
    empty = pl.DataFrame(schema=DECISION_SCHEMA)
    if not store.exists():
        return empty
    start = datetime.combine(day, time(), UTC)
    with closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=30)) as db:
        found = db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (DECISIONS_TABLE,)
        ).fetchone()
        if not found:
            return empty
        rows = db.execute(
            f"SELECT {', '.join(DECISION_SCHEMA)} FROM {DECISIONS_TABLE} "
            "WHERE decided_at >= ? AND decided_at < ? ORDER BY decided_at, id",
            (utc_text(start), utc_text(start + timedelta(days=1))),
        ).fetchall()
    text = pl.DataFrame(rows, schema=dict.fromkeys(DECISION_SCHEMA, pl.String), orient="row")
    return text.with_columns(
        pl.col(c).str.to_datetime(time_unit="us", time_zone="UTC")
        for c in ("decided_at", "event_time")
    )


def labels_from_decisions(decisions: pl.DataFrame) -> pl.DataFrame:
    """The labels (source `review`, labelled at the decision time) of `fraud` and
    `legitimate` decisions; escalations are left out. Columns of `SOURCED_LABEL_SCHEMA`,
    plus `reviewer_id` for the audit trail."""
    final = decisions.filter(pl.col("decision").is_in(list(IS_FRAUD)))
    return final.select(
        "transaction_id",
        "event_time",
        "customer_id",
        "merchant_id",
        pl.col("decided_at").alias("label_time"),
        pl.col("decision").replace_strict(IS_FRAUD, return_dtype=pl.Int8).alias("is_fraud"),
        pl.lit(REVIEW, dtype=pl.String).alias(SOURCE),
        "reviewer_id",
    ).cast(SOURCED_LABEL_SCHEMA)  # type: ignore[arg-type]
