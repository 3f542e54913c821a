"""Moving a model into service: the registry aliases and the running endpoints.

The only module of the training side that talks to the endpoint (DESIGN: serving is
separate; automation tells it to reload, the endpoint follows the registry alias).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import httpx
from mlflow import MlflowClient

from ml_assets.serving.rollout import promote, rollback
from ml_assets.training.mlflow_registry import CHALLENGER, CHAMPION, resolve_version

GATES_TAG = "gates_passed"


class GateNotPassedError(RuntimeError):
    """A version whose evaluation did not pass every gate was asked to become champion."""


@dataclass(frozen=True)
class Promotion:
    name: str
    version: str
    replaced: str | None
    challenger: str | None
    reason: str


def gates_passed(tracking_uri: str, name: str, version: str) -> bool:
    """What the evaluation recorded on the version's training run."""
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    run_id = client.get_model_version(name, version).run_id
    return client.get_run(run_id).data.tags.get(GATES_TAG) == "True"


def promote_candidate(tracking_uri: str, name: str, version: str, reason: str) -> Promotion:
    """Make `version` the champion and the replaced champion the challenger (scored in shadow,
    so its live agreement with the new model shows). Refuses a version that failed a gate."""
    if not gates_passed(tracking_uri, name, version):
        raise GateNotPassedError(
            f"{name} v{version} has not passed its promotion gates (run tag {GATES_TAG}); "
            "materialize model_evaluation for it and fix what its failed checks name"
        )
    replaced = promote(tracking_uri, name, version, CHAMPION)
    challenger = replaced if replaced not in (None, version) else None
    if challenger is not None:
        MlflowClient(
            tracking_uri=tracking_uri, registry_uri=tracking_uri
        ).set_registered_model_alias(name, CHALLENGER, challenger)
    return Promotion(name, version, replaced, challenger, reason)


def roll_back(tracking_uri: str, name: str) -> tuple[str | None, str]:
    """Move the champion back to the version it held before; returns (from, to)."""
    current = resolve_version(tracking_uri, name, CHAMPION)
    target = rollback(tracking_uri, name, CHAMPION)
    if resolve_version(tracking_uri, name, CHALLENGER) == target:
        # The shadow must not be the champion itself.
        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        client.delete_registered_model_alias(name, CHALLENGER)
    return current, target


def endpoint_urls() -> list[str]:
    """Running endpoints to tell about a new champion (`ML_ASSETS_ENDPOINTS`, comma-separated)."""
    return [
        u.strip().rstrip("/")
        for u in os.environ.get("ML_ASSETS_ENDPOINTS", "").split(",")
        if u.strip()
    ]


def notify_endpoints(urls: list[str], timeout_s: float = 5.0) -> dict[str, str]:
    """Ask each endpoint to reload now; one that cannot be reached picks the alias up on its
    own next poll, so a failure here is reported, not raised."""
    key = os.environ.get("ML_ASSETS_API_KEY", "").split(",")[0].strip()
    headers = {"X-API-Key": key} if key else {}
    outcome = {}
    for url in urls:
        try:
            response = httpx.post(f"{url}/admin/reload", headers=headers, timeout=timeout_s)
            outcome[url] = f"{response.status_code}"
        except httpx.HTTPError as error:
            outcome[url] = f"unreachable: {error}"
    return outcome
