"""The logged student is servable by MLflow's own tools where `ml_assets` is not installed:
its model directory carries the code it runs and requirements covering that code's imports."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import sysconfig
from importlib.metadata import packages_distributions
from pathlib import Path

import mlflow
import numpy as np
import polars as pl
import pytest

from ml_assets.settings import Settings
from ml_assets.training.pyfunc import SHIPPED_PACKAGE_PREFIX
from ml_assets.training.registry_reader import STUDENT_MODEL_NAME, tracking
from ml_assets.training.registry_writer import lineage_from_partitions, log_student

REPO = Path(__file__).resolve().parents[2]

# Run with `python -I -S`: no PYTHONPATH, no user site, and no site-packages processing, so
# the editable install's finder (a .pth hook) never loads; the venv's site-packages is then
# added by hand. The script proves `ml_assets` is not importable before loading the model.
LOAD_AND_PREDICT = """
import importlib.util, json, sys
from pathlib import Path
args = json.loads(sys.argv[1])
sys.path.append(args["site_packages"])
assert importlib.util.find_spec("ml_assets") is None, "ml_assets is importable"
try:
    import ml_assets  # noqa: F401
except ImportError:
    pass
else:
    raise SystemExit("import ml_assets succeeded")
assert all(Path(p).resolve() != Path(args["repo"]) for p in sys.path if p), sys.path
import mlflow
import pandas as pd
model = mlflow.pyfunc.load_model(args["model_uri"])
predictions = model.predict(pd.read_parquet(args["rows"]))
print(json.dumps({
    "predictions": [float(p) for p in predictions],
    "ml_assets_modules": sorted(m for m in sys.modules if m.split(".")[0] == "ml_assets"),
    "shipped": sorted({m.split(".")[0] for m in sys.modules if m.startswith(args["prefix"])}),
}))
"""


@pytest.fixture(scope="module")
def logged(trained, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A student logged to a fresh SQLite registry: (tracking uri, models:/ uri)."""
    settings = Settings(home=tmp_path_factory.mktemp("mlflow_servable"))
    uri = settings.mlflow_tracking_uri
    lineage = lineage_from_partitions(
        ["2026-02-02", "2026-02-03"], trained.student.inputs.feature_versions
    )
    version = log_student(
        trained.student,
        tracking_uri=uri,
        lineage=lineage,
        teacher_version="1",
        artifact_location=settings.mlflow_artifact_location,
    )
    return uri, f"models:/{STUDENT_MODEL_NAME}/{version.version}"


def _rows(test: pl.DataFrame) -> pl.DataFrame:
    """Test rows, a quarter with a stored feature missing and a category never seen."""
    odd = test.slice(150, 50).with_columns(
        customer__txn_count_1h=None, merchant_category=pl.lit("never_seen")
    )
    return pl.concat([test.head(150), odd], how="vertical_relaxed")


@pytest.mark.slow
def test_student_pyfunc_loads_and_predicts_without_ml_assets(
    trained, logged, tmp_path: Path
) -> None:
    uri, model_uri = logged
    rows = _rows(trained.test)
    rows.write_parquet(tmp_path / "rows.parquet")
    args = {
        "site_packages": sysconfig.get_paths()["purelib"],
        "repo": str(REPO),
        "model_uri": model_uri,
        "rows": str(tmp_path / "rows.parquet"),
        "prefix": SHIPPED_PACKAGE_PREFIX,
    }
    assert not tmp_path.resolve().is_relative_to(REPO)
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", LOAD_AND_PREDICT, json.dumps(args)],
        cwd=tmp_path,
        env={"MLFLOW_TRACKING_URI": uri, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["ml_assets_modules"] == []
    assert len(out["shipped"]) == 1  # the student's code came from the model directory
    np.testing.assert_allclose(
        out["predictions"], trained.student.predict_proba(rows), rtol=0, atol=1e-6
    )


def _module_level_imports(path: Path) -> set[str]:
    """Top-level names of what a file imports when it is imported (not lazily, not under
    `if TYPE_CHECKING`)."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_logged_requirements_cover_what_the_shipped_code_imports(logged, tmp_path: Path) -> None:
    uri, model_uri = logged
    with tracking(uri):
        local = Path(mlflow.artifacts.download_artifacts(model_uri, dst_path=str(tmp_path)))
    code = list((local / "code").rglob("*.py"))
    assert code and not (local / "code" / "ml_assets").exists()
    imported = set().union(*(_module_level_imports(p) for p in [*code, local / "pyfunc.py"]))
    third_party = {
        name
        for name in imported
        if name not in sys.stdlib_module_names
        and name != "__future__"
        and not name.startswith(SHIPPED_PACKAGE_PREFIX)
    }
    assert "ml_assets" not in third_party
    distributions = packages_distributions()
    required = {
        line.split("==")[0].strip().lower().replace("_", "-")
        for line in (local / "requirements.txt").read_text().splitlines()
        if line.strip()
    }
    for name in sorted(third_party):
        provided = {d.lower().replace("_", "-") for d in distributions.get(name, [name])}
        assert provided & required, f"{name} is imported by the shipped code but not required"


def test_pyfunc_and_serving_path_give_the_same_calibrated_score(trained, logged) -> None:
    """MLflow's pyfunc and the endpoint's registry loader run one calibration."""
    from ml_assets.serving.model_source import MlflowRegistry

    uri, model_uri = logged
    rows = _rows(trained.test)
    with tracking(uri):
        pyfunc_scores = mlflow.pyfunc.load_model(model_uri).predict(rows.to_pandas())
    scorer = MlflowRegistry(uri, STUDENT_MODEL_NAME).load(model_uri.rsplit("/", 1)[-1])
    served = scorer.predict_proba(rows.to_dicts())
    np.testing.assert_allclose(np.asarray(pyfunc_scores), served, rtol=0, atol=1e-9)
    student = trained.student
    assert student.calibration.temperature != 1.0
    logits = student.logits_numpy(student.features(rows))
    np.testing.assert_allclose(served, student.calibration.probabilities(logits), atol=1e-9)
    uncalibrated = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    assert np.abs(served - uncalibrated).max() > 1e-4  # the calibration really applies
