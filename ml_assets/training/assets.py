"""Model assets: the LightGBM teacher, the distilled student, and their evaluation with the
promotion gates as blocking checks. Models live in the MLflow registry; the asset value is
a `ModelRef` (name, version, window) so downstream assets load exactly that version."""

from dataclasses import asdict, fields
from typing import Any

import dagster as dg
import polars as pl

from ml_assets.features.assets import TRAINING_SET
from ml_assets.features.registry import feature_versions
from ml_assets.features.training_set import resolve_training_rows
from ml_assets.resources import MlflowResource, WarehouseReader, table_name
from ml_assets.training.calibration import ece_before_after
from ml_assets.training.evaluation import Evaluation, evaluate_models, score_metrics
from ml_assets.training.evaluation_logging import ARTIFACT_DIR, log_evaluation
from ml_assets.training.gates import GATE_NAMES, GateResult, GateThresholds, evaluate_gates
from ml_assets.training.model_contracts import EvaluationOutcome, ModelRef
from ml_assets.training.model_inputs import TIME_COLUMN, ModelInputs
from ml_assets.training.registry_reader import (
    CHAMPION,
    STUDENT_MODEL_NAME,
    load_model_version,
    resolve_version,
)
from ml_assets.training.registry_writer import lineage_from_partitions, log_student, log_teacher
from ml_assets.training.student import StudentConfig, train_student
from ml_assets.training.teacher import TeacherConfig, train_teacher
from ml_assets.training.window import choose_partitions, split_holdout

TEACHER_MODEL = dg.AssetKey("teacher_model")
STUDENT_MODEL = dg.AssetKey("student_model")
MODEL_EVALUATION = dg.AssetKey("model_evaluation")
GROUP = "models"


class TeacherTrainingConfig(dg.Config):
    """The training window and the teacher's size; the launchpad shows these."""

    window_days: int = 21
    holdout_days: int = 3
    validation_days: int = TeacherConfig.validation_days
    end_date: str = ""
    num_boost_round: int = TeacherConfig.num_boost_round
    learning_rate: float = TeacherConfig.learning_rate
    num_leaves: int = TeacherConfig.num_leaves
    early_stopping_rounds: int = TeacherConfig.early_stopping_rounds


class StudentTrainingConfig(dg.Config):
    """The student's size and distillation budget (it is sized for latency, not accuracy)."""

    hidden: list[int] = [64, 32]
    epochs: int = 12
    batch_size: int = 1024
    label_weight: float = 0.2
    max_rows: int = 250_000


class GateConfig(dg.Config):
    """Promotion thresholds: a candidate that misses any of them is never served."""

    min_auc: float = GateThresholds.min_auc
    min_student_teacher_auc_ratio: float = GateThresholds.min_student_teacher_auc_ratio
    slice_auc_floor: float = GateThresholds.slice_auc_floor
    max_ece: float = GateThresholds.max_ece
    max_regression_vs_champion: float = GateThresholds.max_regression_vs_champion
    # Gates compare a one-sided bootstrap bound at `confidence` with each threshold.
    confidence: float = GateThresholds.confidence
    bootstrap_resamples: int = GateThresholds.bootstrap_resamples
    bootstrap_seed: int = GateThresholds.bootstrap_seed
    benefit_of_doubt: bool = GateThresholds.benefit_of_doubt


def plain_config(cls: type, config: dg.Config) -> Any:
    """The plain (dagster-free) config `cls` from the launchpad's `config`: every field the
    two share, with lists as tuples; the rest keep `cls`'s defaults."""
    names = {f.name for f in fields(cls)}
    values = config.model_dump()
    return cls(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in names}
    )


def _training_rows(warehouse: WarehouseReader, partitions: list[str]) -> pl.DataFrame:
    # A reviewed transaction whose chargeback came later is in two days: the chargeback wins.
    return resolve_training_rows(warehouse.read(table_name(TRAINING_SET), partitions))


def _headline(metrics: dict[str, float], names: tuple[str, ...]) -> dict[str, float]:
    return {n: round(metrics[n], 5) for n in names if n in metrics}


