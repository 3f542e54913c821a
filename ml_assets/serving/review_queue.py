"""The human-review queue: answers in the uncertain score band, kept for a person to decide.

A SQLite table in the data dir (WAL, so replicas can share it). Requests only hand rows to
a background writer; `list()` first writes what is pending, so a listing is never behind.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

FILENAME = "review_queue.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS review_queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    request_id TEXT NOT NULL,
    transaction_id TEXT NOT NULL,
    score REAL NOT NULL,
    model_name TEXT,
    model_version TEXT,
    path TEXT NOT NULL,
    request TEXT NOT NULL,
    features TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending'
)
"""
_COLUMNS = (
    "created_at", "request_id", "transaction_id", "score", "model_name", "model_version",
    "path", "request", "features",
)  # fmt: skip


def _json(value: Any) -> str:
    return json.dumps(value, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v))


class ReviewQueue:
    """Append-only from the endpoint; people (or tools) read it with `list()`."""

    def __init__(self, directory: Path, flush_s: float = 0.5) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / FILENAME
        self.flush_s = flush_s
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)
        self._db.commit()
        self._pending: list[tuple] = []
        self._lock = threading.Lock()
        self._db_lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="review-queue", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def add(self, item: dict[str, Any]) -> None:
        row = (
            item["created_at"].isoformat(), item["request_id"], item["transaction_id"],
            float(item["score"]), item.get("model_name"), item.get("model_version"),
            item["path"], _json(item["request"]), _json(item["features"]),
        )  # fmt: skip
        with self._lock:
            self._pending.append(row)

    def flush(self) -> int:
        with self._db_lock:
            with self._lock:
                rows, self._pending = self._pending, []
            if rows:
                marks = ",".join("?" * len(_COLUMNS))
                with self._db:
                    self._db.executemany(
                        f"INSERT INTO review_queue ({','.join(_COLUMNS)}) VALUES ({marks})", rows
                    )
            return len(rows)

    def list(self, limit: int = 100, status: str = "pending") -> list[dict[str, Any]]:
        """Newest first."""
        self.flush()
        with self._db_lock:
            cursor = self._db.execute(
                "SELECT id, status, " + ",".join(_COLUMNS) + " FROM review_queue "
                "WHERE status = ? ORDER BY id DESC LIMIT ?",
                (status, limit),
            )
            names = [d[0] for d in cursor.description]
            rows = [dict(zip(names, row, strict=True)) for row in cursor]
        for row in rows:
            row["request"] = json.loads(row["request"])
            row["features"] = json.loads(row["features"])
        return rows

    def _run(self) -> None:
        while not self._stopping.wait(self.flush_s):
            self.flush()

    def close(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self.flush()
        with self._db_lock:
            self._db.close()
