"""What a fraud model is to the rest of the platform, as typed values.

`FraudModel` is anything that scores rows (the teacher, the student, a loaded champion);
`ModelRef` names a registered version and the data behind it (the value of a model asset);
`EvaluationOutcome` is what `model_evaluation` decided about a candidate, read by the
promotion sensor and `deployed_model` instead of parsing strings out of metadata.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Protocol

import numpy as np

from ml_assets.training.model_inputs import Rows

GATES_PASSED = "gates_passed"  # metadata key of model_evaluation and MLflow run tag
CANDIDATE_NAME = "candidate_name"
CANDIDATE_VERSION = "candidate_version"

# A plausible request with every stored feature missing: any servable model must score it.
PROBE_ROW: dict[str, Any] = {
    "amount": 42.0,
    "channel": "card_present",
    "device": "terminal",
    "merchant_category": "grocery",
    "merchant_country": "US",
    "customer_country": "US",
    "event_time": datetime(2026, 1, 1, 12, tzinfo=UTC),
}


class FraudModel(Protocol):
    """Scores rows (request fields + features) with a fraud probability each."""

    kind: str

    def predict_proba(self, rows: Rows) -> np.ndarray: ...


@dataclass(frozen=True)
class ModelRef:
    """A registered model version and the data behind it: the value of a model asset."""

    name: str
    version: str
    run_id: str
    partitions: tuple[str, ...]
    holdout_start: date
    data_versions: dict[str, str] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def probe_error(model: Any) -> str | None:
    """Why `model` cannot serve, or None: it must return one finite probability for
    `PROBE_ROW`. Checked before serving a version and after deploying it."""
    try:
        scores = np.asarray(model.predict_proba([PROBE_ROW]), dtype=np.float64)
    except Exception as error:  # any failure to score means "not servable"
        return f"raised {type(error).__name__}: {error}"
    if scores.shape != (1,) or not math.isfinite(scores[0]) or not 0.0 <= scores[0] <= 1.0:
        return f"returned {scores!r} for the probe row; expected one probability in [0, 1]"
    return None


@dataclass(frozen=True)
class Verdict:
    """What the promotion sensor reads from a model_evaluation materialization."""

    name: str
    version: str
    passed: bool

    def to_metadata(self) -> dict[str, Any]:
        return {
            CANDIDATE_NAME: self.name,
            CANDIDATE_VERSION: self.version,
            GATES_PASSED: self.passed,
        }

    @classmethod
    def from_metadata(cls, values: Mapping[str, Any]) -> Verdict:
        """From the raw metadata values (`{key: entry.value}`) of a materialization."""
        return cls(
            str(values[CANDIDATE_NAME]), str(values[CANDIDATE_VERSION]), bool(values[GATES_PASSED])
        )


@dataclass(frozen=True)
class EvaluationOutcome:
    """The evaluation of one candidate: its gates, and whether every one of them passed."""

    candidate: ModelRef
    passed: bool
    gates: list[dict[str, Any]]
    metrics: dict[str, float]
    run_id: str  # the Dagster run that evaluated it

    @property
    def verdict(self) -> Verdict:
        return Verdict(self.candidate.name, self.candidate.version, self.passed)

    @property
    def failed_gates(self) -> list[str]:
        return [g["message"] for g in self.gates if not g["passed"]]
