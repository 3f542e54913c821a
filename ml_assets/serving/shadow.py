"""Shadow mode: the challenger scores the same requests off the response path.

The request has already been answered when its rows reach this worker, so the challenger can
never change an answer or its latency; a full queue drops shadow work rather than block.
Agreement (same decision) and the score difference go to metrics and to the prediction log
(`shadow_score`, `shadow_version`), which is where promotion decisions can read them.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ml_assets.serving.metrics import ServingMetrics
from ml_assets.serving.model_source import ModelSource

log = logging.getLogger(__name__)


@dataclass
class ShadowJob:
    rows: list[Mapping[str, Any]]  # model rows, only for answers the champion scored
    records: list[dict[str, Any]]  # prediction-log records of the same answers


class ShadowWorker:
    """Scores jobs with the challenger, then hands every record to `sink` (the log)."""

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

    def start(self) -> None:
        self._thread.start()

    def submit(self, job: ShadowJob) -> None:
        """Never blocks: without a challenger, or with a full queue, log unshadowed."""
        challenger = self.source.challenger
        if challenger is None or not job.rows:
            self.sink(job.records)
            return
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            self.metrics.shadow.labels(outcome="dropped").inc(len(job.rows))
            self.sink(job.records)

    def _score(self, job: ShadowJob) -> None:
        challenger = self.source.challenger
        if challenger is None:
            return
        try:
            scores = np.asarray(challenger.predict_proba(job.rows), dtype=np.float64)
        except Exception as error:
            log.warning("challenger %s failed: %s", challenger.version, error)
            self.metrics.shadow.labels(outcome="error").inc(len(job.rows))
            return
        for record, shadow_score in zip(job.records, scores, strict=True):
            record["shadow_score"] = float(shadow_score)
            record["shadow_version"] = challenger.version
            agree = self.decide(float(shadow_score)) == record["decision"]
            self.metrics.shadow.labels(outcome="agree" if agree else "disagree").inc()
            self.metrics.shadow_diff.observe(abs(float(shadow_score) - record["score"]))

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
