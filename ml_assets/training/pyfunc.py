"""The student as an MLflow pyfunc, so any MLflow tool can load and call it.

Its artifacts are the student's own save folder (weights + fitted preprocessing), so
`mlflow.pyfunc.load_model` gives the exact model serving runs, with nothing else needed
but an environment where `ml_assets` is importable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np

from ml_assets.training.student import StudentModel

STUDENT_ARTIFACT = "student"


class StudentPyfunc(mlflow.pyfunc.PythonModel):
    """Loads `StudentModel` from the logged artifacts and returns fraud probabilities."""

    def load_context(self, context: Any) -> None:
        self.student = StudentModel.load(Path(context.artifacts[STUDENT_ARTIFACT]))

    def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201
        # Unannotated on purpose: MLflow would otherwise derive and enforce a schema from
        # type hints, and request rows legitimately vary (missing features are allowed).
        return np.asarray(self.student.predict_numpy(model_input))
