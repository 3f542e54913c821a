"""The read side of the model registry: resolve an alias, load a version, recover lineage.

This is serving's contract with training (DESIGN: serving reads the online store and the
registry loader only). It must never import dagster nor the write side
(`registry_writer`); a test checks both on the import graph.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml_assets.training.student import StudentModel
from ml_assets.training.teacher import TeacherModel

if TYPE_CHECKING:
    from mlflow import MlflowClient

TEACHER_MODEL_NAME = "fraud_teacher"
STUDENT_MODEL_NAME = "fraud_student"
# The registry aliases: the one home of their names (serving, automation and the CLI use them).
CHAMPION = "champion"
MODEL_ARTIFACT = "model"
SPEC_KEY = "ml_assets_spec"
LINEAGE_KEY = "ml_assets_lineage"
TEACHER_VERSION_TAG = "teacher_version"
# The tail of a data dir's own artifact root (`Settings.mlflow_artifact_location`).
DATA_DIR_ARTIFACTS = "/mlflow/artifacts"


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


@contextmanager
def tracking(tracking_uri: str) -> Iterator[MlflowClient]:
    """Point MLflow's global fluent API (tracking and registry) at `tracking_uri`.

    Not restored afterwards on purpose: MLflow pins the old value as an explicit URI
    (and an environment variable), which would send later calls to the wrong database.
    """
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    yield mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def resolve_version(tracking_uri: str, name: str, alias_or_version: str | int) -> str | None:
    """The version number behind an alias or number; None if the alias is not set."""
    ref = str(alias_or_version)
    if ref.isdigit():
        return ref
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
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


def check_not_elsewhere(tracking_uri: str, name: str, version: str) -> None:
    """Refuse a version whose artifacts are in another data dir than its database.

    MLflow's SQLite store keeps absolute artifact locations, so a copied data dir would
    otherwise serve the original's files (and break once the original is gone)."""
    if not tracking_uri.startswith("sqlite:///"):
        return
    import mlflow

    database = Path(tracking_uri.removeprefix("sqlite:///"))
    own = (database.parent / "artifacts").as_uri()
    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    stored = client.get_model_version_download_uri(name, version)
    beside = stored.startswith("file://") and f"{DATA_DIR_ARTIFACTS}/" in stored
    if beside and own.endswith(DATA_DIR_ARTIFACTS) and not stored.startswith(f"{own}/"):
        home = database.parent.parent
        raise LookupError(
            f"{name} v{version} is stored at {stored}, outside this data dir ({home}): it was "
            f"copied or moved. Run `ML_ASSETS_HOME={home} ml-assets relocate` first"
        )


def load_model_version(
    name: str, alias_or_version: str | int, tracking_uri: str
) -> TeacherModel | StudentModel:
    """Our model wrapper (same `predict_proba` for both kinds) for a registered version."""
    import lightgbm as lgb
    import mlflow

    version = _resolve_or_fail(tracking_uri, name, alias_or_version)
    check_not_elsewhere(tracking_uri, name, version)
    uri = f"models:/{name}/{version}"
    with tracking(tracking_uri), tempfile.TemporaryDirectory() as tmp:
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
    import mlflow

    version = _resolve_or_fail(tracking_uri, name, alias_or_version)
    with tracking(tracking_uri):
        info = mlflow.models.get_model_info(f"models:/{name}/{version}")
    return Lineage.from_dict((info.metadata or {}).get(LINEAGE_KEY, {}))


def registered_model_tag(tracking_uri: str, name: str, key: str) -> str | None:
    """A tag of the registered model (e.g. the canary's share), or None when it is unset."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    return client.get_registered_model(name).tags.get(key)
