"""The scoring path: features as of the event time, the model per row, degradation, the log.

For each transaction: the event time is checked (a time outside the allowance is a 422
naming the field) and a fresh cached answer for the very same transaction is returned as is
(`cache`: a retry gets the same answer and counts once). Otherwise, if the breaker lets the
model be used, the whole request joins the micro-batcher at once (or is refused with 503
when the queue is full) and waits at most `request_timeout_s`. The batch worker reads each
request's features as of its event time, records the event in the online store, and scores
every row on its own, so one bad row fails alone. A model answer in the review band goes to
the human review queue (`review`), any other is `model`. Errors and an open breaker answer
with the rules (`fallback`), a timeout or no model with the rules on the request alone; an
answer the model did not give never approves (`unscored_decision`, review by default).
After answering, the prediction-log record (and the row for the shadow model) leaves the
request path.

Canary: while a canary is loaded, the transactions of customers `in_canary` go to a second
micro-batcher with its own worker and breaker, so each model scores only its own arm's rows
and a slow or failing canary cannot delay or trip the champion. A canary row that fails
(error, NaN) is scored by the champion in the same worker call (arm `champion`); after
`breaker_failures` consecutive canary failures its customers go to the champion until a
trial succeeds; a canary timeout answers with the rules like any other (arm `canary`).
Without a canary the request path is the champion's alone, as before.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
import uuid
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from ml_assets.serving.api_models import Transaction
from ml_assets.serving.batcher import MicroBatcher, Overloaded
from ml_assets.serving.breaker import CLOSED, CircuitBreaker
from ml_assets.serving.cache import TTLCache
from ml_assets.serving.config import ServingConfig
from ml_assets.serving.decisions import APPROVE, decide
from ml_assets.serving.event_time import EventTimeError, resolve_event_time
from ml_assets.serving.fallback import heuristic_score
from ml_assets.serving.feature_reader import MISSING_ENTITY, EntityFeatures, Event, FeatureReader
from ml_assets.serving.metrics import ServingMetrics
from ml_assets.serving.model_source import CHAMPION, ModelSource, Scorer
from ml_assets.serving.prediction_log import PredictionLogWriter
from ml_assets.serving.review_queue import ReviewQueue
from ml_assets.serving.shadow import ShadowJob, ShadowWorker
from ml_assets.training.rollout_stages import CANARY, CANARY_ARM, CHAMPION_ARM, in_canary

log = logging.getLogger(__name__)
MODEL, FALLBACK, CACHE, REVIEW = "model", "fallback", "cache", "review"
BREAKER_OPEN, TIMEOUT, MODEL_ERROR, NO_MODEL = "breaker_open", "timeout", "model_error", "no_model"
FEATURES_UNAVAILABLE = "features_unavailable"
RULES_NAME, RULES_VERSION = "rules", "v1"
REQUEST_FIELDS = (
    "amount", "channel", "device", "merchant_category", "merchant_country", "customer_country",
)  # fmt: skip


@dataclass(frozen=True)
class Job:
    """One transaction for the batch worker: the model's request fields and its event."""

    request: dict[str, Any]
    event: Event


@dataclass
class Scored:
    """What the batch worker returns per job (error set when the model was not usable)."""

    features: EntityFeatures
    row: dict[str, Any]
    score: float | None = None
    scorer: Scorer | None = None
    error: str | None = None
    arm: str = CHAMPION_ARM  # the stage whose model scored (or last failed) the row
    canary_failed: bool = False  # the canary failed this row (the champion was asked)


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
    arm: str = CHAMPION_ARM


@dataclass(frozen=True)
class Cached:
    score: float
    model_name: str
    model_version: str
    status: dict[str, str]
    arm: str


def _job(txn: Transaction, event_time: datetime) -> Job:
    request = {name: getattr(txn, name) for name in REQUEST_FIELDS}
    request["event_time"] = event_time
    event = Event(txn.transaction_id, txn.customer_id, txn.merchant_id, event_time, request)
    return Job(request, event)


