"""The write side of the model registry: log and register the teacher and the student.

Every registered version carries its lineage (training partitions and window, feature
versions, data versions, and for the student its teacher's version) inside the model's own
metadata, so a version found in the registry leads back to the data that made it. Only the
training assets use this module; serving reads through `registry_reader`.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import version as package_version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml_assets.training.model_contracts import FraudModel
from ml_assets.training.registry_location import ensure_artifact_root
from ml_assets.training.registry_reader import (
    LINEAGE_KEY,
    MODEL_ARTIFACT,
    SPEC_KEY,
    STUDENT_MODEL_NAME,
    TEACHER_MODEL_NAME,
    TEACHER_VERSION_TAG,
    Lineage,
    tracking,
)
from ml_assets.training.student import StudentModel
from ml_assets.training.teacher import TeacherModel

if TYPE_CHECKING:
    from mlflow import MlflowClient

EXPERIMENT_NAME = "fraud_models"
KIND_TAG = "ml_assets.kind"


def _requirements(*packages: str) -> list[str]:
    """Pinned requirements of a logged model; given explicitly because MLflow's inference
    imports the model in a subprocess and costs seconds per log."""
    return [f"{name}=={package_version(name)}" for name in ("mlflow", "numpy", *packages)]


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str
    run_id: str
    model_uri: str  # models:/<name>/<version>


def _experiment_id(client: MlflowClient, name: str, artifact_location: str | None) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if artifact_location is not None:  # a moved data dir logs into itself, not the old one
            ensure_artifact_root(client.tracking_uri, name, artifact_location)
        return experiment.experiment_id
    return client.create_experiment(name, artifact_location=artifact_location)


def _flat_params(model: FraudModel, extra: Mapping[str, Any] | None) -> dict[str, str]:
    params = {f"config.{k}": v for k, v in model.info.get("config", {}).items()}
    params["inputs.numeric"] = ",".join(model.inputs.numeric)
    params["inputs.categorical"] = ",".join(model.inputs.categorical)
    params.update(extra or {})
    return {k: str(v)[:6000] for k, v in params.items()}


def _log_common(
    model: FraudModel,
    lineage: Lineage,
    metrics: Mapping[str, float] | None,
    params: Mapping[str, Any] | None,
) -> None:
    import mlflow

    mlflow.log_params(_flat_params(model, params))
    info_metrics = {k: v for k, v in model.info.items() if isinstance(v, int | float)}
    mlflow.log_metrics({**info_metrics, **(metrics or {})})
    mlflow.log_dict(lineage.to_dict(), "lineage.json")
    mlflow.log_dict(model.inputs.to_dict(), "model_inputs.json")


def _finish(
    client: MlflowClient, name: str, info: Any, lineage: Lineage, kind: str
) -> RegisteredVersion:
    version = str(info.registered_model_version)
    for key, value in {**lineage.summary_tags(), KIND_TAG: kind}.items():
        client.set_model_version_tag(name, version, key, value)
    return RegisteredVersion(name, version, info.run_id, f"models:/{name}/{version}")


def log_teacher(
    teacher: TeacherModel,
    *,
    tracking_uri: str,
    lineage: Lineage,
    metrics: Mapping[str, float] | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    artifact_location: str | None = None,
    experiment: str = EXPERIMENT_NAME,
    registered_name: str = TEACHER_MODEL_NAME,
) -> RegisteredVersion:
    """Log the teacher's run (params, metrics, lineage, `tags` such as the Dagster run id
    and partition) and register its booster under `registered_name`."""
    import mlflow

    with tracking(tracking_uri) as client:
        experiment_id = _experiment_id(client, experiment, artifact_location)
        with mlflow.start_run(experiment_id=experiment_id, tags=dict(tags or {})):
            mlflow.set_tag(KIND_TAG, "teacher")
            _log_common(teacher, lineage, metrics, params)
            info = mlflow.lightgbm.log_model(
                teacher.booster,
                name=MODEL_ARTIFACT,
                registered_model_name=registered_name,
                metadata={SPEC_KEY: teacher.spec(), LINEAGE_KEY: lineage.to_dict()},
                pip_requirements=_requirements("lightgbm"),
            )
        return _finish(client, registered_name, info, lineage, "teacher")


def log_student(
    student: StudentModel,
    *,
    tracking_uri: str,
    lineage: Lineage,
    teacher_version: str,
    metrics: Mapping[str, float] | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    artifact_location: str | None = None,
    experiment: str = EXPERIMENT_NAME,
    registered_name: str = STUDENT_MODEL_NAME,
) -> RegisteredVersion:
    """Log the student as a pyfunc whose artifacts hold weights + preprocessing and whose
    code travels with it (servable by MLflow's tools without `ml_assets`, see `pyfunc`),
    register it, and record the teacher version it was distilled from."""
    import mlflow

    from ml_assets.training import pyfunc

    lineage = Lineage.from_dict({**lineage.to_dict(), "teacher_version": teacher_version})
    with tracking(tracking_uri) as client, tempfile.TemporaryDirectory() as tmp:
        folder = student.save(Path(tmp) / pyfunc.STUDENT_ARTIFACT)
        code, student_module = pyfunc.ship_student_code(Path(tmp) / "code")
        experiment_id = _experiment_id(client, experiment, artifact_location)
        run_tags = {**dict(tags or {}), TEACHER_VERSION_TAG: teacher_version}
        with mlflow.start_run(experiment_id=experiment_id, tags=run_tags):
            mlflow.set_tag(KIND_TAG, "student")
            _log_common(student, lineage, metrics, params)
            with warnings.catch_warnings():  # StudentPyfunc.predict is unannotated on purpose
                warnings.filterwarnings("ignore", message=".*type hints.*", category=UserWarning)
                info = mlflow.pyfunc.log_model(
                    name=MODEL_ARTIFACT,
                    python_model=pyfunc.__file__,  # models from code: MLflow runs it, no pickle
                    artifacts={pyfunc.STUDENT_ARTIFACT: str(folder)},
                    code_paths=[str(code)],
                    model_config={pyfunc.STUDENT_MODULE_KEY: student_module},
                    registered_model_name=registered_name,
                    metadata={LINEAGE_KEY: lineage.to_dict()},
                    # What the shipped modules import at module level (teacher.py, imported
                    # by student.py, brings lightgbm); a test checks this list covers them.
                    pip_requirements=_requirements("polars", "lightgbm"),
                )
        return _finish(client, registered_name, info, lineage, "student")


def lineage_from_partitions(
    partitions: Sequence[str],
    feature_versions: Mapping[str, str],
    data_versions: Mapping[str, str] | None = None,
) -> Lineage:
    """A `Lineage` from the daily partition keys (YYYY-MM-DD) a model trained on."""
    ordered = tuple(sorted(partitions))
    return Lineage(
        training_partitions=ordered,
        window_start=ordered[0] if ordered else None,
        window_end=ordered[-1] if ordered else None,
        feature_versions=dict(feature_versions),
        data_versions=dict(data_versions or {}),
    )
