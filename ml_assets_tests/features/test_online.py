from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from ml_assets.features.compute import compute_entity_features, day_bounds
from ml_assets.features.online import (
    MISSING_ENTITY,
    OK,
    TTL_EXPIRED,
    RedisOnlineStore,
    SqliteOnlineStore,
    get_online_features,
    latest_feature_rows,
    open_online_store,
    status_column,
)
from ml_assets.features.pit import point_in_time_join
from ml_assets.features.registry import FEATURE_SETS, FeatureSet, FeatureSpec

T0 = datetime(2026, 3, 2, 12, tzinfo=UTC)
SMALL_SET = FeatureSet(
    "online_test",
    "customer",
    (
        FeatureSpec("count_1d", "customer", timedelta(days=1), "count", "1", "Int64"),
        FeatureSpec("sum_1d", "customer", timedelta(days=1), "sum", ttl=timedelta(minutes=10)),
    ),
)


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.slow)])
def store(request, tmp_path):
    if request.param == "sqlite":
        opened = SqliteOnlineStore(tmp_path / "online.sqlite")
    else:
        url = request.getfixturevalue("redis_url")
        # A fresh key prefix per test keeps tests independent on the shared server.
        opened = RedisOnlineStore(url, prefix=f"test:{uuid.uuid4().hex}")
    yield opened
    opened.close()


def _feature_rows(*rows: tuple[str, datetime, int, float | None]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={
            "customer_id": pl.String, "feature_time": pl.Datetime("us", "UTC"),
            "customer__count_1d": pl.Int64, "customer__sum_1d": pl.Float64,
        },
        orient="row",
    )  # fmt: skip


def test_round_trip_keeps_values_types_and_time(store):
    written = store.write(SMALL_SET, _feature_rows(("C1", T0, 3, 12.5), ("C2", T0, 1, None)))
    assert written == 2
    stored = store.read(SMALL_SET, ["C1", "C2", "C3"])
    assert set(stored) == {"C1", "C2"}
    assert stored["C1"].feature_time == T0
    assert stored["C1"].values == {"customer__count_1d": 3, "customer__sum_1d": 12.5}
    assert isinstance(stored["C1"].values["customer__count_1d"], int)
    assert stored["C2"].values["customer__sum_1d"] is None


def test_write_keeps_the_latest_row_and_never_goes_back_in_time(store):
    later = T0 + timedelta(minutes=5)
    store.write(SMALL_SET, _feature_rows(("C1", T0, 1, 1.0), ("C1", later, 2, 2.0)))
    assert store.read(SMALL_SET, ["C1"])["C1"].values["customer__count_1d"] == 2
    store.write(SMALL_SET, _feature_rows(("C1", T0, 9, 9.0)))  # a backfill of an older day
    assert store.read(SMALL_SET, ["C1"])["C1"].feature_time == later
    store.write(SMALL_SET, _feature_rows(("C1", later + timedelta(seconds=1), 3, 3.0)))
    assert store.read(SMALL_SET, ["C1"])["C1"].values["customer__count_1d"] == 3


def test_online_read_reports_ok_ttl_expired_and_missing_entity(store):
    store.write(SMALL_SET, _feature_rows(("C1", T0, 3, 12.5)))
    keys = ["C1", "nobody", "C1"]
    fresh = get_online_features(store, SMALL_SET, keys, at=T0 + timedelta(minutes=10))
    assert [r["customer_id"] for r in fresh] == keys
    assert fresh[0]["customer__sum_1d"] == 12.5
    assert fresh[0][status_column(SMALL_SET)] == {"customer__count_1d": OK, "customer__sum_1d": OK}
    assert fresh[1] == {
        "customer_id": "nobody",
        "customer__feature_time": None,
        "customer__count_1d": None,
        "customer__sum_1d": None,
        "customer__status": {
            "customer__count_1d": MISSING_ENTITY,
            "customer__sum_1d": MISSING_ENTITY,
        },
    }
    stale = get_online_features(store, SMALL_SET, ["C1"], at=T0 + timedelta(minutes=10, seconds=1))
    # Expired values are missing, never a present stale value; other features keep serving.
    assert stale[0]["customer__sum_1d"] is None
    assert stale[0]["customer__status"]["customer__sum_1d"] == TTL_EXPIRED
    assert stale[0]["customer__count_1d"] == 3
    assert get_online_features(store, SMALL_SET, []) == []


