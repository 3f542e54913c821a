"""Property: compute + point-in-time join equals a plain reference join, and never leaks.

The reference is written as plainly as possible (loops over python dicts): the latest event
time of the row's entity strictly before the row's time is the as-of time; each feature
aggregates that entity's events in [as_of - window, as_of]; a value older than its TTL at
the row's time is None.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml_assets.features.compute import compute_entity_features
from ml_assets.features.pit import point_in_time_join
from ml_assets.features.registry import FeatureSet, FeatureSpec
from ml_assets_tests.support.reference import aggregate

START = datetime(2026, 3, 1, tzinfo=UTC)
DAYS = (date(2026, 3, 1), date(2026, 3, 2))
MINUTE = timedelta(minutes=1)
ENTITIES = ("a", "b", "c")


def _spec(name, aggregation, minutes, source="amount", ttl_minutes=None) -> FeatureSpec:
    return FeatureSpec(
        name=name,
        entity="customer",
        window=timedelta(minutes=minutes),
        aggregation=aggregation,
        source=source,
        dtype="Int64" if aggregation == "count" else "Float64",
        ttl=timedelta(minutes=ttl_minutes) if ttl_minutes else None,
    )


# Short windows so that small random streams hit window edges, ties and TTL expiry often.
SMALL_SET = FeatureSet(
    "property_customer",
    "customer",
    (
        _spec("count_30m", "count", 30, "1"),
        _spec("sum_60m", "sum", 60),
        _spec("mean_90m", "mean", 90, ttl_minutes=20),
        _spec("std_120m", "std", 120),
        _spec("max_45m", "max", 45, ttl_minutes=300),
        _spec("online_share_60m", "share", 60, "CAST(channel = 'online' AS DOUBLE)"),
        _spec(
            "abroad_share_60m", "share", 60,
            "CAST(merchant_country <> customer_country AS DOUBLE)", ttl_minutes=10,
        ),
        _spec(
            "night_share_300m", "share", 300, "CAST(EXTRACT(HOUR FROM event_time) < 5 AS DOUBLE)"
        ),
    ),
)  # fmt: skip


def _source(spec: FeatureSpec, event: dict) -> float:
    if spec.aggregation == "count":
        return 1.0
    if spec.name.startswith("online"):
        return float(event["channel"] == "online")
    if spec.name.startswith("abroad"):
        return float(event["merchant_country"] != event["customer_country"])
    if spec.name.startswith("night"):
        return float(event["event_time"].hour < 5)
    return event["amount"]


def reference_join(events: list[dict], rows: list[dict]) -> list[dict]:
    out = []
    for row in rows:
        mine = [e for e in events if e["customer_id"] == row["customer_id"]]
        before = [e["event_time"] for e in mine if e["event_time"] < row["event_time"]]
        as_of = max(before) if before else None
        result = {"customer__feature_time": as_of}
        for spec in SMALL_SET.features:
            if as_of is None or row["event_time"] - as_of > spec.ttl:
                result[spec.column] = None
                continue
            window = [
                _source(spec, e) for e in mine if as_of - spec.window <= e["event_time"] <= as_of
            ]
            result[spec.column] = aggregate(spec.aggregation, window)
        out.append(result)
    return out


# Minutes over two days, mostly on a 5-minute grid (windows and TTLs are multiples of 5) and
# often near midnight, so ties, exact window edges, exact TTL edges and the day boundary occur.
minute_strategy = st.one_of(
    st.integers(0, 2 * 24 * 12 - 1).map(lambda slot: slot * 5),
    st.integers(23 * 12, 25 * 12).map(lambda slot: slot * 5),
    st.integers(0, 2 * 24 * 60 - 1),
)
event_strategy = st.fixed_dictionaries(
    {
        "customer_id": st.sampled_from(ENTITIES),
        "minute": minute_strategy,
        "amount": st.integers(100, 100_000).map(lambda cents: cents / 100),
        "channel": st.sampled_from(("online", "card_present", "contactless")),
        "merchant_country": st.sampled_from(("US", "GB")),
        "customer_country": st.sampled_from(("US", "GB")),
    }
)
row_strategy = st.tuples(
    st.sampled_from((*ENTITIES, "unknown")),
    st.one_of(minute_strategy, st.integers(2 * 24 * 60, 2 * 24 * 60 + 600)),
    st.one_of(st.just(0), st.integers(0, 59)),
)


def _events_frame(events: list[dict]) -> pl.DataFrame:
    frame = pl.DataFrame(
        events,
        schema={
            "customer_id": pl.String, "minute": pl.Int64, "amount": pl.Float64,
            "channel": pl.String, "merchant_country": pl.String, "customer_country": pl.String,
        },
    )  # fmt: skip
    return frame.with_columns(
        event_time=pl.lit(START) + pl.duration(minutes=pl.col("minute"))
    ).with_columns(pl.col("event_time").dt.cast_time_unit("us"))


def _pipeline(events: pl.DataFrame, rows: pl.DataFrame) -> pl.DataFrame:
    features = pl.concat(compute_entity_features(events, SMALL_SET, day) for day in DAYS)
    return point_in_time_join(rows, features, SMALL_SET)


def _rows(raw: list[tuple[str, int, int]], events: list[dict]) -> pl.DataFrame:
    # Half the rows sit exactly on event times (a transaction scored at its own time).
    exact = [(e["customer_id"], e["minute"], 0) for e in events[::2]]
    return pl.DataFrame(
        {
            "customer_id": [entity for entity, _, _ in raw + exact],
            "event_time": [
                START + minute * MINUTE + timedelta(seconds=second)
                for _, minute, second in raw + exact
            ],
        },
        schema={"customer_id": pl.String, "event_time": pl.Datetime("us", "UTC")},
    )


def _assert_same(actual: list[dict], expected: list[dict]) -> None:
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected, strict=True):
        for column, value in want.items():
            if value is None or isinstance(value, datetime | int):
                assert got[column] == value, column
            else:
                assert got[column] is not None, column
                assert math.isclose(got[column], value, rel_tol=1e-9, abs_tol=1e-7), column


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=st.lists(event_strategy, min_size=1, max_size=40),
    raw_rows=st.lists(row_strategy, min_size=1, max_size=25),
)
def test_join_equals_plain_reference(events, raw_rows):
    frame = _events_frame(events)
    rows = _rows(raw_rows, events)
    joined = _pipeline(frame, rows)
    assert joined.select("customer_id", "event_time").equals(rows)
    _assert_same(joined.to_dicts(), reference_join(frame.to_dicts(), rows.to_dicts()))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=st.lists(event_strategy, min_size=1, max_size=40),
    raw_rows=st.lists(row_strategy, min_size=1, max_size=25),
    cutoff_minute=st.integers(0, 2 * 24 * 60),
)
def test_no_feature_uses_data_at_or_after_the_row_time(events, raw_rows, cutoff_minute):
    """Dropping every event at or after a cutoff changes nothing for rows up to the cutoff."""
    frame = _events_frame(events)
    rows = _rows(raw_rows, events)
    cutoff = START + cutoff_minute * MINUTE
    early_rows = rows.filter(pl.col("event_time") <= cutoff)
    full = _pipeline(frame, early_rows)
    truncated = _pipeline(frame.filter(pl.col("event_time") < cutoff), early_rows)
    assert full.equals(truncated)
    as_of = full["customer__feature_time"]
    assert (as_of.is_null() | (as_of < full["event_time"])).all()
