from __future__ import annotations

from pathlib import Path

import numpy as np

from ml_assets.training.evaluation import roc_auc
from ml_assets.training.student import StudentModel


def test_student_reproduces_the_teacher_on_unseen_days(trained) -> None:
    y = trained.test["is_fraud"].to_numpy()
    teacher_p = trained.teacher.predict_proba(trained.test)
    student_p = trained.student.predict_proba(trained.test)
    assert roc_auc(y, student_p) >= 0.95 * roc_auc(y, teacher_p)
    assert np.abs(student_p - teacher_p).mean() < 0.02
    assert np.corrcoef(student_p, teacher_p)[0, 1] > 0.8


def test_numpy_forward_matches_torch(trained) -> None:
    rows = trained.test.head(2000)
    np.testing.assert_allclose(
        trained.student.predict_numpy(rows), trained.student.predict_torch(rows), atol=1e-6
    )


def test_preprocessing_imputes_missing_and_unknown_values(trained) -> None:
    row = trained.test.row(0, named=True)
    row.update(device="smart_fridge", customer__amount_mean_30d=None, customer__txn_count_1h=None)
    x = trained.student.features(row)
    assert np.isfinite(x).all()
    p = trained.student.predict_proba(row)
    assert 0 < p[0] < 1


def test_student_round_trips_through_its_folder(trained, tmp_path: Path) -> None:
    loaded = StudentModel.load(trained.student.save(tmp_path / "student"))
    np.testing.assert_array_equal(
        loaded.predict_proba(trained.test), trained.student.predict_proba(trained.test)
    )
