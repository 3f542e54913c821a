"""Temperature scaling repairs a known miscalibration, and travels with the student."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl

from ml_assets.training.calibration import (
    IDENTITY,
    Calibration,
    calibrate_student,
    expected_calibration_error,
    fit_temperature,
)
from ml_assets.training.evaluation import roc_auc
from ml_assets.training.student import StudentModel
from ml_assets.training.teacher import time_split


def _labelled_logits(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits of the true fraud probability (base rate about 3%) and labels drawn from it."""
    z = rng.normal(-4.0, 1.5, n)
    return z, (rng.random(n) < 1.0 / (1.0 + np.exp(-z))).astype(np.float64)


def test_temperature_recovers_a_known_overconfidence() -> None:
    rng = np.random.default_rng(11)
    z_fit, y_fit = _labelled_logits(rng, 60_000)
    z_new, y_new = _labelled_logits(rng, 60_000)
    # A model twice as sure of itself as the truth: its logits are 2x the true ones.
    calibration = fit_temperature(2.0 * z_fit, y_fit)
    assert abs(calibration.temperature - 2.0) < 0.15
    before = expected_calibration_error(y_new, IDENTITY.probabilities(2.0 * z_new))
    after = expected_calibration_error(y_new, calibration.probabilities(2.0 * z_new))
    assert before > 0.01 and after < before / 3, (before, after)


def test_one_class_or_no_signal_keeps_the_identity() -> None:
    rng = np.random.default_rng(5)
    z = rng.normal(size=1000)
    assert fit_temperature(z, np.zeros(1000)) == IDENTITY
    assert fit_temperature(-z, (z > 0).astype(float)) == IDENTITY  # anti-correlated logits


def _overconfident(student: StudentModel) -> StudentModel:
    """The student with its logits tripled and no calibration: same ranking, too sure."""
    *rest, (w, b) = student.layers
    return replace(student, layers=[*rest, (w * 3, b * 3)], calibration=IDENTITY)


def test_calibrating_a_real_student_lowers_its_ece_on_unseen_days(trained) -> None:
    loud = _overconfident(trained.student)
    _, valid = time_split(trained.train, 2)  # the days train_student calibrates on
    calibrated = calibrate_student(loud, valid, valid["is_fraud"].cast(pl.Float64).to_numpy())
    y = trained.test["is_fraud"].cast(pl.Float64).to_numpy()
    before = expected_calibration_error(y, loud.predict_proba(trained.test))
    after = expected_calibration_error(y, calibrated.predict_proba(trained.test))
    assert calibrated.calibration.temperature > 2.0
    assert after < before / 2, (before, after)
    assert calibrated.info["calibration_ece_after"] < calibrated.info["calibration_ece_before"]
    # Monotone: the ranking of the logits, hence AUC, is kept (float32 ties aside).
    logits = loud.logits_numpy(loud.features(trained.test))
    assert abs(roc_auc(y, calibrated.predict_proba(trained.test)) - roc_auc(y, logits)) < 1e-3


def test_trained_student_carries_its_calibration_through_its_folder(trained, tmp_path) -> None:
    student = trained.student
    assert student.calibration != IDENTITY and "calibration_ece_before" in student.info
    loaded = StudentModel.load(student.save(Path(tmp_path) / "student"))
    assert loaded.calibration == student.calibration
    # A folder saved before calibration existed loads as uncalibrated.
    assert Calibration.from_dict(None) == IDENTITY
