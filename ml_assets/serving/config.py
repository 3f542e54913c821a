"""Every knob of the endpoint in one frozen object, read from the environment with defaults.

Replicas of the endpoint share one data dir, one registry and one online store, so the
config that differs between replicas is only the port given to `serve`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from ml_assets.settings import REPO_ROOT
from ml_assets.training.mlflow_registry import tracking_uri_for

API_KEY_ENV = "ML_ASSETS_API_KEY"


def _env(name: str, default: object) -> str:
    return os.environ.get(name, str(default))


def _keys(text: str) -> tuple[str, ...]:
    return tuple(k.strip() for k in text.split(",") if k.strip())


@dataclass(frozen=True)
class ServingConfig:
    """What the endpoint serves, from where, and how it degrades.

    Scores below `review_low` are approved, at or above `decline_at` declined, and the band
    in between goes to the human-review queue.
    """

    home: Path = field(default_factory=lambda: REPO_ROOT / ".ml_assets")
    tracking_uri: str = ""  # empty: sqlite:///<home>/mlflow/mlflow.db
    online_store_url: str = ""  # empty: the embedded SQLite store in <home>
    model_name: str = "fraud_student"
    champion_alias: str = "champion"
    challenger_alias: str = "challenger"
    shadow: bool = True
    # Gateway: an empty key tuple disables auth (local development only; `serve` warns).
    api_keys: tuple[str, ...] = ()
    rate_limit_per_s: float = 500.0
    rate_limit_burst: int = 1000
    max_body_bytes: int = 256 * 1024
    max_batch_items: int = 500
    # Decisions
    review_low: float = 0.3
    decline_at: float = 0.7
    default_score: float = 0.05  # answered on timeout with no cached answer
    # Degradation
    request_timeout_s: float = 0.5
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

    def __post_init__(self) -> None:
        if not 0.0 <= self.review_low <= self.decline_at <= 1.0:
            raise ValueError(
                f"review_low={self.review_low} and decline_at={self.decline_at} must satisfy "
                "0 <= review_low <= decline_at <= 1 (ML_ASSETS_REVIEW_LOW, ML_ASSETS_DECLINE_AT)"
            )
        if self.batch_max_size < 1:
            raise ValueError(f"batch_max_size={self.batch_max_size} must be at least 1")

    @property
    def resolved_tracking_uri(self) -> str:
        return self.tracking_uri or tracking_uri_for(self.home / "mlflow")

    @property
    def serving_dir(self) -> Path:
        return self.home / "serving"

    def with_(self, **changes: object) -> ServingConfig:
        """A copy with some fields changed (tests, bench)."""
        return replace(self, **changes)

    @classmethod
    def from_env(cls) -> ServingConfig:
        """The config of this process; unset variables keep the defaults above."""
        d = cls()
        return cls(
            home=Path(_env("ML_ASSETS_HOME", d.home)).resolve(),
            tracking_uri=_env("MLFLOW_TRACKING_URI", d.tracking_uri),
            online_store_url=_env("ONLINE_STORE_URL", d.online_store_url),
            model_name=_env("ML_ASSETS_SERVING_MODEL", d.model_name),
            champion_alias=_env("ML_ASSETS_CHAMPION_ALIAS", d.champion_alias),
            challenger_alias=_env("ML_ASSETS_CHALLENGER_ALIAS", d.challenger_alias),
            shadow=_env("ML_ASSETS_SHADOW", "1") not in ("0", "false", "no"),
            api_keys=_keys(_env(API_KEY_ENV, "")),
            rate_limit_per_s=float(_env("ML_ASSETS_RATE_LIMIT_PER_S", d.rate_limit_per_s)),
            rate_limit_burst=int(_env("ML_ASSETS_RATE_LIMIT_BURST", d.rate_limit_burst)),
            max_body_bytes=int(_env("ML_ASSETS_MAX_BODY_BYTES", d.max_body_bytes)),
            review_low=float(_env("ML_ASSETS_REVIEW_LOW", d.review_low)),
            decline_at=float(_env("ML_ASSETS_DECLINE_AT", d.decline_at)),
            request_timeout_s=float(_env("ML_ASSETS_REQUEST_TIMEOUT_S", d.request_timeout_s)),
            breaker_failures=int(_env("ML_ASSETS_BREAKER_FAILURES", d.breaker_failures)),
            breaker_reset_s=float(_env("ML_ASSETS_BREAKER_RESET_S", d.breaker_reset_s)),
            cache_size=int(_env("ML_ASSETS_CACHE_SIZE", d.cache_size)),
            cache_ttl_s=float(_env("ML_ASSETS_CACHE_TTL_S", d.cache_ttl_s)),
            micro_batching=_env("ML_ASSETS_MICRO_BATCHING", "1") not in ("0", "false", "no"),
            batch_max_size=int(_env("ML_ASSETS_BATCH_MAX_SIZE", d.batch_max_size)),
            batch_max_wait_ms=float(_env("ML_ASSETS_BATCH_MAX_WAIT_MS", d.batch_max_wait_ms)),
            reload_poll_s=float(_env("ML_ASSETS_RELOAD_POLL_S", d.reload_poll_s)),
        )
