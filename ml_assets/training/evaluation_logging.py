"""What the evaluation leaves in MLflow on the candidate's run: metrics, pictures, slices,
and the gate verdict that promotion reads."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path

import polars as pl

from ml_assets.training.evaluation import Evaluation
from ml_assets.training.model_inputs import LABEL_COLUMN, TRUTH_COLUMN
from ml_assets.training.plots import write_evaluation_plots
from ml_assets.training.registry_aliases import record_gates

ARTIFACT_DIR = "evaluation"


def log_evaluation(
    tracking_uri: str,
    run_id: str,
    evaluation: Evaluation,
    holdout: pl.DataFrame,
    passed: bool,
    extra: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """Log `evaluation` of the held-out rows on run `run_id` (metrics `eval_*` with `extra`,
    the ROC/PR and calibration pictures and the slice table under `evaluation/`) and record
    whether every gate passed. Returns the metrics logged."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    metrics = {**evaluation.to_metrics(), **(extra or {})}
    for key, value in metrics.items():
        client.log_metric(run_id, f"eval_{key}", value)
    with tempfile.TemporaryDirectory() as tmp:
        y = holdout[LABEL_COLUMN].cast(pl.Float64).to_numpy()
        truth = holdout.get_column(TRUTH_COLUMN, default=None)
        bayes = truth.to_numpy() if truth is not None else None
        plots = write_evaluation_plots(y, evaluation.scores, Path(tmp), bayes=bayes)
        slices = Path(tmp) / "slices.csv"
        evaluation.slices_frame().write_csv(slices)
        for path in [*plots.values(), slices]:
            client.log_artifact(run_id, str(path), ARTIFACT_DIR)
    record_gates(tracking_uri, run_id, passed)
    return metrics
