"""Logging, registering, aliasing and loading the fraud models in MLflow.

Every registered version carries its lineage (training partitions and window, feature
versions, data versions, and for the student its teacher's version) inside the model's
own metadata, so a version found in the registry leads back to the data that made it.
Serving imports `load_model_version` from here: this module must never import dagster.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import lightgbm as lgb
import mlflow
from mlflow import MlflowClient

from ml_assets.training.student import StudentModel
from ml_assets.training.teacher import TeacherModel

TEACHER_MODEL_NAME = "fraud_teacher"
STUDENT_MODEL_NAME = "fraud_student"
CHAMPION = "champion"
CHALLENGER = "challenger"
EXPERIMENT_NAME = "fraud_models"
MODEL_ARTIFACT = "model"
SPEC_KEY = "ml_assets_spec"
LINEAGE_KEY = "ml_assets_lineage"
KIND_TAG = "ml_assets.kind"
TEACHER_VERSION_TAG = "teacher_version"

FraudModel = TeacherModel | StudentModel


def _requirements(*packages: str) -> list[str]:
    """Pinned requirements of a logged model; given explicitly because MLflow's inference
    imports the model in a subprocess and costs seconds per log."""
    return [f"{name}=={package_version(name)}" for name in ("mlflow", "numpy", *packages)]


def tracking_uri_for(directory: Path) -> str:
    """The SQLite tracking/registry URI for an MLflow folder (the file store is deprecated)."""
    return f"sqlite:///{Path(directory).resolve() / 'mlflow.db'}"


def artifact_location_for(directory: Path) -> str:
    return (Path(directory).resolve() / "artifacts").as_uri()


@dataclass(frozen=True)
class Lineage:
    """Where a model came from: the data window, the feature and data versions it read."""

    training_partitions: tuple[str, ...] = ()
    window_start: str | None = None
    window_end: str | None = None
    feature_versions: dict[str, str] = field(default_factory=dict)
    data_versions: dict[str, str] = field(default_factory=dict)
    teacher_version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["training_partitions"] = list(self.training_partitions)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Lineage:
        return cls(
            training_partitions=tuple(data.get("training_partitions", ())),
            window_start=data.get("window_start"),
            window_end=data.get("window_end"),
            feature_versions=dict(data.get("feature_versions", {})),
            data_versions=dict(data.get("data_versions", {})),
            teacher_version=data.get("teacher_version"),
        )

    def summary_tags(self) -> dict[str, str]:
        """Short tags for browsing in the MLflow UI (the full record is in the metadata)."""
        tags = {
            "training_window": f"{self.window_start}..{self.window_end}",
            "training_partitions": str(len(self.training_partitions)),
        }
        if self.teacher_version:
            tags[TEACHER_VERSION_TAG] = self.teacher_version
        return tags


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str
    run_id: str
    model_uri: str  # models:/<name>/<version>


@contextmanager
def _tracking(tracking_uri: str) -> Iterator[MlflowClient]:
    """Point MLflow's global fluent API (tracking and registry) at `tracking_uri`.

    Not restored afterwards on purpose: MLflow pins the old value as an explicit URI
    (and an environment variable), which would send later calls to the wrong database.
    """
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    yield MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def _experiment_id(client: MlflowClient, name: str, artifact_location: str | None) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
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
    with _tracking(tracking_uri) as client:
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
    """Log the student as a pyfunc whose artifacts hold weights + preprocessing, register
    it, and record the teacher version it was distilled from."""
    from ml_assets.training.pyfunc import STUDENT_ARTIFACT, StudentPyfunc

    lineage = Lineage.from_dict({**lineage.to_dict(), "teacher_version": teacher_version})
    with _tracking(tracking_uri) as client, tempfile.TemporaryDirectory() as tmp:
        folder = student.save(Path(tmp) / STUDENT_ARTIFACT)
        experiment_id = _experiment_id(client, experiment, artifact_location)
        run_tags = {**dict(tags or {}), TEACHER_VERSION_TAG: teacher_version}
        with mlflow.start_run(experiment_id=experiment_id, tags=run_tags):
            mlflow.set_tag(KIND_TAG, "student")
            _log_common(student, lineage, metrics, params)
            with warnings.catch_warnings():  # StudentPyfunc.predict is unannotated on purpose
                warnings.filterwarnings("ignore", message=".*type hints.*", category=UserWarning)
                info = mlflow.pyfunc.log_model(
                    name=MODEL_ARTIFACT,
                    python_model=StudentPyfunc(),
                    artifacts={STUDENT_ARTIFACT: str(folder)},
                    registered_model_name=registered_name,
                    metadata={LINEAGE_KEY: lineage.to_dict()},
                    # ml_assets itself must be importable where the pyfunc is loaded.
                    pip_requirements=_requirements("polars"),
                )
        return _finish(client, registered_name, info, lineage, "student")


def set_alias(tracking_uri: str, name: str, alias: str, version: str) -> None:
    """Point `alias` (champion/challenger) of registered model `name` at `version`."""
    MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri).set_registered_model_alias(
        name, alias, str(version)
    )


def resolve_version(tracking_uri: str, name: str, alias_or_version: str | int) -> str | None:
    """The version number behind an alias or number; None if the alias is not set."""
    ref = str(alias_or_version)
    if ref.isdigit():
        return ref
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        return str(client.get_model_version_by_alias(name, ref).version)
    except mlflow.exceptions.MlflowException:
        return None


def _resolve_or_fail(tracking_uri: str, name: str, alias_or_version: str | int) -> str:
    version = resolve_version(tracking_uri, name, alias_or_version)
    if version is None:
        raise LookupError(
            f"registered model '{name}' has no alias '{alias_or_version}' in {tracking_uri};"
            " train and promote a model first"
        )
    return version


def load_model_version(name: str, alias_or_version: str | int, tracking_uri: str) -> FraudModel:
    """Our model wrapper (same `predict_proba` for both kinds) for a registered version."""
    version = _resolve_or_fail(tracking_uri, name, alias_or_version)
    uri = f"models:/{name}/{version}"
    with _tracking(tracking_uri), tempfile.TemporaryDirectory() as tmp:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp))
        model_meta = mlflow.models.Model.load(str(local / "MLmodel"))
        metadata = model_meta.metadata or {}
        if "lightgbm" in model_meta.flavors:
            model_file = model_meta.flavors["lightgbm"]["data"]
            booster = lgb.Booster(model_file=str(local / model_file))
            return TeacherModel.from_booster(booster, metadata[SPEC_KEY])
        student_dirs = sorted(local.rglob("student_spec.json"))
        if not student_dirs:
            raise ValueError(f"{uri} is neither a teacher nor a student logged by ml_assets")
        return StudentModel.load(student_dirs[0].parent)


def recover_lineage(name: str, alias_or_version: str | int, tracking_uri: str) -> Lineage:
    """The training partitions, window, feature and data versions of a registered version."""
    version = _resolve_or_fail(tracking_uri, name, alias_or_version)
    with _tracking(tracking_uri):
        info = mlflow.models.get_model_info(f"models:/{name}/{version}")
    return Lineage.from_dict((info.metadata or {}).get(LINEAGE_KEY, {}))


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
