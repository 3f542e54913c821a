"""Where the endpoint's models come from, and how a new stage is swapped in live.

`Registry` is the small protocol serving needs (resolve an alias to a version, load a
version, read a registered-model tag); `MlflowRegistry` adapts the training side's MLflow
loader to it. `ModelSource` holds one model per rollout stage that serving acts on
(`rollout_stages`): the champion answers, the canary answers its share of customers, the
shadow scores off the response path. `refresh()` loads a changed version off the request
path, checks it on a probe row, and swaps one reference, so requests in flight finish on
the model they started with and no request fails during a swap. A version that cannot load
or cannot score the probe is refused and the current model stays. The canary's share is
re-read from its registered-model tag on every refresh, so changing it needs no restart.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np

from ml_assets.training.model_contracts import probe_error
from ml_assets.training.registry_reader import (
    CHAMPION,
    load_model_version,
    registered_model_tag,
    resolve_version,
)
from ml_assets.training.rollout_stages import (
    CANARY,
    CANARY_SHARE_TAG,
    DEFAULT_CANARY_SHARE,
    SHADOW,
)

log = logging.getLogger(__name__)


class Scorer(Protocol):
    """A loaded model: fraud probability per request row (request fields + features)."""

    name: str
    version: str

    def predict_proba(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray: ...


class Registry(Protocol):
    def resolve(self, alias: str) -> str | None:
        """The version an alias points at now, or None when the alias is unset."""
        ...

    def load(self, version: str) -> Scorer: ...

    def tag(self, key: str) -> str | None:
        """A registered-model tag, or None when unset (optional: a registry without it
        leaves the canary at the default share)."""
        ...


@dataclass
class ModelScorer:
    """A registry model (anything with `predict_proba(rows)`) with its name and version."""

    name: str
    version: str
    model: Any

    def predict_proba(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        return np.asarray(self.model.predict_proba(list(rows)), dtype=np.float64)


class MlflowRegistry:
    """Registered model `name` in the MLflow registry at `tracking_uri`."""

    def __init__(self, tracking_uri: str, name: str) -> None:
        self.tracking_uri = tracking_uri
        self.name = name

    def resolve(self, alias: str) -> str | None:
        return resolve_version(self.tracking_uri, self.name, alias)

    def load(self, version: str) -> Scorer:
        model = load_model_version(self.name, version, self.tracking_uri)
        return ModelScorer(self.name, str(version), model)

    def tag(self, key: str) -> str | None:
        return registered_model_tag(self.tracking_uri, self.name, key)


def probe(scorer: Scorer) -> None:
    """Raise unless `scorer` returns one finite probability for the probe row."""
    error = probe_error(scorer)
    if error is not None:
        raise ValueError(f"{scorer.name} v{scorer.version} {error}")


def parse_share(text: str | None) -> float:
    """The canary share a tag holds: a number in [0, 1]; an unset tag is the default."""
    if text is None:
        return DEFAULT_CANARY_SHARE
    share = float(text)
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"{CANARY_SHARE_TAG}={text!r} is not a share in [0, 1]")
    return share


@dataclass(frozen=True)
class RefreshResult:
    role: str
    alias: str
    version: str | None
    outcome: str  # unchanged | swapped | refused | unset
    error: str | None = None


class ModelSource:
    """The current champion, canary and shadow, refreshed from their registry aliases.

    A role given no alias (None) is never loaded: `shadow_alias=None` turns shadow scoring
    off, `canary_alias=None` canary routing.
    """

    def __init__(
        self,
        registry: Registry,
        champion_alias: str = CHAMPION,
        canary_alias: str | None = CANARY,
        shadow_alias: str | None = SHADOW,
        on_change: Callable[[str, Scorer | None], None] | None = None,
        on_result: Callable[[RefreshResult], None] | None = None,
    ) -> None:
        self.registry = registry
        self.aliases = {CHAMPION: champion_alias}
        if canary_alias:
            self.aliases[CANARY] = canary_alias
        if shadow_alias:
            self.aliases[SHADOW] = shadow_alias
        self._models: dict[str, Scorer | None] = {CHAMPION: None, CANARY: None, SHADOW: None}
        self.loaded_at: dict[str, datetime] = {}
        self.canary_share = DEFAULT_CANARY_SHARE
        self._on_change = on_change or (lambda role, scorer: None)
        self._on_result = on_result or (lambda result: None)
        self._lock = threading.Lock()

    @property
    def champion(self) -> Scorer | None:
        return self._models[CHAMPION]

    @property
    def canary(self) -> Scorer | None:
        return self._models[CANARY]

    @property
    def shadow(self) -> Scorer | None:
        return self._models[SHADOW]

    def refresh(self) -> list[RefreshResult]:
        """Bring each role in line with its alias, and the canary share with its tag; safe
        to call from any thread."""
        with self._lock:
            if CANARY in self.aliases:
                self._refresh_share()
            results = [self._refresh(role, alias) for role, alias in self.aliases.items()]
        for result in results:
            self._on_result(result)
        return results

    def _refresh_share(self) -> None:
        """A tag that is not a share is logged and the current share kept: a typo in the
        registry must not send every customer to the canary."""
        read = getattr(self.registry, "tag", None)
        if read is None:
            return
        try:
            self.canary_share = parse_share(read(CANARY_SHARE_TAG))
        except Exception as error:
            log.warning("keeping canary share %s: %s", self.canary_share, error)

    def _refresh(self, role: str, alias: str) -> RefreshResult:
        try:
            version = self.registry.resolve(alias)
        except Exception as error:
            log.warning("could not resolve alias %r: %s", alias, error)
            return RefreshResult(role, alias, None, "refused", f"resolve failed: {error}")
        current = self._models[role]
        if version is None:
            if role != CHAMPION and current is not None:
                self._swap(role, None)  # canary or shadow retired: stop routing/shadowing
            # A champion is never dropped for an unset alias: keep serving what we have.
            return RefreshResult(role, alias, None, "unset")
        if current is not None and current.version == version:
            return RefreshResult(role, alias, version, "unchanged")
        try:
            scorer = self.registry.load(version)
            probe(scorer)
        except Exception as error:
            log.error("refused %s version %s (%s): %s", role, version, alias, error)
            return RefreshResult(role, alias, version, "refused", str(error))
        self._swap(role, scorer)
        log.info("%s is now version %s", role, version)
        return RefreshResult(role, alias, version, "swapped")

    def _swap(self, role: str, scorer: Scorer | None) -> None:
        self._models[role] = scorer  # one reference assignment: atomic for readers
        if scorer is None:
            self.loaded_at.pop(role, None)
        else:
            self.loaded_at[role] = datetime.now(UTC)
        self._on_change(role, scorer)
