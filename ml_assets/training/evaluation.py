"""How good, how faithful and how fast the models are, on the same held-out rows.

Plain functions over arrays and polars frames. `evaluate_models` scores teacher and
student together and reports the best AUC any model could reach on those rows (from the
generator's true probability), so a number is read against its ceiling, not in a vacuum.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import polars as pl

from ml_assets.training.calibration import expected_calibration_error
from ml_assets.training.model_contracts import FraudModel
from ml_assets.training.model_inputs import AMOUNT_COLUMN, LABEL_COLUMN, TRUTH_COLUMN

SLICE_COLUMNS = ("channel", "merchant_category")
REVIEW_SHARE = 0.01


def roc_auc(y: np.ndarray, p: np.ndarray) -> float | None:
    """ROC-AUC, or None when the rows hold a single class (AUC is undefined there)."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else None


def pr_auc(y: np.ndarray, p: np.ndarray) -> float | None:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, p)) if 0 < y.sum() < len(y) else None


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import log_loss as sklearn_log_loss

    return float(sklearn_log_loss(y, np.clip(p, 1e-7, 1 - 1e-7), labels=[0, 1]))


def bayes_auc(frame: pl.DataFrame) -> float | None:
    """The best AUC reachable on these rows: the AUC of the generator's true probability."""
    if TRUTH_COLUMN not in frame.columns:
        return None
    return roc_auc(_labels(frame), frame[TRUTH_COLUMN].to_numpy())


def fraud_amount_caught(
    y: np.ndarray, p: np.ndarray, amount: np.ndarray, review_share: float = REVIEW_SHARE
) -> float:
    """Share of the fraud amount in the rows that a reviewer sees when reviewing the
    highest-scored `review_share` of transactions (the business cost of the model)."""
    fraud_total = float((amount * y).sum())
    if fraud_total == 0:
        return 0.0
    reviewed = max(1, int(round(len(p) * review_share)))
    top = np.argsort(-p, kind="stable")[:reviewed]
    return float((amount[top] * y[top]).sum() / fraud_total)


@dataclass(frozen=True)
class SliceMetrics:
    column: str
    value: str
    rows: int
    positives: int
    roc_auc: float | None
    pr_auc: float | None


def _slice_values(frame: pl.DataFrame, column: str) -> np.ndarray:
    return frame[column].fill_null("<null>").cast(pl.String).to_numpy()


def metrics_by_slice(
    frame: pl.DataFrame, p: np.ndarray, columns: Sequence[str] = SLICE_COLUMNS
) -> list[SliceMetrics]:
    """AUCs per value of each slice column, with row and fraud counts to judge them by."""
    y = _labels(frame)
    out = []
    for column in columns:
        values = _slice_values(frame, column)
        for value in sorted(set(values)):
            mask = values == value
            out.append(
                SliceMetrics(
                    column=column,
                    value=str(value),
                    rows=int(mask.sum()),
                    positives=int(y[mask].sum()),
                    roc_auc=roc_auc(y[mask], p[mask]),
                    pr_auc=pr_auc(y[mask], p[mask]),
                )
            )
    return out


@dataclass(frozen=True)
class LatencyStats:
    batch_rows: int
    calls: int
    p50_ms: float
    p99_ms: float


def measure_latency(
    predict: Callable[[Any], Any], batch: Any, calls: int, warmup: int = 5
) -> LatencyStats:
    """p50/p99 wall time of `predict(batch)` over `calls` calls (after a warm-up)."""
    for _ in range(warmup):
        predict(batch)
    times = np.empty(calls)
    for i in range(calls):
        start = time.perf_counter_ns()
        predict(batch)
        times[i] = (time.perf_counter_ns() - start) / 1e6
    if isinstance(batch, pl.DataFrame | list):
        rows = len(batch)
    else:  # a request dict is one row; arrays and tensors count their first axis
        rows = int(batch.shape[0]) if hasattr(batch, "shape") else 1
    return LatencyStats(
        batch_rows=rows,
        calls=calls,
        p50_ms=float(np.percentile(times, 50)),
        p99_ms=float(np.percentile(times, 99)),
    )


