"""Calibration of the student's scores: temperature scaling of its logits.

Distillation copies the teacher's ranking but not quite its probabilities, and the
`max_ece` gate judges probabilities. One temperature `T` (score = sigmoid(logit / T)) is
fitted by log loss on the newest training days, which the student's weights never fit on
(they only chose its epoch). Temperature rather than isotonic regression or Platt scaling:
it is monotone, so AUC, the student/teacher ratio and fraud caught are unchanged; it has
one parameter, so a few hundred frauds fix it; isotonic steps lowered AUC and Platt's
intercept followed the validation days' base rate rather than the model's error
(measured on the test world, where both ended with a higher held-out ECE than temperature).

The `Calibration` is part of the student (saved in its spec), and `StudentModel` applies it
in the one forward pass that the pyfunc and the endpoint both run. This module is shipped
with the logged model (see `pyfunc`): numpy only at module level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ml_assets.training.model_inputs import Rows
    from ml_assets.training.student import StudentModel

# Temperatures outside this range mean the logits carry no usable signal: keep T = 1.
TEMPERATURE_RANGE = (0.05, 20.0)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free and exact enough in float32


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Row-weighted mean |observed rate - mean score| over equal-width score bins."""
    index = np.minimum((p * bins).astype(int), bins - 1)
    counts = np.bincount(index, minlength=bins)
    observed = np.bincount(index, weights=y, minlength=bins)
    predicted = np.bincount(index, weights=p, minlength=bins)
    used = counts > 0
    gaps = np.abs(observed[used] - predicted[used]) / counts[used]
    return float((gaps * counts[used]).sum() / counts.sum())


@dataclass(frozen=True)
class Calibration:
    """Maps the student's logits to calibrated fraud probabilities."""

    temperature: float = 1.0

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        scaled = logits if self.temperature == 1.0 else logits / np.float32(self.temperature)
        return sigmoid(scaled).astype(np.float64)

    def to_dict(self) -> dict[str, Any]:
        return {"method": "temperature", "temperature": self.temperature}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Calibration:
        """`None` (a student saved before calibration existed) is the identity."""
        return cls(float(data["temperature"])) if data else cls()


IDENTITY = Calibration()


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> Calibration:
    """The temperature that minimises log loss on (`logits`, `y`): a logistic regression on
    the logit without intercept, whose coefficient is 1/T."""
    from sklearn.linear_model import LogisticRegression

    if not 0 < y.sum() < len(y):
        return IDENTITY  # one class: nothing to calibrate against
    fit = LogisticRegression(C=math.inf, fit_intercept=False).fit(
        logits.astype(np.float64)[:, None], y
    )
    coefficient = float(fit.coef_[0, 0])
    low, high = TEMPERATURE_RANGE
    if not coefficient > 0 or not low <= 1.0 / coefficient <= high:
        return IDENTITY
    return Calibration(1.0 / coefficient)


def calibrate_student(student: StudentModel, rows: Rows, labels: np.ndarray) -> StudentModel:
    """`student` with a temperature fitted on `rows` (days its weights did not fit on), and
    the ECE there before and after in its `info` (logged with its MLflow run)."""
    calibration = fit_temperature(student.logits_numpy(student.features(rows)), labels)
    calibrated = replace(student, calibration=calibration)
    before, after = ece_before_after(calibrated, rows, labels)
    info = {
        **student.info,
        "calibration_temperature": calibration.temperature,
        "calibration_rows": int(len(labels)),
        "calibration_ece_before": before,
        "calibration_ece_after": after,
    }
    return replace(calibrated, info=info)


def ece_before_after(student: StudentModel, rows: Rows, labels: np.ndarray) -> tuple[float, float]:
    """The ECE of `student` on `rows` without its calibration and with it."""
    logits = student.logits_numpy(student.features(rows))
    return (
        expected_calibration_error(labels, IDENTITY.probabilities(logits)),
        expected_calibration_error(labels, student.calibration.probabilities(logits)),
    )
