"""Entity features for the endpoint, read as of each request's event time and kept current by
the requests themselves.

`OnlineFeatureReader.score_and_record` is the request path's one call per micro-batch: it
reads the event logs of every customer and merchant in the batch (one store read per
feature set), walks the batch in event-time order computing each request's features as of
its own `event_time` by the training set's point-in-time rule (so a burst inside one batch
sees its earlier members), adds each request's event to its entities' logs, and appends the
new events to the store at the end (one atomic write per feature set). Everything derives
from the feature registry; nothing here names a feature.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from ml_assets.features.event_log import (
    MISSING_ENTITY,
    OK,
    TTL_EXPIRED,
    EventLog,
    encode,
    event_id,
    features_as_of,
    to_micros,
)
from ml_assets.features.online import OnlineStore, open_online_store, read_logs
from ml_assets.features.registry import FEATURE_SETS, FeatureSet
from ml_assets.features.sources import source_values

PARTIAL = "partial"


@dataclass(frozen=True)
class Event:
    """One transaction as the feature store sees it: who, when, and the fields its sources
    read (amount, channel, countries, ...)."""

    transaction_id: str
    customer_id: str
    merchant_id: str
    event_time: datetime  # aware, UTC
    fields: Mapping[str, Any]

    def key(self, feature_set: FeatureSet) -> str:
        return self.customer_id if feature_set.entity == "customer" else self.merchant_id

    def source_row(self) -> dict[str, Any]:
        """The columns a feature source may read, as the warehouse names them."""
        return {**self.fields, "event_time": self.event_time}


@dataclass(frozen=True)
class EntityFeatures:
    """Feature columns of one request (None = missing) and a status per entity."""

    values: dict[str, Any]
    status: dict[str, str]  # entity -> ok | partial | ttl_expired | missing_entity

    @property
    def unknown_entities(self) -> list[str]:
        return [entity for entity, s in self.status.items() if s == MISSING_ENTITY]


class FeatureReader(Protocol):
    def score_and_record(
        self, events: Sequence[Event], record: bool = True
    ) -> list[EntityFeatures]:
        """Features per event as of its event time, in order; with `record`, the events
        are then added to the store. Unknown entities never raise."""
        ...

    def record(self, events: Sequence[Event]) -> int:
        """Add events to the store without scoring them; returns how many were new."""
        ...

    def close(self) -> None: ...


def summary(statuses: Mapping[str, str]) -> str:
    kinds = set(statuses.values())
    if len(kinds) == 1:
        return kinds.pop()
    return OK if not kinds else PARTIAL


class OnlineFeatureReader:
    """Reads and updates every registered feature set of the entities a batch names."""

    def __init__(
        self, store: OnlineStore, feature_sets: Sequence[FeatureSet] | None = None
    ) -> None:
        self.store = store
        self.feature_sets = tuple(feature_sets or FEATURE_SETS.values())

    @classmethod
    def open(cls, url: str, home: Path) -> OnlineFeatureReader:
        return cls(open_online_store(url, home))

    def score_and_record(
        self, events: Sequence[Event], record: bool = True
    ) -> list[EntityFeatures]:
        return self._walk(events, record)[0]

    def record(self, events: Sequence[Event]) -> int:
        return self._walk(events, True)[1]

    def _walk(self, events: Sequence[Event], record: bool) -> tuple[list[EntityFeatures], int]:
        """Each event's features as of its time, in event-time order, each event added to
        its entities' logs after it is read; then the new events appended to the store.
        Returns the features and how many events the first feature set had not seen."""
        out = [EntityFeatures({}, {}) for _ in events]
        new, appends = None, {}
        order = sorted(range(len(events)), key=lambda i: events[i].event_time)
        if record:  # each event's time and id, and source values per distinct sources
            stamps = [(to_micros(events[i].event_time), event_id(events[i].transaction_id))
                      for i in order]  # fmt: skip
            rows = [events[i].source_row() for i in order]
            evaluated: dict[tuple[str, ...], list[tuple[float, ...]]] = {}
        for feature_set in self.feature_sets:
            logs = read_logs(self.store, feature_set, [e.key(feature_set) for e in events])
            if record and feature_set.sources not in evaluated:
                evaluated[feature_set.sources] = source_values(feature_set, rows)
            added: dict[str, list[tuple[int, int, tuple[float, ...]]]] = {}
            for position, i in enumerate(order):
                event = events[i]
                key = event.key(feature_set)
                log = logs[key]
                features = features_as_of(feature_set, log, event.event_time)
                out[i].values.update(features.values)
                out[i].status[feature_set.entity] = summary(features.status)
                if record:
                    record_ = (*stamps[position], evaluated[feature_set.sources][position])
                    if log.insert(*record_):
                        added.setdefault(key, []).append(record_)
            if added:
                appends[feature_set] = _encoded(feature_set, added)
            if new is None:
                new = sum(len(records) for records in added.values())
        if appends:
            self.store.append(appends)  # one round trip (one transaction) for every set
        return out, new or 0

    def close(self) -> None:
        self.store.close()


def _encoded(
    feature_set: FeatureSet, added: Mapping[str, list[tuple[int, int, tuple[float, ...]]]]
) -> dict[str, bytes]:
    return {key: encode(feature_set, *zip(*records, strict=True)) for key, records in added.items()}


__all__ = [
    "MISSING_ENTITY",
    "OK",
    "PARTIAL",
    "TTL_EXPIRED",
    "EntityFeatures",
    "Event",
    "EventLog",
    "FeatureReader",
    "OnlineFeatureReader",
]
