"""The feature registry: every feature is declared once here, and everything else derives from it.

Offline computation (`compute.py`), the point-in-time join (`pit.py`) and the online store
(`online.py`) all read these specs, so there is no second hand-written copy of a feature for
serving. A feature's `version` is a hash of its definition: change the source, window,
aggregation, dtype or TTL and the version changes, and so does its feature set's version, which
keys the online store so a new definition never serves values computed by an old one.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import Literal

import polars as pl

Entity = Literal["customer", "merchant"]
Aggregation = Literal["count", "sum", "mean", "std", "max", "share"]

ENTITY_KEYS: dict[str, str] = {"customer": "customer_id", "merchant": "merchant_id"}
AGGREGATIONS = ("count", "sum", "mean", "std", "max", "share")
# Counts are integers; everything else is a float aggregate of a float source.
DTYPES: dict[str, pl.DataType] = {"Int64": pl.Int64(), "Float64": pl.Float64()}
FEATURE_TIME = "feature_time"
VERSION_LENGTH = 10


def _hash(payload: object) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:VERSION_LENGTH]


def _format_delta(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def is_stale(age, ttl):
    """The one TTL rule: a value older than its TTL is not served, offline or online.

    Works on integer microseconds (online reads), `timedelta`s and a polars duration
    expression (the offline join) alike, so the two paths cannot drift apart.
    """
    return age > ttl


@dataclass(frozen=True)
class FeatureSpec:
    """One feature: an aggregation of a source expression over a trailing time window.

    `source` is a SQL expression over the validated transaction columns (evaluated with
    `polars.sql_expr`), kept as text so the definition can be hashed into `version`.
    `description` is documentation only and does not change the version.
    """

    name: str
    entity: Entity
    window: timedelta
    aggregation: Aggregation
    source: str = "amount"
    dtype: str = "Float64"
    description: str = ""
    ttl: timedelta | None = None

    def __post_init__(self) -> None:
        if self.entity not in ENTITY_KEYS:
            raise ValueError(
                f"feature {self.name!r}: entity {self.entity!r} is unknown; "
                f"use one of {sorted(ENTITY_KEYS)}"
            )
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(
                f"feature {self.name!r}: aggregation {self.aggregation!r} is unknown; "
                f"use one of {AGGREGATIONS}"
            )
        if self.dtype not in DTYPES:
            raise ValueError(
                f"feature {self.name!r}: dtype {self.dtype!r} is unknown; use one of {list(DTYPES)}"
            )
        if self.window <= timedelta(0):
            raise ValueError(f"feature {self.name!r}: window must be positive, got {self.window}")
        if self.ttl is None:
            object.__setattr__(self, "ttl", self.window)

    @cached_property
    def column(self) -> str:
        """The output column name, `<entity>__<feature>`."""
        return f"{self.entity}__{self.name}"

    @property
    def polars_dtype(self) -> pl.DataType:
        return DTYPES[self.dtype]

    def source_expr(self) -> pl.Expr:
        """The source as a polars expression over the validated columns."""
        return pl.sql_expr(self.source)

    def definition(self) -> dict[str, object]:
        """Everything that changes the values served, in a hashable form."""
        return {
            "name": self.name,
            "entity": self.entity,
            "window_s": self.window.total_seconds(),
            "aggregation": self.aggregation,
            "source": self.source,
            "dtype": self.dtype,
            "ttl_s": self.ttl.total_seconds(),
        }

    @cached_property
    def version(self) -> str:
        return _hash(self.definition())


@dataclass(frozen=True)
class FeatureSet:
    """Features of one entity that are computed, joined and served together."""

    name: str
    entity: Entity
    features: tuple[FeatureSpec, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        object.__setattr__(self, "features", tuple(self.features))
        wrong = [f.name for f in self.features if f.entity != self.entity]
        if wrong:
            raise ValueError(
                f"feature set {self.name!r} is for entity {self.entity!r} but features {wrong} "
                "are declared for another entity; move them to that entity's set"
            )
        names = [f.name for f in self.features]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"feature set {self.name!r} declares {duplicates} more than once")

    def __hash__(self) -> int:
        """The version's: a digest of the whole definition, computed once. The generated hash
        would re-hash every spec each time the request path keys a cache or batch by set."""
        return hash(self.version)

    @property
    def key(self) -> str:
        """The entity key column, e.g. `customer_id`."""
        return ENTITY_KEYS[self.entity]

    @cached_property
    def columns(self) -> tuple[str, ...]:
        """The output columns, in declaration order."""
        return tuple(f.column for f in self.features)

    @cached_property
    def sources(self) -> tuple[str, ...]:
        """The distinct source expressions of the set's features, in one fixed order (the
        online store's record layout)."""
        return tuple(sorted({f.source for f in self.features}))

    @property
    def feature_time_column(self) -> str:
        """Name of the as-of time of the joined values in a training set or online read."""
        return f"{self.entity}__{FEATURE_TIME}"

    @property
    def max_window(self) -> timedelta:
        return max(f.window for f in self.features)

    @cached_property
    def version(self) -> str:
        return _hash({"name": self.name, "features": [f.version for f in self.features]})

    def schema(self) -> dict[str, pl.DataType]:
        """Schema of the offline feature table this set produces."""
        return {
            self.key: pl.String(),
            FEATURE_TIME: pl.Datetime("us", "UTC"),
            **{f.column: f.polars_dtype for f in self.features},
        }