@dataclass(frozen=True)
class ModelMetrics:
    """One model's scores on the evaluation rows."""

    model: str
    rows: int
    positives: int
    roc_auc: float | None
    pr_auc: float | None
    log_loss: float
    ece: float
    fraud_amount_caught: float
    review_share: float
    slices: tuple[SliceMetrics, ...] = ()
    latency: tuple[LatencyStats, ...] = ()

    def to_metrics(self) -> dict[str, float]:
        """Flat numbers for MLflow / Dagster metadata, prefixed with the model's name."""
        m = self.model
        out = {
            f"{m}_roc_auc": self.roc_auc,
            f"{m}_pr_auc": self.pr_auc,
            f"{m}_log_loss": self.log_loss,
            f"{m}_ece": self.ece,
            f"{m}_fraud_amount_caught": self.fraud_amount_caught,
        }
        for lat in self.latency:
            out[f"{m}_latency_b{lat.batch_rows}_p50_ms"] = lat.p50_ms
            out[f"{m}_latency_b{lat.batch_rows}_p99_ms"] = lat.p99_ms
        return {k: float(v) for k, v in out.items() if v is not None}


def _labels(frame: pl.DataFrame) -> np.ndarray:
    if LABEL_COLUMN not in frame.columns:
        raise ValueError(f"evaluation rows have no '{LABEL_COLUMN}' column; evaluate on labels")
    return frame[LABEL_COLUMN].cast(pl.Float64).to_numpy()


def score_metrics(
    name: str,
    frame: pl.DataFrame,
    p: np.ndarray,
    review_share: float = REVIEW_SHARE,
    slice_columns: Sequence[str] = SLICE_COLUMNS,
) -> ModelMetrics:
    """Quality metrics of given scores `p` on `frame`'s rows."""
    y = _labels(frame)
    return ModelMetrics(
        model=name,
        rows=len(y),
        positives=int(y.sum()),
        roc_auc=roc_auc(y, p),
        pr_auc=pr_auc(y, p),
        log_loss=log_loss(y, p),
        ece=expected_calibration_error(y, p),
        fraud_amount_caught=fraud_amount_caught(
            y, p, frame[AMOUNT_COLUMN].to_numpy(), review_share
        ),
        review_share=review_share,
        slices=tuple(metrics_by_slice(frame, p, slice_columns)),
    )


def model_latency(
    model: FraudModel,
    frame: pl.DataFrame,
    single_calls: int = 200,
    batch_calls: int = 10,
    batch_rows: int = 1000,
) -> tuple[LatencyStats, ...]:
    """Latency of one request dict (the serving shape) and of a `batch_rows` frame."""
    row = frame.row(0, named=True)
    batch = frame.head(batch_rows)
    return (
        measure_latency(model.predict_proba, row, single_calls),
        measure_latency(model.predict_proba, batch, batch_calls),
    )


def evaluate_model(
    name: str, model: FraudModel, frame: pl.DataFrame, measure_speed: bool = False, **kwargs: Any
) -> ModelMetrics:
    """Score `model` on `frame` (e.g. the champion, re-scored on the challenger's rows)."""
    metrics = score_metrics(name, frame, model.predict_proba(frame), **kwargs)
    if measure_speed:
        metrics = _with_latency(metrics, model_latency(model, frame))
    return metrics


def _with_latency(metrics: ModelMetrics, latency: tuple[LatencyStats, ...]) -> ModelMetrics:
    return replace(metrics, latency=latency)


@dataclass(frozen=True)
class Fidelity:
    """How closely the student reproduces the teacher on the same rows."""

    threshold: float
    agreement: float
    flagged_overlap: float
    auc_ratio: float | None
    mean_abs_diff: float
    max_abs_diff: float