@dg.asset(
    key=TEACHER_MODEL,
    group_name=GROUP,
    deps=[TRAINING_SET],
    kinds={"lightgbm", "mlflow"},
    pool="mlflow",
    description="LightGBM trained on a window of training_set days (older days fit, newer "
    "validate, newest held out for evaluation), logged and registered in MLflow.",
)
def teacher_model(
    context: dg.AssetExecutionContext,
    config: TeacherTrainingConfig,
    warehouse: WarehouseReader,
    mlflow: MlflowResource,
) -> dg.MaterializeResult[ModelRef]:
    table = table_name(TRAINING_SET)
    partitions = choose_partitions(warehouse.partitions(table), config.window_days, config.end_date)
    train, holdout, holdout_start = split_holdout(
        _training_rows(warehouse, partitions), config.holdout_days
    )
    context.log.info(
        f"training on {train.height} rows of {partitions[0]}..{partitions[-1]}, holding out "
        f"{holdout.height} rows from {holdout_start}"
    )
    teacher_config = plain_config(TeacherConfig, config)
    teacher = train_teacher(
        train, ModelInputs.from_frame(train, feature_versions()), teacher_config
    )
    data_versions = warehouse.partition_digests(table, partitions)
    metrics = {k: float(v) for k, v in teacher.info.items() if isinstance(v, int | float)}
    registered = log_teacher(
        teacher,
        lineage=lineage_from_partitions(partitions, feature_versions(), data_versions),
        metrics=metrics,
        params={**asdict(teacher_config), "holdout_start": holdout_start.isoformat()},
        **mlflow.run_settings(context),
    )
    ref = ModelRef(registered.name, registered.version, registered.run_id, tuple(partitions),
                   holdout_start, data_versions)  # fmt: skip
    return dg.MaterializeResult(
        value=ref,
        metadata={
            "registered_version": f"{ref.name} v{ref.version}",
            "mlflow_run": dg.MetadataValue.url(mlflow.run_url(ref.run_id)),
            "window": f"{partitions[0]}..{partitions[-1]} ({len(partitions)} label days)",
            "holdout_start": holdout_start.isoformat(),
            "train_rows": train.height,
            **_headline(metrics, ("best_iteration", "validation_auc", "validation_logloss")),
        },
    )


@dg.asset(
    key=STUDENT_MODEL,
    group_name=GROUP,
    kinds={"pytorch", "mlflow"},
    pool="mlflow",
    description="A small MLP distilled from the teacher's soft predictions (plus labels) on the "
    "teacher's own window, with its preprocessing saved beside the weights; for serving.",
)
def student_model(
    context: dg.AssetExecutionContext,
    config: StudentTrainingConfig,
    teacher_model: ModelRef,
    warehouse: WarehouseReader,
    mlflow: MlflowResource,
) -> dg.MaterializeResult[ModelRef]:
    teacher = load_model_version(teacher_model.name, teacher_model.version, mlflow.tracking_uri)
    frame = _training_rows(warehouse, list(teacher_model.partitions))
    train = frame.filter(pl.col(TIME_COLUMN).dt.date() < teacher_model.holdout_start)
    if train.height > config.max_rows:
        # Distillation needs coverage, not every row: a seeded sample of every day.
        train = train.sample(config.max_rows, seed=7).sort(TIME_COLUMN)
    student_config = plain_config(StudentConfig, config)
    context.log.info(f"distilling teacher v{teacher_model.version} on {train.height} rows")
    student = train_student(train, teacher, student_config)
    registered = log_student(
        student,
        lineage=lineage_from_partitions(
            teacher_model.partitions, feature_versions(), teacher_model.data_versions
        ),
        teacher_version=teacher_model.version,
        params=asdict(student_config),
        **mlflow.run_settings(context),
    )
    ref = ModelRef(registered.name, registered.version, registered.run_id,
                   teacher_model.partitions, teacher_model.holdout_start,
                   teacher_model.data_versions)  # fmt: skip
    return dg.MaterializeResult(
        value=ref,
        metadata={
            "registered_version": f"{ref.name} v{ref.version}",
            "teacher_version": teacher_model.version,
            "mlflow_run": dg.MetadataValue.url(mlflow.run_url(ref.run_id)),
            "train_rows": train.height,
            **_calibration_metadata(student.info),
        },
    )


def _calibration_metadata(info: dict[str, Any]) -> dict[str, float]:
    """Temperature and ECE before/after on the calibration (validation) days."""
    keys = ("calibration_temperature", "calibration_ece_before", "calibration_ece_after")
    return {k: round(float(info[k]), 5) for k in keys if k in info}


def _gate_check_results(gates: list[GateResult]) -> list[dg.AssetCheckResult]:
    return [
        dg.AssetCheckResult(
            check_name=gate.name,
            asset_key=MODEL_EVALUATION,
            passed=gate.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            description=gate.message,
            metadata={
                "value": gate.value if gate.value is not None else float("nan"),
                "threshold": gate.threshold,
                **{
                    key: getattr(gate, key)
                    for key in ("bound", "lower_bound", "upper_bound")
                    if getattr(gate, key) is not None
                },
                "message": gate.message,
            },
        )
        for gate in gates
    ]


