"""Offline feature computation: the value of every feature of an entity after each of its events.

A feature row `(entity, feature_time)` holds, for each feature, the aggregation over that
entity's events with `event_time` in `[feature_time - window, feature_time]`: the state just
after the events at `feature_time`. One row is emitted per distinct event time of the entity on
day D, so the point-in-time join can attach the latest state strictly before any later instant.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl

from ml_assets.features.registry import FEATURE_TIME, FeatureSet, FeatureSpec

EVENT_TIME = "event_time"


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The UTC instants `[start, end)` of a daily partition."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


def history_start(feature_set: FeatureSet, day: date) -> datetime:
    """The earliest event time the features of day D can depend on."""
    return day_bounds(day)[0] - feature_set.max_window


def required_columns(feature_set: FeatureSet) -> list[str]:
    """The event columns the feature set reads: key, time and the sources' columns."""
    needed = {feature_set.key, EVENT_TIME}
    for spec in feature_set.features:
        needed.update(spec.source_expr().meta.root_names())
    return sorted(needed)


def _check_columns(events: pl.DataFrame, feature_set: FeatureSet) -> None:
    missing = [c for c in required_columns(feature_set) if c not in events.columns]
    if missing:
        raise ValueError(
            f"events lack columns {missing} needed by feature set {feature_set.name!r}; "
            "pass validated transactions (see ml_assets/data/contracts.py)"
        )


def _source_columns(feature_set: FeatureSet) -> dict[str, str]:
    """A temporary column name per distinct source, so each source is evaluated once."""
    sources = sorted({spec.source for spec in feature_set.features})
    return {source: f"__source_{i}" for i, source in enumerate(sources)}


def _rolling(spec: FeatureSpec, source_column: str) -> pl.Expr:
    """The trailing-window aggregation of one feature, per row of events sorted by time."""
    value = pl.col(source_column)
    options = {"by": EVENT_TIME, "window_size": spec.window, "closed": "both"}
    match spec.aggregation:
        case "count":
            expr = value.is_not_null().cast(pl.Int64).rolling_sum_by(**options)
        case "sum":
            expr = value.rolling_sum_by(**options)
        case "mean" | "share":
            expr = value.rolling_mean_by(**options)
        case "std":
            expr = value.rolling_std_by(**options)
        case "max":
            expr = value.rolling_max_by(**options)
    return expr.cast(spec.polars_dtype).alias(spec.column)


def compute_entity_features(
    events: pl.DataFrame, feature_set: FeatureSet, day: date
) -> pl.DataFrame:
    """Feature rows of day D for one entity, from validated events of D and its history.

    `events` must reach back `feature_set.max_window` before day D for the long windows to be
    complete; rows outside that range are ignored. Returns one row per (entity key, distinct
    event time on day D), sorted by `feature_time` then key.
    """
    _check_columns(events, feature_set)
    day_start, day_end = day_bounds(day)
    key = feature_set.key
    sources = _source_columns(feature_set)
    relevant = (
        events.lazy()
        .select(required_columns(feature_set))
        .filter(
            pl.col(EVENT_TIME).is_between(history_start(feature_set, day), day_end, "left"),
            pl.col(key).is_not_null(),
        )
        .with_columns(pl.sql_expr(source).alias(column) for source, column in sources.items())
        .sort(key, EVENT_TIME)
    )
    rolled = relevant.with_columns(
        _rolling(spec, sources[spec.source]).over(key) for spec in feature_set.features
    )
    return (
        rolled.filter(pl.col(EVENT_TIME) >= day_start)
        # Ties share one window; keep one row per (entity, time): the state after all of them.
        .unique(subset=[key, EVENT_TIME], keep="last", maintain_order=True)
        .select(key, pl.col(EVENT_TIME).alias(FEATURE_TIME), *feature_set.columns)
        .sort(FEATURE_TIME, key)
        .collect()
    )


def empty_features(feature_set: FeatureSet) -> pl.DataFrame:
    """An empty feature table with the set's schema (a day without events)."""
    return pl.DataFrame(schema=feature_set.schema())
