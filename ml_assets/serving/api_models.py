"""Request and response bodies; validation here is what turns bad input into a 422.

Fields are strict (no "12" -> 12 coercion) and amounts must be finite, so a client bug shows
up as a 422 that names the field instead of a score computed from garbage.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

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
    event_time: datetime | None = Field(
        None,
        description="When the transaction happened (naive times are UTC); absent: when it is "
        "received. Must lie within the endpoint's late-event allowance before now and its "
        "clock-skew allowance after now, else 422 naming this field.",
    )


class BatchRequest(BaseModel):
    """`/predict/batch` and `/events`: at most `max_batch_items` transactions (the OpenAPI
    schema states the configured limit as `maxItems`)."""

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
    # champion | canary: the rollout stage whose model answered (for a rules answer, the
    # stage that was asked); a cached answer keeps the arm it was given with.
    arm: str
    unknown_entities: list[str] = []
    feature_status: dict[str, str] = {}
    latency_ms: float


class BatchPrediction(BaseModel):
    predictions: list[Prediction]


class EventsRecorded(BaseModel):
    """`POST /events`: how many of the posted transactions were new to the online store."""

    recorded: int
    received: int


# -- errors (every status the endpoint answers is documented in its OpenAPI schema) --------


class ErrorBody(BaseModel):
    """400, 401, 403, 413, 429 and 503: what went wrong, in one sentence."""

    detail: str


class FieldError(BaseModel):
    """One bad field: `field` is its dotted path in the body or query (`transactions.3.amount`,
    `event_time`, `limit`), `type` a machine-readable kind, `msg` the explanation."""

    field: str
    type: str
    msg: str


class ValidationErrorBody(BaseModel):
    """422: every bad field named, and a one-line summary in `message`."""

    detail: list[FieldError]
    message: str


# -- readiness and administration ----------------------------------------------------------


class ModelRef(BaseModel):
    """A loaded model of one rollout stage, and since when this replica serves it."""

    name: str
    version: str
    loaded_at: datetime


class CanaryRef(ModelRef):
    share: float = Field(ge=0.0, le=1.0, description="Share of customers it answers (the "
                         "registered-model tag `canary_share`, read at every reload).")  # fmt: skip


class LoadedModels(BaseModel):
    """The stage models this replica has loaded: the champion answers, the canary answers
    its share of customers, the shadow scores off the response path (null: not set)."""

    champion: ModelRef | None
    canary: CanaryRef | None
    shadow: ModelRef | None


class ModelsStatus(LoadedModels):
    """`GET /admin/models`: the loaded models and the breaker state."""

    breaker: str  # closed | half_open | open


class Ready(LoadedModels):
    ready: bool


class NotReady(BaseModel):
    """503 from `/ready`: `reason` says why a load balancer should route elsewhere."""

    ready: bool
    reason: str


class Reloading(LoadedModels):
    """202 from `POST /admin/reload`: the refresh runs in the background."""

    status: str


class RefreshOutcome(BaseModel):
    role: str  # champion | canary | shadow
    alias: str
    outcome: str  # unchanged | swapped | refused | unset
    version: str | None = None
    error: str | None = None


class ReloadResult(LoadedModels):
    """200 from `POST /admin/reload?wait=true`: what the refresh did per role."""

    results: list[RefreshOutcome]


class ReviewList(BaseModel):
    """`GET /review`: the items in the asked status (pending by default), newest first."""

    items: list[dict[str, Any]]
    count: int


class ReviewDecision(BaseModel):
    """`POST /review/{transaction_id}`: a reviewer's decision. `fraud` and `legitimate` become
    labels (source `review`) that monitoring and the next training set use until a chargeback
    arrives; `escalate` passes the item to a second reviewer and is no label."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"decision": "fraud", "reviewer_id": "analyst-7",
                                         "note": "card used in two countries within an hour"}]},
    )  # fmt: skip

    decision: Literal["fraud", "legitimate", "escalate"]
    reviewer_id: Id
    note: Annotated[str, Field(max_length=2000, strict=True)] | None = None


class ReviewRecorded(BaseModel):
    """200 from `POST /review/{transaction_id}`: the decision as recorded. `status` is the
    item's new state (`escalated` or `decided`); `is_fraud` the label (null for escalate)."""

    transaction_id: str
    decision: Literal["fraud", "legitimate", "escalate"]
    status: Literal["escalated", "decided"]
    is_fraud: int | None
    reviewer_id: str
    note: str | None
    decided_at: datetime


class Health(BaseModel):
    status: str
