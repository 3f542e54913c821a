"""Score -> decision, the one rule shared by the endpoint and batch scoring."""

from __future__ import annotations

import numpy as np

APPROVE, REVIEW, DECLINE = "approve", "review", "decline"


def decide(score: float, review_low: float, decline_at: float) -> str:
    """Approve below `review_low`, decline at or above `decline_at`, send the band between
    to human review."""
    if score >= decline_at:
        return DECLINE
    if score >= review_low:
        return REVIEW
    return APPROVE


def decide_many(scores: np.ndarray, review_low: float, decline_at: float) -> np.ndarray:
    """`decide` for a batch of scores."""
    return np.where(scores >= decline_at, DECLINE, np.where(scores >= review_low, REVIEW, APPROVE))
