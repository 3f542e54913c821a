"""The human-review queue: answers in the uncertain score band, kept for a person to decide.

A SQLite table in the data dir (WAL, so replicas can share it), one item per transaction: a
transaction scored again while its item is pending refreshes the item, and once a reviewer
has decided it stays decided. Requests only hand rows to a background writer; `list()` and
`decide()` first write what is pending, so neither is behind the requests.

Decisions (`decide`) move an item pending -> escalated -> decided, or pending -> decided,
and each is appended to the decisions table whose contract is
`ml_assets.data.review_decisions`; the `review_labels` asset turns them into labels.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ml_assets.data.review_decisions import (
    DECISIONS_DDL,
    DECISIONS_TABLE,
    ESCALATE,
    FILENAME,
    IS_FRAUD,
    utc_text,
)

PENDING, ESCALATED, DECIDED = "pending", "escalated", "decided"
STATUSES = (PENDING, ESCALATED, DECIDED)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS review_queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    request_id TEXT NOT NULL,
    transaction_id TEXT NOT NULL UNIQUE,
    score REAL NOT NULL,
    model_name TEXT,
    model_version TEXT,
    path TEXT NOT NULL,
    request TEXT NOT NULL,
    features TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    decision TEXT,
    reviewer_id TEXT,
    decided_at TEXT
)
"""
_COLUMNS = (
    "created_at", "request_id", "transaction_id", "score", "model_name", "model_version",
    "path", "request", "features",
)  # fmt: skip
_REFRESH = ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS if c != "transaction_id")
_UPSERT = (
    f"INSERT INTO review_queue ({','.join(_COLUMNS)}) VALUES ({','.join('?' * len(_COLUMNS))}) "
    f"ON CONFLICT(transaction_id) DO UPDATE SET {_REFRESH} WHERE status = '{PENDING}'"
)


class ReviewNotFound(LookupError):
    """No queued item has this transaction id."""


class ReviewConflict(Exception):
    """The item's state does not admit this decision (it was decided, or escalated twice)."""


def _json(value: Any) -> str:
    return json.dumps(value, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v))


def _migrate(db: sqlite3.Connection) -> None:
    """Queues written before items were keyed by transaction: the newest item of each
    transaction is kept, pending."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(review_queue)")}
    if not columns or "decision" in columns:
        return
    with db:
        db.execute("ALTER TABLE review_queue RENAME TO review_queue_v1")
        db.execute(_SCHEMA)
        db.execute(
            f"INSERT INTO review_queue ({','.join(_COLUMNS)}) SELECT {','.join(_COLUMNS)} "
            "FROM review_queue_v1 WHERE true ORDER BY id "
            f"ON CONFLICT(transaction_id) DO UPDATE SET {_REFRESH}"
        )
        db.execute("DROP TABLE review_queue_v1")


class ReviewQueue:
    """Appended to by the endpoint's requests; people (or tools) read it with `list()` and
    resolve its items with `decide()`."""

    def __init__(self, directory: Path, flush_s: float = 0.5) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / FILENAME
        self.flush_s = flush_s
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        _migrate(self._db)
        self._db.execute(_SCHEMA)
        self._db.execute(DECISIONS_DDL)
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
                with self._db:
                    self._db.executemany(_UPSERT, rows)
            return len(rows)

    def list(self, limit: int = 100, status: str = PENDING) -> list[dict[str, Any]]:
        """Items in `status`, newest first."""
        self.flush()
        with self._db_lock:
            cursor = self._db.execute(
                "SELECT id, status, decision, reviewer_id, decided_at, " + ",".join(_COLUMNS)
                + " FROM review_queue WHERE status = ? ORDER BY id DESC LIMIT ?",
                (status, limit),
            )  # fmt: skip
            names = [d[0] for d in cursor.description]
            rows = [dict(zip(names, row, strict=True)) for row in cursor]
        for row in rows:
            row["request"] = json.loads(row["request"])
            row["features"] = json.loads(row["features"])
        return rows

    def decide(
        self,
        transaction_id: str,
        decision: str,
        reviewer_id: str,
        note: str | None = None,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """Record a reviewer's decision on the item of `transaction_id` and return it.

        `escalate` moves a pending item to `escalated` (for a second reviewer); `fraud` or
        `legitimate` decide a pending or escalated item for good. Raises `ReviewNotFound`
        for an unknown item and `ReviewConflict` when its state does not admit the decision
        (a second final decision, or a second escalation): the first one stands. The state
        change is one conditional UPDATE, so replicas sharing the file cannot both win."""
        self.flush()
        final = decision != ESCALATE
        status, allowed = (DECIDED, (PENDING, ESCALATED)) if final else (ESCALATED, (PENDING,) * 2)
        decided_at = utc_text(now or datetime.now(UTC))
        with self._db_lock, self._db:
            changed = self._db.execute(
                "UPDATE review_queue SET status = ?, decision = ?, reviewer_id = ?, "
                "decided_at = ? WHERE transaction_id = ? AND status IN (?, ?)",
                (status, decision, reviewer_id, decided_at, transaction_id, *allowed),
            ).rowcount
            row = self._db.execute(
                "SELECT status, decision, reviewer_id, decided_at, created_at, request "
                "FROM review_queue WHERE transaction_id = ?",
                (transaction_id,),
            ).fetchone()
            if row is None:
                raise ReviewNotFound(f"no review item for transaction_id {transaction_id!r}")
            if not changed:
                raise ReviewConflict(
                    f"transaction {transaction_id!r} is already {row[0]} ({row[1]} by "
                    f"{row[2]} at {row[3]}); a {decision!r} decision is not accepted: "
                    + ("an escalated item awaits fraud or legitimate" if row[0] == ESCALATED
                       else "the first final decision stands")
                )  # fmt: skip
            request = json.loads(row[5])
            event_time = request.get("event_time") or row[4]
            self._db.execute(
                f"INSERT INTO {DECISIONS_TABLE} (transaction_id, decision, reviewer_id, note, "
                "decided_at, event_time, customer_id, merchant_id) VALUES (?,?,?,?,?,?,?,?)",
                (transaction_id, decision, reviewer_id, note, decided_at,
                 utc_text(datetime.fromisoformat(event_time)), request["customer_id"],
                 request["merchant_id"]),
            )  # fmt: skip
        return {
            "transaction_id": transaction_id,
            "decision": decision,
            "status": status,
            "is_fraud": IS_FRAUD.get(decision),
            "reviewer_id": reviewer_id,
            "note": note,
            "decided_at": decided_at,
        }

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
