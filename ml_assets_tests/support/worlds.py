"""The serving world: a real registry, a real online store, and what the endpoint tests and
the serving bench need around them.

`build_world` trains two tiny LightGBM teachers with the training side's own code, registers
them in a real MLflow SQLite registry (versions 1 and 2 of `fraud_teacher`, champion = v1),
and fills a real SQLite online store with fresh features for a few customers and merchants.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import polars as pl

from ml_assets.features.online import open_online_store
from ml_assets.features.registry import FEATURE_SETS
from ml_assets.serving.config import ServingConfig
from ml_assets.serving.model_source import MlflowRegistry, Scorer
from ml_assets_tests.support.servers import run_server
from ml_assets_tests.support.synthetic import online_feature_rows

MODEL_NAME = "fraud_teacher"
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
            "device": ("chip", "mobile", "web")[i % 3],
            "merchant_category": ("grocery", "electronics", "travel", "jewelry")[i % 4],
            "merchant_country": ("US", "GB", "DE")[i % 3],
            "customer_country": "US",
            "event_time": f"2026-11-28T{(i % 24):02d}:15:00+00:00",
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

    def reset_aliases(self) -> None:
        """Back to the state `build_world` left: champion = v1, no challenger, no history."""
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        client.set_registered_model_alias(MODEL_NAME, "champion", self.versions[0])
        with contextlib.suppress(Exception):
            client.delete_registered_model_alias(MODEL_NAME, "challenger")
        with contextlib.suppress(Exception):
            client.delete_registered_model_tag(MODEL_NAME, "champion.history")


def build_world(home: Path) -> World:
    """Train, register and materialize everything the endpoint needs, for real."""
    from ml_assets.training.model_inputs import ModelInputs
    from ml_assets.training.registry_aliases import set_alias
    from ml_assets.training.registry_reader import Lineage
    from ml_assets.training.registry_writer import log_teacher
    from ml_assets.training.synthetic import labelled_frame
    from ml_assets.training.teacher import TeacherConfig, train_teacher

    home.mkdir(parents=True, exist_ok=True)
    tracking_uri = f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"
    (home / "mlflow").mkdir(exist_ok=True)
    frame = labelled_frame(date(2026, 3, 1), 4, transactions_per_day=1500, history_days=2)
    inputs = ModelInputs.from_frame(frame)
    versions = []
    for leaves, rounds in ((7, 30), (31, 60)):  # two different models: shadow sees diffs
        config = TeacherConfig(
            num_boost_round=rounds, num_leaves=leaves, min_data_in_leaf=20,
            min_category_count=5, early_stopping_rounds=rounds, num_threads=1,
        )  # fmt: skip
        teacher = train_teacher(frame, inputs, config)
        registered = log_teacher(
            teacher,
            tracking_uri=tracking_uri,
            lineage=Lineage(),
            artifact_location=(home / "mlflow" / "artifacts").as_uri(),
            registered_name=MODEL_NAME,
        )
        versions.append(registered.version)
    set_alias(tracking_uri, MODEL_NAME, "champion", versions[0])
    customers = [f"C{i:05d}" for i in range(N_CUSTOMERS)]
    merchants = [f"M{i:04d}" for i in range(N_MERCHANTS)]
    store = open_online_store(f"sqlite:///{home / 'online_store.sqlite'}", home)
    now = datetime.now(UTC)
    store.write(FEATURE_SETS["customer"], online_feature_rows("customer", customers, now, 1))
    store.write(FEATURE_SETS["merchant"], online_feature_rows("merchant", merchants, now, 2))
    store.close()
    return World(home, tracking_uri, versions, customers, merchants)


class ControlledScorer:
    """A real model that a test can kill, corrupt or slow down while the server runs."""

    def __init__(self, inner: Scorer) -> None:
        self.inner = inner
        self.name = inner.name
        self.version = inner.version
        self.mode = "ok"  # ok | fail | corrupt | slow
        self.delay_s = 1.0
        self.calls = 0

    def predict_proba(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        self.calls += 1
        if self.mode == "fail":
            raise RuntimeError("model worker died")
        if self.mode == "slow":
            time.sleep(self.delay_s)
        if self.mode == "corrupt":
            return np.full(len(rows), np.nan)
        return self.inner.predict_proba(rows)


class ControlledRegistry:
    """The real MLflow registry, handing out `ControlledScorer`s (kept in `loaded`)."""

    def __init__(self, tracking_uri: str, name: str = MODEL_NAME) -> None:
        self.inner = MlflowRegistry(tracking_uri, name)
        self.loaded: dict[str, ControlledScorer] = {}

    def resolve(self, alias: str) -> str | None:
        return self.inner.resolve(alias)

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