def test_a_new_version_starts_empty_and_old_versions_stay_until_pruned(store):
    store.write(SMALL_SET, _feature_rows(("C1", T0, 3, 12.5)))
    longer = dataclasses.replace(SMALL_SET.features[0], window=timedelta(days=2))
    new_set = FeatureSet(SMALL_SET.name, "customer", (longer, SMALL_SET.features[1]))
    assert new_set.version != SMALL_SET.version
    served = get_online_features(store, new_set, ["C1"], at=T0)
    assert served[0]["customer__status"]["customer__count_1d"] == MISSING_ENTITY
    assert store.read(new_set, ["C1"], version=SMALL_SET.version)["C1"].values[
        "customer__count_1d"
    ] == 3  # fmt: skip
    store.write(new_set, _feature_rows(("C1", T0, 5, 12.5)))
    assert store.versions(new_set) == sorted({SMALL_SET.version, new_set.version})
    assert store.prune(new_set, keep_versions=[new_set.version]) == 1
    assert store.versions(new_set) == [new_set.version]
    assert store.read(new_set, ["C1"], version=SMALL_SET.version) == {}
    assert store.read(new_set, ["C1"])["C1"].values["customer__count_1d"] == 5


def test_write_names_missing_columns(store):
    with pytest.raises(ValueError, match=r"lack columns \['customer__sum_1d'\]"):
        store.write(SMALL_SET, _feature_rows(("C1", T0, 1, 1.0)).drop("customer__sum_1d"))


def test_naive_time_is_refused(store):
    with pytest.raises(ValueError, match="no time zone"):
        get_online_features(store, SMALL_SET, ["C1"], at=datetime(2026, 3, 2, 12))


@pytest.mark.parametrize("entity", sorted(FEATURE_SETS))
def test_online_equals_point_in_time_join_at_the_same_instant(store, entity, transactions, day):
    """Training/serving skew: a store loaded as of t serves exactly the offline row at t."""
    feature_set = FEATURE_SETS[entity]
    features = pl.concat(
        compute_entity_features(transactions, feature_set, day - timedelta(days=back))
        for back in (2, 1, 0)
    )
    start, _ = day_bounds(day)
    on_day = features.filter(pl.col("feature_time") >= start).row(7, named=True)
    event_time = on_day["feature_time"]
    sample = features[feature_set.key].unique().sort().head(40).to_list()
    keys = [on_day[feature_set.key], *sample, "unknown"]
    # Increasing instants (the store never goes back in time). The event time itself checks
    # strictness: the state after that event is not served at that instant. The last instant,
    # hours after the day, sees TTL expiries of the short windows.
    instants = sorted(
        [event_time, start + timedelta(hours=6, seconds=1), start + timedelta(days=1, hours=3)]
    )
    seen: set[str] = set()
    for at in instants:
        store.write(feature_set, latest_feature_rows(features, feature_set, as_of=at))
        online = get_online_features(store, feature_set, keys, at=at)
        rows = pl.DataFrame(
            {feature_set.key: keys, "event_time": [at] * len(keys)},
            schema={feature_set.key: pl.String, "event_time": pl.Datetime("us", "UTC")},
        )
        offline = point_in_time_join(rows, features, feature_set).drop("event_time")
        statuses = [row.pop(status_column(feature_set)) for row in online]
        assert online == offline.to_dicts()
        assert statuses[-1] == dict.fromkeys(feature_set.columns, MISSING_ENTITY)
        seen.update(status for row in statuses for status in row.values())
    assert seen == {OK, TTL_EXPIRED, MISSING_ENTITY}


def test_open_online_store_defaults_to_sqlite_in_the_data_dir(tmp_path):
    embedded = open_online_store("", tmp_path)
    assert isinstance(embedded, SqliteOnlineStore)
    assert embedded.path == tmp_path / "online_store.sqlite"
    embedded.close()
    with pytest.raises(ValueError, match="ONLINE_STORE_URL='postgres://x'"):
        open_online_store("postgres://x", tmp_path)


def test_open_online_store_uses_redis_for_a_redis_url(tmp_path, redis_url):
    remote = open_online_store(redis_url, tmp_path)
    assert isinstance(remote, RedisOnlineStore)
    remote.close()
