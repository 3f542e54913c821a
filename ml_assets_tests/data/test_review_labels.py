"""Reviewers' decisions become labels, and one rule picks a label per transaction: a
chargeback overrules a review; until one arrives the review counts. Plain functions, and
the real review store (SQLite) written by the endpoint's queue."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from ml_assets.data.labels import (
    CHARGEBACK,
    REVIEW,
    SOURCE,
    combine_labels,
    conflicts,
    count_by_source,
    resolve_labels,
)
from ml_assets.data.landing import read_labels, write_landing_file
from ml_assets.data.review_decisions import (
    labels_from_decisions,
    read_decisions,
    review_store,
)
from ml_assets.serving.review_queue import ReviewConflict, ReviewNotFound, ReviewQueue

DAY = date(2026, 3, 10)
T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


def _labels(rows: list[tuple[str, int, str, int]]) -> pl.DataFrame:
    """(transaction, is_fraud, source, hours after T0 the label arrived)"""
    return pl.DataFrame(
        {
            "transaction_id": [r[0] for r in rows],
            "event_time": [T0] * len(rows),
            "customer_id": ["C1"] * len(rows),
            "merchant_id": ["M1"] * len(rows),
            "label_time": [T0 + timedelta(hours=r[3]) for r in rows],
            "is_fraud": pl.Series([r[1] for r in rows], dtype=pl.Int8),
            SOURCE: [r[2] for r in rows],
        }
    )


def test_a_chargeback_overrules_a_review_whichever_came_first() -> None:
    labels = _labels(
        [
            ("reviewed-then-charged-back", 1, REVIEW, 1),
            ("reviewed-then-charged-back", 0, CHARGEBACK, 48),
            ("charged-back-then-reviewed", 1, CHARGEBACK, 24),
            ("charged-back-then-reviewed", 0, REVIEW, 30),
            ("only-reviewed", 1, REVIEW, 2),
            ("only-charged-back", 0, CHARGEBACK, 40),
        ]
    )
    resolved = resolve_labels(labels)
    by_id = {
        r["transaction_id"]: (r["is_fraud"], r[SOURCE]) for r in resolved.iter_rows(named=True)
    }
    assert len(by_id) == resolved.height == 4
    assert by_id["reviewed-then-charged-back"] == (0, CHARGEBACK)
    assert by_id["charged-back-then-reviewed"] == (1, CHARGEBACK)
    # Until a chargeback arrives, the reviewer's label counts.
    assert by_id["only-reviewed"] == (1, REVIEW)
    assert by_id["only-charged-back"] == (0, CHARGEBACK)
    # Both disagreements are reported as overruled reviews.
    assert sorted(conflicts(labels)["transaction_id"]) == [
        "charged-back-then-reviewed",
        "reviewed-then-charged-back",
    ]


def test_within_a_source_the_latest_label_wins() -> None:
    labels = _labels([("t", 1, REVIEW, 1), ("t", 0, REVIEW, 5), ("u", 0, CHARGEBACK, 1),
                      ("u", 1, CHARGEBACK, 9)])  # fmt: skip
    resolved = resolve_labels(labels).sort("transaction_id")
    assert resolved["is_fraud"].to_list() == [0, 1]
    assert conflicts(labels).height == 0


def test_labels_without_a_source_are_chargebacks_and_unknown_sources_are_refused() -> None:
    old = _labels([("t", 1, CHARGEBACK, 1)]).drop(SOURCE)  # a partition from before reviews
    review = _labels([("t", 0, REVIEW, 9), ("u", 1, REVIEW, 2)])
    combined = combine_labels(old, review, pl.DataFrame())
    assert combined.columns[: len(old.columns) + 1] == [*old.columns, SOURCE]
    assert count_by_source(combined) == {CHARGEBACK: 1, REVIEW: 2}
    assert resolve_labels(combined).sort("transaction_id")["is_fraud"].to_list() == [1, 1]
    with pytest.raises(ValueError, match="'rumour'"):
        resolve_labels(_labels([("t", 1, "rumour", 1)]))


def test_landed_label_files_are_chargebacks_unless_they_say_otherwise(tmp_path: Path) -> None:
    write_landing_file(tmp_path, DAY, "labels", _labels([("t", 1, CHARGEBACK, 1)]).drop(SOURCE))
    assert read_labels(tmp_path, DAY).frame[SOURCE].to_list() == [CHARGEBACK]
    write_landing_file(tmp_path, DAY, "labels", _labels([("t", 1, REVIEW, 1)]))
    assert read_labels(tmp_path, DAY).frame[SOURCE].to_list() == [REVIEW]
    assert SOURCE in read_labels(tmp_path, DAY + timedelta(days=1)).frame.columns


def _queue_item(i: int, event_time: str | None) -> dict:
    return {
        "created_at": T0 + timedelta(minutes=i),
        "request_id": f"r{i}",
        "transaction_id": f"T-{i}",
        "score": 0.5,
        "path": "review",
        "request": {
            "transaction_id": f"T-{i}",
            "customer_id": f"C{i}",
            "merchant_id": "M1",
            "event_time": event_time,
        },  # fmt: skip
        "features": {},
    }


def test_decisions_in_the_review_store_become_labels_of_their_day(tmp_path: Path) -> None:
    queue = ReviewQueue(tmp_path)
    try:
        for i in range(5):
            queue.add(_queue_item(i, "2026-03-10T08:00:00+00:00" if i else None))
        next_day = T0 + timedelta(days=1)
        queue.decide("T-0", "fraud", "ana", "two countries in an hour", now=T0)
        queue.decide("T-1", "legitimate", "ana", now=T0 + timedelta(hours=14, minutes=59))
        queue.decide("T-2", "escalate", "ana", now=T0)
        queue.decide("T-2", "fraud", "senior", now=T0 + timedelta(hours=1))
        queue.decide("T-3", "escalate", "ana", now=T0)  # still awaiting a final decision
        queue.decide("T-4", "fraud", "bo", now=next_day)  # a decision of the next day
        with pytest.raises(ReviewConflict, match="already decided"):
            queue.decide("T-0", "legitimate", "bo", now=T0)
        with pytest.raises(ReviewNotFound):
            queue.decide("T-99", "fraud", "bo", now=T0)
    finally:
        queue.close()

    decisions = read_decisions(review_store(tmp_path), DAY)
    assert decisions["decision"].to_list() == ["fraud", "escalate", "escalate", "fraud",
                                               "legitimate"]  # fmt: skip
    labels = labels_from_decisions(decisions).sort("transaction_id")
    assert labels["transaction_id"].to_list() == ["T-0", "T-1", "T-2"]  # escalations: no label
    assert labels["is_fraud"].to_list() == [1, 0, 1]
    assert labels[SOURCE].unique().to_list() == [REVIEW]
    assert labels.filter(pl.col("transaction_id") == "T-2")["reviewer_id"].item() == "senior"
    # The label time is the decision; the event time the request's (or, absent, its arrival).
    assert labels["label_time"][1] == T0 + timedelta(hours=14, minutes=59)
    assert labels["event_time"].to_list()[:2] == [T0, datetime(2026, 3, 10, 8, tzinfo=UTC)]
    assert labels["customer_id"].to_list() == ["C0", "C1", "C2"]
    following = labels_from_decisions(read_decisions(review_store(tmp_path), DAY + timedelta(1)))
    assert following["transaction_id"].to_list() == ["T-4"]


def test_no_store_means_no_decisions(tmp_path: Path) -> None:
    assert read_decisions(review_store(tmp_path), DAY).height == 0
    sqlite3.connect(review_store(tmp_path)).close()  # a file without the table
    assert labels_from_decisions(read_decisions(review_store(tmp_path), DAY)).height == 0


def test_a_queue_from_before_items_were_keyed_by_transaction_is_migrated(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "review_queue.sqlite")
    db.execute(
        "CREATE TABLE review_queue (id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT "
        "NOT NULL, request_id TEXT NOT NULL, transaction_id TEXT NOT NULL, score REAL NOT "
        "NULL, model_name TEXT, model_version TEXT, path TEXT NOT NULL, request TEXT NOT "
        "NULL, features TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending')"
    )
    for request_id, transaction in (("r1", "A"), ("r2", "A"), ("r3", "B")):
        db.execute(
            "INSERT INTO review_queue (created_at, request_id, transaction_id, score, path, "
            "request, features) VALUES (?, ?, ?, 0.5, 'review', ?, '{}')",
            (T0.isoformat(), request_id, transaction,
             '{"customer_id": "C", "merchant_id": "M", "event_time": null}'),
        )  # fmt: skip
    db.commit()
    db.close()
    queue = ReviewQueue(tmp_path)
    try:
        items = {i["transaction_id"]: i["request_id"] for i in queue.list()}
        assert items == {"A": "r2", "B": "r3"}  # one per transaction, the newest
        # A pending item scored again is refreshed; a decided one is left as decided.
        queue.add({**_queue_item(1, None), "transaction_id": "A", "request_id": "r4"})
        assert {i["request_id"] for i in queue.list()} == {"r4", "r3"}
        assert queue.decide("A", "legitimate", "ana", now=T0)["is_fraud"] == 0
        queue.add({**_queue_item(1, None), "transaction_id": "A", "request_id": "r5"})
        assert [i["request_id"] for i in queue.list(status="decided")] == ["r4"]
    finally:
        queue.close()
