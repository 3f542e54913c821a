"""A semantic cache for RAG answers: a question whose embedding is within a cosine
threshold of a cached question's gets that answer. The threshold is chosen by measurement
on the eval set's paraphrase pairs (should hit) and non-paraphrase pairs (must not), and the
cache is emptied when the index version changes."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class CacheCalibration:
    threshold: float
    hit_rate: float  # on paraphrase pairs
    false_hit_rate: float  # on non-paraphrase pairs
    pairs: int
    non_pairs: int


def pair_similarities(embedder, pairs: list[tuple[str, str]]) -> np.ndarray:
    """Cosine similarity of each pair; each distinct text is embedded once."""
    if not pairs:
        return np.zeros(0)
    texts = list(dict.fromkeys(t for pair in pairs for t in pair))
    vectors = dict(zip(texts, embedder.encode(texts), strict=True))
    return np.array([float(vectors[a] @ vectors[b]) for a, b in pairs])


def choose_threshold(
    paraphrase: np.ndarray, others: np.ndarray, max_false_hits: float
) -> CacheCalibration:
    """The lowest threshold whose false-hit rate on `others` is at most `max_false_hits`:
    the most hits the false-hit budget allows."""
    candidates = sorted(set(np.round(np.concatenate([paraphrase, others, [1.0]]), 4)))
    for t in candidates:
        false = float((others >= t).mean()) if others.size else 0.0
        if false <= max_false_hits:
            hits = float((paraphrase >= t).mean()) if paraphrase.size else 0.0
            return CacheCalibration(float(t), hits, false, paraphrase.size, others.size)
    return CacheCalibration(1.0, 0.0, 0.0, paraphrase.size, others.size)


class SemanticCache:
    """Bounded LRU of (unit question embedding, answer); lookup is one matrix product."""

    def __init__(self, threshold: float, max_items: int = 1024) -> None:
        self.threshold = threshold
        self.max_items = max_items
        self.version = ""
        self._items: OrderedDict[int, tuple[np.ndarray, Any]] = OrderedDict()
        self._next = 0
        self._lock = threading.Lock()

    def clear_if_version_changed(self, version: str) -> bool:
        with self._lock:
            if version == self.version:
                return False
            self._items.clear()
            self.version = version
            return True

    def get(self, vector: np.ndarray) -> tuple[Any, float] | None:
        with self._lock:
            if not self._items:
                return None
            keys = list(self._items)
            similarity = np.stack([self._items[k][0] for k in keys]) @ vector
            best = int(np.argmax(similarity))
            if similarity[best] < self.threshold:
                return None
            self._items.move_to_end(keys[best])
            return self._items[keys[best]][1], float(similarity[best])

    def put(self, vector: np.ndarray, value: Any) -> None:
        with self._lock:
            self._items[self._next] = (vector, value)
            self._next += 1
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)
