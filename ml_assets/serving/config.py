"""Every knob of the endpoint in one frozen object, read from the environment with defaults.

Replicas of the endpoint share one data dir, one registry and one online store, so the
config that differs between replicas is only the port given to `serve`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from ml_assets.settings import REPO_ROOT, DecisionThresholds, Settings
from ml_assets.training.registry_reader import CHAMPION
from ml_assets.training.rollout_stages import CANARY, SHADOW

API_KEY_ENV = "ML_ASSETS_API_KEY"


def _env(name: str, default: object) -> str:
    return os.environ.get(name, str(default))


def _keys(text: str) -> tuple[str, ...]:
    return tuple(k.strip() for k in text.split(",") if k.strip())


@dataclass(frozen=True)
class ServingConfig:
    """What the endpoint serves, from where, and how it degrades.

    What it shares with the training side (data dir, online store, decision thresholds)
    comes from the platform's `Settings`, so batch scoring decides exactly as it does.
    """

    home: Path = field(default_factory=lambda: REPO_ROOT / ".ml_assets")
    tracking_uri: str = ""  # empty: sqlite:///<home>/mlflow/mlflow.db
    online_store_url: str = ""  # empty: the embedded SQLite store in <home>
    model_name: str = "fraud_student"
    champion_alias: str = CHAMPION
    # Rollout stages followed (rollout_stages): the canary answers its share of customers
    # (the registered-model tag `canary_share`), the shadow scores off the response path.
    canary_alias: str = CANARY
    shadow_alias: str = SHADOW
    canary: bool = True  # False: never route to a canary (e.g. replaying against batch scores)
    shadow: bool = True
    # Gateway: an empty key tuple disables auth (local development only; `serve` warns).
    api_keys: tuple[str, ...] = ()
    rate_limit_per_s: float = 500.0
    rate_limit_burst: int = 1000
    max_body_bytes: int = 256 * 1024
    max_batch_items: int = 500
    # Failed authentication: per client address, this many failures a minute, then 429.
    auth_failures_per_min: int = 20
    # Decisions
    decisions: DecisionThresholds = field(default_factory=DecisionThresholds)
    # An answer the model did not give (timeout, no model, open breaker, model error) never
    # approves: where the rules would approve, this decision is given instead.
    unscored_decision: str = "review"
    # Event time: how far ahead of the clock a request's event_time may be (clock skew);
    # how far behind comes from the platform settings (max_event_lag_s).
    max_event_skew_s: float = 300.0
    max_event_lag_s: float = 7 * 86_400.0
    # Degradation
    request_timeout_s: float = 0.5
    # Admission: at most this many transactions wait for the model; past it, 503 at once.
    max_queue: int = 1024
    # and at most this many scoring requests are in the process at once (503 past it).
    max_inflight_requests: int = 64
    retry_after_s: float = 1.0
    breaker_failures: int = 5
    breaker_reset_s: float = 10.0
    cache_size: int = 10_000
    cache_ttl_s: float = 30.0
    micro_batching: bool = True
    batch_max_size: int = 64
    batch_max_wait_ms: float = 0.0  # 0: opportunistic, never wait for more requests
    shadow_queue_size: int = 1_000
    # Background work
    reload_poll_s: float = 30.0  # 0 disables polling of the registry aliases
    log_flush_s: float = 1.0
    log_flush_rows: int = 5_000
    # How long a thread keeps the GIL while another waits (Python's default is 5 ms): the
    # event loop, the scoring worker and the log writer share it, so this bounds how long
    # an answer waits behind a log flush or a large batch.
    switch_interval_ms: float = 1.0

    def __post_init__(self) -> None:
        if self.unscored_decision not in ("approve", "review", "decline"):
            raise ValueError(
                f"unscored_decision={self.unscored_decision!r} must be approve, review or "
                "decline (ML_ASSETS_UNSCORED_DECISION)"
            )
        if self.batch_max_size < 1:
            raise ValueError(f"batch_max_size={self.batch_max_size} must be at least 1")

    @property
    def resolved_tracking_uri(self) -> str:
        return self.tracking_uri or Settings(home=self.home).mlflow_tracking_uri

    @property
    def serving_dir(self) -> Path:
        return Settings(home=self.home).serving_dir

    def with_(self, **changes: object) -> ServingConfig:
        """A copy with some fields changed (tests, bench)."""
        return replace(self, **changes)

    @classmethod
    def from_env(cls) -> ServingConfig:
        """The config of this process: the platform's settings plus the endpoint's own
        variables; unset variables keep the defaults above."""
        d = cls()
        settings = Settings.from_env()
        return cls(
            home=settings.home,
            # The platform's setting first; MLflow's own variable for an endpoint run alone.
            tracking_uri=settings.mlflow_tracking_url
            or _env("MLFLOW_TRACKING_URI", d.tracking_uri),
            online_store_url=settings.online_store_url,
            decisions=settings.decisions,
            max_event_lag_s=settings.max_event_lag_s,
            max_event_skew_s=float(_env("ML_ASSETS_MAX_EVENT_SKEW_S", d.max_event_skew_s)),
            unscored_decision=_env("ML_ASSETS_UNSCORED_DECISION", d.unscored_decision),
            max_queue=int(_env("ML_ASSETS_MAX_QUEUE", d.max_queue)),
            retry_after_s=float(_env("ML_ASSETS_RETRY_AFTER_S", d.retry_after_s)),
            max_inflight_requests=int(
                _env("ML_ASSETS_MAX_INFLIGHT_REQUESTS", d.max_inflight_requests)
            ),
            max_batch_items=int(_env("ML_ASSETS_MAX_BATCH_ITEMS", d.max_batch_items)),
            auth_failures_per_min=int(
                _env("ML_ASSETS_AUTH_FAILURES_PER_MIN", d.auth_failures_per_min)
            ),
            model_name=_env("ML_ASSETS_SERVING_MODEL", d.model_name),
            champion_alias=_env("ML_ASSETS_CHAMPION_ALIAS", d.champion_alias),
            canary_alias=_env("ML_ASSETS_CANARY_ALIAS", d.canary_alias),
            shadow_alias=_env("ML_ASSETS_SHADOW_ALIAS", d.shadow_alias),
            canary=_env("ML_ASSETS_CANARY", "1") not in ("0", "false", "no"),
            shadow=_env("ML_ASSETS_SHADOW", "1") not in ("0", "false", "no"),
            api_keys=_keys(_env(API_KEY_ENV, "")),
            rate_limit_per_s=float(_env("ML_ASSETS_RATE_LIMIT_PER_S", d.rate_limit_per_s)),
            rate_limit_burst=int(_env("ML_ASSETS_RATE_LIMIT_BURST", d.rate_limit_burst)),
            max_body_bytes=int(_env("ML_ASSETS_MAX_BODY_BYTES", d.max_body_bytes)),
            request_timeout_s=float(_env("ML_ASSETS_REQUEST_TIMEOUT_S", d.request_timeout_s)),
            breaker_failures=int(_env("ML_ASSETS_BREAKER_FAILURES", d.breaker_failures)),
            breaker_reset_s=float(_env("ML_ASSETS_BREAKER_RESET_S", d.breaker_reset_s)),
            cache_size=int(_env("ML_ASSETS_CACHE_SIZE", d.cache_size)),
            cache_ttl_s=float(_env("ML_ASSETS_CACHE_TTL_S", d.cache_ttl_s)),
            micro_batching=_env("ML_ASSETS_MICRO_BATCHING", "1") not in ("0", "false", "no"),
            batch_max_size=int(_env("ML_ASSETS_BATCH_MAX_SIZE", d.batch_max_size)),
            batch_max_wait_ms=float(_env("ML_ASSETS_BATCH_MAX_WAIT_MS", d.batch_max_wait_ms)),
            reload_poll_s=float(_env("ML_ASSETS_RELOAD_POLL_S", d.reload_poll_s)),
            switch_interval_ms=float(_env("ML_ASSETS_SWITCH_INTERVAL_MS", d.switch_interval_ms)),
        )
