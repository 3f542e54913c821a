"""Each entity's recent events, and its features as of any instant, by the registry's rules.

The online store keeps, per entity and feature-set version, the entity's events of the last
`retention` (time, id, and each distinct source's value), packed as fixed-width records so a
read is one blob and an update one atomic append. Features are computed at read time as of
the request's `event_time` T with exactly the point-in-time rule of the training set: the
latest event time f strictly before T anchors each window `[f - window, f]`, and a feature
whose age `T - f` exceeds its TTL is missing (`registry.is_stale`). So what a request sees
equals the training row of a transaction at T, whatever order traffic arrives in.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import numpy as np

from ml_assets.features.registry import FeatureSet, FeatureSpec, is_stale

OK = "ok"
TTL_EXPIRED = "ttl_expired"
MISSING_ENTITY = "missing_entity"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


def to_micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICRO


def from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=int(micros))


def event_id(transaction_id: str) -> int:
    """A stable 64-bit id of an event, so an event written twice counts once."""
    digest = hashlib.blake2b(transaction_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def retention(feature_set: FeatureSet) -> timedelta:
    """How far back events matter: a feature read up to its TTL after the entity's last
    event still needs that event's whole window."""
    return max(spec.ttl + spec.window for spec in feature_set.features)


def record_dtype(feature_set: FeatureSet) -> np.dtype:
    return _record_dtype(len(feature_set.sources))


@cache
def _record_dtype(sources: int) -> np.dtype:
    return np.dtype([("time_us", "<i8"), ("event_id", "<i8"), ("values", "<f8", (sources,))])


@cache
def _record_struct(sources: int) -> struct.Struct:
    """The same layout packed one record at a time: the request path appends one event, where
    building a numpy record array costs more than the rest of the append."""
    return struct.Struct(f"<qq{sources}d")


def encode(feature_set: FeatureSet, times_us: Sequence[int], ids: Sequence[int],
           values: Sequence[Sequence[float]]) -> bytes:  # fmt: skip
    """Records for the store, in the set's fixed layout (NaN for a null source value)."""
    if len(times_us) == 1:
        return _record_struct(len(feature_set.sources)).pack(
            int(times_us[0]), int(ids[0]), *(float(v) for v in values[0])
        )
    dtype = record_dtype(feature_set)
    records = np.empty(len(times_us), dtype=dtype)
    records["time_us"], records["event_id"] = times_us, ids
    records["values"] = np.asarray(values, dtype=np.float64).reshape(
        len(times_us), dtype["values"].shape[0]
    )
    return records.tobytes()


class EventLog:
    """One entity's events sorted by time (ties in arrival order), each id once.

    Plain Python lists on purpose: a log holds tens to hundreds of events, where the C loops
    of `sum`, `max` and slicing beat numpy's per-call cost."""

    def __init__(
        self,
        times: list[int],
        ids: list[int],
        columns: list[list[float]],
        seen: set[int] | None = None,
    ) -> None:
        self.times, self.ids, self.columns = times, ids, columns  # columns: one per source
        self._seen = set(ids) if seen is None else seen
        # Sources with a null (NaN) value somewhere: only those need filtering.
        self._with_nulls = {j for j, column in enumerate(columns) if any(map(math.isnan, column))}

    @classmethod
    def decode(cls, feature_set: FeatureSet, blob: bytes | None) -> EventLog:
        records = np.frombuffer(blob or b"", dtype=record_dtype(feature_set))
        times, ids = records["time_us"].tolist(), records["event_id"].tolist()
        columns = records["values"].T.tolist()
        seen = set(ids)
        if len(seen) < len(ids) or times != sorted(times):
            first: dict[int, int] = {}
            for position, identifier in enumerate(ids):  # an event written twice counts once
                first.setdefault(identifier, position)
            order = sorted(first.values(), key=times.__getitem__)  # stable: ties keep arrival
            times, ids = [times[k] for k in order], [ids[k] for k in order]
            columns = [[column[k] for k in order] for column in columns]
        return cls(times, ids, columns, seen)

    def __len__(self) -> int:
        return len(self.times)

    def insert(self, time_us: int, identifier: int, values: Sequence[float]) -> bool:
        """Add an event in time order; False (and nothing added) if it is already here."""
        if identifier in self._seen:
            return False
        self._seen.add(identifier)
        at = bisect.bisect_right(self.times, time_us)
        self.times.insert(at, time_us)
        self.ids.insert(at, identifier)
        for j, (column, value) in enumerate(zip(self.columns, values, strict=True)):
            column.insert(at, float(value))
            if math.isnan(value):
                self._with_nulls.add(j)
        return True

    def aggregate(self, spec: FeatureSpec, source: int, lo: int, hi: int) -> Any:
        """`spec`'s aggregation of one source over the events lo..hi-1."""
        values = self.columns[source][lo:hi]
        if source in self._with_nulls:
            values = [v for v in values if not math.isnan(v)]
        n = len(values)
        if spec.aggregation == "count":
            return n
        if n == 0:
            return None
        match spec.aggregation:
            case "sum":
                return math.fsum(values)
            case "mean" | "share":
                return math.fsum(values) / n
            case "max":
                return max(values)
            case "std":
                if n < 2:
                    return None
                mean = math.fsum(values) / n
                return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
        raise ValueError(f"feature {spec.column}: aggregation {spec.aggregation!r} is not served")


@dataclass(frozen=True)
class AsOf:
    """An entity's features as of an instant: values (None when missing), a status per
    feature, and the time of the event they were computed after (None: no event before)."""

    values: dict[str, Any]
    status: dict[str, str]
    feature_time: datetime | None


@cache
def _plan(feature_set: FeatureSet) -> tuple[tuple[FeatureSpec, int, int, int], ...]:
    """Per feature: its spec, source index, window and TTL in microseconds, worked out once
    per set instead of on every read."""
    index = {source: i for i, source in enumerate(feature_set.sources)}
    return tuple(
        (spec, index[spec.source], spec.window // _MICRO, spec.ttl // _MICRO)
        for spec in feature_set.features
    )


def features_as_of(feature_set: FeatureSet, log: EventLog, at: datetime) -> AsOf:
    """The set's features of one entity as of `at`, by the training set's point-in-time rule."""
    at_us = to_micros(at)
    before = bisect.bisect_left(log.times, at_us)  # events strictly before `at`
    if before == 0:
        columns = feature_set.columns
        return AsOf(dict.fromkeys(columns), dict.fromkeys(columns, MISSING_ENTITY), None)
    latest = log.times[before - 1]
    age_us = at_us - latest
    starts: dict[int, int] = {}
    values, status = {}, {}
    for spec, source, window_us, ttl_us in _plan(feature_set):
        if is_stale(age_us, ttl_us):
            values[spec.column], status[spec.column] = None, TTL_EXPIRED
            continue
        start = starts.get(window_us)
        if start is None:  # the window [latest - window, latest], closed on both ends
            start = starts[window_us] = bisect.bisect_left(log.times, latest - window_us)
        values[spec.column] = log.aggregate(spec, source, start, before)
        status[spec.column] = OK
    return AsOf(values, status, from_micros(latest))
