"""The training set takes reviewers' labels beside chargebacks, one label per transaction,
and the rows training reads keep a chargeback that came after a review (plain functions)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from ml_assets.data.labels import CHARGEBACK, REVIEW, SOURCE
from ml_assets.features.training_set import build_training_set, resolve_training_rows

T0 = datetime(2026, 3, 10, 9, tzinfo=UTC)


def _transactions(ids: list[str]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "transaction_id": ids,
            "event_time": [T0 + timedelta(minutes=i) for i in range(len(ids))],
            "amount": [10.0] * len(ids),
        }
    )


def _labels(rows: list[tuple[str, int, int]], source: str | None) -> pl.DataFrame:
    """(transaction, is_fraud, hours after T0 the label arrived); no `source` column if None."""
    frame = pl.DataFrame(
        {
            "transaction_id": [r[0] for r in rows],
            "event_time": [T0] * len(rows),
            "customer_id": ["C"] * len(rows),
            "merchant_id": ["M"] * len(rows),
            "label_time": [T0 + timedelta(hours=r[2]) for r in rows],
            "is_fraud": pl.Series([r[1] for r in rows], dtype=pl.Int8),
        }
    )
    return frame if source is None else frame.with_columns(pl.lit(source).alias(SOURCE))


def test_a_day_takes_reviews_beside_chargebacks_and_the_chargeback_wins() -> None:
    chargebacks = _labels([("a", 1, 20), ("b", 0, 21)], None)  # a landed file: no source
    reviews = _labels([("b", 1, 2), ("c", 1, 3), ("zz", 1, 4)], REVIEW)  # zz: not validated
    built = build_training_set(chargebacks, _transactions(["a", "b", "c", "d"]), {}, reviews)
    rows = built.frame.select("transaction_id", "is_fraud", SOURCE).rows()
    assert {t: (y, s) for t, y, s in rows} == {
        "a": (1, CHARGEBACK),
        "b": (0, CHARGEBACK),
        "c": (1, REVIEW),
    }
    assert built.rows_by_source == {CHARGEBACK: 2, REVIEW: 1}
    assert built.unmatched_labels == 1  # zz
    without = build_training_set(chargebacks, _transactions(["a", "b", "c"]), {})
    assert without.frame["transaction_id"].to_list() == ["a", "b"]


def test_the_rows_training_reads_keep_one_row_per_transaction() -> None:
    older = build_training_set(
        _labels([("a", 1, 1)], CHARGEBACK), _transactions(["a", "b"]), {},
        _labels([("b", 1, 2)], REVIEW),
    ).frame  # fmt: skip
    newer = build_training_set(_labels([("b", 0, 30)], CHARGEBACK), _transactions(["b"]), {}).frame
    window = pl.concat([older, newer], how="diagonal_relaxed")
    resolved = resolve_training_rows(window)
    assert resolved.select("transaction_id", "is_fraud", SOURCE).rows() == [
        ("a", 1, CHARGEBACK),
        ("b", 0, CHARGEBACK),
    ]
    # Without duplicates the rows come back unchanged, in their order.
    assert resolve_training_rows(window.reverse().tail(2)).equals(window.reverse().tail(2))