def fidelity(
    student_p: np.ndarray,
    teacher_p: np.ndarray,
    y: np.ndarray,
    review_share: float = REVIEW_SHARE,
) -> Fidelity:
    """Agreement at the teacher's review threshold (its top `review_share` of scores),
    overlap of the two flagged sets, AUC ratio and probability differences."""
    threshold = float(np.quantile(teacher_p, 1 - review_share))
    teacher_flag, student_flag = teacher_p >= threshold, student_p >= threshold
    either = (teacher_flag | student_flag).sum()
    student_auc, teacher_auc = roc_auc(y, student_p), roc_auc(y, teacher_p)
    diff = np.abs(student_p - teacher_p)
    return Fidelity(
        threshold=threshold,
        agreement=float((teacher_flag == student_flag).mean()),
        flagged_overlap=float((teacher_flag & student_flag).sum() / either) if either else 1.0,
        auc_ratio=(student_auc / teacher_auc) if student_auc and teacher_auc else None,
        mean_abs_diff=float(diff.mean()),
        max_abs_diff=float(diff.max()),
    )


@dataclass(frozen=True)
class Evaluation:
    """Teacher and student on the same held-out rows, with the reachable ceiling."""

    teacher: ModelMetrics
    student: ModelMetrics
    fidelity: Fidelity
    bayes_auc: float | None
    rows: int
    days: tuple[str, ...] = ()
    scores: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)
    # The rows' labels and slice values, so the gates can bound the figures by resampling.
    labels: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False, compare=False)
    slice_values: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    def model(self, name: str) -> ModelMetrics:
        if name not in ("teacher", "student"):
            raise ValueError(f"unknown model '{name}'; expected 'teacher' or 'student'")
        return self.teacher if name == "teacher" else self.student

    def to_metrics(self) -> dict[str, float]:
        out = {**self.teacher.to_metrics(), **self.student.to_metrics()}
        out["eval_rows"] = float(self.rows)
        if self.bayes_auc is not None:
            out["bayes_auc"] = self.bayes_auc
        for key, value in asdict(self.fidelity).items():
            if value is not None:
                out[f"fidelity_{key}"] = float(value)
        return out

    def slices_frame(self) -> pl.DataFrame:
        """One row per (model, slice column, value): for the Dagster UI's table view."""
        return pl.DataFrame(
            [
                {"model": m.model, **asdict(s)}
                for m in (self.teacher, self.student)
                for s in m.slices
            ]
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "teacher": asdict(self.teacher),
            "student": asdict(self.student),
            "fidelity": asdict(self.fidelity),
            "bayes_auc": self.bayes_auc,
            "rows": self.rows,
            "days": list(self.days),
        }


def evaluate_models(
    teacher: FraudModel,
    student: FraudModel,
    frame: pl.DataFrame,
    review_share: float = REVIEW_SHARE,
    slice_columns: Sequence[str] = SLICE_COLUMNS,
    measure_speed: bool = True,
) -> Evaluation:
    """Everything the gates and the report need, from one pass over held-out rows."""
    y = _labels(frame)
    teacher_p = teacher.predict_proba(frame)
    student_p = student.predict_proba(frame)
    teacher_m = score_metrics("teacher", frame, teacher_p, review_share, slice_columns)
    student_m = score_metrics("student", frame, student_p, review_share, slice_columns)
    if measure_speed:
        teacher_m = _with_latency(teacher_m, model_latency(teacher, frame))
        student_m = _with_latency(student_m, model_latency(student, frame))
    days = ()
    if "event_time" in frame.columns:
        days = tuple(d.isoformat() for d in frame["event_time"].dt.date().unique().sort())
    return Evaluation(
        teacher=teacher_m,
        student=student_m,
        fidelity=fidelity(student_p, teacher_p, y, review_share),
        bayes_auc=bayes_auc(frame),
        rows=frame.height,
        days=days,
        scores={"teacher": teacher_p, "student": student_p},
        labels=y,
        slice_values={c: _slice_values(frame, c) for c in slice_columns},
    )
