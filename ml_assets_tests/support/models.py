"""Small models trained in memory on a generated window, for tests that need a real teacher
and student without the platform around them.

The window is small to keep the suite fast, but the data's signal is strong enough that the
floors asserted in the tests sit well below what the models reach.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from ml_assets.training.model_inputs import ModelInputs
from ml_assets.training.student import StudentConfig, StudentModel, train_student
from ml_assets.training.synthetic import labelled_frame
from ml_assets.training.teacher import TeacherConfig, TeacherModel, time_split, train_teacher

START = date(2026, 2, 2)
DAYS = 9
ROWS_PER_DAY = 6_000
FEATURE_VERSIONS = {
    "customer__amount_mean_30d": "v1",
    "customer__txn_count_1h": "v2",
    "customer__txn_count_24h": "v1",
    "merchant__txn_count_24h": "v1",
}
# One thread each: the suite shares 2 cores with other workers, and OpenMP spin-waits.
FAST_TEACHER = TeacherConfig(
    num_boost_round=600, learning_rate=0.06, early_stopping_rounds=50, num_threads=1
)
FAST_STUDENT = StudentConfig(epochs=8, batch_size=512, num_threads=1)


@dataclass(frozen=True)
class Trained:
    train: pl.DataFrame  # teacher/student fit + validation days
    test: pl.DataFrame  # the newest days, seen by neither model
    inputs: ModelInputs
    teacher: TeacherModel
    student: StudentModel


def labelled_window() -> pl.DataFrame:
    """`DAYS` labelled days with their features, from `START`."""
    return labelled_frame(START, DAYS, transactions_per_day=ROWS_PER_DAY)


def train_small_models(frame: pl.DataFrame) -> Trained:
    """A teacher and its distilled student on all but the newest two days of `frame`."""
    train, test = time_split(frame, validation_days=2)
    inputs = ModelInputs.from_frame(frame, FEATURE_VERSIONS)
    teacher = train_teacher(train, inputs, FAST_TEACHER)
    student = train_student(train, teacher, FAST_STUDENT)
    return Trained(train=train, test=test, inputs=inputs, teacher=teacher, student=student)
