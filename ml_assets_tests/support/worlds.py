"""The serving world: a real registry, a real online store, and what the endpoint tests and
the serving bench need around them.

`build_world` generates the last few days with the demo's generator, computes their features
and point-in-time training set with the platform's own code, trains a LightGBM teacher and
distils two students from it (versions 1 and 2 of `fraud_student`, the model the platform
ships; champion = v1), and writes those days' events to a real SQLite online store, so the
endpoint serves the shipped kind of model from the feature store, as in production.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import polars as pl

from ml_assets.features.online import open_online_store
from ml_assets.features.registry import FEATURE_SETS
from ml_assets.serving.config import ServingConfig
from ml_assets.serving.model_source import MlflowRegistry, Scorer
from ml_assets_tests.support.servers import run_server, wait_process_ready

REPO = Path(__file__).resolve().parents[2]
MODEL_NAME = "fraud_student"
WORLD_DAYS, WORLD_ROWS_PER_DAY = 6, 1500
API_KEY = "test-key-0123456789"
N_CUSTOMERS, N_MERCHANTS = 200, 50


@dataclass
class World:
    """A registry with two versions and an online store with `customers` and `merchants`."""

    home: Path
    tracking_uri: str
    versions: list[str]
    customers: list[str]
    merchants: list[str]
    now: datetime  # when the world was built: requests are timed just after it
    teacher: Any = None  # the teacher the students were distilled from (not registered)
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(3))

    @property
    def online_store_url(self) -> str:
        return f"sqlite:///{self.home / 'online_store.sqlite'}"

    def transaction(self, i: int, **overrides: Any) -> dict[str, Any]:
        """A valid request for known entities, deterministic in `i`."""
        body = {
            "transaction_id": f"T-{i}",
            "customer_id": self.customers[i % len(self.customers)],
            "merchant_id": self.merchants[(i * 7) % len(self.merchants)],
            "amount": round(5.0 + (i * 37) % 900 + 0.5, 2),
            "channel": ("card_present", "contactless", "online")[i % 3],
            "device": ("terminal", "mobile", "desktop")[i % 3],
            "merchant_category": ("grocery", "electronics", "travel", "jewelry")[i % 4],
            "merchant_country": ("US", "GB", "DE")[i % 3],
            "customer_country": "US",
            "event_time": (self.now + timedelta(seconds=i)).isoformat(),
        }
        body.update(overrides)
        return body

    def config(self, home: Path, **changes: Any) -> ServingConfig:
        """A config over this world's registry and store, writing its logs under `home`."""
        base = ServingConfig(
            home=home,
            tracking_uri=self.tracking_uri,
            online_store_url=self.online_store_url,
            model_name=MODEL_NAME,
            api_keys=(API_KEY,),
            reload_poll_s=0,
            log_flush_s=0.2,
        )
        return base.with_(**changes)

    @contextlib.contextmanager
    def serve(self, app: Any, ready: bool = True) -> Iterator[httpx.Client]:
        """`app` on uvicorn in a thread; yields a client that sends this world's API key."""
        with run_server(app, api_key=API_KEY, ready=ready) as client:
            yield client

    def start_replica(self, home: Path, port: int, **env: str) -> subprocess.Popen:
        """One replica as its own process (`python -m ml_assets.serving`, as in production)
        over this world's registry and store, writing its logs under `home`; returns once
        GET /ready answers 200. Stop it with SIGTERM to flush its prediction log."""
        environment = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "ML_ASSETS_HOME": str(home),
            "MLFLOW_TRACKING_URI": self.tracking_uri,
            "ONLINE_STORE_URL": self.online_store_url,
            "ML_ASSETS_SERVING_MODEL": MODEL_NAME,
            "ML_ASSETS_API_KEY": API_KEY,
            "ML_ASSETS_RELOAD_POLL_S": "0",
            **env,
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "ml_assets.serving", "--port", str(port)],
            env=environment, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        wait_process_ready(process, f"http://127.0.0.1:{port}/ready")
        return process

    def set_stages(
        self,
        *,
        champion: str | None = None,
        canary: str | None = None,
        shadow: str | None = None,
        canary_share: float | None = None,
    ) -> None:
        """Point the rollout-stage aliases as automation would: a version sets its stage's
        alias, None deletes it (the champion is only ever moved, never deleted)."""
        from mlflow import MlflowClient

        from ml_assets.training.rollout_stages import CANARY, CANARY_SHARE_TAG, SHADOW

        client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        if champion is not None:
            client.set_registered_model_alias(MODEL_NAME, "champion", champion)
        for alias, version in ((CANARY, canary), (SHADOW, shadow)):
            if version is not None:
                client.set_registered_model_alias(MODEL_NAME, alias, version)
            else:
                with contextlib.suppress(Exception):
                    client.delete_registered_model_alias(MODEL_NAME, alias)
        if canary_share is not None:
            client.set_registered_model_tag(MODEL_NAME, CANARY_SHARE_TAG, str(canary_share))

    def reset_aliases(self) -> None:
        """Back to the state `build_world` left: champion = v1, no other stage (canary,
        shadow, challenger), no canary share, no history."""
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        client.set_registered_model_alias(MODEL_NAME, "champion", self.versions[0])
        for alias in ("canary", "shadow", "challenger"):
            with contextlib.suppress(Exception):
                client.delete_registered_model_alias(MODEL_NAME, alias)
        for tag in ("champion.history", "canary_share"):
            with contextlib.suppress(Exception):
                client.delete_registered_model_tag(MODEL_NAME, tag)


