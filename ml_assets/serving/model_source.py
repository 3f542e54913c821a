"""Where the endpoint's models come from, and how a new champion is swapped in live.

`Registry` is the small protocol serving needs (resolve an alias to a version, load a
version); `MlflowRegistry` adapts the training side's MLflow loader to it. `ModelSource`
holds the champion and the challenger: `refresh()` loads a changed version off the request
path, checks it on a probe row, and swaps one reference, so requests in flight finish on
the model they started with and no request fails during a swap. A version that cannot load
or cannot score the probe is refused and the current model stays.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ml_assets.training.model_contracts import probe_error
from ml_assets.training.registry_reader import (
    CHALLENGER,
    CHAMPION,
    load_model_version,
    resolve_version,
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


def probe(scorer: Scorer) -> None:
    """Raise unless `scorer` returns one finite probability for the probe row."""
    error = probe_error(scorer)
    if error is not None:
        raise ValueError(f"{scorer.name} v{scorer.version} {error}")


@dataclass(frozen=True)
class RefreshResult:
    role: str
    alias: str
    version: str | None
    outcome: str  # unchanged | swapped | refused | unset
    error: str | None = None


class ModelSource:
    """The current champion and challenger, refreshed from their registry aliases."""

    def __init__(
        self,
        registry: Registry,
        champion_alias: str = CHAMPION,
        challenger_alias: str | None = CHALLENGER,
        on_change: Callable[[str, Scorer | None], None] | None = None,
        on_result: Callable[[RefreshResult], None] | None = None,
    ) -> None:
        self.registry = registry
        self.aliases = {CHAMPION: champion_alias}
        if challenger_alias:
            self.aliases[CHALLENGER] = challenger_alias
        self._models: dict[str, Scorer | None] = {CHAMPION: None, CHALLENGER: None}
        self._on_change = on_change or (lambda role, scorer: None)
        self._on_result = on_result or (lambda result: None)
        self._lock = threading.Lock()

    @property
    def champion(self) -> Scorer | None:
        return self._models[CHAMPION]

    @property
    def challenger(self) -> Scorer | None:
        return self._models[CHALLENGER]

    def refresh(self) -> list[RefreshResult]:
        """Bring each role in line with its alias; safe to call from any thread."""
        with self._lock:
            results = [self._refresh(role, alias) for role, alias in self.aliases.items()]
        for result in results:
            self._on_result(result)
        return results

    def _refresh(self, role: str, alias: str) -> RefreshResult:
        try:
            version = self.registry.resolve(alias)
        except Exception as error:
            log.warning("could not resolve alias %r: %s", alias, error)
            return RefreshResult(role, alias, None, "refused", f"resolve failed: {error}")
        current = self._models[role]
        if version is None:
            if role == CHALLENGER and current is not None:
                self._swap(role, None)  # challenger retired: stop shadowing
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
        self._on_change(role, scorer)
