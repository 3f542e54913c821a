"""What a fraud model reads, and the request-time columns both training and serving derive.

Training frames (polars) and serving requests (a dict or a list of dicts) go through the
same `derive_request_columns`, so a derived column can never mean one thing offline and
another online. Models never see the label or the generator's true probability.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import numpy as np
import polars as pl

LABEL_COLUMN = "is_fraud"
TRUTH_COLUMN = "true_fraud_probability"
TIME_COLUMN = "event_time"
AMOUNT_COLUMN = "amount"
CATEGORICAL_COLUMNS = ("merchant_category", "channel", "device")
FEATURE_PREFIXES = ("customer__", "merchant__")
CUSTOMER_MEAN_AMOUNT = "customer__amount_mean_30d"
# Columns that would leak the outcome (or the generator's answer) into a model.
FORBIDDEN_INPUTS = frozenset({LABEL_COLUMN, TRUTH_COLUMN})
NIGHT_END_HOUR = 5

# Derived at request time from raw request fields (and one stored feature when present).
DERIVED_ALWAYS = ("hour_of_day", "is_night", "cross_border", "log_amount")
DERIVED_WITH_MEAN = ("amount_ratio", "log_amount_ratio")

Rows = pl.DataFrame | Mapping[str, Any] | Sequence[Mapping[str, Any]]


def _hours(values: Sequence[Any] | np.ndarray | pl.Series) -> np.ndarray:
    """UTC hour of day of timestamps given as polars/numpy datetimes, datetimes or ISO text."""
    if isinstance(values, pl.Series):
        if values.dtype == pl.String:
            values = values.str.to_datetime(time_zone="UTC")
        if isinstance(values.dtype, pl.Datetime) and values.dtype.time_zone not in (None, "UTC"):
            values = values.dt.convert_time_zone("UTC")
        return values.dt.hour().to_numpy().astype(np.float64)
    hours = np.empty(len(values), dtype=np.float64)
    for i, value in enumerate(values):
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if isinstance(value, datetime):
            hours[i] = value.astimezone(UTC).hour if value.tzinfo else value.hour
        elif isinstance(value, np.datetime64):
            hours[i] = value.astype("datetime64[h]").astype(np.int64) % 24
        else:
            hours[i] = np.nan
    return hours


def _floats(values: Any) -> np.ndarray:
    """Numbers as float64 with None/null as NaN (the models' notion of missing)."""
    if isinstance(values, pl.Series):
        return values.cast(pl.Float64).to_numpy().astype(np.float64, copy=False)
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _texts(values: Any) -> np.ndarray:
    """Text values as an object array, nulls as empty text (an unknown category)."""
    if isinstance(values, pl.Series):
        return values.cast(pl.String).fill_null("").to_numpy().astype(object)
    return np.array(["" if v is None else v for v in values], dtype=object)


def derive_request_columns(columns: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The request-time columns, from raw columns given as polars Series or plain sequences.

    The one definition used by training (whole frames) and serving (single requests).
    """
    amount = _floats(columns[AMOUNT_COLUMN])
    hour = _hours(columns[TIME_COLUMN])
    merchant_country = _texts(columns["merchant_country"])
    customer_country = _texts(columns["customer_country"])
    derived = {
        "hour_of_day": hour,
        "is_night": np.where(np.isnan(hour), np.nan, (hour < NIGHT_END_HOUR).astype(np.float64)),
        "cross_border": (merchant_country != customer_country).astype(np.float64),
        "log_amount": np.log1p(np.maximum(amount, 0.0)),
    }
    if CUSTOMER_MEAN_AMOUNT in columns:
        mean = _floats(columns[CUSTOMER_MEAN_AMOUNT])
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(mean > 0, amount / mean, np.nan)
            derived["amount_ratio"] = ratio
            derived["log_amount_ratio"] = np.log(np.where(ratio > 0, ratio, np.nan))
    return derived


def derive_request_features(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` with the request-time columns added (for training sets and reports)."""
    derived = derive_request_columns({name: frame[name] for name in frame.columns})
    return frame.with_columns(
        pl.Series(name, values).fill_nan(None) for name, values in derived.items()
    )


@dataclass(frozen=True)
class InputArrays:
    """Model inputs as arrays: numeric float64 (NaN = missing) and categoricals as text."""

    numeric: np.ndarray
    categorical: list[np.ndarray]

    @property
    def rows(self) -> int:
        return self.numeric.shape[0]


def _column_sources(rows: Rows) -> tuple[Mapping[str, Any], int]:
    """Columns of a polars frame, a pandas frame, one request dict or a list of them."""
    if isinstance(rows, pl.DataFrame):
        return {name: rows[name] for name in rows.columns}, rows.height
    if hasattr(rows, "to_dict") and hasattr(rows, "columns"):  # pandas, without importing it
        frame = pl.from_pandas(rows)
        return {name: frame[name] for name in frame.columns}, frame.height
    if isinstance(rows, Mapping):
        rows = [rows]
    keys = rows[0].keys() if rows else ()
    return {key: [row.get(key) for row in rows] for key in keys}, len(rows)


@dataclass(frozen=True)
class ModelInputs:
    """The columns a model reads: stored/raw numeric features, derived ones, categoricals.

    `feature_versions` maps each stored feature column to its feature-store version, so a
    registered model says exactly which feature definitions trained it.
    """

    numeric: tuple[str, ...]
    categorical: tuple[str, ...] = CATEGORICAL_COLUMNS
    feature_versions: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        leaks = FORBIDDEN_INPUTS & {*self.numeric, *self.categorical}
        if leaks:
            raise ValueError(f"model inputs {sorted(leaks)} leak the outcome; drop them")

    @classmethod
    def from_frame(
        cls, frame: pl.DataFrame, feature_versions: Mapping[str, str] | None = None
    ) -> ModelInputs:
        """Inputs of a training frame: amount, every numeric `customer__*`/`merchant__*`
        column (not the as-of times) and the derived request columns that frame supports."""
        stored = [
            c
            for c in frame.columns
            if c.startswith(FEATURE_PREFIXES) and frame.schema[c].is_numeric()
        ]
        derived = [*DERIVED_ALWAYS, *(DERIVED_WITH_MEAN if CUSTOMER_MEAN_AMOUNT in stored else ())]
        missing = [c for c in CATEGORICAL_COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(f"training frame lacks categorical columns {missing}")
        return cls(
            numeric=(AMOUNT_COLUMN, *stored, *derived),
            feature_versions=dict(feature_versions or {}),
        )

    @property
    def stored_features(self) -> list[str]:
        return [c for c in self.numeric if c.startswith(FEATURE_PREFIXES)]

    @property
    def required_request_columns(self) -> list[str]:
        """Raw columns a caller must send (stored features may be null/absent = missing)."""
        return [
            TIME_COLUMN, AMOUNT_COLUMN, "merchant_country", "customer_country", *self.categorical
        ]  # fmt: skip

    def arrays(self, rows: Rows) -> InputArrays:
        """Build model inputs from a frame or request rows; absent stored features are NaN."""
        if isinstance(rows, Mapping):
            rows = [rows]
        if isinstance(rows, Sequence):
            return self._arrays_of_requests(rows)
        columns, n = _column_sources(rows)
        self._check_request_columns(columns)
        derived = derive_request_columns(columns)
        numeric = np.empty((n, len(self.numeric)), dtype=np.float64)
        for j, name in enumerate(self.numeric):
            if name in derived:
                numeric[:, j] = derived[name]
            elif name in columns:
                numeric[:, j] = _floats(columns[name])
            else:
                numeric[:, j] = np.nan
        categorical = [_texts(columns[name]) for name in self.categorical]
        return InputArrays(numeric=numeric, categorical=categorical)

    @cached_property
    def _request_layout(self) -> tuple[list[str], list[int], list[str], list[int]]:
        """Where request values and derived columns go in the numeric matrix."""
        derivable = {*DERIVED_ALWAYS, *DERIVED_WITH_MEAN}
        given = [(j, c) for j, c in enumerate(self.numeric) if c not in derivable]
        derived = [(j, c) for j, c in enumerate(self.numeric) if c in derivable]
        return ([c for _, c in given], [j for j, _ in given],
                [c for _, c in derived], [j for j, _ in derived])  # fmt: skip

    def _arrays_of_requests(self, rows: Sequence[Mapping[str, Any]]) -> InputArrays:
        """The request path: one matrix conversion for every given column instead of one per
        column (a request has dozens of features; numpy's per-call cost dominated). The
        derived columns still come from `derive_request_columns`, the one definition."""
        raw = [TIME_COLUMN, AMOUNT_COLUMN, "merchant_country", "customer_country",
               CUSTOMER_MEAN_AMOUNT]  # fmt: skip
        columns = {name: [row.get(name) for row in rows] for name in raw}
        self._check_request_columns(rows[0].keys() if rows else ())
        given, given_at, derived_names, derived_at = self._request_layout
        numeric = np.empty((len(rows), len(self.numeric)), dtype=np.float64)
        numeric[:, given_at] = np.array(
            [[row.get(name) for name in given] for row in rows], dtype=np.float64
        ).reshape(len(rows), len(given))
        derived = derive_request_columns(columns)
        for j, name in zip(derived_at, derived_names, strict=True):
            numeric[:, j] = derived.get(name, np.nan)
        categorical = [_texts([row.get(name) for row in rows]) for name in self.categorical]
        return InputArrays(numeric=numeric, categorical=categorical)

    def _check_request_columns(self, present: Any) -> None:
        missing = [c for c in self.required_request_columns if c not in present]
        if missing:
            raise ValueError(
                f"model input lacks columns {missing}; send them with every request/row"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "numeric": list(self.numeric),
            "categorical": list(self.categorical),
            "feature_versions": dict(self.feature_versions),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelInputs:
        return cls(
            numeric=tuple(data["numeric"]),
            categorical=tuple(data["categorical"]),
            feature_versions=dict(data.get("feature_versions", {})),
        )


def encode_categories(values: np.ndarray, vocabulary: Sequence[str]) -> np.ndarray:
    """Codes of `values` in `vocabulary`; unknown values get NaN (missing to every model)."""
    index = {v: float(i) for i, v in enumerate(vocabulary)}
    return np.array([index.get(v, math.nan) for v in values], dtype=np.float64)


def fit_vocabulary(values: np.ndarray, min_count: int = 1) -> list[str]:
    """Sorted categories seen at least `min_count` times (rarer ones are treated unknown)."""
    uniques, counts = np.unique(values.astype(str), return_counts=True)
    return sorted(str(u) for u, c in zip(uniques, counts, strict=True) if c >= min_count and u)