def build_world(home: Path) -> World:
    """Generate, featurize, train, register and load the store for real (about 20 s)."""
    from ml_assets.data.generator import GeneratorConfig, generate_labels, generate_transactions
    from ml_assets.data.validation import split_valid_quarantine
    from ml_assets.features.compute import compute_entity_features
    from ml_assets.features.online import write_events
    from ml_assets.features.registry import feature_versions
    from ml_assets.features.training_set import build_training_set
    from ml_assets.settings import Settings
    from ml_assets.training.model_inputs import ModelInputs
    from ml_assets.training.registry_aliases import set_alias
    from ml_assets.training.registry_reader import CHAMPION, Lineage
    from ml_assets.training.registry_writer import log_student
    from ml_assets.training.student import StudentConfig, train_student
    from ml_assets.training.teacher import train_teacher
    from ml_assets_tests.support.models import FAST_TEACHER

    home.mkdir(parents=True, exist_ok=True)
    settings = Settings(home=home)
    config = GeneratorConfig(transactions_per_day=WORLD_ROWS_PER_DAY)
    today = datetime.now(UTC).date()
    days = [today - timedelta(days=WORLD_DAYS - i) for i in range(WORLD_DAYS)]
    valid = pl.concat(
        [split_valid_quarantine(generate_transactions(d, config), d).valid for d in days]
    )
    features = {
        fs: pl.concat([compute_entity_features(valid, fs, d) for d in days])
        for fs in FEATURE_SETS.values()
    }
    labels = pl.concat([generate_labels(d, config) for d in days[1:]] + [generate_labels(
        today, config)])  # fmt: skip
    training = build_training_set(labels, valid, features).frame
    teacher = train_teacher(training, ModelInputs.from_frame(training, feature_versions()),
                            FAST_TEACHER)  # fmt: skip
    versions = []
    for hidden in ((16,), (32, 16)):  # two different students: the shadow sees differences
        student = train_student(
            training, teacher, StudentConfig(hidden=hidden, epochs=4, num_threads=1)
        )
        registered = log_student(
            student, tracking_uri=settings.mlflow_tracking_uri, lineage=Lineage(),
            teacher_version="0", artifact_location=settings.mlflow_artifact_location,
        )  # fmt: skip
        versions.append(registered.version)
    set_alias(settings.mlflow_tracking_uri, MODEL_NAME, CHAMPION, versions[0])
    store = open_online_store(f"sqlite:///{home / 'online_store.sqlite'}", home)
    for feature_set in FEATURE_SETS.values():
        write_events(store, feature_set, valid)
    store.close()
    active = valid.filter(pl.col("event_time").dt.date() == days[-1])
    customers = active["customer_id"].unique(maintain_order=True).head(N_CUSTOMERS).to_list()
    merchants = active["merchant_id"].unique(maintain_order=True).head(N_MERCHANTS).to_list()
    return World(home, settings.mlflow_tracking_uri, versions, customers, merchants,
                 datetime.now(UTC), teacher)  # fmt: skip


class ControlledScorer:
    """A real model that a test can kill, corrupt or slow down while the server runs."""

    def __init__(self, inner: Scorer) -> None:
        self.inner = inner
        self.name = inner.name
        self.version = inner.version
        self.mode = "ok"  # ok | fail | corrupt | slow | nan_online (NaN for one slice)
        self.delay_s = 1.0
        self.calls = 0
        self.rows = 0  # rows it was asked to score, the load-time probe included

    def predict_proba(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        self.calls += 1
        self.rows += len(rows)
        if self.mode == "fail":
            raise RuntimeError("model worker died")
        if self.mode == "slow":
            time.sleep(self.delay_s)
        if self.mode == "corrupt":
            return np.full(len(rows), np.nan)
        scores = np.asarray(self.inner.predict_proba(rows), dtype=np.float64)
        if self.mode == "nan_online":
            scores[[row["channel"] == "online" for row in rows]] = np.nan
        return scores


class ControlledRegistry:
    """The real MLflow registry, handing out `ControlledScorer`s (kept in `loaded`)."""

    def __init__(self, tracking_uri: str, name: str = MODEL_NAME) -> None:
        self.inner = MlflowRegistry(tracking_uri, name)
        self.loaded: dict[str, ControlledScorer] = {}

    def resolve(self, alias: str) -> str | None:
        return self.inner.resolve(alias)

    def tag(self, key: str) -> str | None:
        return self.inner.tag(key)

    def load(self, version: str) -> Scorer:
        scorer = ControlledScorer(self.inner.load(version))
        self.loaded[version] = scorer
        return scorer


def metric_value(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text output (0 when absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def read_prediction_log(home: Path) -> pl.DataFrame:
    """Every prediction-log file under `home`, concatenated (empty if none was written)."""
    files = sorted((home / "prediction_log").glob("date=*/*.parquet"))
    if not files:
        return pl.DataFrame()
    return pl.concat([pl.read_parquet(f) for f in files])
