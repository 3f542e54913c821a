"""Moving a model into and out of service: the registry aliases, and their history.

MLflow keeps no alias history, so `promote` records the previous version in a registered
model tag (`<alias>.history`) and `rollback` moves the alias back to it. A version becomes
champion only if its evaluation recorded that every gate passed (run tag `gates_passed`).
The endpoint follows the alias on its next poll or when automation tells it to reload;
nothing here talks to it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ml_assets.training.model_contracts import GATES_PASSED as GATES_TAG
from ml_assets.training.registry_reader import CHAMPION, resolve_version

if TYPE_CHECKING:
    from mlflow import MlflowClient

HISTORY_LIMIT = 20


class GateNotPassedError(RuntimeError):
    """A version whose evaluation did not pass every gate was asked to become champion."""


@dataclass(frozen=True)
class Promotion:
    name: str
    version: str
    replaced: str | None
    reason: str


def registry_client(tracking_uri: str) -> MlflowClient:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def _history_tag(alias: str) -> str:
    return f"{alias}.history"


def set_alias(tracking_uri: str, name: str, alias: str, version: str) -> None:
    """Point `alias` (a rollout stage) of registered model `name` at `version`."""
    registry_client(tracking_uri).set_registered_model_alias(name, alias, str(version))


def alias_history(tracking_uri: str, name: str, alias: str = CHAMPION) -> list[str]:
    """Versions the alias held before its current one, oldest first."""
    tags = registry_client(tracking_uri).get_registered_model(name).tags
    return list(json.loads(tags.get(_history_tag(alias), "[]")))


def promote(tracking_uri: str, name: str, version: str, alias: str = CHAMPION) -> str | None:
    """Point `alias` at `version`, remembering the version it replaces (returned)."""
    client = registry_client(tracking_uri)
    previous = resolve_version(tracking_uri, name, alias)
    if previous == str(version):
        return previous
    if previous is not None:
        history = [*alias_history(tracking_uri, name, alias), previous][-HISTORY_LIMIT:]
        client.set_registered_model_tag(name, _history_tag(alias), json.dumps(history))
    client.set_registered_model_alias(name, alias, str(version))
    return previous


def rollback(tracking_uri: str, name: str, alias: str = CHAMPION) -> str:
    """Move `alias` back to the version it held before; returns that version.

    Without recorded history it falls back to the highest version below the current one.
    """
    client = registry_client(tracking_uri)
    current = resolve_version(tracking_uri, name, alias)
    history = alias_history(tracking_uri, name, alias)
    if history:
        target = history.pop()
        client.set_registered_model_tag(name, _history_tag(alias), json.dumps(history))
    else:
        versions = sorted(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))
        older = [v for v in versions if current is None or v < int(current)]
        if not older:
            raise LookupError(
                f"'{name}@{alias}' is at version {current} and nothing older is registered;"
                " there is nothing to roll back to"
            )
        target = str(older[-1])
    client.set_registered_model_alias(name, alias, target)
    return target


def record_gates(tracking_uri: str, run_id: str, passed: bool) -> None:
    """What the evaluation decided, on the candidate's training run (read by `gates_passed`)."""
    registry_client(tracking_uri).set_tag(run_id, GATES_TAG, str(passed))


def gates_passed(tracking_uri: str, name: str, version: str) -> bool:
    """What the evaluation recorded on the version's training run."""
    client = registry_client(tracking_uri)
    run_id = client.get_model_version(name, version).run_id
    return client.get_run(run_id).data.tags.get(GATES_TAG) == "True"


def promote_candidate(tracking_uri: str, name: str, version: str, reason: str) -> Promotion:
    """Make `version` the champion (the replaced one stays in the alias history, for a
    rollback). Refuses a version that failed a gate."""
    if not gates_passed(tracking_uri, name, version):
        raise GateNotPassedError(
            f"{name} v{version} has not passed its promotion gates (run tag {GATES_TAG}); "
            "materialize model_evaluation for it and fix what its failed checks name"
        )
    replaced = promote(tracking_uri, name, version, CHAMPION)
    return Promotion(name, version, replaced, reason)


def roll_back(tracking_uri: str, name: str) -> tuple[str | None, str]:
    """Move the champion back to the version it held before; returns (from, to)."""
    current = resolve_version(tracking_uri, name, CHAMPION)
    return current, rollback(tracking_uri, name, CHAMPION)
