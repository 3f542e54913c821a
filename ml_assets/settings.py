"""Paths and thresholds of the platform, read once from the environment with defaults.

Every knob a user may want to turn without editing code lives here, so the README can
list them in one table and tests can build a `Settings` pointing at a temporary folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from ml_assets.storage import StoragePath, is_url, storage_path

REPO_ROOT = Path(__file__).resolve().parent.parent


ROLLOUT_SETTINGS = (
    "shadow_max_flip_rate",
    "shadow_latency_budget_ms",
    "shadow_min_requests",
    "canary_share",
    "ab_mde",
    "ab_alpha",
    "ab_power",
)


def _env(name: str, default: object) -> str:
    return os.environ.get(name, str(default))


@dataclass(frozen=True)
class DecisionThresholds:
    """Score -> decision, shared by the endpoint and batch scoring: approve below
    `review_low`, decline at or above `decline_at`, send the band between to human review."""

    review_low: float = 0.3
    decline_at: float = 0.7

    def __post_init__(self) -> None:
        if not 0.0 <= self.review_low <= self.decline_at <= 1.0:
            raise ValueError(
                f"review_low={self.review_low} and decline_at={self.decline_at} must satisfy "
                "0 <= review_low <= decline_at <= 1 (ML_ASSETS_REVIEW_LOW, ML_ASSETS_DECLINE_AT)"
            )

    @classmethod
    def from_env(cls) -> DecisionThresholds:
        default = cls()
        return cls(
            review_low=float(_env("ML_ASSETS_REVIEW_LOW", default.review_low)),
            decline_at=float(_env("ML_ASSETS_DECLINE_AT", default.decline_at)),
        )


@dataclass(frozen=True)
class Settings:
    """One object for every path and threshold; build it with `Settings.from_env()`."""

    home: Path = field(default_factory=lambda: REPO_ROOT / ".ml_assets")
    partitions_start: date = date(2026, 1, 1)
    seed: int = 7
    # Source
    transactions_per_day: int = 20_000
    label_delay_min_days: int = 1
    label_delay_max_days: int = 3
    never_labelled_share: float = 0.03
    # Data quality (blocking checks on validated_transactions)
    max_quarantine_share: float = 0.25
    row_count_tolerance: float = 0.5  # a day may differ from the trailing mean by this share
    row_count_trailing_days: int = 7
    max_null_share: float = 0.01
    # Monitoring (warning checks)
    min_daily_auc: float = 0.80
    max_fallback_share: float = 0.05
    retrain_drift_days: int = 2  # consecutive drifted days that trigger a retrain
    # Online store: empty means the embedded SQLite file in the data dir
    online_store_url: str = ""
    # Late events: how far behind the clock an event may be scored or posted (the online
    # store keeps each entity's events that much longer than its features need)
    max_event_lag_s: float = 7 * 86_400.0
    # Backfills: days one run covers (data and features); 1 = one run per day
    backfill_days_per_run: int = 31
    # RAG: the Markdown folder the corpus is read from (empty: the shipped corpus plus the
    # project's README and serving README) and the answer latency budget (retrieval +
    # generation p95, a blocking check of answer_evaluation)
    rag_corpus_dir: str = ""
    rag_sla_ms: float = 1000.0
    # Decisions, the same for the endpoint and for batch scoring
    decisions: DecisionThresholds = field(default_factory=DecisionThresholds)
    # Rollout (shadow -> canary -> champion). Shadow: a day blocks the move to canary when
    # more than `shadow_max_flip_rate` of the compared answers change decision, or the
    # shadow model's p95 scoring time exceeds `shadow_latency_budget_ms`; the move needs
    # `shadow_min_requests` compared answers. Canary: its share of customers, and the A/B
    # plan (minimal detectable effect on fraud caught, alpha, power) fixed before the test.
    shadow_max_flip_rate: float = 0.02
    shadow_latency_budget_ms: float = 20.0
    shadow_min_requests: int = 1_000
    canary_share: float = 0.1
    ab_mde: float = 0.1
    ab_alpha: float = 0.05
    ab_power: float = 0.8
    # Where a run's steps execute: `multiprocess` (one machine) or `k8s` (a pod per step)
    executor: str = "multiprocess"
    # Object storage and MLflow's backend: empty means under the data dir (embedded, no
    # server). The warehouse, reports and artifact root may be `s3://bucket/prefix` URLs
    # (credentials and endpoint from AWS_* variables); the tracking store a database URL
    # such as postgresql+psycopg2://user@host:5432/mlflow.
    warehouse_url: str = ""
    reports_url: str = ""
    mlflow_artifacts_url: str = ""
    mlflow_tracking_url: str = ""

    @classmethod
    def from_env(cls) -> Settings:
        default = cls()
        home = _env("ML_ASSETS_HOME", str(default.home))
        if is_url(home):
            raise ValueError(
                f"ML_ASSETS_HOME={home} must be a local folder (the landing zone, online store "
                "and prediction logs are files); put the warehouse, reports and MLflow artifacts "
                "on object storage with ML_ASSETS_WAREHOUSE_URL, ML_ASSETS_REPORTS_URL and "
                "ML_ASSETS_MLFLOW_ARTIFACTS_URL"
            )
        return cls(
            home=Path(home).resolve(),
            partitions_start=date.fromisoformat(
                _env("ML_ASSETS_START", default.partitions_start.isoformat())
            ),
            seed=int(_env("ML_ASSETS_SEED", str(default.seed))),
            transactions_per_day=int(
                _env("ML_ASSETS_TRANSACTIONS_PER_DAY", str(default.transactions_per_day))
            ),
            label_delay_min_days=int(
                _env("ML_ASSETS_LABEL_DELAY_MIN_DAYS", str(default.label_delay_min_days))
            ),
            label_delay_max_days=int(
                _env("ML_ASSETS_LABEL_DELAY_MAX_DAYS", str(default.label_delay_max_days))
            ),
            max_quarantine_share=float(
                _env("ML_ASSETS_MAX_QUARANTINE_SHARE", str(default.max_quarantine_share))
            ),
            retrain_drift_days=int(
                _env("ML_ASSETS_RETRAIN_DRIFT_DAYS", str(default.retrain_drift_days))
            ),
            online_store_url=_env("ONLINE_STORE_URL", default.online_store_url),
            max_event_lag_s=float(_env("ML_ASSETS_MAX_EVENT_LAG_S", default.max_event_lag_s)),
            backfill_days_per_run=int(
                _env("ML_ASSETS_BACKFILL_DAYS_PER_RUN", default.backfill_days_per_run)
            ),
            rag_corpus_dir=_env("ML_ASSETS_RAG_CORPUS_DIR", default.rag_corpus_dir),
            rag_sla_ms=float(_env("ML_ASSETS_RAG_SLA_MS", default.rag_sla_ms)),
            decisions=DecisionThresholds.from_env(),
            executor=_env("ML_ASSETS_EXECUTOR", default.executor),
            warehouse_url=_env("ML_ASSETS_WAREHOUSE_URL", default.warehouse_url),
            reports_url=_env("ML_ASSETS_REPORTS_URL", default.reports_url),
            mlflow_artifacts_url=_env(
                "ML_ASSETS_MLFLOW_ARTIFACTS_URL", default.mlflow_artifacts_url
            ),
            # Ours, not MLFLOW_TRACKING_URI: mlflow.set_tracking_uri() writes that variable
            # into the process environment, so every Settings read after a first training
            # run would follow that run's store, whatever data dir it was given.
            mlflow_tracking_url=_env("ML_ASSETS_MLFLOW_TRACKING_URI", default.mlflow_tracking_url),
            **{
                name: type(getattr(default, name))(_env(f"ML_ASSETS_{name.upper()}", value))
                for name, value in default.rollout_values().items()
            },
        )

    def rollout_values(self) -> dict[str, float | int]:
        """The rollout knobs (each read from `ML_ASSETS_<NAME>`)."""
        return {n: getattr(self, n) for n in ROLLOUT_SETTINGS}

    @property
    def landing_dir(self) -> Path:
        return self.home / "landing"

    @property
    def warehouse_dir(self) -> StoragePath:
        """The warehouse root: a folder in the data dir, or `ML_ASSETS_WAREHOUSE_URL`."""
        return storage_path(self.warehouse_url) if self.warehouse_url else self.home / "warehouse"

    @property
    def reports_dir(self) -> StoragePath:
        """The reports root: a folder in the data dir, or `ML_ASSETS_REPORTS_URL`."""
        return storage_path(self.reports_url) if self.reports_url else self.home / "reports"

    @property
    def evidently_workspace_dir(self) -> Path:
        """Evidently's workspace: a local folder even when the reports are on an object store
        (its storage is files on disk), at `reports/evidently_workspace` of the data dir."""
        return self.home / "reports" / "evidently_workspace"

    @property
    def rag_dir(self) -> Path:
        return self.home / "rag"

    @property
    def mlflow_dir(self) -> Path:
        return self.home / "mlflow"

    @property
    def serving_dir(self) -> Path:
        return self.home / "serving"

    @property
    def mlflow_tracking_uri(self) -> str:
        """MLflow tracking and registry: `ML_ASSETS_MLFLOW_TRACKING_URI` (a database), else
        SQLite in the data dir (the file store is deprecated)."""
        if self.mlflow_tracking_url:
            return self.mlflow_tracking_url
        return f"sqlite:///{self.mlflow_dir.resolve() / 'mlflow.db'}"

    @property
    def mlflow_artifact_location(self) -> str:
        """Where new MLflow runs store artifacts: `ML_ASSETS_MLFLOW_ARTIFACTS_URL`, else
        `mlflow/artifacts` in the data dir. MLflow records this absolutely in its database;
        `ml-assets relocate` (and the first training run in a moved data dir) rewrites it."""
        if self.mlflow_artifacts_url:
            return self.mlflow_artifacts_url.rstrip("/")
        return (self.mlflow_dir.resolve() / "artifacts").as_uri()


def get_settings() -> Settings:
    """The settings of this process, from the environment at call time."""
    return Settings.from_env()
