"""The online feature store: each entity's recent events, kept current by the request stream.

Per (feature set, version, entity) the store holds one blob of fixed-width event records
(`event_log`). Scoring a transaction, or posting an event to `POST /events`, appends that
event's record atomically; a read returns the blob, and features are computed as of the
request's event time by the training set's point-in-time rule. The daily `online_features`
asset writes each validated day's events the same way: appending is idempotent (an event
id counts once), so a backfill or a repair never overwrites newer state, it only fills gaps.
It then compacts each entity it touched: duplicates dropped, events older than the set's
`retention` before the entity's newest event pruned, which bounds the memory per entity.

Values are versioned by feature-set version, so a new definition starts empty instead of
serving values shaped by the old one. Two backends share the encoding: SQLite in the data
dir (the embedded default; an append inserts a row, folded into the entity's blob later, all
inside SQLite's transactions) and Redis
(`APPEND`, atomic; compaction under WATCH/MULTI, retried when another writer got there
first) when `ONLINE_STORE_URL=redis://...`. This module imports no dagster: serving uses it.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import polars as pl

from ml_assets.features.event_log import (
    MISSING_ENTITY,
    OK,
    TTL_EXPIRED,
    AsOf,
    EventLog,
    encode,
    event_id,
    features_as_of,
    record_dtype,
    retention,
    to_micros,
)
from ml_assets.features.registry import FeatureSet
from ml_assets.features.sources import distinct_sources

SQLITE_FILENAME = "online_store.sqlite"
# A rewrite maps an entity's records, normalized (`normalized_records`), to the records kept.
Rewrite = Callable[[np.ndarray], np.ndarray]
__all__ = ["MISSING_ENTITY", "OK", "TTL_EXPIRED", "OnlineStore", "open_online_store"]


class OnlineStore(Protocol):
    """What serving and materialization need from an online store backend."""

    def append(self, records: Mapping[FeatureSet, Mapping[str, bytes]]) -> None:
        """Append encoded event records to each entity's log of each feature set, atomically
        per entity, in one round trip."""
        ...

    def read(self, feature_set: FeatureSet, keys: Sequence[str]) -> dict[str, bytes]:
        """The stored records of `keys` under the set's current version (absent: no events)."""
        ...

    def rewrite(self, feature_set: FeatureSet, keys: Iterable[str] | None, change: Rewrite) -> int:
        """Replace each log (all logs of the version when `keys` is None) by `change(log)`,
        without losing an append made meanwhile; returns the logs rewritten."""
        ...

    def versions(self, feature_set: FeatureSet) -> list[str]:
        """Versions of the set that hold values."""
        ...

    def prune(self, feature_set: FeatureSet, keep_versions: Iterable[str]) -> int:
        """Delete every version of the set not in `keep_versions`; returns entries deleted."""
        ...

    def close(self) -> None: ...


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class SqliteOnlineStore:
    """The embedded online store: one SQLite file in WAL mode (readers never block).

    Each entity's log is a base blob plus the small records appended since it was last
    folded. Appending by `base || record` made SQLite rewrite the entity's whole blob (tens of
    KB for a busy merchant) on every scored transaction, about 1.5 ms a row; inserting a row
    costs a few tens of microseconds. A read concatenates base and appends in arrival order,
    which `EventLog.decode` reads exactly as one appended blob. The appends are folded into
    the base by this process every `fold_at` appends to an entity (raw bytes, no decoding),
    and by every `rewrite` (the daily compaction), in the same transaction as their delete.
    """

    _SCHEMA = (
        """
        CREATE TABLE IF NOT EXISTS online_events (
            feature_set TEXT NOT NULL,
            version TEXT NOT NULL,
            entity_key TEXT NOT NULL,
            records BLOB NOT NULL,
            PRIMARY KEY (feature_set, version, entity_key)
        ) WITHOUT ROWID
        """,
        """
        CREATE TABLE IF NOT EXISTS online_appends (
            seq INTEGER PRIMARY KEY,
            feature_set TEXT NOT NULL,
            version TEXT NOT NULL,
            entity_key TEXT NOT NULL,
            records BLOB NOT NULL
        )
        """,
        "CREATE INDEX IF NOT EXISTS online_appends_entity "
        "ON online_appends (feature_set, version, entity_key, seq)",
    )
    _FOLD = """
        INSERT INTO online_events VALUES (?, ?, ?, ?)
        ON CONFLICT (feature_set, version, entity_key) DO UPDATE
        SET records = CAST(online_events.records || excluded.records AS BLOB)
    """
    _READ_CHUNK = 500

    def __init__(self, path: Path | str, fold_at: int = 64) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fold_at = fold_at
        self._pending: dict[tuple[str, str, str], int] = {}  # appends since this process folded
        # One connection shared by threads of a server, serialised by a lock; replicas in
        # other processes are serialised by SQLite's own write lock.
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0,
                                   isolation_level=None)  # fmt: skip
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            for statement in self._SCHEMA:
                self._db.execute(statement)

    def __repr__(self) -> str:
        return f"SqliteOnlineStore({str(self.path)!r})"

    def append(self, records: Mapping[FeatureSet, Mapping[str, bytes]]) -> None:
        rows = [
            (feature_set.name, feature_set.version, key, blob)
            for feature_set, blobs in records.items()
            for key, blob in blobs.items()
            if blob
        ]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT INTO online_appends (feature_set, version, entity_key, records) "
                    "VALUES (?, ?, ?, ?)",
                    rows,
                )
                due = []
                for name, version, key, _ in rows:
                    count = self._pending.get((name, version, key), 0) + 1
                    self._pending[(name, version, key)] = count
                    if count >= self.fold_at:
                        due.append((name, version, key))
                for entity in due:
                    self._fold(*entity)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            for entity in due:
                self._pending.pop(entity, None)

    def _fold(self, name: str, version: str, key: str) -> None:
        """Move an entity's appends into its base blob (inside the caller's transaction)."""
        appended = self._db.execute(
            "SELECT records FROM online_appends WHERE feature_set = ? AND version = ? "
            "AND entity_key = ? ORDER BY seq",
            (name, version, key),
        ).fetchall()
        if appended:
            self._db.execute(self._FOLD, (name, version, key, b"".join(r for (r,) in appended)))
            self._delete_appends(name, version, [key])

    def _delete_appends(self, name: str, version: str, keys: Sequence[str]) -> None:
        for chunk in _chunks(keys, self._READ_CHUNK):
            self._db.execute(
                "DELETE FROM online_appends WHERE feature_set = ? AND version = ? "
                f"AND entity_key IN ({','.join('?' * len(chunk))})",
                (name, version, *chunk),
            )

    def _read_logs(self, name: str, version: str, keys: Sequence[str] | None) -> dict[str, bytes]:
        """Base blob then appends, per entity (every entity of the version when keys is None);
        the caller holds the lock."""
        if keys is None:
            selections = [("", ())]
        else:
            chunks = _chunks(list(dict.fromkeys(keys)), self._READ_CHUNK)
            selections = [
                (f"AND entity_key IN ({','.join('?' * len(c))})", tuple(c)) for c in chunks
            ]
        found: dict[str, list[bytes]] = {}
        for condition, chunk in selections:
            for table, order in (("online_events", ""), ("online_appends", "ORDER BY seq")):
                cursor = self._db.execute(
                    f"SELECT entity_key, records FROM {table} WHERE feature_set = ? "
                    f"AND version = ? {condition} {order}",
                    (name, version, *chunk),
                )
                for key, blob in cursor:
                    found.setdefault(key, []).append(blob)
        return {key: b"".join(parts) for key, parts in found.items()}

    def read(self, feature_set: FeatureSet, keys: Sequence[str]) -> dict[str, bytes]:
        with self._lock:
            return self._read_logs(feature_set.name, feature_set.version, keys)

    def rewrite(self, feature_set: FeatureSet, keys: Iterable[str] | None, change: Rewrite) -> int:
        name, version = feature_set.name, feature_set.version
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")  # appends of other processes wait for us
            try:
                stored = self._read_logs(name, version, None if keys is None else list(keys))
                rewritten = [
                    (name, version, key, change(normalized_records(feature_set, blob)).tobytes())
                    for key, blob in stored.items()
                ]
                self._db.executemany(
                    "INSERT OR REPLACE INTO online_events VALUES (?, ?, ?, ?)", rewritten
                )
                self._delete_appends(name, version, list(stored))
                self._db.execute(
                    "DELETE FROM online_events WHERE feature_set = ? AND version = ? "
                    "AND length(records) = 0",
                    (name, version),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            for key in stored:
                self._pending.pop((name, version, key), None)
        return len(stored)

    def versions(self, feature_set: FeatureSet) -> list[str]:
        with self._lock:
            cursor = self._db.execute(
                "SELECT version FROM online_events WHERE feature_set = ? UNION "
                "SELECT version FROM online_appends WHERE feature_set = ? ORDER BY version",
                (feature_set.name, feature_set.name),
            )
            return [version for (version,) in cursor]

    def prune(self, feature_set: FeatureSet, keep_versions: Iterable[str]) -> int:
        keep = list(keep_versions)
        marks = ",".join("?" * len(keep))
        where = "WHERE feature_set = ?" + (f" AND version NOT IN ({marks})" if keep else "")
        params = (feature_set.name, *keep)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                (entities,) = self._db.execute(
                    f"SELECT count(*) FROM (SELECT version, entity_key FROM online_events {where}"
                    f" UNION SELECT version, entity_key FROM online_appends {where})",
                    params * 2,
                ).fetchone()
                for table in ("online_events", "online_appends"):
                    self._db.execute(f"DELETE FROM {table} {where}", params)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return entities

    def close(self) -> None:
        with self._lock:
            self._db.close()


class RedisOnlineStore:
    """The online store on Redis: one string of records per (set, version, entity)."""

    _BATCH = 2_000

    def __init__(self, url: str, prefix: str = "ml_assets:online") -> None:
        import redis  # imported here so the embedded default needs no redis client

        self.url = url
        self.prefix = prefix
        self._client = redis.Redis.from_url(url)

    def __repr__(self) -> str:
        return f"RedisOnlineStore({self.url!r})"

    def _key(self, feature_set: FeatureSet, entity_key: str, version: str | None = None) -> str:
        return f"{self.prefix}:{feature_set.name}:{version or feature_set.version}:{entity_key}"

    def _versions_key(self, feature_set: FeatureSet) -> str:
        return f"{self.prefix}:{feature_set.name}:__versions__"

    def append(self, records: Mapping[FeatureSet, Mapping[str, bytes]]) -> None:
        pipe = self._client.pipeline(transaction=False)
        for feature_set, blobs in records.items():
            pipe.sadd(self._versions_key(feature_set), feature_set.version)
            for key, blob in blobs.items():
                if blob:
                    pipe.append(self._key(feature_set, key), blob)  # APPEND is atomic
        pipe.execute()

    def read(self, feature_set: FeatureSet, keys: Sequence[str]) -> dict[str, bytes]:
        unique = list(dict.fromkeys(keys))
        blobs = self._client.mget([self._key(feature_set, k) for k in unique]) if unique else []
        return {k: b for k, b in zip(unique, blobs, strict=True) if b is not None}

    def _stored_keys(self, feature_set: FeatureSet) -> list[str]:
        prefix = self._key(feature_set, "")
        return [k.decode()[len(prefix):]
                for k in self._client.scan_iter(match=prefix + "*", count=1_000)]  # fmt: skip

    def rewrite(self, feature_set: FeatureSet, keys: Iterable[str] | None, change: Rewrite) -> int:
        import redis

        entities = self._stored_keys(feature_set) if keys is None else list(dict.fromkeys(keys))
        for entity in entities:
            key = self._key(feature_set, entity)
            while True:  # optimistic: retry when an append lands between read and write
                with self._client.pipeline(transaction=True) as pipe:
                    try:
                        pipe.watch(key)
                        blob = pipe.get(key)
                        if blob is None:
                            break
                        new = change(normalized_records(feature_set, blob)).tobytes()
                        pipe.multi()
                        pipe.set(key, new) if new else pipe.delete(key)
                        pipe.execute()
                        break
                    except redis.WatchError:
                        continue
        return len(entities)

    def versions(self, feature_set: FeatureSet) -> list[str]:
        members = self._client.smembers(self._versions_key(feature_set))
        return sorted(m.decode() for m in members)

    def prune(self, feature_set: FeatureSet, keep_versions: Iterable[str]) -> int:
        keep = set(keep_versions)
        deleted = 0
        for version in self.versions(feature_set):
            if version in keep:
                continue
            pattern = self._key(feature_set, "*", version)
            batch: list[bytes] = []
            for key in self._client.scan_iter(match=pattern, count=1_000):
                batch.append(key)
                if len(batch) >= self._BATCH:
                    deleted += self._client.unlink(*batch)
                    batch.clear()
            if batch:
                deleted += self._client.unlink(*batch)
            self._client.srem(self._versions_key(feature_set), version)
        return deleted

    def close(self) -> None:
        self._client.close()


def open_online_store(url: str, home: Path) -> OnlineStore:
    """The store named by `ONLINE_STORE_URL`: empty means SQLite in the data dir."""
    if not url:
        return SqliteOnlineStore(Path(home) / SQLITE_FILENAME)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisOnlineStore(url)
    if url.startswith("sqlite:///"):
        return SqliteOnlineStore(Path(url.removeprefix("sqlite:///")))
    raise ValueError(
        f"ONLINE_STORE_URL={url!r} is not understood; leave it empty for the embedded SQLite "
        "store, or set redis://host:port/db (or sqlite:///path/to/file)"
    )


# -- writing events ---------------------------------------------------------------------------
def encode_events(feature_set: FeatureSet, events: pl.DataFrame) -> dict[str, bytes]:
    """Each entity's records for `events` (validated transactions), their sources evaluated
    by polars over the whole frame, as the offline features are."""
    sources = distinct_sources(feature_set)
    frame = (
        events.lazy()
        .filter(pl.col(feature_set.key).is_not_null(), pl.col("event_time").is_not_null())
        .select(
            pl.col(feature_set.key).cast(pl.String).alias("__key"),
            pl.col("event_time").dt.epoch("us").alias("__time"),
            pl.col("transaction_id"),
            *(pl.sql_expr(s).cast(pl.Float64).alias(f"__s{i}") for i, s in enumerate(sources)),
        )
        .sort("__key", "__time")
        .collect()
    )
    ids = [event_id(t) for t in frame["transaction_id"]]
    values = frame.select(f"__s{i}" for i in range(len(sources))).fill_null(float("nan"))
    frame = frame.with_columns(__id=pl.Series(ids, dtype=pl.Int64))
    out: dict[str, bytes] = {}
    matrix = values.to_numpy()
    keys = frame["__key"].to_list()
    times, idarr = frame["__time"].to_numpy(), frame["__id"].to_numpy()
    start = 0
    for end in range(1, len(keys) + 1):
        if end == len(keys) or keys[end] != keys[start]:
            out[keys[start]] = encode(feature_set, times[start:end], idarr[start:end],
                                      matrix[start:end])  # fmt: skip
            start = end
    return out


def normalized_records(feature_set: FeatureSet, blob: bytes) -> np.ndarray:
    """An entity's records as `EventLog.decode` reads them (each event id once, its first
    write; sorted by time, ties in arrival order), as one numpy record array: compaction
    touches thousands of entities a day, where building Python lists per log cost seconds."""
    records = np.frombuffer(blob, dtype=record_dtype(feature_set))
    _, first = np.unique(records["event_id"], return_index=True)
    kept = records[np.sort(first)]
    return kept[np.argsort(kept["time_us"], kind="stable")]


def compact(feature_set: FeatureSet, lateness_us: int = 0) -> Rewrite:
    """Drop duplicates and events older than `retention` (plus the late-event allowance)
    before the entity's newest event: the memory bound per entity."""
    span_us = retention(feature_set) // timedelta(microseconds=1) + lateness_us

    def change(records: np.ndarray) -> np.ndarray:
        if not len(records):
            return records
        return records[records["time_us"] >= records["time_us"][-1] - span_us]

    return change


def write_events(store: OnlineStore, feature_set: FeatureSet, events: pl.DataFrame,
                 lateness_us: int = 0) -> int:  # fmt: skip
    """Append a table of events (idempotent) and compact the entities touched; returns the
    number of entities written."""
    records = encode_events(feature_set, events)
    store.append({feature_set: records})
    store.rewrite(feature_set, list(records), compact(feature_set, lateness_us))
    return len(records)


def truncate_from(store: OnlineStore, feature_set: FeatureSet, moment: datetime) -> int:
    """Forget every event at or after `moment` (a replay starts from the state before it)."""
    cut = to_micros(moment)
    return store.rewrite(feature_set, None, lambda records: records[records["time_us"] < cut])


# -- reading features -------------------------------------------------------------------------
def status_column(feature_set: FeatureSet) -> str:
    """Key of the per-feature status dict in an online read, e.g. `customer__status`."""
    return f"{feature_set.entity}__status"


def read_logs(
    store: OnlineStore, feature_set: FeatureSet, keys: Sequence[str]
) -> dict[str, EventLog]:
    blobs = store.read(feature_set, keys)
    return {key: EventLog.decode(feature_set, blobs.get(key)) for key in dict.fromkeys(keys)}


def as_dict(feature_set: FeatureSet, key: str, features: AsOf) -> dict[str, Any]:
    return {
        feature_set.key: key,
        feature_set.feature_time_column: features.feature_time,
        **features.values,
        status_column(feature_set): features.status,
    }


def get_online_features(
    store: OnlineStore,
    feature_set: FeatureSet,
    entity_keys: Sequence[str],
    at: datetime,
) -> list[dict[str, Any]]:
    """Feature values as of `at` (aware), one dict per requested key, in request order.

    Each dict holds the entity key, `<entity>__feature_time`, every feature column and
    `<entity>__status` (per feature: 'ok', 'ttl_expired' or 'missing_entity'). Missing and
    expired values are None, the same as a training row at `at` sees offline.
    """
    if at.tzinfo is None:
        raise ValueError(f"at={at!r} has no time zone; pass an aware datetime (UTC)")
    logs = read_logs(store, feature_set, entity_keys)
    return [as_dict(feature_set, k, features_as_of(feature_set, logs[k], at)) for k in entity_keys]
