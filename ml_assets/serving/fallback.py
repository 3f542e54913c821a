"""The rule-based score answered while the model is unavailable (breaker open, errors).

A few transparent rules on the signals fraud shows in this domain (an amount unlike the
customer's usual, bursts, cross-border, night, risky categories, online): worse than the
model, but it keeps declining the obvious cases instead of approving everything.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

RISKY_CATEGORIES = frozenset({"electronics", "gaming", "jewelry", "crypto_exchange"})
BASE_LOGIT = -4.0


def heuristic_score(request: Mapping[str, Any], features: Mapping[str, Any]) -> float:
    """A fraud probability from the request and whatever entity features are available."""
    logit = BASE_LOGIT
    amount = float(request["amount"])
    mean = features.get("customer__amount_mean_30d")
    if mean:
        logit += 1.2 * max(-2.0, min(3.0, math.log(max(amount, 0.01) / mean)))
    elif amount > 500:
        logit += 1.0
    if request["merchant_country"] != request["customer_country"]:
        logit += 0.8
    event_time = request.get("event_time")
    if event_time is not None and event_time.hour < 5:
        logit += 0.7
    if request["channel"] == "online":
        logit += 0.5
    if (features.get("customer__txn_count_1h") or 0) >= 3:
        logit += 1.5
    if request["merchant_category"] in RISKY_CATEGORIES:
        logit += 0.8
    return 1.0 / (1.0 + math.exp(-logit))