def _metrics_markdown(evaluation: Evaluation) -> str:
    rows = []
    for m in (evaluation.teacher, evaluation.student):
        one = next((s for s in m.latency if s.batch_rows == 1), None)
        rows.append(
            f"| {m.model} | {m.roc_auc:.4f} | {m.pr_auc:.4f} | {m.log_loss:.4f} | {m.ece:.4f} | "
            f"{m.fraud_amount_caught:.1%} | {one.p50_ms if one else float('nan'):.3f} |"
        )
    bayes = f"{evaluation.bayes_auc:.4f}" if evaluation.bayes_auc is not None else "n/a"
    return (
        "| model | ROC-AUC | PR-AUC | log loss | ECE | fraud amount caught @1% | p50 ms (1 row) |\n"
        "|---|---|---|---|---|---|---|\n" + "\n".join(rows) + f"\n\nBest reachable AUC (true "
        f"fraud probability on the same rows): **{bayes}**"
    )


def _champion_metrics(mlflow: MlflowResource, candidate: ModelRef, holdout: pl.DataFrame):
    """The current champion's metrics and scores on the candidate's rows (None, None without
    a champion), and its version."""
    version = resolve_version(mlflow.tracking_uri, STUDENT_MODEL_NAME, CHAMPION)
    if version is None or version == candidate.version:
        return None, None, version
    champion = load_model_version(STUDENT_MODEL_NAME, version, mlflow.tracking_uri)
    scores = champion.predict_proba(holdout)
    return score_metrics("champion", holdout, scores), scores, version


@dg.asset(
    key=MODEL_EVALUATION,
    group_name=GROUP,
    kinds={"mlflow"},
    pool="mlflow",
    check_specs=[
        dg.AssetCheckSpec(
            name, asset=MODEL_EVALUATION, blocking=True, description=f"Promotion gate {name}"
        )
        for name in GATE_NAMES
    ],
    description="Teacher and student on the held-out newest days: AUC, PR-AUC, log loss, "
    "calibration, best reachable AUC, fidelity, latency, slices, fraud amount caught; "
    "pictures in MLflow. The promotion gates are its blocking checks.",
)
def model_evaluation(
    context: dg.AssetExecutionContext,
    config: GateConfig,
    teacher_model: ModelRef,
    student_model: ModelRef,
    warehouse: WarehouseReader,
    mlflow: MlflowResource,
):  # -> MaterializeResult[EvaluationOutcome]; unannotated since checks are outputs too
    uri = mlflow.tracking_uri
    teacher = load_model_version(teacher_model.name, teacher_model.version, uri)
    student = load_model_version(student_model.name, student_model.version, uri)
    frame = _training_rows(warehouse, list(student_model.partitions))
    holdout = frame.filter(pl.col(TIME_COLUMN).dt.date() >= student_model.holdout_start)
    context.log.info(
        f"evaluating on {holdout.height} held-out rows from {student_model.holdout_start}"
    )
    evaluation = evaluate_models(teacher, student, holdout)
    champion_metrics, champion_scores, champion_version = _champion_metrics(
        mlflow, student_model, holdout
    )
    thresholds = GateThresholds(**config.model_dump())
    gates = evaluate_gates(
        evaluation, thresholds, champion_metrics, champion_scores=champion_scores
    )
    passed = all(g.passed for g in gates)
    before, after = ece_before_after(student, holdout, evaluation.labels)
    calibration = {"student_ece_uncalibrated": before, "student_ece_calibrated": after}
    metrics = log_evaluation(uri, student_model.run_id, evaluation, holdout, passed, calibration)
    outcome = EvaluationOutcome(
        student_model, passed, [asdict(g) for g in gates], metrics, context.run.run_id
    )
    return dg.MaterializeResult(
        value=outcome,
        metadata={
            **outcome.verdict.to_metadata(),
            "candidate": f"{student_model.name} v{student_model.version}",
            "teacher": f"{teacher_model.name} v{teacher_model.version}",
            "champion_compared": champion_version or "none",
            "metrics": dg.MetadataValue.md(_metrics_markdown(evaluation)),
            "gates": dg.MetadataValue.md(
                "\n".join(f"- {'PASS' if g.passed else 'FAIL'} {g.message}" for g in gates)
            ),
            "curves": dg.MetadataValue.url(
                f"{mlflow.run_url(student_model.run_id)}/artifacts/{ARTIFACT_DIR}"
            ),
            "holdout_rows": holdout.height,
            "student_auc": metrics.get("student_roc_auc", float("nan")),
            "teacher_auc": metrics.get("teacher_roc_auc", float("nan")),
            "bayes_auc": evaluation.bayes_auc or float("nan"),
            **{f"holdout_{k}": round(v, 5) for k, v in calibration.items()},
            "gate_rule": thresholds.rule,
        },
        check_results=_gate_check_results(gates),
    )


assets = [teacher_model, student_model, model_evaluation]