def _feature(
    entity: Entity,
    name: str,
    aggregation: Aggregation,
    window: timedelta,
    source: str,
    description: str,
) -> FeatureSpec:
    dtype = "Int64" if aggregation == "count" else "Float64"
    return FeatureSpec(name, entity, window, aggregation, source, dtype, description)


HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
ONE = "1"
AMOUNT = "amount"
IS_ONLINE = "CAST(channel = 'online' AS DOUBLE)"
IS_CROSS_BORDER = "CAST(merchant_country <> customer_country AS DOUBLE)"
IS_NIGHT = "CAST(EXTRACT(HOUR FROM event_time) < 5 AS DOUBLE)"  # event_time is UTC

# Fraud shows as spending unlike the customer's own (amount vs 30-day mean and spread), bursts
# (velocity in the last hour), online and cross-border use, and night-time activity.
_C = "customer"
CUSTOMER_FEATURES = FeatureSet(
    name="customer_features",
    entity=_C,
    features=(
        _feature(_C, "txn_count_1h", "count", HOUR, ONE, "Transactions in the last hour"),
        _feature(_C, "amount_sum_1h", "sum", HOUR, AMOUNT, "Amount spent in the last hour"),
        _feature(_C, "txn_count_1d", "count", DAY, ONE, "Transactions in the last day"),
        _feature(_C, "amount_sum_1d", "sum", DAY, AMOUNT, "Amount spent in the last day"),
        _feature(_C, "txn_count_7d", "count", 7 * DAY, ONE, "Transactions in the last 7 days"),
        _feature(_C, "amount_max_7d", "max", 7 * DAY, AMOUNT, "Largest amount in 7 days"),
        _feature(_C, "online_share_7d", "share", 7 * DAY, IS_ONLINE, "Share online, 7 days"),
        _feature(_C, "night_share_30d", "share", 30 * DAY, IS_NIGHT, "Share 00-05h UTC, 30d"),
        _feature(_C, "txn_count_30d", "count", 30 * DAY, ONE, "Transactions in 30 days"),
        _feature(_C, "amount_mean_30d", "mean", 30 * DAY, AMOUNT, "Typical amount, 30 days"),
        _feature(_C, "amount_std_30d", "std", 30 * DAY, AMOUNT, "Amount spread, 30 days"),
        _feature(
            _C, "cross_border_share_30d", "share", 30 * DAY, IS_CROSS_BORDER,
            "Share abroad (merchant country differs), 30 days",
        ),
    ),
)  # fmt: skip

_M = "merchant"
MERCHANT_FEATURES = FeatureSet(
    name="merchant_features",
    entity=_M,
    features=(
        _feature(_M, "txn_count_1d", "count", DAY, ONE, "Transactions in the last day"),
        _feature(_M, "txn_count_7d", "count", 7 * DAY, ONE, "Transactions in the last 7 days"),
        _feature(_M, "amount_mean_7d", "mean", 7 * DAY, AMOUNT, "Typical ticket, 7 days"),
        _feature(_M, "online_share_7d", "share", 7 * DAY, IS_ONLINE, "Share online, 7 days"),
        _feature(
            _M, "cross_border_share_7d", "share", 7 * DAY, IS_CROSS_BORDER,
            "Share of foreign customers, 7 days",
        ),
        _feature(_M, "night_share_7d", "share", 7 * DAY, IS_NIGHT, "Share 00-05h UTC, 7 days"),
    ),
)  # fmt: skip

FEATURE_SETS: dict[str, FeatureSet] = {
    fs.entity: fs for fs in (CUSTOMER_FEATURES, MERCHANT_FEATURES)
}


def feature_versions() -> dict[str, str]:
    """Every feature column with its version: what a model's lineage records it was trained on."""
    return {f.column: f.version for fs in FEATURE_SETS.values() for f in fs.features}


def feature_set_for(entity: str) -> FeatureSet:
    """The registered feature set of an entity ('customer' or 'merchant')."""
    try:
        return FEATURE_SETS[entity]
    except KeyError:
        raise ValueError(
            f"no feature set for entity {entity!r}; registered: {sorted(FEATURE_SETS)}"
        ) from None


def max_window(entity: str) -> timedelta:
    """The longest window of an entity's features: how far back day D's history must reach."""
    return feature_set_for(entity).max_window


def history_days(entity: str) -> int:
    """How many whole days before day D the feature computation of day D needs."""
    return math.ceil(max_window(entity) / DAY)


def format_registry_table() -> str:
    """The registry as a plain text table, for `ml-assets features`."""
    header = ("column", "aggregation", "window", "ttl", "version", "source", "description")
    lines: list[str] = []
    for fs in FEATURE_SETS.values():
        lines.append(
            f"{fs.name} (entity {fs.entity}, key {fs.key}, version {fs.version}, "
            f"history {history_days(fs.entity)} days)"
        )
        rows = [
            (
                f.column, f.aggregation, _format_delta(f.window), _format_delta(f.ttl),
                f.version, f.source, f.description,
            )
            for f in fs.features
        ]  # fmt: skip
        widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
        for row in (header, *rows):
            cells = (c.ljust(w) for c, w in zip(row, widths, strict=True))
            lines.append(("  " + "  ".join(cells)).rstrip())
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
