"""A copied or moved data dir keeps working: MLflow's database stores absolute artifact
locations, so `ml-assets relocate` points them at the copy, and the training side does the
same by itself before it logs. Tested on a real registry (SQLite, as the default data dir
has it) and a real endpoint (uvicorn on loopback) serving from the copy while the original
is out of reach, and the original is checked byte for byte afterwards."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import pytest
from mlflow import MlflowClient

from ml_assets.serving.app import create_app
from ml_assets.settings import Settings
from ml_assets.training.registry_location import ensure_artifact_root
from ml_assets.training.registry_reader import Lineage, load_model_version
from ml_assets.training.registry_writer import EXPERIMENT_NAME, log_teacher
from ml_assets_tests.support.worlds import REPO, World, build_world

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("object_storage")]


def tree(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under `folder` with its size and modification time."""
    return {
        str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def mentions(database: Path, text: str) -> dict[str, int]:
    """Rows of every column of MLflow's SQLite database whose value contains `text`."""
    found = {}
    with closing(sqlite3.connect(database)) as db:
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for column in [row[1] for row in db.execute(f'PRAGMA table_info("{table}")')]:
                query = f'SELECT count(*) FROM "{table}" WHERE instr(CAST("{column}" AS TEXT), ?)'
                if count := db.execute(query, (text,)).fetchone()[0]:
                    found[f"{table}.{column}"] = count
    return found


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield build_world(tmp_path_factory.mktemp("relocate") / "original")


def test_a_copied_data_dir_serves_from_the_copy_after_relocate(original, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(original.home, copy)
    before = tree(original.home)
    away = original.home.with_name("out_of_reach")
    original.home.rename(away)  # anything still reading the original fails from here on
    try:
        # Not relocated yet: the copy refuses to serve what its database says is elsewhere.
        with pytest.raises(LookupError, match="ml-assets relocate"):
            load_model_version("fraud_student", "champion", Settings(home=copy).mlflow_tracking_uri)
        env = {**os.environ, "ML_ASSETS_HOME": str(copy), "PYTHONPATH": str(REPO)}
        env.pop("MLFLOW_TRACKING_URI", None)
        env.pop("ML_ASSETS_MLFLOW_TRACKING_URI", None)
        done = subprocess.run([sys.executable, "-m", "ml_assets.cli", "relocate"], env=env,
                              cwd=REPO, capture_output=True, text=True, timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert f"-> {Settings(home=copy).mlflow_artifact_location}:" in done.stdout
        settings = Settings(home=copy)
        assert mentions(settings.mlflow_dir / "mlflow.db", str(original.home)) == {}
        assert mentions(settings.mlflow_dir / "mlflow.db", str(copy)) != {}

        world = replace(original, home=copy, tracking_uri=settings.mlflow_tracking_uri)
        # A generous budget: the copy is under test, not latency (a cold call can be slow).
        config = world.config(copy, request_timeout_s=30.0)
        with world.serve(create_app(config)) as client:
            response = client.post("/predict", json=world.transaction(1))
        assert response.status_code == 200, response.text
        prediction = response.json()
        assert (prediction["path"], prediction["model_version"]) == ("model", world.versions[0])
    finally:
        away.rename(original.home)
    assert tree(original.home) == before


def test_training_in_a_copy_logs_into_the_copy(original, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(original.home, copy)
    before = tree(original.home)
    settings = Settings(home=copy)
    registered = log_teacher(
        original.teacher, tracking_uri=settings.mlflow_tracking_uri, lineage=Lineage(),
        artifact_location=settings.mlflow_artifact_location,
    )  # fmt: skip
    run = MlflowClient(tracking_uri=settings.mlflow_tracking_uri).get_run(registered.run_id)
    assert run.info.artifact_uri.startswith(settings.mlflow_artifact_location)
    assert mentions(settings.mlflow_dir / "mlflow.db", str(original.home)) == {}
    assert (copy / "mlflow" / "artifacts" / run.info.run_id).is_dir()
    assert tree(original.home) == before
    # A changed setting is not a move: the artifacts are not where the new root says.
    with pytest.raises(RuntimeError, match="ml-assets relocate --from"):
        ensure_artifact_root(settings.mlflow_tracking_uri, EXPERIMENT_NAME, "s3://bucket/mlflow")
