"""Request and response bodies; validation here is what turns bad input into a 422.

Fields are strict (no "12" -> 12 coercion) and amounts must be finite, so a client bug shows
up as a 422 that names the field instead of a score computed from garbage.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Id = Annotated[str, Field(min_length=1, max_length=128, strict=True)]
Label = Annotated[str, Field(min_length=1, max_length=64, strict=True)]
Country = Annotated[str, Field(min_length=2, max_length=3, strict=True)]


class Transaction(BaseModel):
    """One card transaction to score; `event_time` defaults to the time it is received."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    transaction_id: Id
    customer_id: Id
    merchant_id: Id
    amount: Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False, strict=True)]
    channel: Label
    device: Label
    merchant_category: Label
    merchant_country: Country
    customer_country: Country
    event_time: datetime | None = None


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    transactions: list[Transaction] = Field(min_length=1)


class Prediction(BaseModel):
    """The answer: `path` says which part of the endpoint produced it, `reason` why not
    the model when it was not."""

    request_id: str
    transaction_id: str
    score: float
    decision: str  # approve | review | decline
    path: str  # model | fallback | cache | review
    reason: str | None = None  # breaker_open | timeout | model_error | no_model
    model_name: str | None
    model_version: str | None
    unknown_entities: list[str] = []
    feature_status: dict[str, str] = {}
    latency_ms: float


class BatchPrediction(BaseModel):
    predictions: list[Prediction]
