"""One RAG query as the endpoint answers it: embed, semantic cache, search, generate, with
the latency of each stage. Reads the index file the `rag_index` asset wrote and the
parameters `answer_evaluation` chose; reloads both when the file is replaced, and then
empties the cache. No dagster here."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ml_assets.rag.files import ServingParams, index_path
from ml_assets.rag.generation import generator_from_env
from ml_assets.rag.retrieval import RagIndex
from ml_assets.rag.semantic_cache import SemanticCache
from ml_assets.rag.sentences import SentenceBank


class IndexMissing(RuntimeError):
    pass


class RagService:
    def __init__(self, home: Path, embedder, environ: dict | None = None) -> None:
        self.home = Path(home)
        self.embedder = embedder
        self.environ = dict(os.environ if environ is None else environ)
        self.bank = SentenceBank(embedder)
        self.cache = SemanticCache(threshold=ServingParams().cache_threshold)
        self._lock = threading.Lock()
        self._index: RagIndex | None = None
        self._stamp: tuple[int, int] | None = None
        self.params = ServingParams()
        self.generator = None

    def _current(self) -> RagIndex:
        """The index, reopened when the file was replaced (new inode or mtime)."""
        path = index_path(self.home)
        try:
            stat = path.stat()
        except FileNotFoundError as missing:
            raise IndexMissing(f"no RAG index at {path}: materialize rag_index") from missing
        stamp = (stat.st_ino, stat.st_mtime_ns)
        with self._lock:
            if stamp != self._stamp:
                old, self._index = self._index, RagIndex(path)
                self._stamp = stamp
                self.params = ServingParams.read(self.home)
                self.cache.threshold = self.params.cache_threshold
                self.cache.clear_if_version_changed(self._index.version)
                self.generator = generator_from_env(self.environ, self.bank,
                                                    self.params.min_similarity)  # fmt: skip
                if old is not None:
                    old.close()
            return self._index

    def query(self, question: str, k: int | None = None, retriever: str | None = None) -> dict:
        index = self._current()
        k = k or self.params.k
        retriever = retriever or self.params.retriever
        started = time.perf_counter()
        vector = self.embedder.encode([question])[0]
        embedded = time.perf_counter()
        key_ok = k == self.params.k and retriever == self.params.retriever
        cached = self.cache.get(vector) if key_ok else None
        if cached is not None:
            body, similarity = cached
            done = time.perf_counter()
            return {**body, "question": question, "cached": True,
                    "cache_similarity": round(similarity, 4),
                    "latency_ms": _split(started, embedded, embedded, done)}  # fmt: skip
        hits = index.search(question, vector, retriever, k)
        searched = time.perf_counter()
        answer = self.generator.answer(question, vector, hits)
        done = time.perf_counter()
        body: dict[str, Any] = {
            "answer": answer.text,
            "citations": answer.citations,
            "abstained": answer.abstained,
            "chunks": [{**asdict(h), "score": round(h.score, 6)} for h in hits],
            "index_version": index.version,
            "retriever": retriever,
        }
        if key_ok:
            self.cache.put(vector, body)
        return {**body, "question": question, "cached": False, "cache_similarity": None,
                "latency_ms": _split(started, embedded, searched, done)}  # fmt: skip


def _split(started: float, embedded: float, searched: float, done: float) -> dict[str, float]:
    ms = 1000.0
    return {"embed": round((embedded - started) * ms, 3),
            "search": round((searched - embedded) * ms, 3),
            "generate": round((done - searched) * ms, 3),
            "total": round((done - started) * ms, 3)}  # fmt: skip
