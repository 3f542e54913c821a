"""Promote and roll back by moving registry aliases, remembering what each alias held.

MLflow keeps no alias history, so `promote` records the previous version in a registered
model tag (`<alias>.history`), and `rollback` moves the alias back to it. The endpoint
follows the alias on its next poll or on `POST /admin/reload`; nothing here talks to it.
"""

from __future__ import annotations

import json

from mlflow import MlflowClient

from ml_assets.training.mlflow_registry import resolve_version

HISTORY_LIMIT = 20


def _client(tracking_uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def _history_tag(alias: str) -> str:
    return f"{alias}.history"


def alias_history(tracking_uri: str, name: str, alias: str = "champion") -> list[str]:
    """Versions the alias held before its current one, oldest first."""
    tags = _client(tracking_uri).get_registered_model(name).tags
    return list(json.loads(tags.get(_history_tag(alias), "[]")))


def promote(tracking_uri: str, name: str, version: str, alias: str = "champion") -> str | None:
    """Point `alias` at `version`, remembering the version it replaces (returned)."""
    client = _client(tracking_uri)
    previous = resolve_version(tracking_uri, name, alias)
    if previous == str(version):
        return previous
    if previous is not None:
        history = [*alias_history(tracking_uri, name, alias), previous][-HISTORY_LIMIT:]
        client.set_registered_model_tag(name, _history_tag(alias), json.dumps(history))
    client.set_registered_model_alias(name, alias, str(version))
    return previous


def rollback(tracking_uri: str, name: str, alias: str = "champion") -> str:
    """Move `alias` back to the version it held before; returns that version.

    Without recorded history it falls back to the highest version below the current one.
    """
    client = _client(tracking_uri)
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
