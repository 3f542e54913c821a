"""Labels from two sources, and the one rule that picks a label per transaction.

- `chargeback`: the delayed outcomes landed with each day (the card network's disputes; the
  demo's generator writes them). They are the ground truth the model is trained to predict,
  and they arrive late (1-3 days in the demo, months in life).
- `review`: a reviewer's decision on the human-review queue (`POST /review/{id}`). It arrives
  within hours, for the transactions the model was least sure of.

The rule (`resolve_labels`): **a chargeback wins over a review**, whatever either says,
because it is the outcome the model is trained for and it is decided later, with more
evidence than the reviewer had. Until a chargeback arrives, the reviewer's label counts.
Within one source the latest label wins (a corrected file re-landed, say). Monitoring and
the training set both resolve through this function, so they never disagree on a label.
"""

from __future__ import annotations

import polars as pl

from ml_assets.data.contracts import LABEL_SCHEMA

SOURCE = "source"
CHARGEBACK, REVIEW = "chargeback", "review"
# In order of precedence: the first source present for a transaction gives its label.
SOURCES = (CHARGEBACK, REVIEW)
SOURCED_LABEL_SCHEMA: dict[str, pl.DataType] = {**LABEL_SCHEMA, SOURCE: pl.String()}


def with_source(labels: pl.DataFrame, default: str = CHARGEBACK) -> pl.DataFrame:
    """`labels` with a `source` column; rows without one (files and partitions from before
    the review loop) are `default`. Refuses a source it does not know."""
    if SOURCE not in labels.columns:
        return labels.with_columns(pl.lit(default, dtype=pl.String).alias(SOURCE))
    labels = labels.with_columns(pl.col(SOURCE).cast(pl.String).fill_null(default))
    unknown = sorted(set(labels[SOURCE].unique().to_list()) - set(SOURCES))
    if unknown:
        raise ValueError(f"label source(s) {unknown} unknown; use one of {list(SOURCES)}")
    return labels


def combine_labels(*frames: pl.DataFrame) -> pl.DataFrame:
    """Label frames of any source as one frame in `SOURCED_LABEL_SCHEMA`'s columns first
    (other columns are kept); empty frames without columns are skipped."""
    present = [with_source(f) for f in frames if f.width]
    if not present:
        return pl.DataFrame(schema=SOURCED_LABEL_SCHEMA)
    combined = pl.concat(present, how="diagonal_relaxed")
    return combined.select(*SOURCED_LABEL_SCHEMA, pl.exclude(*SOURCED_LABEL_SCHEMA))


def resolve_labels(labels: pl.DataFrame) -> pl.DataFrame:
    """One row per transaction, by the module's rule: its latest chargeback if it has one,
    else its latest review. Sorted by label time. Rows may carry other columns (a training
    row's features): the winning row is kept whole."""
    labels = with_source(labels)
    precedence = pl.col(SOURCE).replace_strict(
        {s: i for i, s in enumerate(SOURCES)}, return_dtype=pl.Int8
    )
    return (
        labels.sort(precedence, pl.col("label_time"), descending=[False, True], nulls_last=True)
        .unique("transaction_id", keep="first", maintain_order=True)
        .sort("label_time", "transaction_id")
    )


def conflicts(labels: pl.DataFrame) -> pl.DataFrame:
    """Transactions whose chargeback and review disagree (the review was overruled), with
    both labels: a measure of the reviewers' accuracy on the model's hardest cases."""
    labels = with_source(labels)
    latest = resolve_labels
    by_source = [
        latest(labels.filter(pl.col(SOURCE) == s)).select(
            "transaction_id", pl.col("is_fraud").alias(f"is_fraud_{s}")
        )
        for s in SOURCES
    ]
    both = by_source[0].join(by_source[1], on="transaction_id", how="inner")
    return both.filter(pl.col(f"is_fraud_{CHARGEBACK}") != pl.col(f"is_fraud_{REVIEW}"))


def count_by_source(labels: pl.DataFrame) -> dict[str, int]:
    """How many rows of each source `labels` holds (every source named, zero if absent)."""
    counts = dict(with_source(labels)[SOURCE].value_counts().iter_rows()) if labels.width else {}
    return {s: int(counts.get(s, 0)) for s in SOURCES}
