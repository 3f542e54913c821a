"""Score -> decision, the one rule shared by the endpoint and batch scoring; the thresholds
live in `settings.DecisionThresholds`."""

from __future__ import annotations

import numpy as np

from ml_assets.settings import DecisionThresholds

APPROVE, REVIEW, DECLINE = "approve", "review", "decline"


def decide(score: float, thresholds: DecisionThresholds) -> str:
    """Approve below `review_low`, decline at or above `decline_at`, send the band between
    to human review."""
    if score >= thresholds.decline_at:
        return DECLINE
    if score >= thresholds.review_low:
        return REVIEW
    return APPROVE


def decide_many(scores: np.ndarray, thresholds: DecisionThresholds) -> np.ndarray:
    """`decide` for a batch of scores."""
    low, high = thresholds.review_low, thresholds.decline_at
    return np.where(scores >= high, DECLINE, np.where(scores >= low, REVIEW, APPROVE))
