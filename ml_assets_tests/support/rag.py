"""RAG harnesses shared by tests and bench/rag.py: the shipped model offline, an embedder
that counts what it computes, and a small corpus folder cut from the shipped one."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from ml_assets.rag.documents import SHIPPED_CORPUS

SMALL_CORPUS = (
    "policy-card-testing",
    "mcc-fuel",
    "chargeback-time-limits",
    "runbook-card-present-burst",
    "policy-velocity-limits",
    "mcc-restaurants",
)


def offline_embedder():
    """The process's shared all-MiniLM-L6-v2, with the hub forced offline first."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    from ml_assets.rag.embedding import shared_embedder

    return shared_embedder()


class CountingEmbedder:
    """The real embedder, counting the texts it is asked to embed."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.texts = 0

    def encode(self, texts: list[str]) -> np.ndarray:
        self.texts += len(texts)
        return self.inner.encode(texts)


def small_corpus(folder: Path, names: tuple[str, ...] = SMALL_CORPUS) -> Path:
    """A copy of a few shipped documents, for a user's own corpus folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(SHIPPED_CORPUS / f"{name}.md", folder / f"{name}.md")
    return folder


def build_index(home: Path, corpus: Path) -> str:
    """The index `rag_index` would build from `corpus`, with serving parameters, under
    `home` (what /rag/query reads); returns its version."""
    from ml_assets.rag.chunking import ChunkingConfig, chunk_documents
    from ml_assets.rag.documents import read_documents
    from ml_assets.rag.files import ServingParams, index_path
    from ml_assets.rag.index_store import write_index

    config = ChunkingConfig()
    chunks = chunk_documents(read_documents(corpus), config)
    build = write_index(index_path(home), chunks, offline_embedder(), config.version)
    ServingParams(build.index_version, "hybrid", 4, 0.3, 0.9).write(home)
    return build.index_version
