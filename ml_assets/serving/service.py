"""The scoring path: cache, breaker, micro-batched feature read + model call, fallbacks.

For each transaction: a fresh cached answer for the same input is returned as is (`cache`).
Otherwise, if the breaker lets the model be used, the request joins the micro-batcher and
waits at most `request_timeout_s`; a model answer in the review band goes to the human
review queue (`review`), any other is `model`. Errors and an open breaker answer with the
rule-based score (`fallback`); a timeout answers from the cache or with the default score
(`cache`/`fallback`, reason `timeout`). After answering, the prediction-log record (and the
row for the challenger) leaves the request path.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from ml_assets.serving.api_models import Transaction
from ml_assets.serving.batcher import MicroBatcher
from ml_assets.serving.breaker import CircuitBreaker
from ml_assets.serving.cache import TTLCache
from ml_assets.serving.config import ServingConfig
from ml_assets.serving.decisions import decide
from ml_assets.serving.fallback import heuristic_score
from ml_assets.serving.feature_reader import EntityFeatures, FeatureReader
from ml_assets.serving.metrics import ServingMetrics
from ml_assets.serving.model_source import CHAMPION, ModelSource, Scorer
from ml_assets.serving.prediction_log import PredictionLogWriter
from ml_assets.serving.review_queue import ReviewQueue
from ml_assets.serving.shadow import ShadowJob, ShadowWorker

log = logging.getLogger(__name__)
MODEL, FALLBACK, CACHE, REVIEW = "model", "fallback", "cache", "review"
BREAKER_OPEN, TIMEOUT, MODEL_ERROR, NO_MODEL = "breaker_open", "timeout", "model_error", "no_model"
FEATURES_UNAVAILABLE = "features_unavailable"
RULES_NAME, RULES_VERSION, DEFAULT_NAME = "rules", "v1", "default"
REQUEST_FIELDS = (
    "amount", "channel", "device", "merchant_category", "merchant_country", "customer_country",
)  # fmt: skip


@dataclass(frozen=True)
class Job:
    """One transaction for the batch worker: the model's request fields and its entities."""

    request: dict[str, Any]
    pair: tuple[str, str]


@dataclass
class Scored:
    """What the batch worker returns per job (error set when the model was not usable)."""

    features: EntityFeatures
    row: dict[str, Any]
    score: float | None = None
    scorer: Scorer | None = None
    error: str | None = None


@dataclass
class Answer:
    score: float
    path: str
    model_name: str | None
    model_version: str | None
    reason: str | None = None
    features: EntityFeatures | None = None
    row: dict[str, Any] | None = None
    status: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Cached:
    score: float
    model_name: str
    model_version: str
    status: dict[str, str]


def _request(txn: Transaction, received_at: datetime) -> dict[str, Any]:
    event_time = txn.event_time or received_at
    if event_time.tzinfo is None:  # a naive time is taken as UTC, like the warehouse
        event_time = event_time.replace(tzinfo=UTC)
    request = {name: getattr(txn, name) for name in REQUEST_FIELDS}
    request["event_time"] = event_time
    return request


def _cache_key(txn: Transaction, request: dict[str, Any]) -> Hashable:
    """Everything the score depends on except the transaction id (and minutes of the time)."""
    hour = request["event_time"].astimezone(UTC).hour
    return (txn.customer_id, txn.merchant_id, *(request[n] for n in REQUEST_FIELDS), hour)


