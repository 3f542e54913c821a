"""The prediction log: every answer the endpoint gave, appended off the request path.

Its columns (`PREDICTION_LOG_SCHEMA`) are the contract between the endpoint that writes it
and the monitoring assets that read it (`read_prediction_log`).

Requests only append a dict to an in-memory buffer; a background thread writes the buffer
as one Parquet file per flush and day under `prediction_log/date=YYYY-MM-DD/` (temporary
name, then rename, so monitoring never reads half a file). File names carry the process id
and a random part, so replicas sharing the data dir never collide. `close()` flushes.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from ml_assets.atomic_files import write_parquet_atomically
from ml_assets.data.contracts import TIMESTAMP

log = logging.getLogger(__name__)
PREDICTION_LOG_DIR = "prediction_log"
PREDICTION_LOG_SCHEMA: dict[str, pl.DataType] = {
    "request_id": pl.String(),
    "received_at": TIMESTAMP,
    "event_time": TIMESTAMP,  # the instant the features were read as of
    "transaction_id": pl.String(),
    "customer_id": pl.String(),
    "merchant_id": pl.String(),
    "amount": pl.Float64(),
    "score": pl.Float64(),
    "decision": pl.String(),  # approve | review | decline
    "path": pl.String(),  # model | fallback | cache | review
    "reason": pl.String(),  # why not the model: timeout | breaker_open | model_error | ...
    "model_name": pl.String(),
    "model_version": pl.String(),
    "arm": pl.String(),  # the rollout stage that answered: champion | canary (see rollout_stages)
    "latency_ms": pl.Float64(),  # the whole request, as its client waited
    # Model call time per row of its batch: what the answering model and the shadow cost,
    # comparable with each other whatever the batch size (null when no model answered).
    "model_latency_ms": pl.Float64(),
    "shadow_score": pl.Float64(),  # null when no shadow model scored the request
    "shadow_version": pl.String(),
    "shadow_latency_ms": pl.Float64(),
    # What the answer used, to debug a skew row by row: JSON objects of the feature values
    # (column -> value, null when missing) and of each entity's feature status.
    "features": pl.String(),
    "feature_status": pl.String(),
}
COLUMNS = tuple(PREDICTION_LOG_SCHEMA)


def prediction_log_root(home: Path) -> Path:
    return Path(home) / PREDICTION_LOG_DIR


def write_log_file(root: Path, day: str, records: list[dict[str, Any]]) -> Path:
    """One Parquet file of `records` (all received on `day`), written atomically."""
    stamp = datetime.now(UTC).strftime("%H%M%S%f")
    name = f"{stamp}-{os.getpid()}-{uuid.uuid4().hex[:8]}.parquet"
    frame = pl.DataFrame(
        {c: [_cell(c, r.get(c)) for r in records] for c in COLUMNS}, schema=PREDICTION_LOG_SCHEMA
    )
    return write_parquet_atomically(frame, root / f"date={day}" / name)


JSON_COLUMNS = frozenset({"features", "feature_status"})


def _cell(column: str, value: Any) -> Any:
    """A record's value as stored: the answer's features and statuses become JSON text here,
    on the writer thread, not on the request path."""
    if column in JSON_COLUMNS and value is not None and not isinstance(value, str):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def read_prediction_log(home: Path, day: str) -> pl.DataFrame:
    """Every answer the endpoint logged on `day` (empty, with the log's schema, if none)."""
    files = sorted((prediction_log_root(home) / f"date={day}").glob("*.parquet"))
    if not files:
        return pl.DataFrame(schema=PREDICTION_LOG_SCHEMA)
    return pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed")


class PredictionLogWriter:
    """Buffers records and flushes every `flush_s` seconds or `flush_rows` rows."""

    def __init__(
        self,
        home: Path,
        flush_s: float = 1.0,
        flush_rows: int = 5_000,
        on_written: Callable[[int], None] | None = None,
    ) -> None:
        self.root = prediction_log_root(home)
        self.flush_s = flush_s
        self.flush_rows = flush_rows
        self._on_written = on_written or (lambda rows: None)
        self._buffer: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        with self._lock:
            self._buffer.extend(records)
            full = len(self._buffer) >= self.flush_rows
        if full:
            self._wake.set()

    def flush(self) -> int:
        """Write what is buffered now; returns rows written."""
        with self._write_lock:
            with self._lock:
                records, self._buffer = self._buffer, []
            if not records:
                return 0
            by_day: dict[str, list[dict[str, Any]]] = {}
            for record in records:
                # By the day the transaction happened, as the warehouse partitions it.
                by_day.setdefault(record["event_time"].date().isoformat(), []).append(record)
            for day, rows in by_day.items():
                try:
                    write_log_file(self.root, day, rows)
                except Exception:  # a full disk must not take the endpoint down
                    log.exception("could not write %d prediction log rows for %s", len(rows), day)
                    continue
                self._on_written(len(rows))
            return len(records)

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self.flush_s)
            self._wake.clear()
            self.flush()

    def close(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(10)
        self.flush()
