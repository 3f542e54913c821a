"""Assemble training rows: each label joined to its transaction and, point in time, to the
feature values of its customer and merchant as of just before the transaction.

Labels come from chargebacks and from reviewers (`ml_assets.data.labels`). A day's rows hold
the labels that arrived that day, one per transaction by the labels' rule. A review and its
later chargeback arrive on different days, so a window of days can hold a transaction twice:
`resolve_training_rows` keeps the winner (the chargeback), and training reads through it."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from ml_assets.data.labels import SOURCE, combine_labels, count_by_source, resolve_labels
from ml_assets.features.pit import point_in_time_join
from ml_assets.features.registry import FeatureSet

# What a training row takes from its label (the rest comes from the transaction).
LABEL_JOIN_COLUMNS = ["transaction_id", "label_time", "is_fraud", SOURCE]


@dataclass(frozen=True)
class TrainingSetBuild:
    frame: pl.DataFrame
    unmatched_labels: int
    feature_sets: tuple[FeatureSet, ...]

    @property
    def fraud_rate(self) -> float:
        return float(self.frame["is_fraud"].mean()) if self.frame.height else 0.0

    @property
    def rows_by_source(self) -> dict[str, int]:
        return count_by_source(self.frame)

    def coverage_markdown(self) -> str:
        """Share of rows with each feature present: a TTL or a short history shows here."""
        lines = ["| feature | present |", "|---|---|"]
        for fs in self.feature_sets:
            for column in fs.columns:
                nulls = self.frame[column].null_count()
                present = 1 - nulls / self.frame.height if self.frame.height else 0.0
                lines.append(f"| {column} | {present:.1%} |")
        return "\n".join(lines)


def attach_features(rows: pl.DataFrame, features: dict[FeatureSet, pl.DataFrame]) -> pl.DataFrame:
    """`rows` (transactions) with every feature set's values as of just before each row: what
    training sees and what batch scoring sees, by the same join."""
    for feature_set, frame in features.items():
        rows = point_in_time_join(rows, frame, feature_set, time_column="event_time")
    return rows


def resolve_training_rows(rows: pl.DataFrame) -> pl.DataFrame:
    """Training rows of several days with one row per transaction, the one whose label wins
    (a chargeback over a review, the latest within a source), in their original order: rows
    without duplicates come back as they were. Rows without a `source` (days built before
    reviews were labels) are chargebacks."""
    if rows["transaction_id"].is_unique().all():
        return rows
    numbered = rows.with_row_index("_row")
    winners = resolve_labels(numbered)["_row"]
    return numbered.filter(pl.col("_row").is_in(winners.implode())).drop("_row")


def build_training_set(
    labels: pl.DataFrame,
    transactions: pl.DataFrame,
    features: dict[FeatureSet, pl.DataFrame],
    reviews: pl.DataFrame | None = None,
) -> TrainingSetBuild:
    """Labelled rows with point-in-time features, from the day's chargebacks (`labels`) and
    reviewers' labels (`reviews`), one label per transaction. Labels whose transaction is not
    among the validated ones (quarantined, or older than the lookback) are counted, not
    invented."""
    resolved = resolve_labels(combine_labels(labels, *([reviews] if reviews is not None else [])))
    labelled = transactions.join(
        resolved.select(LABEL_JOIN_COLUMNS), on="transaction_id", how="inner"
    ).sort("event_time", "transaction_id")
    labelled = attach_features(labelled, features)
    return TrainingSetBuild(
        frame=labelled,
        unmatched_labels=resolved.height - labelled.height,
        feature_sets=tuple(features),
    )
