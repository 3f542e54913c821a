"""The rollout stages of a model version, and how canary traffic is chosen.

A version moves `candidate` -> `shadow` -> `canary` -> `champion`; each stage is an MLflow
alias on the registered model, so serving (which follows aliases) and automation (which moves
them) share one source of truth. The canary's share of traffic is a registered-model tag, so
changing it needs no redeploy. This module is the contract between the two sides; it imports
nothing heavy so serving can use it on the request path.
"""

from __future__ import annotations

import hashlib

from ml_assets.training.registry_reader import CHAMPION

CANDIDATE = "candidate"  # passed the offline gates
SHADOW = "shadow"  # scores every request off the response path, logged beside the champion
CANARY = "canary"  # answers `canary_share` of customers, chosen by a stable hash
STAGES = (CANDIDATE, SHADOW, CANARY, CHAMPION)
CANARY_SHARE_TAG = "canary_share"  # registered-model tag: a float in [0, 1]
DEFAULT_CANARY_SHARE = 0.1

# Which stage answered a request: the prediction log's `arm` column.
CHAMPION_ARM = CHAMPION
CANARY_ARM = CANARY


def customer_bucket(customer_id: str) -> float:
    """A stable number in [0, 1) for a customer: the same on every replica and restart."""
    digest = hashlib.blake2b(customer_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def in_canary(customer_id: str, share: float) -> bool:
    """Whether this customer's requests go to the canary: one customer sees one model."""
    return share > 0 and customer_bucket(customer_id) < share
