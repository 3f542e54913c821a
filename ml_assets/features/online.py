"""The online feature store: the latest feature values per entity, for low-latency serving.

Values are keyed by (feature set name, feature set version, entity key), so a new definition
(a new version) starts empty instead of serving values shaped by the old one, and older
versions stay readable until pruned. Each entry keeps its as-of `feature_time`; a read applies
the same TTL rule as the offline point-in-time join (`registry.is_stale`), so serving sees
exactly what a training row at the same instant saw.

Two backends share one encoding (feature time in epoch microseconds, values as one JSON
object): SQLite in the data dir (the embedded default, no server) and Redis (one hash per key)
when `ONLINE_STORE_URL=redis://...`. This module imports no dagster: serving uses it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import polars as pl

from ml_assets.features.registry import FEATURE_TIME, FeatureSet, is_stale

OK = "ok"
TTL_EXPIRED = "ttl_expired"
MISSING_ENTITY = "missing_entity"
SQLITE_FILENAME = "online_store.sqlite"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PAYLOAD = "__payload"
_MICROS = "__feature_time_us"


@dataclass(frozen=True)
class StoredRow:
    """One entity's latest stored values of one feature-set version."""

    feature_time: datetime
    values: dict[str, Any]


class OnlineStore(Protocol):
    """What serving and materialization need from an online store backend."""

    def write(self, feature_set: FeatureSet, rows: pl.DataFrame) -> int:
        """Upsert the latest row per entity; an older row never replaces a newer one."""
        ...

    def read(
        self, feature_set: FeatureSet, keys: Sequence[str], version: str | None = None
    ) -> dict[str, StoredRow]:
        """Stored rows of `keys` under `version` (default: the set's current version)."""
        ...

    def versions(self, feature_set: FeatureSet) -> list[str]:
        """Versions of the set that hold values."""
        ...

    def prune(self, feature_set: FeatureSet, keep_versions: Iterable[str]) -> int:
        """Delete every version of the set not in `keep_versions`; returns entries deleted."""
        ...

    def close(self) -> None: ...


def _to_micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def latest_feature_rows(features: pl.DataFrame, feature_set: FeatureSet,
                        as_of: datetime | None = None) -> pl.DataFrame:  # fmt: skip
    """The latest feature row per entity, optionally only rows strictly before `as_of`.

    `as_of` uses the same strictness as the point-in-time join, which is what lets a test (or
    a backfill) load the store with exactly what an offline row at `as_of` would see.
    """
    frame = features.lazy()
    if as_of is not None:
        frame = frame.filter(pl.col(FEATURE_TIME) < as_of)
    return (
        frame.drop_nulls([feature_set.key, FEATURE_TIME])
        .sort(feature_set.key, FEATURE_TIME)
        .unique(subset=[feature_set.key], keep="last", maintain_order=True)
        .select(feature_set.key, FEATURE_TIME, *feature_set.columns)
        .collect()
    )


def _encode(feature_set: FeatureSet, rows: pl.DataFrame) -> pl.DataFrame:
    """Latest row per entity as (key, epoch micros, JSON payload), vectorised in polars."""
    missing = [c for c in (feature_set.key, FEATURE_TIME, *feature_set.columns) if c not in rows]
    if missing:
        raise ValueError(
            f"rows to write lack columns {missing} of feature set {feature_set.name!r} "
            f"(version {feature_set.version}); write the output of compute_entity_features"
        )
    latest = latest_feature_rows(rows, feature_set)
    return latest.select(
        pl.col(feature_set.key).cast(pl.String),
        pl.col(FEATURE_TIME).dt.epoch("us").alias(_MICROS),
        pl.struct(feature_set.columns).struct.json_encode().alias(_PAYLOAD),
    )


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class SqliteOnlineStore:
    """The embedded online store: one SQLite file in WAL mode (readers never block)."""

    _SCHEMA = """
        CREATE TABLE IF NOT EXISTS online_features (
            feature_set TEXT NOT NULL,
            version TEXT NOT NULL,
            entity_key TEXT NOT NULL,
            feature_time_us INTEGER NOT NULL,
            payload TEXT NOT NULL,
            PRIMARY KEY (feature_set, version, entity_key)
        ) WITHOUT ROWID
    """
    _UPSERT = """
        INSERT INTO online_features VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (feature_set, version, entity_key) DO UPDATE
        SET feature_time_us = excluded.feature_time_us, payload = excluded.payload
        WHERE excluded.feature_time_us >= online_features.feature_time_us
    """
    _READ_CHUNK = 500

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection shared by threads of a server, serialised by a lock.
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(self._SCHEMA)
            self._db.commit()

    def __repr__(self) -> str:
        return f"SqliteOnlineStore({str(self.path)!r})"

    def write(self, feature_set: FeatureSet, rows: pl.DataFrame) -> int:
        encoded = _encode(feature_set, rows)
        name, version = feature_set.name, feature_set.version
        params = ((name, version, *row) for row in encoded.iter_rows())
        with self._lock, self._db:
            self._db.executemany(self._UPSERT, params)
        return encoded.height

    def read(
        self, feature_set: FeatureSet, keys: Sequence[str], version: str | None = None
    ) -> dict[str, StoredRow]:
        version = version or feature_set.version
        unique = list(dict.fromkeys(keys))
        found: dict[str, StoredRow] = {}
        with self._lock:
            for chunk in _chunks(unique, self._READ_CHUNK):
                marks = ",".join("?" * len(chunk))
                cursor = self._db.execute(
                    "SELECT entity_key, feature_time_us, payload FROM online_features "
                    f"WHERE feature_set = ? AND version = ? AND entity_key IN ({marks})",
                    (feature_set.name, version, *chunk),
                )
                for key, micros, payload in cursor:
                    found[key] = StoredRow(_from_micros(micros), json.loads(payload))
        return found

    def versions(self, feature_set: FeatureSet) -> list[str]:
        with self._lock:
            cursor = self._db.execute(
                "SELECT DISTINCT version FROM online_features WHERE feature_set = ? "
                "ORDER BY version",
                (feature_set.name,),
            )
            return [version for (version,) in cursor]

    def prune(self, feature_set: FeatureSet, keep_versions: Iterable[str]) -> int:
        keep = list(keep_versions)
        marks = ",".join("?" * len(keep))
        condition = f"AND version NOT IN ({marks})" if keep else ""
        with self._lock, self._db:
            cursor = self._db.execute(
                f"DELETE FROM online_features WHERE feature_set = ? {condition}",
                (feature_set.name, *keep),
            )
            return cursor.rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()


