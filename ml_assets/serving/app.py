"""The fraud-scoring endpoint: a plain ASGI app (FastAPI), `create_app(config)` and `serve`.

Serving reads two contracts only: the online store (through `features.py`) and the model
registry loader (through `model_source.py`). It never imports dagster: training can be down,
redeployed or rebuilt without this process noticing anything but a new alias.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any, Literal

from fastapi import FastAPI, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from ml_assets.serving.api_models import (
    BatchPrediction,
    BatchRequest,
    ErrorBody,
    EventsRecorded,
    Health,
    ModelsStatus,
    NotReady,
    Prediction,
    Ready,
    Reloading,
    ReloadResult,
    ReviewDecision,
    ReviewList,
    ReviewRecorded,
    Transaction,
    ValidationErrorBody,
)
from ml_assets.serving.batcher import Overloaded
from ml_assets.serving.breaker import OPEN
from ml_assets.serving.config import ServingConfig
from ml_assets.serving.event_time import EventTimeError
from ml_assets.serving.feature_reader import FeatureReader, OnlineFeatureReader
from ml_assets.serving.gateway import PROTECTED_PREFIXES, FailureWindow, Gateway, TokenBucket
from ml_assets.serving.metrics import CONTENT_TYPE, ServingMetrics
from ml_assets.serving.model_source import (
    CHAMPION,
    MlflowRegistry,
    ModelSource,
    RefreshResult,
    Registry,
)
from ml_assets.serving.prediction_log import PredictionLogWriter
from ml_assets.serving.rag_route import router as rag_router
from ml_assets.serving.review_queue import ReviewConflict, ReviewNotFound, ReviewQueue
from ml_assets.serving.service import ScoringService
from ml_assets.training.rollout_stages import CANARY, SHADOW

log = logging.getLogger("ml_assets.serving")
ROUTES = frozenset(
    {"/predict", "/predict/batch", "/events", "/review", "/admin/reload", "/admin/models",
     "/health", "/ready", "/metrics", "/rag/query"}
)  # fmt: skip
NO_OPENTELEMETRY: dict[str, Any] = {
    "tracing": False, "metrics": False, "logs": False, "operation_spans": False,
}  # fmt: skip
API_KEY_SCHEMES = {
    "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    "Bearer": {"type": "http", "scheme": "bearer"},
}

# -- documented responses: every status and content type each route can answer -----------
RETRY_AFTER = {
    "Retry-After": {
        "description": "Whole seconds to wait before retrying (at least 1).",
        "schema": {"type": "integer", "minimum": 1},
        "required": True,
    }
}
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {
        "model": ErrorBody,
        "description": "No API key: send it in `X-API-Key` (or `Authorization: Bearer`).",
        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
    },
    403: {"model": ErrorBody, "description": "The API key is not accepted."},
    413: {"model": ErrorBody, "description": "Request body over `max_body_bytes`."},
    429: {
        "model": ErrorBody,
        "description": "Over the per-key rate, or too many failed authentications from this "
        "client address within a minute.",
        "headers": RETRY_AFTER,
    },
}
BODY_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The body could not be read (e.g. not UTF-8)."},
    422: {
        "model": ValidationErrorBody,
        "description": "Invalid body: each bad field is named in `detail[].field`.",
    },
}
QUERY_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {
        "model": ValidationErrorBody,
        "description": "Invalid query parameter, named in `detail[].field`.",
    },
}
OVERLOADED_RESPONSES: dict[int | str, dict[str, Any]] = {
    503: {
        "model": ErrorBody,
        "description": "The scoring queue is full: nothing was scored, retry after "
        "`Retry-After` seconds (or on another replica).",
        "headers": RETRY_AFTER,
    },
}
SCORING_RESPONSES = {**AUTH_RESPONSES, **BODY_RESPONSES, **OVERLOADED_RESPONSES}
REVIEW_RESPONSES: dict[int | str, dict[str, Any]] = {
    **AUTH_RESPONSES,
    **BODY_RESPONSES,
    404: {"model": ErrorBody, "description": "No queued item has this transaction id."},
    409: {
        "model": ErrorBody,
        "description": "The item was already decided (the first final decision stands), or "
        "escalated and escalated again; `detail` names the standing decision.",
    },
}
# The path example of POST /review/{transaction_id} (also what the contract test queues).
REVIEW_EXAMPLE_TRANSACTION = "T-review-example"


def _field_errors(details: list[dict[str, str]], status: int = 422) -> JSONResponse:
    summary = "; ".join(f"{d['field']}: {d['msg']}" for d in details)
    return JSONResponse({"detail": details, "message": summary}, status_code=status)


def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    """422 naming each bad field; never echoes the input (a NaN would not even serialise)."""
    return _field_errors(
        [
            {
                "field": ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body",
                "type": str(e.get("type") or "invalid"),
                "msg": str(e.get("msg") or "invalid value"),
            }
            for e in error.errors()
        ]
    )


def _event_time_error(request: Request, error: EventTimeError) -> JSONResponse:
    """422 for an event time the service refused: `event_time` for /predict, else (a list)
    `transactions.<index>.event_time`."""
    field = error.field
    if request.url.path != "/predict":
        field = f"transactions.{getattr(error, 'index', 0)}.{error.field}"
    return _field_errors([{"field": field, "type": "event_time_out_of_range",
                           "msg": error.message}])  # fmt: skip


def _overloaded(request: Request, error: Overloaded) -> JSONResponse:
    """503 at once, before anything was queued; a load balancer retries elsewhere."""
    retry = max(1, math.ceil(error.retry_after_s))
    return JSONResponse({"detail": str(error)}, status_code=503,
                        headers={"Retry-After": str(retry)})  # fmt: skip


class _Admission:
    """ASGI middleware: at most `limit` scoring requests in the process at once; the next one
    gets 503 with Retry-After before its body is read. Without it a burst queues in front of
    the event loop, where the batcher's own bound cannot see it, and admitted requests wait
    seconds instead of keeping their latency."""

    ROUTES = frozenset({"/predict", "/predict/batch", "/events"})

    def __init__(self, app: Any, limit: int, retry_after_s: float) -> None:
        self.app = app
        self.limit = limit
        self.retry_after = str(max(1, math.ceil(retry_after_s)))
        self.inflight = 0

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] not in self.ROUTES:
            await self.app(scope, receive, send)
            return
        if self.inflight >= self.limit:
            body = b'{"detail":"the endpoint is at capacity; retry after Retry-After seconds"}'
            await send({"type": "http.response.start", "status": 503, "headers": [
                (b"content-type", b"application/json"), (b"retry-after", self.retry_after.encode()),
                (b"content-length", str(len(body)).encode())]})  # fmt: skip
            await send({"type": "http.response.body", "body": body})
            return
        self.inflight += 1  # one event loop: no lock needed
        try:
            await self.app(scope, receive, send)
        finally:
            self.inflight -= 1


class _Telemetry:
    """ASGI middleware: status counts and latency per known route (bounded label values)."""

    def __init__(self, app: Any, metrics: ServingMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = scope["path"] if scope["path"] in ROUTES else "other"
        started = time.perf_counter()
        status = 500

        async def record(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            self.metrics.http_requests.labels(route=route, status=str(status)).inc()
            self.metrics.request_latency.labels(route=route).observe(time.perf_counter() - started)


def create_app(
    config: ServingConfig | None = None,
    *,
    registry: Registry | None = None,
    feature_reader: FeatureReader | None = None,
) -> FastAPI:
    """The endpoint. `registry` and `feature_reader` default to MLflow and the online store
    named by `config`; tests and benchmarks pass their own (e.g. a deliberately slow model)."""
    config = config or ServingConfig.from_env()
    metrics = ServingMetrics()
    registry = registry or MlflowRegistry(config.resolved_tracking_uri, config.model_name)
    reader = feature_reader or OnlineFeatureReader.open(config.online_store_url, config.home)

    def on_result(result: RefreshResult) -> None:
        if result.outcome in ("swapped", "refused"):
            metrics.reloads.labels(role=result.role, outcome=result.outcome).inc()
        metrics.canary_share.set(source.canary_share if source.canary else 0.0)

    source = ModelSource(
        registry,
        config.champion_alias,
        canary_alias=config.canary_alias if config.canary else None,
        shadow_alias=config.shadow_alias if config.shadow else None,
        on_result=on_result,
    )
    service = ScoringService(
        config,
        source,
        reader,
        metrics,
        ReviewQueue(config.serving_dir),
        PredictionLogWriter(
            config.home, config.log_flush_s, config.log_flush_rows, on_written=metrics.log_rows.inc
        ),  # fmt: skip
    )
    source._on_change = service.on_model_change  # wired after both exist
    refreshing: dict[str, asyncio.Task] = {}

    async def refresh() -> list[RefreshResult]:
        """One refresh at a time; concurrent callers share the running one."""
        task = refreshing.get("task")
        if task is None or task.done():
            task = asyncio.create_task(asyncio.to_thread(source.refresh))
            refreshing["task"] = task
        return await asyncio.shield(task)

    async def poll() -> None:
        while True:
            await asyncio.sleep(config.reload_poll_s)
            try:
                await refresh()
            except Exception:
                log.exception("registry poll failed; keeping the current models")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.start()
        background = [asyncio.create_task(_first_load(refresh))]
        if config.reload_poll_s > 0:
            background.append(asyncio.create_task(poll()))
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await asyncio.to_thread(service.stop)

    app = FastAPI(
        title="ml_assets fraud scoring",
        description="Scores card transactions with the promoted champion model.",
        lifespan=lifespan,
        # FastAPI's built-in OpenTelemetry wraps every request in spans and histograms even
        # with no exporter configured; our Prometheus
        # metrics are this endpoint's telemetry.
        telemetry=NO_OPENTELEMETRY,
    )
    app.state.service = service
    app.state.source = source
    app.state.metrics = metrics
    app.state.config = config
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Overloaded, _overloaded)
    app.add_exception_handler(EventTimeError, _event_time_error)
    app.add_middleware(
        Gateway,
        api_keys=config.api_keys,
        limiter=TokenBucket(config.rate_limit_per_s, config.rate_limit_burst),
        max_body_bytes=config.max_body_bytes,
        on_refused=lambda path, status: metrics.rate_limited.inc() if status == 429 else None,
        auth_failures=FailureWindow(config.auth_failures_per_min, window_s=60.0),
    )
    app.add_middleware(
        _Admission, limit=config.max_inflight_requests, retry_after_s=config.retry_after_s
    )
    app.add_middleware(_Telemetry, metrics=metrics)
    app.include_router(rag_router)
    if config.max_batch_items > config.max_queue:
        log.warning("max_batch_items=%d > max_queue=%d: larger batches are always refused "
                    "with 503", config.max_batch_items, config.max_queue)  # fmt: skip

    def too_many(batch: BatchRequest) -> JSONResponse | None:
        if len(batch.transactions) <= config.max_batch_items:
            return None
        return JSONResponse(
            {
                "detail": [{"field": "transactions", "type": "too_long",
                            "msg": f"at most {config.max_batch_items} transactions"}],
                "message": f"transactions: send at most {config.max_batch_items} "
                f"per request (got {len(batch.transactions)}); split the batch",
            },
            status_code=422,
        )  # fmt: skip

    @app.post("/predict", response_model=Prediction, responses=SCORING_RESPONSES)
    async def predict(transaction: Transaction) -> JSONResponse:
        """Score one transaction."""
        return JSONResponse((await service.predict([transaction]))[0])

    @app.post("/predict/batch", response_model=BatchPrediction, responses=SCORING_RESPONSES)
    async def predict_batch(batch: BatchRequest) -> JSONResponse:
        """Score a list of transactions (at most `max_batch_items`)."""
        if (refused := too_many(batch)) is not None:
            return refused
        return JSONResponse({"predictions": await service.predict(batch.transactions)})

    @app.post(
        "/events", status_code=202, response_model=EventsRecorded, responses=SCORING_RESPONSES
    )
    async def events(batch: BatchRequest) -> JSONResponse:
        """Record transactions that were not scored here, or arrived late, in the online store
        (at most `max_batch_items`); `recorded` counts those not seen before."""
        if (refused := too_many(batch)) is not None:
            return refused
        recorded = await service.record_events(batch.transactions)
        return JSONResponse({"recorded": recorded, "received": len(batch.transactions)},
                            status_code=202)  # fmt: skip

    @app.get("/review", response_model=ReviewList,
             responses={**AUTH_RESPONSES, **QUERY_RESPONSES})  # fmt: skip
    async def review(
        limit: int = Query(100, ge=1, le=10_000),
        status: Literal["pending", "escalated", "decided"] = Query("pending"),
    ) -> JSONResponse:
        """Items of the human-review queue in `status` (pending by default), newest first."""
        items = await asyncio.to_thread(service.review.list, limit, status)
        return JSONResponse(jsonable_encoder({"items": items, "count": len(items)}))

    @app.post("/review/{transaction_id}", response_model=ReviewRecorded, responses=REVIEW_RESPONSES)
    async def decide_review(
        decision: ReviewDecision,
        transaction_id: str = Path(
            min_length=1, max_length=128, examples=[REVIEW_EXAMPLE_TRANSACTION]
        ),
    ) -> JSONResponse:
        """Record a reviewer's decision on the queued item of `transaction_id`: `fraud` or
        `legitimate` decide it (and become its label), `escalate` passes it to a second
        reviewer, who then decides it. The first final decision stands: another is a 409."""
        try:
            recorded = await asyncio.to_thread(
                service.review.decide, transaction_id, decision.decision,
                decision.reviewer_id, decision.note,
            )  # fmt: skip
        except ReviewNotFound as error:
            return JSONResponse({"detail": f"{error}: only queued items can be decided "
                                 "(GET /review lists them)"}, status_code=404)  # fmt: skip
        except ReviewConflict as error:
            return JSONResponse({"detail": str(error)}, status_code=409)
        return JSONResponse(jsonable_encoder(recorded))

    @app.post(
        "/admin/reload",
        response_model=ReloadResult,
        responses={
            202: {"model": Reloading, "description": "Refresh started in the background "
                  "(without `wait=true`)."},
            **AUTH_RESPONSES,
            **QUERY_RESPONSES,
        },
    )  # fmt: skip
    async def reload(wait: bool = False) -> JSONResponse:
        """Re-read the registry aliases (champion, canary, shadow) and the canary share, and
        swap in changed models: 202 at once (in the background), or with `wait=true` 200
        once done, with what happened per stage."""
        if not wait:
            asyncio.ensure_future(refresh())
            return JSONResponse({"status": "reloading", **_models(source)}, status_code=202)
        results = await refresh()
        return JSONResponse({"results": [asdict(r) for r in results], **_models(source)})

    @app.get("/admin/models", response_model=ModelsStatus, responses=AUTH_RESPONSES)
    async def models() -> JSONResponse:
        """Each rollout stage's loaded model (champion, canary with its share, shadow: name,
        version, since when loaded), and the champion's circuit breaker state."""
        return JSONResponse({**_models(source), "breaker": service.breaker.state})

    @app.get("/health", response_model=Health)
    async def health() -> JSONResponse:
        """Liveness: the process answers."""
        return JSONResponse({"status": "ok"})

    @app.get(
        "/ready",
        response_model=Ready,
        responses={503: {"model": NotReady, "description": "Not ready: no champion loaded "
                         "yet, or the circuit breaker is open; `reason` says which."}},
    )  # fmt: skip
    async def ready() -> JSONResponse:
        """Readiness: a champion is loaded and its breaker is not open (load balancers route
        only when 200, so a replica whose model keeps failing is drained)."""
        if source.champion is None:
            return JSONResponse({"ready": False, "reason": "no champion model loaded yet"},
                                status_code=503)  # fmt: skip
        if service.breaker.state == OPEN:
            return JSONResponse(
                {"ready": False, "reason": "circuit breaker open: the model kept failing, "
                 "answers come from the rules until a trial call succeeds"},
                status_code=503,
            )  # fmt: skip
        return JSONResponse({"ready": True, **_models(source)})

    @app.get(
        "/metrics",
        response_class=PlainTextResponse,
        responses={200: {"description": "Prometheus text exposition (`ml_assets_serving_*`).",
                         "content": {"text/plain": {"schema": {"type": "string"}}}}},
    )  # fmt: skip
    async def prometheus() -> Response:
        """Prometheus metrics of this replica."""
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    _document_gateway(app, config)
    return app


