"""Which drift test each column gets, and at what threshold: chosen on purpose, not by default.

Evidently's defaults switch method with the reference size: below 1000 rows a K-S p-value,
above it Wasserstein / Jensen-Shannon at 0.1. A p-value on 100k+ rows flags shifts of a few
hundredths of a standard deviation (a false alarm every clean day), so we use effect sizes
whose meaning does not change with row count:

- numeric columns: Wasserstein distance normed by the reference std ("how far, in reference
  standard deviations, the mass had to move"). 0.15 sits above the day-to-day noise of clean
  generated days (<= 0.07 for most feature-store columns at 4k-20k rows a day) and well below
  what amount inflation does on its first day to amount (0.45) and the amount sums
  (0.25-0.4); windowed means (7d, 30d) cross it as the window fills with inflated days.
- categorical columns: Jensen-Shannon distance. 0.1 sits above clean noise (<= 0.02) and
  below a new category on 15% of rows (about 0.23).

Columns with a weekly rhythm move more than that on clean days (a merchant's daily count: up
to 0.5 between a Monday and a two-week reference at 20k rows a day); `calibrate_thresholds`
raises their thresholds from clean reference days, so seasonality is not reported as drift.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

import numpy as np
import polars as pl

if TYPE_CHECKING:
    import pandas as pd

ColumnKind = Literal["numeric", "categorical"]

NUMERIC_METHOD = "wasserstein"
NUMERIC_THRESHOLD = 0.15
CATEGORICAL_METHOD = "jensenshannon"
CATEGORICAL_THRESHOLD = 0.1
# Methods whose score is a distance (drift when score >= threshold); all other Evidently
# methods return a p-value (drift when score < threshold).
DISTANCE_METHODS = frozenset({"wasserstein", "jensenshannon", "psi", "kl_div", "hellinger", "ed"})


@dataclass(frozen=True)
class DriftColumns:
    """The columns to watch, split by how their drift is measured."""

    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "numeric", tuple(self.numeric))
        object.__setattr__(self, "categorical", tuple(self.categorical))
        both = set(self.numeric) & set(self.categorical)
        if both:
            raise ValueError(f"columns {sorted(both)} are listed as both numeric and categorical")
        if not self.numeric and not self.categorical:
            raise ValueError("DriftColumns is empty: name at least one numeric or categorical")

    @property
    def all(self) -> tuple[str, ...]:
        return self.numeric + self.categorical

    def kind(self, column: str) -> ColumnKind:
        return "numeric" if column in self.numeric else "categorical"

    @classmethod
    def infer(cls, frame: pl.DataFrame, exclude: Sequence[str] = ()) -> DriftColumns:
        """Numeric dtypes become numeric columns, strings/booleans/enums categorical; ids,
        times and `exclude` are skipped (an id never has a stable distribution)."""
        numeric, categorical = [], []
        for name, dtype in frame.schema.items():
            if name in exclude or name.endswith("_id") or dtype.is_temporal():
                continue
            if dtype.is_numeric():
                numeric.append(name)
            elif dtype in (pl.String, pl.Boolean, pl.Categorical) or isinstance(dtype, pl.Enum):
                categorical.append(name)
        return cls(tuple(numeric), tuple(categorical))


@dataclass(frozen=True)
class ColumnMethod:
    method: str
    threshold: float

    @property
    def higher_is_drift(self) -> bool:
        return self.method in DISTANCE_METHODS

    def drifted(self, score: float) -> bool:
        return score >= self.threshold if self.higher_is_drift else score < self.threshold


@dataclass(frozen=True)
class DriftMethods:
    """Method and threshold per column kind, with per-column overrides."""

    numeric_method: str = NUMERIC_METHOD
    numeric_threshold: float = NUMERIC_THRESHOLD
    categorical_method: str = CATEGORICAL_METHOD
    categorical_threshold: float = CATEGORICAL_THRESHOLD
    per_column_method: Mapping[str, str] = field(default_factory=dict)
    per_column_threshold: Mapping[str, float] = field(default_factory=dict)

    def for_column(self, column: str, kind: ColumnKind) -> ColumnMethod:
        if kind == "numeric":
            method, threshold = self.numeric_method, self.numeric_threshold
        else:
            method, threshold = self.categorical_method, self.categorical_threshold
        return ColumnMethod(
            self.per_column_method.get(column, method),
            self.per_column_threshold.get(column, threshold),
        )

    def resolve(self, columns: DriftColumns) -> dict[str, ColumnMethod]:
        return {c: self.for_column(c, columns.kind(c)) for c in columns.all}


def score_column(
    reference: pd.Series, current: pd.Series, kind: ColumnKind, method: ColumnMethod
) -> float:
    """One column's drift score with Evidently's own implementation of the method, without
    building a report (what `calibrate_thresholds` needs many times)."""
    from evidently.legacy.calculations.stattests.registry import get_registered_stattest
    from evidently.legacy.core import ColumnType

    column_type = ColumnType.Numerical if kind == "numeric" else ColumnType.Categorical
    test = get_registered_stattest(method.method, column_type)
    ref, cur = reference.dropna(), current.dropna()
    if ref.empty or cur.empty:
        return float("nan")
    return float(test(ref, cur, column_type, method.threshold).drift_score)


def calibrate_thresholds(
    reference_days: Sequence[pl.DataFrame],
    columns: DriftColumns,
    methods: DriftMethods | None = None,
    margin: float = 1.5,
    sample_rows: int = 20_000,
    seed: int = 0,
) -> DriftMethods:
    """Raise a column's threshold above the drift its clean days show among themselves.

    Each reference day is compared with the other reference days; a column whose largest
    clean score times `margin` exceeds its threshold gets that as its threshold. Thresholds
    are only ever raised, so the on-purpose defaults stay the floor. Works for distance
    methods only (for a p-value "raising" has no meaning).
    """
    methods = methods or DriftMethods()
    if len(reference_days) < 2:
        raise ValueError("calibrate_thresholds needs at least two clean reference days")
    import pandas as pd

    rng = np.random.default_rng(seed)
    days = [_sample(d.select(columns.all), sample_rows, rng).to_pandas() for d in reference_days]
    thresholds = dict(methods.per_column_threshold)
    for column, method in methods.resolve(columns).items():
        if not method.higher_is_drift:
            continue
        worst = 0.0
        for i, day in enumerate(days):
            rest = pd.concat([d[column] for j, d in enumerate(days) if j != i])
            rest = rest.sample(min(len(rest), sample_rows), random_state=seed)
            score = score_column(rest, day[column], columns.kind(column), method)
            if not np.isnan(score):
                worst = max(worst, score)
        if worst * margin > method.threshold:
            thresholds[column] = round(worst * margin, 4)
    return replace(methods, per_column_threshold=thresholds)


def _sample(frame: pl.DataFrame, rows: int, rng: np.random.Generator) -> pl.DataFrame:
    if frame.height <= rows:
        return frame
    return frame.sample(rows, seed=int(rng.integers(0, 2**31 - 1)))
