"""Which labelled days a training run uses, and the newest days it must never see.

The window is recorded with the model (MLflow lineage and Dagster metadata), so a model
version leads back to the exact partitions that trained it and those it was judged on.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from ml_assets.training.model_inputs import TIME_COLUMN


def choose_partitions(available: list[str], window_days: int, end: str = "") -> list[str]:
    """The newest `window_days` partitions up to `end` (default: the newest available)."""
    candidates = sorted(p for p in available if not end or p <= end)
    if len(candidates) < window_days:
        raise ValueError(
            f"training needs {window_days} labelled days up to {end or 'now'} but training_set "
            f"has {len(candidates)}: materialize more days of training_set or lower window_days"
        )
    return candidates[-window_days:]


def split_holdout(
    frame: pl.DataFrame, holdout_days: int
) -> tuple[pl.DataFrame, pl.DataFrame, date]:
    """Rows of the newest `holdout_days` event days are held out for evaluation; the rest
    train (time-based, never random: a random split would judge the model on its own past)."""
    days = frame[TIME_COLUMN].dt.date().unique().sort().to_list()
    if len(days) <= holdout_days + 2:
        raise ValueError(
            f"the window spans {len(days)} event day(s); {holdout_days} held-out days plus at "
            "least 3 for training and validation are needed: widen window_days"
        )
    start = days[-holdout_days]
    held_out = pl.col(TIME_COLUMN).dt.date() >= start
    return frame.filter(~held_out), frame.filter(held_out), start
