"""Entity features for a batch of requests, read from the online store in one call per set.

`FeatureReader` is the small protocol the endpoint needs; `OnlineFeatureReader` adapts the
feature store's `get_online_features`, so serving reads exactly what the feature registry
defines (no hand-written copy of a feature here).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from ml_assets.features.online import (
    MISSING_ENTITY,
    OK,
    TTL_EXPIRED,
    OnlineStore,
    get_online_features,
    open_online_store,
    status_column,
)
from ml_assets.features.registry import FEATURE_SETS, FeatureSet

PARTIAL = "partial"


@dataclass(frozen=True)
class EntityFeatures:
    """Feature columns of one request (None = missing) and a status per entity."""

    values: dict[str, Any]
    status: dict[str, str]  # entity -> ok | partial | ttl_expired | missing_entity

    @property
    def unknown_entities(self) -> list[str]:
        return [entity for entity, s in self.status.items() if s == MISSING_ENTITY]


class FeatureReader(Protocol):
    def read(self, pairs: Sequence[tuple[str, str]], at: datetime) -> list[EntityFeatures]:
        """Features per (customer_id, merchant_id), in order; unknown entities never raise."""
        ...

    def close(self) -> None: ...


def _summary(statuses: dict[str, str]) -> str:
    kinds = set(statuses.values())
    if len(kinds) == 1:
        return kinds.pop()
    return OK if not kinds else PARTIAL


class OnlineFeatureReader:
    """Reads every registered feature set of the entities a request names."""

    def __init__(
        self, store: OnlineStore, feature_sets: Sequence[FeatureSet] | None = None
    ) -> None:
        self.store = store
        self.feature_sets = tuple(feature_sets or FEATURE_SETS.values())

    @classmethod
    def open(cls, url: str, home: Path) -> OnlineFeatureReader:
        return cls(open_online_store(url, home))

    def read(self, pairs: Sequence[tuple[str, str]], at: datetime) -> list[EntityFeatures]:
        out = [EntityFeatures({}, {}) for _ in pairs]
        for feature_set in self.feature_sets:
            index = 0 if feature_set.entity == "customer" else 1
            keys = [pair[index] for pair in pairs]
            rows = get_online_features(self.store, feature_set, keys, at=at)
            status_key = status_column(feature_set)
            for features, row in zip(out, rows, strict=True):
                for column in feature_set.columns:
                    features.values[column] = row[column]
                features.status[feature_set.entity] = _summary(row[status_key])
        return out

    def close(self) -> None:
        self.store.close()


def now_utc() -> datetime:
    return datetime.now(UTC)


__all__ = ["MISSING_ENTITY", "OK", "PARTIAL", "TTL_EXPIRED", "EntityFeatures", "FeatureReader"]
