"""The fraud-scoring endpoint: a plain ASGI app (FastAPI), `create_app(config)` and `serve`.

Serving reads two contracts only: the online store (through `features.py`) and the model
registry loader (through `model_source.py`). It never imports dagster: training can be down,
redeployed or rebuilt without this process noticing anything but a new alias.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from ml_assets.serving.api_models import BatchPrediction, BatchRequest, Prediction, Transaction
from ml_assets.serving.config import ServingConfig
from ml_assets.serving.feature_reader import FeatureReader, OnlineFeatureReader
from ml_assets.serving.gateway import Gateway, TokenBucket
from ml_assets.serving.metrics import CONTENT_TYPE, ServingMetrics
from ml_assets.serving.model_source import (
    CHAMPION,
    MlflowRegistry,
    ModelSource,
    RefreshResult,
    Registry,
)
from ml_assets.serving.prediction_log import PredictionLogWriter
from ml_assets.serving.review_queue import ReviewQueue
from ml_assets.serving.service import ScoringService

log = logging.getLogger("ml_assets.serving")
ROUTES = frozenset(
    {"/predict", "/predict/batch", "/review", "/admin/reload", "/admin/models", "/health",
     "/ready", "/metrics"}
)  # fmt: skip


def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    """422 naming each bad field; never echoes the input (a NaN would not even serialise)."""
    details = [
        {
            "field": ".".join(str(part) for part in e.get("loc", ()) if part != "body") or "body",
            "type": e.get("type"),
            "msg": e.get("msg"),
        }
        for e in error.errors()
    ]
    summary = "; ".join(f"{d['field']}: {d['msg']}" for d in details)
    return JSONResponse({"detail": details, "message": summary}, status_code=422)


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

    source = ModelSource(
        registry,
        config.champion_alias,
        config.challenger_alias if config.shadow else None,
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
    )
    app.state.service = service
    app.state.source = source
    app.state.metrics = metrics
    app.state.config = config
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_middleware(
        Gateway,
        api_keys=config.api_keys,
        limiter=TokenBucket(config.rate_limit_per_s, config.rate_limit_burst),
        max_body_bytes=config.max_body_bytes,
        on_refused=lambda path, status: metrics.rate_limited.inc() if status == 429 else None,
    )
    app.add_middleware(_Telemetry, metrics=metrics)

    @app.post("/predict", response_model=Prediction)
    async def predict(transaction: Transaction) -> JSONResponse:
        """Score one transaction."""
        return JSONResponse((await service.predict([transaction]))[0])

    @app.post("/predict/batch", response_model=BatchPrediction)
    async def predict_batch(batch: BatchRequest) -> JSONResponse:
        """Score a list of transactions (at most `max_batch_items`)."""
        if len(batch.transactions) > config.max_batch_items:
            return JSONResponse(
                {
                    "detail": [{"field": "transactions", "type": "too_long",
                                "msg": f"at most {config.max_batch_items} transactions"}],
                    "message": f"transactions: send at most {config.max_batch_items} "
                    f"per request (got {len(batch.transactions)}); split the batch",
                },
                status_code=422,
            )  # fmt: skip
        return JSONResponse({"predictions": await service.predict(batch.transactions)})

    @app.get("/review")
    async def review(limit: int = Query(100, ge=1, le=10_000)) -> dict[str, Any]:
        """Pending requests in the human-review queue, newest first."""
        items = await asyncio.to_thread(service.review.list, limit)
        return {"items": items, "count": len(items)}

    @app.post("/admin/reload")
    async def reload(wait: bool = False) -> JSONResponse:
        """Re-read the registry aliases and swap in changed models (in the background)."""
        if not wait:
            asyncio.ensure_future(refresh())
            return JSONResponse({"status": "reloading", **_models(source)}, status_code=202)
        results = await refresh()
        return JSONResponse({"results": [asdict(r) for r in results], **_models(source)})

    @app.get("/admin/models")
    async def models() -> dict[str, Any]:
        return {**_models(source), "breaker": service.breaker.state}

    @app.get("/health")
    async def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        """Readiness: a champion model is loaded (load balancers route only when 200)."""
        champion = source.champion
        if champion is None:
            return JSONResponse({"ready": False, "reason": "no champion model loaded yet"},
                                status_code=503)  # fmt: skip
        return JSONResponse({"ready": True, **_models(source)})

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    return app


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
    def describe(scorer: Any) -> dict[str, str] | None:
        return {"name": scorer.name, "version": scorer.version} if scorer else None

    return {"champion": describe(source.champion), "challenger": describe(source.challenger)}


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    config: ServingConfig | None = None,
    log_level: str = "info",
) -> None:
    """Run one replica until interrupted (what `ml-assets serve` calls)."""
    import uvicorn

    config = config or ServingConfig.from_env()
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
