"""The student's input preprocessing, fitted on training rows and saved with its weights.

Serving needs nothing but this object and the weights: nulls become the training median
plus a missing flag, skewed non-negative columns are log-scaled, values are clipped to the
training range and standardised, and categoricals are one-hot with an "other" slot for
values training never saw (or saw too rarely to learn from).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any

import numpy as np

from ml_assets.training.model_inputs import FEATURE_PREFIXES, InputArrays, ModelInputs

SKEW_FOR_LOG = 2.0
CLIP_QUANTILES = (0.001, 0.999)


@dataclass(frozen=True)
class NumericStep:
    """How one numeric column is prepared (all statistics from training rows)."""

    name: str
    median: float
    log: bool
    low: float
    high: float
    mean: float
    std: float
    missing_flag: bool


@dataclass(frozen=True)
class StudentPreprocessor:
    """Turns `InputArrays` into the student's float32 matrix; plain data, JSON round-trips."""

    numeric: tuple[NumericStep, ...]
    categories: dict[str, list[str]]

    @cached_property
    def width(self) -> int:
        flags = sum(step.missing_flag for step in self.numeric)
        return len(self.numeric) + flags + sum(len(v) + 1 for v in self.categories.values())

    @cached_property
    def _stats(self) -> dict[str, np.ndarray]:
        """Per-column statistics as arrays, so a transform is a few vector operations."""
        steps = self.numeric
        return {
            "median": np.array([s.median for s in steps]),
            "log": np.array([s.log for s in steps], dtype=bool),
            "low": np.array([s.low for s in steps]),
            "high": np.array([s.high for s in steps]),
            "mean": np.array([s.mean for s in steps]),
            "std": np.array([s.std for s in steps]),
            "flags": np.array([j for j, s in enumerate(steps) if s.missing_flag], dtype=np.int64),
        }

    @cached_property
    def _slots(self) -> list[dict[str, int]]:
        return [{v: i for i, v in enumerate(vocab)} for vocab in self.categories.values()]

    def transform(self, arrays: InputArrays) -> np.ndarray:
        """Matrix layout: scaled numerics, missing flags, then one-hot blocks (last slot of
        each block = a category unseen in training)."""
        st = self._stats
        n, k = arrays.numeric.shape
        out = np.zeros((n, self.width), dtype=np.float32)
        missing = np.isnan(arrays.numeric)
        values = np.where(missing, st["median"], arrays.numeric)
        logged = st["log"]
        values[:, logged] = np.log1p(np.maximum(values[:, logged], 0.0))
        out[:, :k] = (np.minimum(np.maximum(values, st["low"]), st["high"]) - st["mean"]) / st[
            "std"
        ]
        col = k + st["flags"].size
        out[:, k:col] = missing[:, st["flags"]]
        rows = np.arange(n)
        for values, slots in zip(arrays.categorical, self._slots, strict=True):
            other = len(slots)
            if n == 1:
                out[0, col + slots.get(values[0], other)] = 1.0
            else:
                codes = np.fromiter((slots.get(v, other) for v in values), np.int64, count=n)
                out[rows, col + codes] = 1.0
            col += other + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"numeric": [asdict(s) for s in self.numeric], "categories": self.categories}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudentPreprocessor:
        return cls(
            numeric=tuple(NumericStep(**s) for s in data["numeric"]),
            categories={k: list(v) for k, v in data["categories"].items()},
        )


def _skew(values: np.ndarray) -> float:
    std = values.std()
    return float(((values - values.mean()) ** 3).mean() / std**3) if std > 0 else 0.0


def fit_preprocessor(
    inputs: ModelInputs, arrays: InputArrays, min_category_count: int = 20
) -> StudentPreprocessor:
    """Learn imputation, scaling and category slots from training rows."""
    steps = []
    for j, name in enumerate(inputs.numeric):
        raw = arrays.numeric[:, j]
        present = raw[~np.isnan(raw)]
        if present.size == 0:
            present = np.zeros(1)
        median = float(np.median(present))
        log = bool(present.min() >= 0 and _skew(present) > SKEW_FOR_LOG)
        values = np.log1p(present) if log else present
        low, high = (float(q) for q in np.quantile(values, CLIP_QUANTILES))
        clipped = np.clip(values, low, high)
        std = float(clipped.std())
        steps.append(
            NumericStep(
                name=name,
                median=median,
                log=log,
                low=low,
                high=high,
                mean=float(clipped.mean()),
                std=std if std > 1e-12 else 1.0,
                # Stored features can be missing at serving time even if never in training.
                missing_flag=bool(np.isnan(raw).any() or name.startswith(FEATURE_PREFIXES)),
            )
        )
    categories = {}
    for name, values in zip(inputs.categorical, arrays.categorical, strict=True):
        uniques, counts = np.unique(values.astype(str), return_counts=True)
        categories[name] = sorted(
            str(u) for u, c in zip(uniques, counts, strict=True) if c >= min_category_count and u
        )
    return StudentPreprocessor(numeric=tuple(steps), categories=categories)