# Replace the hash only when the incoming row is at least as new as the stored one, so a
# backfill of an old partition never overwrites fresher values.
_REDIS_UPSERT = """
local current = redis.call('HGET', KEYS[1], 't')
if current and tonumber(current) > tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 't', ARGV[1], 'v', ARGV[2])
return 1
"""


class RedisOnlineStore:
    """The online store on Redis: one hash per (set, version, entity) with fields t and v."""

    _BATCH = 2_000

    def __init__(self, url: str, prefix: str = "ml_assets:online") -> None:
        import redis  # imported here so the embedded default needs no redis client

        self.url = url
        self.prefix = prefix
        self._client = redis.Redis.from_url(url)
        self._upsert = self._client.register_script(_REDIS_UPSERT)

    def __repr__(self) -> str:
        return f"RedisOnlineStore({self.url!r})"

    def _key(self, name: str, version: str, entity_key: str) -> str:
        return f"{self.prefix}:{name}:{version}:{entity_key}"

    def _versions_key(self, name: str) -> str:
        return f"{self.prefix}:{name}:__versions__"

    def write(self, feature_set: FeatureSet, rows: pl.DataFrame) -> int:
        encoded = _encode(feature_set, rows)
        name, version = feature_set.name, feature_set.version
        self._client.sadd(self._versions_key(name), version)
        for chunk in _chunks(encoded.rows(), self._BATCH):
            pipe = self._client.pipeline(transaction=False)
            for entity_key, micros, payload in chunk:
                key = self._key(name, version, entity_key)
                self._upsert(keys=[key], args=[micros, payload], client=pipe)
            pipe.execute()
        return encoded.height

    def read(
        self, feature_set: FeatureSet, keys: Sequence[str], version: str | None = None
    ) -> dict[str, StoredRow]:
        version = version or feature_set.version
        unique = list(dict.fromkeys(keys))
        pipe = self._client.pipeline(transaction=False)
        for entity_key in unique:
            pipe.hmget(self._key(feature_set.name, version, entity_key), "t", "v")
        found: dict[str, StoredRow] = {}
        for entity_key, (micros, payload) in zip(unique, pipe.execute(), strict=True):
            if micros is not None and payload is not None:
                found[entity_key] = StoredRow(_from_micros(int(micros)), json.loads(payload))
        return found

    def versions(self, feature_set: FeatureSet) -> list[str]:
        members = self._client.smembers(self._versions_key(feature_set.name))
        return sorted(m.decode() for m in members)

    def prune(self, feature_set: FeatureSet, keep_versions: Iterable[str]) -> int:
        keep = set(keep_versions)
        deleted = 0
        for version in self.versions(feature_set):
            if version in keep:
                continue
            pattern = self._key(feature_set.name, version, "*")
            batch: list[bytes] = []
            for key in self._client.scan_iter(match=pattern, count=1_000):
                batch.append(key)
                if len(batch) >= self._BATCH:
                    deleted += self._client.unlink(*batch)
                    batch.clear()
            if batch:
                deleted += self._client.unlink(*batch)
            self._client.srem(self._versions_key(feature_set.name), version)
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


def _serve(feature_set: FeatureSet, key: str, row: StoredRow | None, at: datetime) -> dict:
    result: dict[str, Any] = {
        feature_set.key: key,
        feature_set.feature_time_column: row.feature_time if row else None,
    }
    status: dict[str, str] = {}
    if row is None:
        for column in feature_set.columns:
            result[column], status[column] = None, MISSING_ENTITY
    else:
        age = at - row.feature_time
        for spec in feature_set.features:
            column = spec.column
            if is_stale(age, spec.ttl):
                result[column], status[column] = None, TTL_EXPIRED
            else:
                result[column], status[column] = row.values.get(column), OK
    result[status_column(feature_set)] = status
    return result


def status_column(feature_set: FeatureSet) -> str:
    """Key of the per-feature status dict in an online read, e.g. `customer__status`."""
    return f"{feature_set.entity}__status"


def get_online_features(
    store: OnlineStore,
    feature_set: FeatureSet,
    entity_keys: Sequence[str],
    at: datetime | None = None,
) -> list[dict[str, Any]]:
    """Feature values for serving: one dict per requested key, in request order.

    Each dict holds the entity key, `<entity>__feature_time`, every feature column and
    `<entity>__status` (per feature: 'ok', 'ttl_expired' or 'missing_entity'). Missing and
    expired values are None, the same as a training row sees offline; an unknown entity is
    reported, never raised. `at` defaults to now (UTC).
    """
    if at is None:
        at = datetime.now(UTC)
    elif at.tzinfo is None:
        raise ValueError(f"at={at!r} has no time zone; pass an aware datetime (UTC)")
    stored = store.read(feature_set, entity_keys)
    return [_serve(feature_set, key, stored.get(key), at) for key in entity_keys]
