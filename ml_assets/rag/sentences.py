"""Sentences of the retrieved context and their embeddings, cached by content hash: the
extractive generator and the faithfulness proxy both compare sentences, and a chunk's
sentences are embedded once per process however often it is retrieved."""

from __future__ import annotations

import re
import threading

import numpy as np

from ml_assets.rag.documents import content_hash
from ml_assets.rag.embedding import DIMENSIONS, Embedder

SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9`*\"'(-])|\n+")
CITATION = re.compile(r"\s*\[[^\]]+\]")
LIST_MARKER = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
MIN_WORDS = 3


def split_sentences(text: str) -> list[str]:
    """Sentences of a passage or an answer (citations removed), list markers stripped,
    fragments under MIN_WORDS words dropped."""
    out = []
    for piece in SENTENCE_END.split(CITATION.sub("", text)):
        piece = LIST_MARKER.sub("", piece.strip()).strip()
        if len(piece.split()) >= MIN_WORDS:
            out.append(piece)
    return out


def chunk_body(text: str, heading: str) -> str:
    """The chunk's text without the heading line the index prepends for embedding."""
    return text[len(heading) + 1 :] if heading and text.startswith(heading + "\n") else text


class SentenceBank:
    """Embeddings of sentences, computed on first sight and kept (bounded)."""

    def __init__(self, embedder: Embedder, max_items: int = 100_000) -> None:
        self.embedder = embedder
        self.max_items = max_items
        self._vectors: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def embed(self, sentences: list[str]) -> np.ndarray:
        if not sentences:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        keys = [content_hash(s) for s in sentences]
        with self._lock:
            known = {k: self._vectors[k] for k in keys if k in self._vectors}
        missing = {k: s for k, s in zip(keys, sentences, strict=True) if k not in known}
        if missing:
            fresh = dict(zip(missing, self.embedder.encode(list(missing.values())), strict=True))
            known.update(fresh)
            with self._lock:
                if len(self._vectors) + len(fresh) > self.max_items:
                    self._vectors.clear()
                self._vectors.update(fresh)
        return np.stack([known[k] for k in keys])
