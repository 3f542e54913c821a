from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from ml_assets.training.evaluation import bayes_auc, roc_auc
from ml_assets.training.teacher import TeacherModel, time_split


def test_time_split_keeps_validation_days_after_training_days(frame: pl.DataFrame) -> None:
    train, valid = time_split(frame, validation_days=2)
    assert train["event_time"].max() < valid["event_time"].min()
    assert valid["event_time"].dt.date().n_unique() == 2
    with pytest.raises(ValueError, match="widen the training window"):
        time_split(frame.head(10), validation_days=2)


def test_teacher_learns_fraud_on_unseen_days(trained) -> None:
    y = trained.test["is_fraud"].to_numpy()
    auc = roc_auc(y, trained.teacher.predict_proba(trained.test))
    # The generator's signal gives ~0.90 here; chance is 0.5.
    assert auc > 0.8
    assert auc > bayes_auc(trained.test) - 0.05
    assert trained.teacher.info["validation_days"] > trained.teacher.info["train_days"]


def test_single_request_scores_like_the_batch(trained) -> None:
    batch = trained.teacher.predict_proba(trained.test.head(20))
    rows = list(trained.test.head(20).iter_rows(named=True))
    single = np.array([trained.teacher.predict_proba(row)[0] for row in rows])
    np.testing.assert_allclose(single, batch, rtol=1e-12)
    np.testing.assert_allclose(trained.teacher.predict_proba(rows), batch, rtol=1e-12)


def test_teacher_handles_unknown_categories_and_missing_features(trained) -> None:
    row = trained.test.row(0, named=True)
    row.update(merchant_category="never_seen", customer__amount_mean_30d=None)
    p = trained.teacher.predict_proba(row)
    assert p.shape == (1,) and 0 < p[0] < 1


def test_teacher_round_trips_through_its_folder(trained, tmp_path: Path) -> None:
    loaded = TeacherModel.load(trained.teacher.save(tmp_path / "teacher"))
    np.testing.assert_array_equal(
        loaded.predict_proba(trained.test), trained.teacher.predict_proba(trained.test)
    )
