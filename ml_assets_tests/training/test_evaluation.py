from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ml_assets.training.evaluation import (
    evaluate_models,
    expected_calibration_error,
    fraud_amount_caught,
)
from ml_assets.training.plots import write_evaluation_plots


def test_ece_is_small_for_calibrated_scores_and_large_for_inflated_ones() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 0.2, 100_000)
    y = (rng.random(p.size) < p).astype(float)
    assert expected_calibration_error(y, p) < 0.005
    assert expected_calibration_error(y, np.minimum(p * 3, 1)) > 0.1


def test_fraud_amount_caught_counts_amount_in_the_reviewed_top_scores() -> None:
    y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 1], dtype=float)
    amount = np.array([100, 5, 50, 5, 5, 5, 5, 5, 5, 50], dtype=float)
    p = np.array([0.9, 0.8, 0.1, 0, 0, 0, 0, 0, 0, 0.7])
    # Reviewing the top 20% (2 rows) catches the 100 of 200 fraud amount.
    assert fraud_amount_caught(y, p, amount, review_share=0.2) == pytest.approx(0.5)


def test_evaluation_reports_quality_ceiling_fidelity_latency_and_slices(trained) -> None:
    evaluation = evaluate_models(trained.teacher, trained.student, trained.test)
    metrics = evaluation.to_metrics()
    assert 0.8 < metrics["teacher_roc_auc"] <= 1
    assert metrics["bayes_auc"] > 0.85
    assert metrics["fidelity_auc_ratio"] > 0.95
    for model in ("teacher", "student"):
        for batch in (1, 1000):
            assert (
                metrics[f"{model}_latency_b{batch}_p99_ms"]
                >= metrics[f"{model}_latency_b{batch}_p50_ms"]
                > 0
            )
        assert 0 < metrics[f"{model}_fraud_amount_caught"] <= 1
    slices = evaluation.slices_frame()
    assert set(slices["column"]) == {"channel", "merchant_category"}
    channel_rows = slices.filter(model="student", column="channel")["rows"].sum()
    assert channel_rows == trained.test.height


def test_plots_are_written_as_png(trained, tmp_path: Path) -> None:
    y = trained.test["is_fraud"].to_numpy()
    scores = {"teacher": trained.teacher.predict_proba(trained.test)}
    paths = write_evaluation_plots(
        y, scores, tmp_path / "plots", bayes=trained.test["true_fraud_probability"].to_numpy()
    )
    for path in paths.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
