"""Promotion gates: the conditions a candidate must meet before it may serve.

Pure functions of an `Evaluation`, so the asset check, the promotion sensor and the tests
all judge a candidate the same way, and each failure says which gate and by how much.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ml_assets.training.evaluation import Evaluation, ModelMetrics

MIN_AUC = "min_auc"
STUDENT_TEACHER_RATIO = "student_teacher_auc_ratio"
SLICE_AUC_FLOOR = "slice_auc_floor"
MAX_ECE = "max_ece"
CHAMPION_REGRESSION = "champion_regression"
GATE_NAMES = (MIN_AUC, STUDENT_TEACHER_RATIO, SLICE_AUC_FLOOR, MAX_ECE, CHAMPION_REGRESSION)


@dataclass(frozen=True)
class GateThresholds:
    """What 'good enough to serve' means; slices smaller than the minimums are not judged
    because their AUC is noise."""

    min_auc: float = 0.80
    min_student_teacher_auc_ratio: float = 0.98
    slice_auc_floor: float = 0.70
    min_slice_rows: int = 500
    min_slice_positives: int = 20
    max_ece: float = 0.01
    max_regression_vs_champion: float = 0.005


@dataclass(frozen=True)
class GateResult:
    name: str
    passed: bool
    value: float | None
    threshold: float
    message: str


def _min_auc(m: ModelMetrics, t: GateThresholds) -> GateResult:
    auc = m.roc_auc
    passed = auc is not None and auc >= t.min_auc
    if auc is None:
        message = f"{MIN_AUC}: {m.model} AUC undefined (evaluation rows hold one class)"
    else:
        verb = "meets" if passed else f"is {t.min_auc - auc:.4f} below"
        message = f"{MIN_AUC}: {m.model} AUC {auc:.4f} {verb} the floor {t.min_auc:.4f}"
    return GateResult(MIN_AUC, passed, auc, t.min_auc, message)


def _ratio(e: Evaluation, t: GateThresholds) -> GateResult:
    ratio = e.fidelity.auc_ratio
    floor = t.min_student_teacher_auc_ratio
    passed = ratio is not None and ratio >= floor
    if ratio is None:
        message = f"{STUDENT_TEACHER_RATIO}: undefined (an AUC is undefined on these rows)"
    else:
        verb = "meets" if passed else f"is {floor - ratio:.4f} below"
        message = f"{STUDENT_TEACHER_RATIO}: student/teacher AUC {ratio:.4f} {verb} {floor:.4f}"
    return GateResult(STUDENT_TEACHER_RATIO, passed, ratio, floor, message)


def _slices(m: ModelMetrics, t: GateThresholds) -> GateResult:
    judged = [
        s
        for s in m.slices
        if s.rows >= t.min_slice_rows
        and s.positives >= t.min_slice_positives
        and s.roc_auc is not None
    ]
    if not judged:
        return GateResult(
            SLICE_AUC_FLOOR, True, None, t.slice_auc_floor,
            f"{SLICE_AUC_FLOOR}: no slice has {t.min_slice_rows}+ rows and "
            f"{t.min_slice_positives}+ frauds; nothing to judge",
        )  # fmt: skip
    worst = min(judged, key=lambda s: s.roc_auc or 0.0)
    failing = [s for s in judged if (s.roc_auc or 0.0) < t.slice_auc_floor]
    where = f"{worst.column}={worst.value} ({worst.rows} rows, {worst.positives} frauds)"
    if failing:
        names = ", ".join(f"{s.column}={s.value} {s.roc_auc:.4f}" for s in failing)
        message = (
            f"{SLICE_AUC_FLOOR}: {len(failing)} slice(s) below {t.slice_auc_floor:.4f}: {names};"
            f" worst {where} is {t.slice_auc_floor - (worst.roc_auc or 0.0):.4f} below"
        )
    else:
        message = f"{SLICE_AUC_FLOOR}: worst slice {where} AUC {worst.roc_auc:.4f} meets floor"
    return GateResult(SLICE_AUC_FLOOR, not failing, worst.roc_auc, t.slice_auc_floor, message)


def _ece(m: ModelMetrics, t: GateThresholds) -> GateResult:
    passed = m.ece <= t.max_ece
    verb = "within" if passed else f"{m.ece - t.max_ece:.4f} above"
    message = f"{MAX_ECE}: {m.model} calibration error {m.ece:.4f} is {verb} max {t.max_ece:.4f}"
    return GateResult(MAX_ECE, passed, m.ece, t.max_ece, message)


def _champion_auc(champion: ModelMetrics | Mapping[str, float]) -> float | None:
    if isinstance(champion, ModelMetrics):
        return champion.roc_auc
    return champion.get("roc_auc")


def _regression(
    m: ModelMetrics, t: GateThresholds, champion: ModelMetrics | Mapping[str, float] | None
) -> GateResult:
    limit = t.max_regression_vs_champion
    champion_auc = _champion_auc(champion) if champion is not None else None
    if champion_auc is None:
        return GateResult(
            CHAMPION_REGRESSION, True, None, limit,
            f"{CHAMPION_REGRESSION}: no champion to compare with; passes by default",
        )  # fmt: skip
    if m.roc_auc is None:
        return GateResult(
            CHAMPION_REGRESSION, False, None, limit,
            f"{CHAMPION_REGRESSION}: candidate AUC undefined on the comparison rows",
        )  # fmt: skip
    drop = champion_auc - m.roc_auc
    passed = drop <= limit
    verb = "within" if passed else f"{drop - limit:.4f} beyond"
    message = (
        f"{CHAMPION_REGRESSION}: {m.model} AUC {m.roc_auc:.4f} vs champion {champion_auc:.4f}"
        f" on the same rows (drop {drop:+.4f}) is {verb} the allowed {limit:.4f}"
    )
    return GateResult(CHAMPION_REGRESSION, passed, drop, limit, message)


def evaluate_gates(
    evaluation: Evaluation,
    thresholds: GateThresholds | None = None,
    champion_metrics: ModelMetrics | Mapping[str, float] | None = None,
    model: str = "student",
) -> list[GateResult]:
    """Every gate's verdict for the served `model` (the student by default).

    `champion_metrics` must come from the champion scored on the SAME rows as
    `evaluation` (see `evaluation.evaluate_model`), or the comparison means nothing.
    """
    t = thresholds or GateThresholds()
    m = evaluation.model(model)
    return [
        _min_auc(m, t),
        _ratio(evaluation, t),
        _slices(m, t),
        _ece(m, t),
        _regression(m, t, champion_metrics),
    ]


def gates_passed(results: list[GateResult]) -> bool:
    return all(r.passed for r in results)


def failure_summary(results: list[GateResult]) -> str:
    """One line per failed gate, for a check's description or a sensor's skip reason."""
    return "\n".join(r.message for r in results if not r.passed)
