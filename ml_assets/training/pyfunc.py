"""The student as an MLflow pyfunc, so any MLflow tool can load and call it.

Its artifacts are the student's own save folder (weights + fitted preprocessing), so
`mlflow.pyfunc.load_model` gives the exact model serving runs, with nothing else needed
but an environment where `ml_assets` is importable.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np

from ml_assets.training.student import StudentModel

STUDENT_ARTIFACT = "student"


# MLflow warns at class creation when `predict` has no type hints; they are left out on
# purpose, since MLflow would derive and enforce a schema from them.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*type hints.*", category=UserWarning)

    class StudentPyfunc(mlflow.pyfunc.PythonModel):
        """Loads `StudentModel` from the logged artifacts and returns fraud probabilities."""

        def load_context(self, context: Any) -> None:
            self.student = StudentModel.load(Path(context.artifacts[STUDENT_ARTIFACT]))

        def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201
            # Request rows legitimately vary (absent features are allowed): no schema.
            return np.asarray(self.student.predict_numpy(model_input))
