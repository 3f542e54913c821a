"""Shadow mode: the version at the `shadow` alias scores the same requests off the response
path, before it answers anyone.

The request has already been answered when its rows reach this worker, so the shadow model
can never change an answer or its latency; a full queue drops shadow work rather than block.
Agreement (same decision) and the score difference go to metrics, and each record gets
`shadow_score`, `shadow_version` and `shadow_latency_ms` (the shadow model's call for the
request's rows) in the prediction log, which is where `shadow_comparison` reads them.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ml_assets.serving.metrics import ServingMetrics
from ml_assets.serving.model_source import ModelSource

log = logging.getLogger(__name__)


@dataclass
class ShadowJob:
    rows: list[Mapping[str, Any]]  # model rows, only for answers a model scored
    records: list[dict[str, Any]]  # prediction-log records of the same answers


class ShadowWorker:
    """Scores jobs with the shadow model, then hands every record to `sink` (the log)."""

    def __init__(
        self,
        source: ModelSource,
        decide: Callable[[float], str],
        sink: Callable[[Sequence[dict[str, Any]]], None],
        metrics: ServingMetrics,
        max_queue: int = 1_000,
    ) -> None:
        self.source = source
        self.decide = decide
        self.sink = sink
        self.metrics = metrics
        self._queue: queue.Queue[ShadowJob | None] = queue.Queue(maxsize=max_queue)
        self._thread = threading.Thread(target=self._run, name="shadow", daemon=True)
        self._agreement: tuple[str | None, int, int] = (None, 0, 0)  # version, agreed, scored

    def start(self) -> None:
        self._thread.start()

    def submit(self, job: ShadowJob) -> None:
        """Never blocks: without a shadow model, or with a full queue, log unshadowed."""
        if self.source.shadow is None or not job.rows:
            self.sink(job.records)
            return
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            self.metrics.shadow.labels(outcome="dropped").inc(len(job.rows))
            self.sink(job.records)

    def _score(self, job: ShadowJob) -> None:
        shadow = self.source.shadow
        if shadow is None:
            return
        started = time.perf_counter()
        try:
            scores = np.asarray(shadow.predict_proba(job.rows), dtype=np.float64)
            if scores.shape != (len(job.rows),):
                raise ValueError(f"returned {scores.shape} scores for {len(job.rows)} rows")
        except Exception as error:
            log.warning("shadow %s failed: %s", shadow.version, error)
            self.metrics.shadow.labels(outcome="error").inc(len(job.rows))
            return
        elapsed = time.perf_counter() - started
        self.metrics.shadow_latency.observe(elapsed)
        agreed = 0
        for record, shadow_score in zip(job.records, scores, strict=True):
            record["shadow_score"] = float(shadow_score)
            record["shadow_version"] = shadow.version
            record["shadow_latency_ms"] = elapsed * 1000.0
            agree = self.decide(float(shadow_score)) == record["decision"]
            agreed += agree
            self.metrics.shadow.labels(outcome="agree" if agree else "disagree").inc()
            self.metrics.shadow_diff.observe(abs(float(shadow_score) - record["score"]))
        self._count_agreement(shadow.version, agreed, len(job.records))

    def _count_agreement(self, version: str, agreed: int, scored: int) -> None:
        """The agreement gauge covers the current shadow version only (reset on a new one)."""
        current, total_agreed, total = self._agreement
        if current != version:
            total_agreed, total = 0, 0
        total_agreed, total = total_agreed + agreed, total + scored
        self._agreement = (version, total_agreed, total)
        self.metrics.shadow_agreement.set(total_agreed / total)

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            try:
                self._score(job)
            finally:
                self.sink(job.records)
                self._queue.task_done()

    def close(self) -> None:
        """Finish queued shadow work (so its log rows are kept), then stop."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(10)