class ScoringService:
    """Owns the degradation machinery; the web app only parses, calls `predict` and answers."""

    def __init__(
        self,
        config: ServingConfig,
        source: ModelSource,
        reader: FeatureReader,
        metrics: ServingMetrics,
        review: ReviewQueue,
        prediction_log: PredictionLogWriter,
    ) -> None:
        self.config = config
        self.source = source
        self.reader = reader
        self.metrics = metrics
        self.review = review
        self.prediction_log = prediction_log
        self.cache: TTLCache[Cached] = TTLCache(config.cache_size, config.cache_ttl_s)
        self.breaker = CircuitBreaker(
            config.breaker_failures, config.breaker_reset_s, on_change=metrics.on_breaker_change
        )
        self.batcher: MicroBatcher[Job, Scored] = MicroBatcher(
            self._score_batch,
            max_size=config.batch_max_size if config.micro_batching else 1,
            max_wait_s=config.batch_max_wait_ms / 1000.0,
            on_batch=metrics.batch_size.observe,
        )
        self.shadow = (
            ShadowWorker(source, self.decide, prediction_log.append, metrics,
                         config.shadow_queue_size)
            if config.shadow else None
        )  # fmt: skip

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self.batcher.start()
        self.prediction_log.start()
        self.review.start()
        if self.shadow:
            self.shadow.start()

    def stop(self) -> None:
        """Stop taking work, finish shadow scoring, then flush the log and the review queue."""
        self.batcher.stop()
        if self.shadow:
            self.shadow.close()
        self.prediction_log.close()
        self.review.close()
        self.reader.close()

    def on_model_change(self, role: str, scorer: Scorer | None) -> None:
        """A new champion invalidates cached answers and gets a fresh breaker."""
        if role == CHAMPION:
            self.cache.clear()
            self.breaker.reset()
        self.metrics.set_model(role, scorer.name if scorer else None,
                               scorer.version if scorer else None)  # fmt: skip

    # -- decisions -------------------------------------------------------------------------
    def decide(self, score: float) -> str:
        return decide(score, self.config.decisions)

    # -- worker thread ---------------------------------------------------------------------
    def _score_batch(self, jobs: list[Job]) -> list[Scored]:
        started = time.perf_counter()
        features = self.reader.read([job.pair for job in jobs], datetime.now(UTC))
        rows = [{**job.request, **f.values} for job, f in zip(jobs, features, strict=True)]
        scorer = self.source.champion  # read once: the whole batch uses one model
        if scorer is None:
            return [Scored(f, row, error=NO_MODEL) for f, row in zip(features, rows, strict=True)]
        try:
            scores = np.asarray(scorer.predict_proba(rows), dtype=np.float64)
            if scores.shape != (len(rows),) or not np.isfinite(scores).all():
                raise ValueError(f"model returned {scores.shape} scores for {len(rows)} rows")
        except Exception as error:
            log.warning("model %s v%s failed on %d rows: %s", scorer.name, scorer.version,
                        len(rows), error)  # fmt: skip
            pairs = zip(features, rows, strict=True)
            return [Scored(f, row, error=MODEL_ERROR) for f, row in pairs]
        self.metrics.model_latency.observe(time.perf_counter() - started)
        return [
            Scored(f, row, float(s), scorer)
            for f, row, s in zip(features, rows, scores, strict=True)
        ]

    # -- request path ----------------------------------------------------------------------
    async def _fallback(self, job: Job, reason: str, features: EntityFeatures | None) -> Answer:
        if features is None:
            try:
                features = (await asyncio.to_thread(self.reader.read, [job.pair],
                                                    datetime.now(UTC)))[0]  # fmt: skip
            except Exception as error:
                log.warning("online store read failed: %s", error)
                features = EntityFeatures({}, {})
                reason = FEATURES_UNAVAILABLE if reason == MODEL_ERROR else reason
        score = heuristic_score(job.request, features.values)
        return Answer(score, FALLBACK, RULES_NAME, RULES_VERSION, reason, features,
                      status=features.status)  # fmt: skip

    def _from_cache(self, key: Hashable, reason: str | None = None) -> Answer | None:
        hit = self.cache.get(key)
        if hit is None:
            return None
        self.metrics.cache_hits.inc()
        return Answer(hit.score, CACHE, hit.model_name, hit.model_version, reason,
                      status=hit.status)  # fmt: skip

    async def _answer(self, txn: Transaction, received_at: datetime) -> Answer:
        request = _request(txn, received_at)
        key = _cache_key(txn, request)
        cached = self._from_cache(key)
        if cached is not None:
            return cached
        self.metrics.cache_misses.inc()
        job = Job(request, (txn.customer_id, txn.merchant_id))
        if not self.breaker.allow():
            return await self._fallback(job, BREAKER_OPEN, None)
        future = self.batcher.submit(job)
        try:
            async with asyncio.timeout(self.config.request_timeout_s):
                scored: Scored = await future
        except TimeoutError:
            self.breaker.record_failure()
            answer = self._from_cache(key, TIMEOUT)
            return answer or Answer(self.config.default_score, FALLBACK, DEFAULT_NAME, None,
                                    TIMEOUT)  # fmt: skip
        except Exception as error:  # the feature read failed for the whole batch
            log.warning("scoring batch failed: %s", error)
            self.breaker.record_failure()
            return await self._fallback(job, MODEL_ERROR, None)
        if scored.error == NO_MODEL:
            self.breaker.release()
            return await self._fallback(job, NO_MODEL, scored.features)
        if scored.error is not None or scored.score is None or scored.scorer is None:
            self.breaker.record_failure()
            return await self._fallback(job, scored.error or MODEL_ERROR, scored.features)
        self.breaker.record_success()
        status = scored.features.status
        scorer = scored.scorer
        if scorer is self.source.champion:  # never cache an answer of a replaced model
            self.cache.put(key, Cached(scored.score, scorer.name, scorer.version, status))
        return Answer(scored.score, MODEL, scorer.name, scorer.version, None, scored.features,
                      scored.row, status)  # fmt: skip

    async def predict(self, txns: Sequence[Transaction]) -> list[dict[str, Any]]:
        """Answers in request order; never raises for a valid transaction."""
        started = time.perf_counter()
        received_at = datetime.now(UTC)
        if len(txns) == 1:
            answers = [await self._answer(txns[0], received_at)]
        else:
            answers = list(await asyncio.gather(*(self._answer(t, received_at) for t in txns)))
        latency_ms = (time.perf_counter() - started) * 1000.0
        return self._finish(txns, answers, received_at, latency_ms)

    def _finish(
        self,
        txns: Sequence[Transaction],
        answers: Sequence[Answer],
        received_at: datetime,
        latency_ms: float,
    ) -> list[dict[str, Any]]:
        """Responses, plus the off-path work: log records, review rows, shadow rows."""
        responses, shadow_rows, shadow_records, plain_records = [], [], [], []
        for txn, answer in zip(txns, answers, strict=True):
            decision = self.decide(answer.score)
            path = REVIEW if answer.path == MODEL and decision == "review" else answer.path
            unknown = [e for e, s in answer.status.items() if s == "missing_entity"]
            request_id = uuid.uuid4().hex
            response = {
                "request_id": request_id,
                "transaction_id": txn.transaction_id,
                "score": answer.score,
                "decision": decision,
                "path": path,
                "reason": answer.reason,
                "model_name": answer.model_name,
                "model_version": answer.model_version,
                "unknown_entities": unknown,
                "feature_status": answer.status,
                "latency_ms": round(latency_ms, 3),
            }
            responses.append(response)
            self.metrics.predictions.labels(path=path, decision=decision).inc()
            if answer.reason:
                self.metrics.degraded.labels(reason=answer.reason).inc()
            for entity in unknown:
                self.metrics.unknown_entities.labels(entity=entity).inc()
            if decision == "review" and path in (REVIEW, FALLBACK):
                self._enqueue_review(txn, answer, response, received_at)
            record = {
                "request_id": request_id,
                "received_at": received_at,
                "transaction_id": txn.transaction_id,
                "customer_id": txn.customer_id,
                "merchant_id": txn.merchant_id,
                "amount": txn.amount,
                "score": answer.score,
                "decision": decision,
                "path": path,
                "model_name": answer.model_name,
                "model_version": answer.model_version,
                "latency_ms": latency_ms,
                "shadow_score": None,
                "shadow_version": None,
            }
            if answer.row is not None and path in (MODEL, REVIEW):
                shadow_rows.append(answer.row)
                shadow_records.append(record)
            else:
                plain_records.append(record)
        if plain_records:
            self.prediction_log.append(plain_records)
        if shadow_records:
            job = ShadowJob(shadow_rows, shadow_records)
            if self.shadow:
                self.shadow.submit(job)
            else:
                self.prediction_log.append(shadow_records)
        return responses

    def _enqueue_review(
        self, txn: Transaction, answer: Answer, response: dict[str, Any], received_at: datetime
    ) -> None:
        features = answer.features.values if answer.features else {}
        self.review.add(
            {
                "created_at": received_at,
                "request_id": response["request_id"],
                "transaction_id": txn.transaction_id,
                "score": answer.score,
                "model_name": answer.model_name,
                "model_version": answer.model_version,
                "path": response["path"],
                "request": txn.model_dump(mode="json"),
                "features": {k: v for k, v in features.items() if not _is_nan(v)},
            }
        )
        self.metrics.review_enqueued.inc()


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)
