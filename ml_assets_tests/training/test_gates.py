"""Each gate passes a good candidate and fails one built to be bad in that gate's way."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import polars as pl
import pytest

from ml_assets.training.evaluation import evaluate_model, evaluate_models
from ml_assets.training.gates import (
    CHAMPION_REGRESSION,
    GATE_NAMES,
    MAX_ECE,
    MIN_AUC,
    SLICE_AUC_FLOOR,
    STUDENT_TEACHER_RATIO,
    GateThresholds,
    evaluate_gates,
)
from ml_assets.training.student import StudentModel
from ml_assets.training.teacher import train_teacher
from ml_assets_tests.support.models import FAST_TEACHER

LENIENT_SLICES = GateThresholds(slice_auc_floor=0.6)


def _verdicts(results) -> dict[str, bool]:
    return {r.name: r.passed for r in results}


@dataclass
class RandomOnSlice:
    """A model that is right everywhere except one slice, where it guesses."""

    base: object
    column: str
    value: str
    kind: str = "student"

    def predict_proba(self, rows: pl.DataFrame) -> np.ndarray:
        p = self.base.predict_proba(rows).copy()
        mask = (rows[self.column] == self.value).to_numpy()
        p[mask] = np.random.default_rng(0).uniform(0.0, 0.05, mask.sum())
        return p


def _blind_student(student: StudentModel) -> StudentModel:
    """The student with its numeric inputs cut off: it sees only categoricals."""
    (w0, b0), *rest = student.layers
    w0 = w0.copy()
    w0[:, : len(student.inputs.numeric)] = 0.0
    return replace(student, layers=[(w0, b0), *rest])


def _overconfident_student(student: StudentModel) -> StudentModel:
    """Same ranking, probabilities pushed up by 3 logits: calibration broken, AUC intact."""
    *rest, (w, b) = student.layers
    return replace(student, layers=[*rest, (w, b + np.float32(3.0))])


@pytest.fixture(scope="module")
def good(trained):
    return evaluate_models(trained.teacher, trained.student, trained.test, measure_speed=False)


def test_good_candidate_passes_every_gate(good) -> None:
    results = evaluate_gates(good, LENIENT_SLICES)
    assert [r.name for r in results] == list(GATE_NAMES)
    assert all(r.passed for r in results), [r.message for r in results if not r.passed]


def test_min_auc_fails_for_a_model_trained_on_shuffled_labels(trained) -> None:
    shuffled = trained.train.with_columns(pl.col("is_fraud").shuffle(seed=1))
    bad = train_teacher(shuffled, trained.inputs, FAST_TEACHER)
    evaluation = evaluate_models(trained.teacher, bad, trained.test, measure_speed=False)
    result = next(r for r in evaluate_gates(evaluation) if r.name == MIN_AUC)
    assert not result.passed
    assert result.value < 0.7
    assert "below the floor" in result.message and MIN_AUC in result.message


def test_ratio_gate_fails_for_a_crippled_student(trained) -> None:
    blind = _blind_student(trained.student)
    evaluation = evaluate_models(trained.teacher, blind, trained.test, measure_speed=False)
    result = next(r for r in evaluate_gates(evaluation) if r.name == STUDENT_TEACHER_RATIO)
    assert not result.passed and result.value < 0.98
    assert f"{0.98 - result.value:.4f} below" in result.message


def test_slice_gate_fails_when_one_slice_is_guessed(trained, good) -> None:
    weak = RandomOnSlice(trained.student, "channel", "online")
    evaluation = evaluate_models(trained.teacher, weak, trained.test, measure_speed=False)
    verdicts = _verdicts(evaluate_gates(evaluation, LENIENT_SLICES))
    assert not verdicts[SLICE_AUC_FLOOR]
    message = next(r.message for r in evaluate_gates(evaluation) if r.name == SLICE_AUC_FLOOR)
    assert "channel=online" in message


def test_ece_gate_fails_for_an_overconfident_student(trained) -> None:
    loud = _overconfident_student(trained.student)
    evaluation = evaluate_models(trained.teacher, loud, trained.test, measure_speed=False)
    verdicts = _verdicts(evaluate_gates(evaluation, LENIENT_SLICES))
    assert not verdicts[MAX_ECE]
    assert verdicts[MIN_AUC] and verdicts[STUDENT_TEACHER_RATIO]  # ranking is untouched


def test_champion_gate_compares_on_the_same_rows(trained, good) -> None:
    champion = evaluate_model("champion", trained.student, trained.test)
    assert _verdicts(evaluate_gates(good, LENIENT_SLICES, champion))[CHAMPION_REGRESSION]
    blind = _blind_student(trained.student)
    worse = evaluate_models(trained.teacher, blind, trained.test, measure_speed=False)
    result = next(r for r in evaluate_gates(worse, champion_metrics=champion)
                  if r.name == CHAMPION_REGRESSION)  # fmt: skip
    assert not result.passed and result.value > 0.005
    assert "beyond the allowed" in result.message
    # A mapping of the champion's numbers works too.
    assert not _verdicts(evaluate_gates(worse, champion_metrics={"roc_auc": champion.roc_auc}))[
        CHAMPION_REGRESSION
    ]
