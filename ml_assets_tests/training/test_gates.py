"""Each gate passes a good candidate and fails one built to be bad in that gate's way; a
gate judges a confidence bound, so a figure past its threshold by noise alone passes."""

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
    scores = trained.student.predict_proba(trained.test)
    same = evaluate_gates(good, LENIENT_SLICES, champion, champion_scores=scores)
    assert _verdicts(same)[CHAMPION_REGRESSION]
    blind = _blind_student(trained.student)
    worse = evaluate_models(trained.teacher, blind, trained.test, measure_speed=False)
    bounded = evaluate_gates(worse, champion_metrics=champion, champion_scores=scores)
    result = next(r for r in bounded if r.name == CHAMPION_REGRESSION)
    assert not result.passed and result.value > 0.005 and result.lower_bound > 0.005
    assert "above the allowed" in result.message and "lower 95% bound" in result.message
    # Without the champion's scores the point is compared, and the message says so.
    point = next(r for r in evaluate_gates(worse, champion_metrics=champion)
                 if r.name == CHAMPION_REGRESSION)  # fmt: skip
    assert not point.passed and "point estimate" in point.message
    # A mapping of the champion's numbers works too.
    assert not _verdicts(evaluate_gates(worse, champion_metrics={"roc_auc": champion.roc_auc}))[
        CHAMPION_REGRESSION
    ]


@dataclass
class ColumnScores:
    """A model whose scores are a column of the rows: scores with a known calibration."""

    column: str
    kind: str = "student"

    def predict_proba(self, rows: pl.DataFrame) -> np.ndarray:
        return rows[self.column].to_numpy()


def _known_rows(n: int = 4000, seed: int = 3) -> pl.DataFrame:
    """Rows whose labels are drawn from `truth`; `calibrated` is the truth itself (true ECE
    0), `overconfident` 1.6x it (true ECE about 0.6 x the base rate of 5%), `noisy` the
    truth blurred (true AUC far lower)."""
    rng = np.random.default_rng(seed)
    truth = rng.beta(0.6, 11.4, n)  # mean 0.05
    return pl.DataFrame(
        {
            "is_fraud": (rng.random(n) < truth).astype(np.int8),
            "amount": np.ones(n),
            "channel": ["online"] * n,
            "merchant_category": ["grocery"] * n,
            "calibrated": truth,
            "overconfident": np.minimum(1.6 * truth, 1.0),
            "noisy": np.clip(truth + rng.normal(0.0, 0.08, n), 0.0, 1.0),
        }
    )


def _gate(rows: pl.DataFrame, column: str, name: str, **thresholds) -> object:
    evaluation = evaluate_models(
        ColumnScores("calibrated"), ColumnScores(column), rows, measure_speed=False
    )
    results = evaluate_gates(evaluation, GateThresholds(**thresholds))
    return next(r for r in results if r.name == name)


def test_ece_past_max_by_noise_alone_passes_and_a_real_miscalibration_fails() -> None:
    rows = _known_rows()
    calibrated = _gate(rows, "calibrated", MAX_ECE)
    # A max just under what the perfectly calibrated scores measure: the point estimate is
    # over it by sampling noise only, and the old point rule failed it.
    limit = round(0.9 * calibrated.value, 4)
    assert calibrated.value > limit
    noise = _gate(rows, "calibrated", MAX_ECE, max_ece=limit)
    assert noise.passed, noise.message
    assert noise.bound == noise.lower_bound <= limit < noise.value
    assert "above max" in noise.message and f"lower 95% bound {noise.bound:.4f} <=" in noise.message

    real = _gate(rows, "overconfident", MAX_ECE, max_ece=limit)
    assert real.value > 2 * limit  # the known effect: about 0.03
    assert not real.passed and real.bound == real.lower_bound > limit
    assert f"lower 95% bound {real.bound:.4f} > {limit:.4f}" in real.message


def test_without_benefit_of_doubt_the_candidate_must_show_it_is_within() -> None:
    rows = _known_rows()
    limit = round(0.9 * _gate(rows, "calibrated", MAX_ECE).value, 4)
    # The upper bound is bias-corrected: the calibrated scores pass even so ...
    noise = _gate(rows, "calibrated", MAX_ECE, max_ece=limit, benefit_of_doubt=False)
    assert noise.passed and noise.bound == noise.upper_bound <= limit < noise.value
    assert f"upper 95% bound {noise.bound:.4f} <= {limit:.4f}" in noise.message
    real = _gate(rows, "overconfident", MAX_ECE, max_ece=limit, benefit_of_doubt=False)
    assert not real.passed and f"upper 95% bound {real.bound:.4f} > {limit:.4f}" in real.message
    # ... but an AUC under its floor by noise now fails: its lower bound is below.
    floor = round(_gate(rows, "calibrated", MIN_AUC).value + 0.005, 4)
    unsure = _gate(rows, "calibrated", MIN_AUC, min_auc=floor, benefit_of_doubt=False)
    assert not unsure.passed
    assert f"lower 95% bound {unsure.bound:.4f} < {floor:.4f}" in unsure.message


def test_auc_under_its_floor_by_noise_passes_and_a_truly_worse_model_fails() -> None:
    rows = _known_rows()
    # The Bayes scores against a floor 0.005 above what they measure: under by noise.
    floor = round(_gate(rows, "calibrated", MIN_AUC).value + 0.005, 4)
    noise = _gate(rows, "calibrated", MIN_AUC, min_auc=floor)
    assert noise.value < floor and noise.passed, noise.message
    assert f"upper 95% bound {noise.bound:.4f} >= {floor:.4f}" in noise.message
    worse = _gate(rows, "noisy", MIN_AUC, min_auc=floor)
    assert worse.value < floor - 0.05  # the known effect of the blur
    assert not worse.passed and worse.bound == worse.upper_bound < floor
    assert f"upper 95% bound {worse.bound:.4f} < {floor:.4f}" in worse.message


def test_bounds_are_seeded(trained, good) -> None:
    again = evaluate_gates(good, LENIENT_SLICES)
    first = evaluate_gates(good, LENIENT_SLICES)
    assert [(r.lower_bound, r.upper_bound) for r in again] == [
        (r.lower_bound, r.upper_bound) for r in first
    ]
    other_seed = evaluate_gates(good, replace(LENIENT_SLICES, bootstrap_seed=8))
    assert other_seed[0].upper_bound != first[0].upper_bound
