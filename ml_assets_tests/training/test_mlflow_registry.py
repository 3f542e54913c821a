"""Register real models in a real SQLite tracking store and read them back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest

from ml_assets.settings import Settings
from ml_assets.training.registry_aliases import set_alias
from ml_assets.training.registry_reader import (
    CHAMPION,
    STUDENT_MODEL_NAME,
    TEACHER_MODEL_NAME,
    load_model_version,
    recover_lineage,
    resolve_version,
)
from ml_assets.training.registry_writer import lineage_from_partitions, log_student, log_teacher
from ml_assets.training.student import StudentModel
from ml_assets.training.teacher import TeacherModel
from ml_assets_tests.support.models import FEATURE_VERSIONS

PARTITIONS = ["2026-02-02", "2026-02-03", "2026-02-04"]


@pytest.fixture(scope="module")
def registry(trained, tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("mlflow")
    settings = Settings(home=home)
    uri = settings.mlflow_tracking_uri
    lineage = lineage_from_partitions(
        PARTITIONS, FEATURE_VERSIONS, {"validated_transactions": "data-v1"}
    )
    common = dict(
        tracking_uri=uri, lineage=lineage, artifact_location=settings.mlflow_artifact_location
    )
    tags = {"dagster/run_id": "run-123", "dagster/partition": "2026-02-04"}
    teacher = log_teacher(trained.teacher, metrics={"auc": 0.9}, tags=tags, **common)
    student = log_student(trained.student, teacher_version=teacher.version, tags=tags, **common)
    set_alias(uri, STUDENT_MODEL_NAME, CHAMPION, student.version)
    return uri, teacher, student


def test_registered_models_load_back_as_our_wrappers(trained, registry) -> None:
    uri, teacher, _ = registry
    loaded_teacher = load_model_version(TEACHER_MODEL_NAME, teacher.version, uri)
    loaded_student = load_model_version(STUDENT_MODEL_NAME, CHAMPION, uri)
    assert isinstance(loaded_teacher, TeacherModel) and isinstance(loaded_student, StudentModel)
    rows = trained.test.head(500)
    np.testing.assert_array_equal(
        loaded_teacher.predict_proba(rows), trained.teacher.predict_proba(rows)
    )
    np.testing.assert_array_equal(
        loaded_student.predict_proba(rows), trained.student.predict_proba(rows)
    )


def test_student_pyfunc_round_trips_with_its_preprocessing(trained, registry) -> None:
    uri, _, _ = registry
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{STUDENT_MODEL_NAME}@{CHAMPION}")
    rows = trained.test.head(300).with_columns(customer__txn_count_1h=None)
    np.testing.assert_allclose(
        pyfunc.predict(rows.to_pandas()), trained.student.predict_proba(rows), atol=1e-7
    )


def test_lineage_is_recovered_from_a_registered_version(registry) -> None:
    uri, teacher, student = registry
    lineage = recover_lineage(STUDENT_MODEL_NAME, CHAMPION, uri)
    assert list(lineage.training_partitions) == PARTITIONS
    assert (lineage.window_start, lineage.window_end) == (PARTITIONS[0], PARTITIONS[-1])
    assert lineage.feature_versions == FEATURE_VERSIONS
    assert lineage.data_versions == {"validated_transactions": "data-v1"}
    assert lineage.teacher_version == teacher.version
    run = mlflow.MlflowClient(uri).get_run(student.run_id)
    assert run.data.tags["dagster/run_id"] == "run-123"
    assert run.data.tags["teacher_version"] == teacher.version


def test_unknown_alias_names_the_model_and_what_to_do(registry) -> None:
    uri, _, _ = registry
    assert resolve_version(uri, TEACHER_MODEL_NAME, CHAMPION) is None
    with pytest.raises(LookupError, match="fraud_teacher.*champion"):
        load_model_version(TEACHER_MODEL_NAME, CHAMPION, uri)


def test_the_serving_loader_does_not_import_dagster(tmp_path: Path) -> None:
    code = (
        "import sys, ml_assets.training.registry_reader as r;"
        "assert 'dagster' not in sys.modules, 'dagster imported';"
        "assert 'ml_assets.training.registry_writer' not in sys.modules, 'write side imported';"
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)