def _cache_key(txn: Transaction, job: Job) -> Hashable:
    """The very same transaction (id, entities, fields, time): only a retry hits."""
    fields = tuple(job.request[n] for n in REQUEST_FIELDS)
    return (txn.transaction_id, txn.customer_id, txn.merchant_id, *fields, job.event.event_time)


def _finite_probability(value: Any) -> bool:
    return isinstance(value, float) and math.isfinite(value) and 0.0 <= value <= 1.0


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
            max_queue=config.max_queue,
            retry_after_s=config.retry_after_s,
        )
        # The canary's own worker and breaker: its rows never share a batch (or a breaker)
        # with the champion's. The thread idles while no canary is loaded.
        self.canary_breaker = CircuitBreaker(config.breaker_failures, config.breaker_reset_s)
        self.canary_batcher: MicroBatcher[Job, Scored] = MicroBatcher(
            functools.partial(self._score_batch, canary=True),
            max_size=config.batch_max_size if config.micro_batching else 1,
            max_wait_s=config.batch_max_wait_ms / 1000.0,
            on_batch=metrics.batch_size.observe,
            name="canary-batcher",
            max_queue=config.max_queue,
            retry_after_s=config.retry_after_s,
        )
        # Posted events share the admission bound: at most this many wait for the store.
        self._recording = asyncio.Semaphore(config.max_queue)
        self.shadow = (
            ShadowWorker(source, self.decide, prediction_log.append, metrics,
                         config.shadow_queue_size)
            if config.shadow else None
        )  # fmt: skip

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self.batcher.start()
        self.canary_batcher.start()
        self.prediction_log.start()
        self.review.start()
        if self.shadow:
            self.shadow.start()

    def stop(self) -> None:
        """Stop taking work, finish shadow scoring, then flush the log and the review queue."""
        self.batcher.stop()
        self.canary_batcher.stop()
        if self.shadow:
            self.shadow.close()
        self.prediction_log.close()
        self.review.close()
        self.reader.close()

    def on_model_change(self, role: str, scorer: Scorer | None) -> None:
        """A new champion or canary invalidates cached answers and gets a fresh breaker."""
        if role == CHAMPION:
            self.cache.clear()
            self.breaker.reset()
        elif role == CANARY:
            self.cache.clear()
            self.canary_breaker.reset()
        self.metrics.set_model(role, scorer.name if scorer else None,
                               scorer.version if scorer else None)  # fmt: skip

    # -- decisions -------------------------------------------------------------------------
    def decide(self, score: float) -> str:
        return decide(score, self.config.decisions)

    # -- worker thread ---------------------------------------------------------------------
    def _score_batch(self, jobs: list[Job], canary: bool = False) -> list[Scored]:
        """One worker's batch: the champion's, or (`canary`) the canary's, which falls back
        to the champion when the canary retired while the rows queued."""
        started = time.perf_counter()
        features = self.reader.score_and_record([job.event for job in jobs])
        rows = [{**job.request, **f.values} for job, f in zip(jobs, features, strict=True)]
        champion = self.source.champion  # read once: the whole batch uses one model
        scorer = (self.source.canary or champion) if canary else champion
        if scorer is None:
            return [Scored(f, row, error=NO_MODEL) for f, row in zip(features, rows, strict=True)]
        arm = CHAMPION_ARM if scorer is champion else CANARY_ARM
        scores = self._scores(scorer, rows)
        self.metrics.model_latency.observe(time.perf_counter() - started)
        scored = [
            Scored(f, row, s, scorer, arm=arm)
            if s is not None
            else Scored(f, row, error=MODEL_ERROR, arm=arm)
            for f, row, s in zip(features, rows, scores, strict=True)
        ]
        if arm == CANARY_ARM:
            self._rescore_with_champion(scored, champion)
        return scored

    def _rescore_with_champion(self, scored: list[Scored], champion: Scorer | None) -> None:
        """Rows the canary failed get the champion's score (their features are read already)
        while the champion's breaker is closed; otherwise they stay failed (the rules)."""
        failed = [s for s in scored if s.error is not None]
        if not failed:
            return
        for s in failed:
            s.canary_failed = True
        self.metrics.canary_diverted.labels(reason="error").inc(len(failed))
        if champion is None or self.breaker.state != CLOSED:
            return
        scores = self._scores(champion, [s.row for s in failed])
        for s, score in zip(failed, scores, strict=True):
            s.arm = CHAMPION_ARM
            if score is not None:
                s.score, s.scorer, s.error = score, champion, None

    @staticmethod
    def _scores(scorer: Scorer, rows: list[dict[str, Any]]) -> list[float | None]:
        """A probability per row, or None for a row the model could not score (an error, a
        NaN): one bad row fails alone instead of failing its whole batch."""
        try:
            batch = np.asarray(scorer.predict_proba(rows), dtype=np.float64)
            if batch.shape != (len(rows),):
                raise ValueError(f"model returned {batch.shape} scores for {len(rows)} rows")
            scores = [float(s) for s in batch]
        except Exception as error:
            if len(rows) == 1:
                log.warning("model %s v%s failed: %s", scorer.name, scorer.version, error)
                return [None]
            # Find the rows that fail by scoring each alone.
            return [ScoringService._scores(scorer, [row])[0] for row in rows]
        return [s if _finite_probability(s) else None for s in scores]

    def _record(self, events: list[Event]) -> list[EntityFeatures]:
        return self.reader.score_and_record(events)

    # -- request path ----------------------------------------------------------------------
    async def _fallback(
        self, job: Job, reason: str, features: EntityFeatures | None, arm: str = CHAMPION_ARM
    ) -> Answer:
        """The rules; features are read (and the event recorded) when the worker did not:
        a transaction changes its entities' state whoever answered it."""
        if features is None:
            try:
                features = (await asyncio.to_thread(self._record, [job.event]))[0]
            except Exception as error:
                log.warning("online store read failed: %s", error)
                reason = FEATURES_UNAVAILABLE if reason == MODEL_ERROR else reason
        features = features or EntityFeatures({}, {})
        score = heuristic_score(job.request, features.values)
        return Answer(score, FALLBACK, RULES_NAME, RULES_VERSION, reason, features,
                      status=features.status, arm=arm)  # fmt: skip

    def _from_cache(self, key: Hashable) -> Answer | None:
        hit = self.cache.get(key)
        if hit is None:
            return None
        self.metrics.cache_hits.inc()
        return Answer(hit.score, CACHE, hit.model_name, hit.model_version, status=hit.status,
                      arm=hit.arm)  # fmt: skip

    async def _settle(
        self, job: Job, key: Hashable, future: asyncio.Future | None, arm: str = CHAMPION_ARM
    ) -> Answer:
        """The answer of one admitted job once its future resolved (or the deadline passed);
        `arm` is the worker it was sent to, whose breaker judges a timeout or failed batch."""
        if future is None:
            return await self._fallback(job, BREAKER_OPEN, None)
        sent_to = self.breaker if arm == CHAMPION_ARM else self.canary_breaker
        if not future.done():
            future.cancel()
            sent_to.record_failure()
            if arm == CANARY_ARM:
                self.metrics.canary_diverted.labels(reason=TIMEOUT).inc()
            return await self._fallback(job, TIMEOUT, None, arm)
        error = future.exception()
        if error is not None:  # the feature read failed for the whole batch
            log.warning("scoring batch failed: %s", error)
            sent_to.record_failure()
            if arm == CANARY_ARM:
                self.metrics.canary_diverted.labels(reason="batch_error").inc()
            return await self._fallback(job, MODEL_ERROR, None, arm)
        scored: Scored = future.result()
        if arm == CANARY_ARM:
            self._judge_canary(scored)
            if scored.arm == CANARY_ARM:  # the canary answered or failed: judged above
                return await self._answer(job, key, scored, None)
        return await self._answer(job, key, scored, self.breaker)

    def _judge_canary(self, scored: Scored) -> None:
        """The canary breaker counts the canary's own successes and failures only."""
        if scored.canary_failed:
            self.canary_breaker.record_failure()
        elif scored.arm == CANARY_ARM and scored.error is None:
            self.canary_breaker.record_success()
        else:  # the canary retired before its worker ran: no verdict on it
            self.canary_breaker.release()

    async def _answer(
        self, job: Job, key: Hashable, scored: Scored, breaker: CircuitBreaker | None
    ) -> Answer:
        """A scored job's answer; `breaker` (the champion's, when it scored) learns the
        outcome."""
        if scored.error == NO_MODEL:
            if breaker:
                breaker.release()
            return await self._fallback(job, NO_MODEL, scored.features, scored.arm)
        if scored.error is not None or scored.score is None or scored.scorer is None:
            if breaker:
                breaker.record_failure()
            return await self._fallback(job, scored.error or MODEL_ERROR, scored.features,
                                        scored.arm)  # fmt: skip
        if breaker:
            breaker.record_success()
        status, scorer = scored.features.status, scored.scorer
        # Never cache an answer of a replaced model.
        if scorer is self.source.champion or scorer is self.source.canary:
            self.cache.put(key, Cached(scored.score, scorer.name, scorer.version, status,
                                       scored.arm))  # fmt: skip
        return Answer(scored.score, MODEL, scorer.name, scorer.version, None, scored.features,
                      scored.row, status, scored.arm)  # fmt: skip

    def _route(
        self, txns: Sequence[Transaction], answers: Sequence[Answer | None]
    ) -> tuple[list[int], list[int]]:
        """Which unanswered transactions the champion's worker scores and which the
        canary's: customers `in_canary` while a canary is loaded and its breaker allows.
        The rest of the unanswered (the champion's breaker is open) get no worker."""
        if self.source.canary is None:  # the usual case: the champion's path, nothing more
            return [i for i, a in enumerate(answers) if a is None and self.breaker.allow()], []
        pending = [i for i, a in enumerate(answers) if a is None]
        share = self.source.canary_share
        chosen = [i for i in pending if in_canary(txns[i].customer_id, share)]
        to_canary = [i for i in chosen if self.canary_breaker.allow()]
        if len(to_canary) < len(chosen):
            self.metrics.canary_diverted.labels(reason=BREAKER_OPEN).inc(
                len(chosen) - len(to_canary)
            )
        taken = set(to_canary)
        return [i for i in pending if i not in taken and self.breaker.allow()], to_canary

    def _jobs(self, txns: Sequence[Transaction], received_at: datetime) -> list[Job]:
        """Every transaction's job, its event time checked first: one bad time refuses the
        request before anything is scored or recorded."""
        lag = timedelta(seconds=self.config.max_event_lag_s)
        skew = timedelta(seconds=self.config.max_event_skew_s)
        jobs = []
        for index, txn in enumerate(txns):
            try:
                moment = resolve_event_time(txn.event_time, received_at, lag, skew)
            except EventTimeError as error:
                error.index = index
                raise
            jobs.append(_job(txn, moment))
        return jobs

    async def predict(self, txns: Sequence[Transaction]) -> list[dict[str, Any]]:
        """Answers in request order; never raises for a valid transaction. Raises
        EventTimeError (a 422) for a time outside the allowance, and the batcher's
        Overloaded (a 503) when the queue cannot take the request."""
        started = time.perf_counter()
        received_at = datetime.now(UTC)
        jobs = self._jobs(txns, received_at)
        keys = [_cache_key(txn, job) for txn, job in zip(txns, jobs, strict=True)]
        answers: list[Answer | None] = [self._from_cache(key) for key in keys]
        waiting, to_canary = self._route(txns, answers)
        futures: dict[int, asyncio.Future] = {}
        if waiting or to_canary:
            futures = self._submit(jobs, waiting, to_canary)
        self.metrics.cache_misses.inc(sum(a is None for a in answers))
        if futures:
            await asyncio.wait(futures.values(), timeout=self.config.request_timeout_s)
        canary = frozenset(to_canary) if to_canary else ()
        settled = await asyncio.gather(
            *(
                self._settle(jobs[i], keys[i], futures.get(i),
                             CANARY_ARM if i in canary else CHAMPION_ARM)
                for i, answer in enumerate(answers)
                if answer is None
            )
        )  # fmt: skip
        pending = iter(settled)
        answers = [answer if answer is not None else next(pending) for answer in answers]
        latency_ms = (time.perf_counter() - started) * 1000.0
        return self._finish(txns, jobs, answers, received_at, latency_ms)

    def _submit(
        self, jobs: Sequence[Job], waiting: list[int], to_canary: list[int]
    ) -> dict[int, asyncio.Future]:
        """Queue each arm's jobs with its worker, all or none (Overloaded)."""
        futures: dict[int, asyncio.Future] = {}
        try:
            if to_canary:
                submitted = self.canary_batcher.submit_many([jobs[i] for i in to_canary])
                futures.update(zip(to_canary, submitted, strict=True))
            if waiting:
                submitted = self.batcher.submit_many([jobs[i] for i in waiting])
                futures.update(zip(waiting, submitted, strict=True))
        except Overloaded:
            for future in futures.values():
                future.cancel()  # the worker skips what its caller gave up
            # A half-open trial that never ran is handed back.
            self.breaker.release()
            if to_canary:
                self.canary_breaker.release()
            raise
        return futures

    async def record_events(self, txns: Sequence[Transaction]) -> int:
        """Record transactions that were not scored here (or arrived late) in the online
        store, as scoring would have; returns how many were new."""
        jobs = self._jobs(txns, datetime.now(UTC))
        if self._recording.locked():
            raise Overloaded("too many posted events wait for the store", self.config.retry_after_s)
        async with self._recording:
            return await asyncio.to_thread(self.reader.record, [job.event for job in jobs])

    def _finish(
        self,
        txns: Sequence[Transaction],
        jobs: Sequence[Job],
        answers: Sequence[Answer],
        received_at: datetime,
        latency_ms: float,
    ) -> list[dict[str, Any]]:
        """Responses, plus the off-path work: log records, review rows, shadow rows."""
        responses, shadow_rows, shadow_records, plain_records = [], [], [], []
        for txn, job, answer in zip(txns, jobs, answers, strict=True):
            decision = self.decide(answer.score)
            if answer.path == FALLBACK and decision == APPROVE:
                decision = self.config.unscored_decision  # the model did not give this answer
            path = REVIEW if answer.path == MODEL and decision == "review" else answer.path
            unknown = [e for e, s in answer.status.items() if s == MISSING_ENTITY]
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
                "arm": answer.arm,
                "unknown_entities": unknown,
                "feature_status": answer.status,
                "latency_ms": round(latency_ms, 3),
            }
            responses.append(response)
            self.metrics.predictions.labels(path=path, decision=decision, arm=answer.arm).inc()
            self.metrics.score.labels(path=path).observe(answer.score)
            if answer.reason:
                self.metrics.degraded.labels(reason=answer.reason).inc()
            for entity in unknown:
                self.metrics.unknown_entities.labels(entity=entity).inc()
            if decision == "review" and path in (REVIEW, FALLBACK):
                self._enqueue_review(txn, answer, response, received_at)
            record = {
                "request_id": request_id,
                "received_at": received_at,
                "event_time": job.event.event_time,
                "transaction_id": txn.transaction_id,
                "customer_id": txn.customer_id,
                "merchant_id": txn.merchant_id,
                "amount": txn.amount,
                "score": answer.score,
                "decision": decision,
                "path": path,
                "reason": answer.reason,
                "model_name": answer.model_name,
                "model_version": answer.model_version,
                "arm": answer.arm,
                "latency_ms": latency_ms,
                "shadow_score": None,
                "shadow_version": None,
                "shadow_latency_ms": None,
                # Serialized by the log writer, off the request path.
                "features": answer.features.values if answer.features else None,
                "feature_status": answer.status,
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