def _document_gateway(app: FastAPI, config: ServingConfig) -> None:
    """What the schema cannot learn from the routes: the API key the gateway asks for (when
    keys are configured) and the configured batch limit."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        batch = schema["components"]["schemas"]["BatchRequest"]["properties"]["transactions"]
        batch["maxItems"] = config.max_batch_items
        if config.api_keys:
            schema["components"]["securitySchemes"] = API_KEY_SCHEMES
            for path, operations in schema["paths"].items():
                if path.startswith(PROTECTED_PREFIXES):
                    for operation in operations.values():
                        operation["security"] = [{name: []} for name in API_KEY_SCHEMES]
        else:
            for path, operations in schema["paths"].items():
                if path.startswith(PROTECTED_PREFIXES):
                    for operation in operations.values():
                        for status in ("401", "403"):
                            operation["responses"].pop(status, None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


async def _first_load(refresh: Any) -> None:
    try:
        results = await refresh()
        for result in results:
            if result.role == CHAMPION and result.outcome in ("unset", "refused"):
                log.warning("no servable champion yet (%s); answering with the fallback rules"
                            " until one is promoted", result.error or "alias unset")  # fmt: skip
    except Exception:
        log.exception("first model load failed; the registry poll will retry")


def _models(source: ModelSource) -> dict[str, Any]:
    def describe(role: str, scorer: Any) -> dict[str, Any] | None:
        loaded_at = source.loaded_at.get(role)
        if scorer is None or loaded_at is None:  # retired between the two reads
            return None
        return {"name": scorer.name, "version": scorer.version, "loaded_at": loaded_at.isoformat()}

    canary = describe(CANARY, source.canary)
    if canary is not None:
        canary["share"] = source.canary_share
    return {"champion": describe(CHAMPION, source.champion), "canary": canary,
            "shadow": describe(SHADOW, source.shadow)}  # fmt: skip


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    config: ServingConfig | None = None,
    log_level: str = "info",
) -> None:
    """Run one replica until interrupted (what `ml-assets serve` calls)."""
    import uvicorn

    config = config or ServingConfig.from_env()
    sys.setswitchinterval(config.switch_interval_ms / 1000.0)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    if not config.api_keys:
        log.warning("ML_ASSETS_API_KEY is not set: /predict and /admin accept any caller")
    uvicorn.run(
        create_app(config),
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
