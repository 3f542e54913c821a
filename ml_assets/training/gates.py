"""Promotion gates: the conditions a candidate must meet before it may serve.

Pure functions of an `Evaluation`, so the asset check, the promotion sensor and the tests
all judge a candidate the same way, and each failure says which gate, by how much, and
which confidence bound decided it (see `uncertainty`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from ml_assets.training.evaluation import Evaluation, ModelMetrics
from ml_assets.training.uncertainty import BootstrapSettings, Bounds, auc_bounds, ece_bounds

MIN_AUC = "min_auc"
STUDENT_TEACHER_RATIO = "student_teacher_auc_ratio"
SLICE_AUC_FLOOR = "slice_auc_floor"
MAX_ECE = "max_ece"
CHAMPION_REGRESSION = "champion_regression"
GATE_NAMES = (MIN_AUC, STUDENT_TEACHER_RATIO, SLICE_AUC_FLOOR, MAX_ECE, CHAMPION_REGRESSION)
# Names of the figures bounded beside the models' AUCs.
RATIO, DROP, CHAMPION = "student_teacher_ratio", "champion_drop", "champion"


@dataclass(frozen=True)
class GateThresholds:
    """What 'good enough to serve' means; slices smaller than the minimums are not judged
    because their AUC is noise.

    Every figure is judged by a one-sided bootstrap bound at `confidence`, not by its point.
    By default (`benefit_of_doubt`) a gate fails only when the data show the candidate misses
    its bar: the bound on its good side is still beyond the threshold (ECE's lower bound
    above max, an AUC's upper bound below its floor). A figure past its threshold by noise
    passes; the shadow and canary stages judge the candidate on live traffic next. Without
    it, the candidate must show it meets each bar (ECE's upper bound <= max, an AUC's lower
    bound >= floor): safer, but measured on the test world it fails a good student whose
    jewelry slice (605 rows) reads AUC 0.73 against the 0.70 floor, lower bound 0.67. The
    bounds are bias-corrected ("basic" bootstrap, see `uncertainty`), which matters for ECE:
    its plug-in estimate reads high, most for a well calibrated model.
    """

    min_auc: float = 0.80
    min_student_teacher_auc_ratio: float = 0.98
    slice_auc_floor: float = 0.70
    min_slice_rows: int = 500
    min_slice_positives: int = 20
    max_ece: float = 0.01
    max_regression_vs_champion: float = 0.005
    confidence: float = BootstrapSettings.confidence
    bootstrap_resamples: int = BootstrapSettings.resamples
    bootstrap_seed: int = BootstrapSettings.seed
    benefit_of_doubt: bool = True

    @property
    def rule(self) -> str:
        """The decision rule in words, for the evaluation's metadata."""
        ece, auc = ("lower", "upper") if self.benefit_of_doubt else ("upper", "lower")
        return (
            f"one-sided {self.confidence:.0%} bootstrap bounds ({self.bootstrap_resamples} "
            f"resamples, seed {self.bootstrap_seed}): a gate fails when the {ece} bound of ECE "
            f"(or of an AUC drop) is above its max, or the {auc} bound of an AUC (or ratio) is "
            "below its floor"
        )

    @property
    def bootstrap(self) -> BootstrapSettings:
        return BootstrapSettings(self.confidence, self.bootstrap_resamples, self.bootstrap_seed)


@dataclass(frozen=True)
class GateResult:
    name: str
    passed: bool
    value: float | None  # the point estimate
    threshold: float
    message: str
    bound: float | None = None  # the confidence bound compared with `threshold`
    lower_bound: float | None = None
    upper_bound: float | None = None


@dataclass(frozen=True)
class _Figure:
    """How one gate reads its figure: its words, and which side of the threshold is good."""

    name: str
    what: str  # e.g. "student AUC"
    higher_is_better: bool
    threshold_words: str  # e.g. "the floor", "max"


def _relation(figure: _Figure, point: float, threshold: float) -> str:
    gap = point - threshold
    if figure.higher_is_better:
        if gap >= 0:
            return f"meets {figure.threshold_words} {threshold:.4f}"
        return f"is {-gap:.4f} below {figure.threshold_words} {threshold:.4f}"
    if gap <= 0:
        return f"is within {figure.threshold_words} {threshold:.4f}"
    return f"is {gap:.4f} above {figure.threshold_words} {threshold:.4f}"


def _judge(figure: _Figure, bounds: Bounds, threshold: float, lenient: bool) -> GateResult:
    """Compare the bound the rule names with `threshold` (see `GateThresholds`)."""
    # Strict: the bound on the candidate's bad side; lenient: the one on its good side.
    use_upper = figure.higher_is_better == lenient
    bound = bounds.high if use_upper else bounds.low
    ok = bound >= threshold if figure.higher_is_better else bound <= threshold
    op = (">=" if ok else "<") if figure.higher_is_better else ("<=" if ok else ">")
    side = "upper" if use_upper else "lower"
    message = (
        f"{figure.name}: {figure.what} {bounds.estimate:.4f} "
        f"{_relation(figure, bounds.estimate, threshold)}; {side} {bounds.percent} bound "
        f"{bound:.4f} {op} {threshold:.4f} (bias-corrected bootstrap, {bounds.resamples} "
        f"resamples): {'passes' if ok else 'fails'}"
    )
    return GateResult(figure.name, ok, bounds.estimate, threshold, message, bound,
                      bounds.low, bounds.high)  # fmt: skip


def _auc_bounds(
    e: Evaluation, model: str, t: GateThresholds, champion_scores: np.ndarray | None
) -> dict[str, Bounds]:
    """The AUC figures of every gate, from one paired resampling of the evaluation rows."""
    scores = {name: e.scores[name] for name in dict.fromkeys(("student", "teacher", model))}
    derived = {RATIO: lambda a: a["student"] / a["teacher"]}
    if champion_scores is not None:
        scores[CHAMPION] = champion_scores
        derived[DROP] = lambda a: a[CHAMPION] - a[model]
    return auc_bounds(e.labels, scores, t.bootstrap, derived)


def _min_auc(m: ModelMetrics, t: GateThresholds, bounds: Bounds | None) -> GateResult:
    if m.roc_auc is None or bounds is None:
        message = f"{MIN_AUC}: {m.model} AUC undefined (evaluation rows hold one class)"
        return GateResult(MIN_AUC, False, None, t.min_auc, message)
    figure = _Figure(MIN_AUC, f"{m.model} AUC", True, "the floor")
    return _judge(figure, bounds, t.min_auc, t.benefit_of_doubt)


def _ratio(e: Evaluation, t: GateThresholds, bounds: Bounds | None) -> GateResult:
    floor = t.min_student_teacher_auc_ratio
    if e.fidelity.auc_ratio is None or bounds is None:
        message = f"{STUDENT_TEACHER_RATIO}: undefined (an AUC is undefined on these rows)"
        return GateResult(STUDENT_TEACHER_RATIO, False, None, floor, message)
    figure = _Figure(STUDENT_TEACHER_RATIO, "student/teacher AUC", True, "the floor")
    return _judge(figure, bounds, floor, t.benefit_of_doubt)


def _slices(e: Evaluation, m: ModelMetrics, t: GateThresholds) -> GateResult:
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
    results = {}
    for s in judged:
        mask = e.slice_values[s.column] == s.value
        bounds = auc_bounds(e.labels[mask], {m.model: e.scores[m.model][mask]}, t.bootstrap)
        figure = _Figure(SLICE_AUC_FLOOR, f"{s.column}={s.value} AUC", True, "the floor")
        results[s] = _judge(figure, bounds[m.model], t.slice_auc_floor, t.benefit_of_doubt)
    worst = min(judged, key=lambda s: s.roc_auc or 0.0)
    failing = [s for s in judged if not results[s].passed]
    shown = results[failing[0] if failing else worst]
    where = f"{worst.column}={worst.value} ({worst.rows} rows, {worst.positives} frauds)"
    if failing:
        names = ", ".join(f"{s.column}={s.value} {s.roc_auc:.4f}" for s in failing)
        message = (
            f"{SLICE_AUC_FLOOR}: {len(failing)} slice(s) shown below {t.slice_auc_floor:.4f}: "
            f"{names}; {shown.message.removeprefix(f'{SLICE_AUC_FLOOR}: ')}"
        )
    else:
        message = (
            f"{SLICE_AUC_FLOOR}: worst slice {where}: "
            f"{shown.message.removeprefix(f'{SLICE_AUC_FLOOR}: ')}"
        )
    return replace(shown, passed=not failing, message=message)


def _ece(e: Evaluation, m: ModelMetrics, t: GateThresholds) -> GateResult:
    bounds = ece_bounds(e.labels, e.scores[m.model], t.bootstrap)
    figure = _Figure(MAX_ECE, f"{m.model} ECE", False, "max")
    return _judge(figure, bounds, t.max_ece, t.benefit_of_doubt)


def _champion_auc(champion: ModelMetrics | Mapping[str, float]) -> float | None:
    if isinstance(champion, ModelMetrics):
        return champion.roc_auc
    return champion.get("roc_auc")


def _regression(
    m: ModelMetrics,
    t: GateThresholds,
    champion: ModelMetrics | Mapping[str, float] | None,
    bounds: Bounds | None,
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
    what = f"AUC drop (champion {champion_auc:.4f} - {m.model} {m.roc_auc:.4f})"
    figure = _Figure(CHAMPION_REGRESSION, what, False, "the allowed")
    if bounds is None:  # the champion's figures without its scores: the point is all there is
        drop = champion_auc - m.roc_auc
        message = (
            f"{CHAMPION_REGRESSION}: {what} {drop:.4f} {_relation(figure, drop, limit)} "
            "(point estimate: no champion scores to bound it)"
        )
        return GateResult(CHAMPION_REGRESSION, drop <= limit, drop, limit, message)
    return _judge(figure, bounds, limit, t.benefit_of_doubt)


def evaluate_gates(
    evaluation: Evaluation,
    thresholds: GateThresholds | None = None,
    champion_metrics: ModelMetrics | Mapping[str, float] | None = None,
    model: str = "student",
    champion_scores: np.ndarray | None = None,
) -> list[GateResult]:
    """Every gate's verdict for the served `model` (the student by default).

    `champion_metrics` (and `champion_scores`, which let the AUC drop be bounded) must come
    from the champion scored on the SAME rows as `evaluation` (see
    `evaluation.evaluate_model`), or the comparison means nothing.
    """
    t = thresholds or GateThresholds()
    m = evaluation.model(model)
    defined = m.roc_auc is not None and evaluation.fidelity.auc_ratio is not None
    bounds = _auc_bounds(evaluation, model, t, champion_scores) if defined else {}
    return [
        _min_auc(m, t, bounds.get(model)),
        _ratio(evaluation, t, bounds.get(RATIO)),
        _slices(evaluation, m, t),
        _ece(evaluation, m, t),
        _regression(m, t, champion_metrics, bounds.get(DROP)),
    ]


def gates_passed(results: list[GateResult]) -> bool:
    return all(r.passed for r in results)


def failure_summary(results: list[GateResult]) -> str:
    """One line per failed gate, for a check's description or a sensor's skip reason."""
    return "\n".join(r.message for r in results if not r.passed)
