"""Point-in-time join: attach to each row the feature values known strictly before its time.

A training row must see exactly what serving would have seen when the transaction arrived:
the latest feature row of its entity with `feature_time < row_time` (never the transaction
itself or anything later), and nothing older than a feature's TTL. The TTL rule is
`registry.is_stale`, shared with the online store so offline and online cannot disagree.
"""

from __future__ import annotations

import polars as pl

from ml_assets.features.registry import FEATURE_TIME, FeatureSet, is_stale

_ROW_INDEX = "__pit_row"


def _check_inputs(
    rows: pl.DataFrame, features: pl.DataFrame, feature_set: FeatureSet, time_column: str
) -> None:
    missing_rows = [c for c in (feature_set.key, time_column) if c not in rows.columns]
    if missing_rows:
        raise ValueError(
            f"rows lack columns {missing_rows} needed to join feature set {feature_set.name!r}; "
            "pass the entity key and the time at which each row must be scored"
        )
    missing_features = [
        c for c in (feature_set.key, FEATURE_TIME, *feature_set.columns)
        if c not in features.columns
    ]  # fmt: skip
    if missing_features:
        raise ValueError(
            f"feature table lacks columns {missing_features} of feature set "
            f"{feature_set.name!r} (version {feature_set.version}); recompute it with "
            "compute_entity_features"
        )
    clash = [c for c in (*feature_set.columns, feature_set.feature_time_column) if c in rows]
    if clash:
        raise ValueError(f"rows already carry feature columns {clash}; drop them before joining")


def point_in_time_join(
    rows: pl.DataFrame,
    features: pl.DataFrame,
    feature_set: FeatureSet,
    time_column: str = "event_time",
) -> pl.DataFrame:
    """`rows` with the set's features as of strictly before each row's `time_column`.

    Keeps the order and count of `rows` (a left join). Adds `<entity>__feature_time`, the
    as-of time of the joined values (null when the entity had no earlier feature row); a feature
    older than its TTL at the row's time is null.
    """
    _check_inputs(rows, features, feature_set, time_column)
    key, as_of = feature_set.key, feature_set.feature_time_column
    time_dtype = rows.schema[time_column]
    right = (
        features.lazy()
        .select(
            pl.col(key),
            pl.col(FEATURE_TIME).cast(time_dtype).alias(as_of),
            *feature_set.columns,
        )
        .drop_nulls([key, as_of])
        .sort(as_of)
    )
    # Null times cannot be ordered: such rows get no features and rejoin by row index below.
    left = rows.lazy().with_row_index(_ROW_INDEX).filter(pl.col(time_column).is_not_null())
    left = left.sort(time_column)
    joined = left.join_asof(
        right,
        left_on=time_column,
        right_on=as_of,
        by=key,
        strategy="backward",
        allow_exact_matches=False,  # strictly before: the row's own event never leaks in
        coalesce=False,
        check_sortedness=False,  # both sides are sorted on the time key just above
    )
    age = pl.col(time_column) - pl.col(as_of)
    masked = joined.with_columns(
        pl.when(is_stale(age, spec.ttl)).then(None).otherwise(spec.column).alias(spec.column)
        for spec in feature_set.features
    )
    added = [as_of, *feature_set.columns]
    indexed = rows.lazy().with_row_index(_ROW_INDEX)
    unjoinable = indexed.filter(pl.col(time_column).is_null())
    return (
        pl.concat(
            [masked.select(*indexed.collect_schema().names(), *added), unjoinable], how="diagonal"
        )
        .sort(_ROW_INDEX)
        .drop(_ROW_INDEX)
        .collect()
    )
