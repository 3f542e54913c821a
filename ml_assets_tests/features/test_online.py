"""The online store keeps each entity's recent events and serves features as of any instant
by the training set's point-in-time rule, on SQLite and on a real Redis."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from ml_assets.features.compute import compute_entity_features
from ml_assets.features.event_log import EventLog, retention
from ml_assets.features.online import (
    MISSING_ENTITY,
    OK,
    TTL_EXPIRED,
    RedisOnlineStore,
    SqliteOnlineStore,
    get_online_features,
    open_online_store,
    status_column,
    truncate_from,
    write_events,
)
from ml_assets.features.pit import point_in_time_join
from ml_assets.features.registry import FEATURE_SETS, FeatureSet, FeatureSpec
from ml_assets.features.sources import distinct_sources, source_values
from ml_assets.serving.feature_reader import Event, OnlineFeatureReader

T0 = datetime(2026, 3, 2, 12, tzinfo=UTC)
SMALL_SET = FeatureSet(
    "online_test",
    "customer",
    (
        FeatureSpec("count_1d", "customer", timedelta(days=1), "count", "1", "Int64"),
        FeatureSpec("sum_1d", "customer", timedelta(days=1), "sum", ttl=timedelta(minutes=10)),
        FeatureSpec("std_1d", "customer", timedelta(days=1), "std"),
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


def _events(*rows: tuple[str, str, datetime, float]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={"transaction_id": pl.String, "customer_id": pl.String,
                "event_time": pl.Datetime("us", "UTC"), "amount": pl.Float64},
        orient="row",
    )  # fmt: skip


def _read(store, key: str, at: datetime) -> dict:
    return get_online_features(store, SMALL_SET, [key], at=at)[0]


def test_features_are_those_of_the_events_strictly_before(store):
    write_events(store, SMALL_SET, _events(
        ("t1", "C1", T0, 10.0), ("t2", "C1", T0 + timedelta(minutes=1), 20.0),
        ("t3", "C2", T0, 5.0),
    ))  # fmt: skip
    at_second = _read(store, "C1", T0 + timedelta(minutes=1))  # t2 itself is not seen
    assert (at_second["customer__count_1d"], at_second["customer__sum_1d"]) == (1, 10.0)
    assert at_second["customer__std_1d"] is None  # one value has no spread, as offline
    after = _read(store, "C1", T0 + timedelta(minutes=2))
    assert (after["customer__count_1d"], after["customer__sum_1d"]) == (2, 30.0)
    assert after["customer__std_1d"] == pytest.approx(7.0710678118654755)
    assert after["customer__feature_time"] == T0 + timedelta(minutes=1)
    assert after[status_column(SMALL_SET)] == dict.fromkeys(SMALL_SET.columns, OK)


def test_ttl_is_judged_at_the_request_time_and_unknown_entities_are_reported(store):
    write_events(store, SMALL_SET, _events(("t1", "C1", T0, 10.0)))
    stale = _read(store, "C1", T0 + timedelta(minutes=10, seconds=1))
    assert stale["customer__sum_1d"] is None and stale["customer__count_1d"] == 1
    assert stale[status_column(SMALL_SET)]["customer__sum_1d"] == TTL_EXPIRED
    unknown = _read(store, "C-NEW", T0)
    assert set(unknown[status_column(SMALL_SET)].values()) == {MISSING_ENTITY}
    assert get_online_features(store, SMALL_SET, [], at=T0) == []
    with pytest.raises(ValueError, match="time zone"):
        get_online_features(store, SMALL_SET, ["C1"], at=datetime(2026, 3, 2, 12))


def test_writing_an_event_twice_counts_it_once_and_a_backfill_never_loses_newer_events(store):
    newer = _events(("t2", "C1", T0 + timedelta(hours=1), 20.0))
    older = _events(("t1", "C1", T0, 10.0))
    write_events(store, SMALL_SET, newer)
    write_events(store, SMALL_SET, older)  # a backfill of an earlier day, after the fact
    write_events(store, SMALL_SET, pl.concat([older, newer]))  # and a repair of both
    later = _read(store, "C1", T0 + timedelta(hours=1, minutes=5))
    assert (later["customer__count_1d"], later["customer__sum_1d"]) == (2, 30.0)


def test_compaction_bounds_each_log_by_the_retention(store):
    span = retention(SMALL_SET)
    old = _events(("t0", "C1", T0 - span - timedelta(hours=1), 1.0))
    write_events(store, SMALL_SET, pl.concat([old, _events(("t1", "C1", T0, 2.0))]))
    log = EventLog.decode(SMALL_SET, store.read(SMALL_SET, ["C1"])["C1"])
    assert len(log) == 1  # the event no feature can reach any more is gone


def test_truncating_forgets_events_from_an_instant_on(store):
    write_events(
        store, SMALL_SET, _events(("t1", "C1", T0, 1.0), ("t2", "C1", T0 + timedelta(hours=1), 2.0))
    )  # noqa: E501
    truncate_from(store, SMALL_SET, T0 + timedelta(minutes=30))
    assert _read(store, "C1", T0 + timedelta(hours=2))["customer__count_1d"] == 1


def test_a_new_definition_starts_empty_and_old_versions_can_be_pruned(store):
    write_events(store, SMALL_SET, _events(("t1", "C1", T0, 1.0)))
    longer = FeatureSpec("sum_1d", "customer", timedelta(days=2), "sum")
    new_set = FeatureSet(SMALL_SET.name, "customer", (SMALL_SET.features[0], longer))
    assert new_set.version != SMALL_SET.version
    fresh = get_online_features(store, new_set, ["C1"], at=T0 + timedelta(hours=1))[0]
    assert set(fresh[status_column(new_set)].values()) == {MISSING_ENTITY}
    write_events(store, new_set, _events(("t1", "C1", T0, 1.0)))
    assert set(store.versions(SMALL_SET)) == {SMALL_SET.version, new_set.version}
    assert store.prune(SMALL_SET, keep_versions=[new_set.version]) >= 1
    assert store.versions(SMALL_SET) == [new_set.version]


def test_replicas_updating_the_same_entities_lose_no_update(store, tmp_path):
    """Two replicas (two connections, two readers) record events for the same customers at
    once; every event is counted."""
    other = (
        SqliteOnlineStore(store.path) if isinstance(store, SqliteOnlineStore)
        else RedisOnlineStore(store.url, prefix=store.prefix)
    )  # fmt: skip
    _two_replicas_send_100_events_each(store, other)
    other.close()


def test_sqlite_folds_appends_into_the_base_and_loses_none(tmp_path):
    """Replicas that fold every third append (each its own count) race with each other's
    appends and folds; every event still counts once and few append rows stay unfolded."""
    stores = [SqliteOnlineStore(tmp_path / "online.sqlite", fold_at=3) for _ in range(2)]
    _two_replicas_send_100_events_each(*stores)
    (unfolded,) = stores[0]._db.execute("SELECT count(*) FROM online_appends").fetchone()
    assert unfolded <= (3 - 1) * 2 * 6  # under fold_at per replica and entity (5 C + 1 M)
    changed = write_events(stores[0], SMALL_SET, _events(("t1", "C1", T0, 1.0)))
    assert changed == 1 and stores[0].prune(SMALL_SET, keep_versions=[]) == 1
    for store in stores:
        store.close()


def _two_replicas_send_100_events_each(store, other) -> None:
    feature_set = FEATURE_SETS["customer"]
    replicas = [OnlineFeatureReader(s, [feature_set]) for s in (store, other)]

    def send(replica: OnlineFeatureReader, name: str) -> None:
        for i in range(100):
            fields = {"amount": 1.0, "channel": "online", "merchant_country": "US",
                      "customer_country": "US"}  # fmt: skip
            moment = T0 + timedelta(seconds=i)
            replica.score_and_record([Event(f"{name}-{i}", f"C{i % 5}", "M1", moment, fields)])

    threads = [
        threading.Thread(target=send, args=(r, n)) for r, n in zip(replicas, "ab", strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts = get_online_features(store, feature_set, [f"C{k}" for k in range(5)],
                                 at=T0 + timedelta(minutes=10))  # fmt: skip
    assert [row["customer__txn_count_1d"] for row in counts] == [40] * 5


def test_online_reads_equal_the_point_in_time_join(transactions, day):
    """At random instants (out of order too), every feature of both sets read from the store
    equals the training set's point-in-time join of the offline feature table."""
    store = open_online_store("sqlite:///:memory:", None)
    probes = transactions.filter(pl.col("event_time").dt.date() == day).sample(300, seed=1)
    probes = probes.with_columns(
        pl.col("event_time") + pl.duration(seconds=pl.int_range(0, 300) * 7 % 5000)
    )
    for feature_set in FEATURE_SETS.values():
        history = transactions.filter(pl.col("event_time").dt.date() <= day)
        offline = pl.concat([
            compute_entity_features(history, feature_set, day - timedelta(days=k))
            for k in range(31)
        ])  # fmt: skip
        write_events(store, feature_set, history)
        expected = point_in_time_join(probes.select(feature_set.key, "event_time"), offline,
                                      feature_set)  # fmt: skip
        keys, times = probes[feature_set.key].to_list(), probes["event_time"].to_list()
        for row, key, moment in zip(expected.iter_rows(named=True), keys, times, strict=True):
            online = get_online_features(store, feature_set, [key], at=moment)[0]
            for column in feature_set.columns:
                assert online[column] == pytest.approx(row[column], rel=1e-9, abs=1e-12), (
                    column, key, moment)  # fmt: skip


def test_request_sources_equal_the_offline_evaluation(transactions):
    """The request path evaluates the registry's SQL sources with sqlglot, the offline path
    with polars: the same values for every generated transaction."""
    for feature_set in FEATURE_SETS.values():
        sources = distinct_sources(feature_set)
        offline = transactions.head(2000).select(
            pl.sql_expr(s).cast(pl.Float64).alias(str(i)) for i, s in enumerate(sources)
        ).rows()  # fmt: skip
        online = source_values(feature_set, transactions.head(2000).to_dicts())
        assert online == [tuple(float(v) for v in row) for row in offline]


def test_open_online_store_defaults_to_sqlite_in_the_data_dir(tmp_path):
    embedded = open_online_store("", tmp_path)
    assert isinstance(embedded, SqliteOnlineStore) and embedded.path.parent == tmp_path
    embedded.close()
    with pytest.raises(ValueError, match="ONLINE_STORE_URL"):
        open_online_store("postgres://x", tmp_path)


def test_open_online_store_uses_redis_for_a_redis_url(tmp_path, redis_url):
    remote = open_online_store(redis_url, tmp_path)
    assert isinstance(remote, RedisOnlineStore)
    remote.close()


def test_one_record_packs_to_the_bytes_of_the_record_array():
    """The request path packs its one event with `struct`; the layout is the numpy one."""
    from ml_assets.features.event_log import encode

    feature_set = next(iter(FEATURE_SETS.values()))
    width = len(feature_set.sources)
    values = [[float("nan"), *range(1, width)]]
    single = encode(feature_set, [1_700_000_000_000_000], [-42], values)
    many = encode(feature_set, [1_700_000_000_000_000, 5], [-42, 7], [*values, [0.5] * width])
    assert single == many[: len(single)]
    log = EventLog.decode(feature_set, single)
    assert (log.times, log.ids) == ([1_700_000_000_000_000], [-42])
