"""Search over the index file the `rag_index` asset wrote: dense (exact cosine), BM25 (bm25s,
built in memory from the same chunks at load) and hybrid (reciprocal rank fusion of the
two). The endpoint and the evaluation assets both search through this one class, so what is
evaluated is what is served. No dagster here.

The DuckDB file (`FLOAT[384]`) stays the store of record; queries are served from its
embedding matrix, read into NumPy once per index version: one matrix-vector product and a
partial sort. Measured by bench/rag.py on the shared 2-core machine (load about 6), dense
search p50 at 203 chunks: 0.1 ms here vs 1.2 ms for DuckDB's `array_cosine_similarity`
query; at ~10k chunks: 6.6 ms vs 34 ms. `index_store.sql_dense` keeps the SQL search, and a
test holds the two to the same ids.

With DuckDB's `vss` extension (not fetchable on this machine) the dense query could use an
HNSW index (`CREATE INDEX ... USING HNSW (embedding) WITH (metric = 'cosine')`) and become
approximate: recall would then be measured against this exact search. With `fts`, BM25
could live in the same file (`PRAGMA create_fts_index`) instead of in memory.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
from threadpoolctl import ThreadpoolController

from ml_assets.rag.embedding import DIMENSIONS, Embedder

RETRIEVERS = ("dense", "bm25", "hybrid")
RRF_K = 60  # the constant of Cormack et al. (2009), ranx's default too
FUSION_DEPTH = 50  # candidates taken from each retriever before fusion


@dataclass(frozen=True)
class Hit:
    chunk_id: str
    doc_id: str
    heading: str
    text: str
    score: float


def rrf(rankings: Sequence[Sequence[str]], k: int = RRF_K) -> list[tuple[str, float]]:
    """Reciprocal rank fusion: sum of 1/(k + rank) over the rankings, best first (ties by
    id). The same formula as `ranx.fuse(method="rrf")`, held equal by a test; written out
    because ranx's run objects cost milliseconds per query on the request path."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def distinct_docs(hits: Sequence[Hit]) -> list[str]:
    """Document ids in first-hit order: qrels are per document, so they survive re-chunking."""
    return list(dict.fromkeys(h.doc_id for h in hits))


class RagIndex:
    """A read-only, in-memory view of one index file. Thread-safe: searches only read the
    matrix, and BM25 retrieval is serialized by a lock."""

    def __init__(self, path: Path) -> None:
        import bm25s

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(
                f"no RAG index at {self.path}: materialize the rag_index asset first"
            )
        frame, self.meta = read_index(self.path)
        rows = frame.select("chunk_id", "doc_id", "heading", "text").rows()
        self.chunks = {r[0]: Hit(r[0], r[1], r[2], r[3], 0.0) for r in rows}
        self._ids = [r[0] for r in rows]
        self._matrix = unit_rows(frame["embedding"].to_numpy().reshape(-1, DIMENSIONS))
        self._blas = ThreadpoolController()
        self._bm25 = bm25s.BM25()
        self._bm25.index(bm25s.tokenize([r[3] for r in rows], show_progress=False),
                         show_progress=False)  # fmt: skip
        self._bm25_lock = threading.Lock()

    @property
    def version(self) -> str:
        return self.meta["index_version"]

    def __len__(self) -> int:
        return len(self._ids)

    def close(self) -> None:
        """Nothing to release (the file was closed at load); kept for callers' symmetry."""

    def _hit(self, chunk_id: str, score: float) -> Hit:
        c = self.chunks[chunk_id]
        return Hit(c.chunk_id, c.doc_id, c.heading, c.text, float(score))

    def dense(self, vector: np.ndarray, k: int) -> list[Hit]:
        """Exact cosine top `k`, ties by chunk id: the order of `index_store.sql_dense`."""
        query = unit_rows(np.asarray(vector, dtype=np.float32)[None, :])[0]
        # One BLAS thread: OpenBLAS splits a 10k-row product over both cores, and on shared
        # cores its threads wait on each other (measured p50 13 ms on two threads, 2 ms on one).
        with self._blas.limit(limits=1, user_api="blas"):
            scores = self._matrix @ query
        return [self._hit(self._ids[i], scores[i]) for i in top_k(scores, k)]

    def bm25(self, question: str, k: int) -> list[Hit]:
        import bm25s

        tokens = bm25s.tokenize([question], show_progress=False)
        if not tokens.vocab:
            return []
        k = min(k, len(self._ids))
        with self._bm25_lock:  # bm25s keeps per-call state on the retriever
            found, scores = self._bm25.retrieve(tokens, k=k, show_progress=False, n_threads=1)
        return [self._hit(self._ids[i], s) for i, s in zip(found[0], scores[0], strict=True)
                if s > 0]  # fmt: skip

    def search(self, question: str, vector: np.ndarray | None, retriever: str, k: int) -> list[Hit]:
        """Top `k` chunks for one question; `vector` is its embedding (dense and hybrid)."""
        if retriever == "dense":
            return self.dense(vector, k)
        if retriever == "bm25":
            return self.bm25(question, k)
        if retriever != "hybrid":
            raise ValueError(f"retriever {retriever!r} is not one of {RETRIEVERS}")
        dense = self.dense(vector, FUSION_DEPTH)
        fused = rrf(
            [[h.chunk_id for h in dense], [h.chunk_id for h in self.bm25(question, FUSION_DEPTH)]]
        )
        return [self._hit(cid, s) for cid, s in fused[:k]]


def read_index(path: Path) -> tuple[pl.DataFrame, dict[str, str]]:
    """Chunks (sorted by id, with embeddings) and meta of the index file at `path`.

    Read through an in-memory database that attaches the file and is closed at once: DuckDB
    hands a process the instance it already has open for a path, so a replica holding the
    file open would read its old content after the asset replaced it."""
    con = duckdb.connect(":memory:")
    try:
        source = str(path).replace("'", "''")
        con.execute(f"ATTACH '{source}' AS source (READ_ONLY)")
        frame = con.sql(
            "SELECT chunk_id, doc_id, heading, text, embedding FROM source.chunks ORDER BY chunk_id"
        ).pl()
        meta = dict(con.execute("SELECT key, value FROM source.meta").fetchall())
    finally:
        con.close()
    return frame, meta


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), so a dot product is the cosine."""
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)


def top_k(scores: np.ndarray, k: int) -> list[int]:
    """Positions of the `k` highest scores, best first, ties to the lower position. A partial
    sort: O(n) to find the k-th score, then only the candidates at or above it are sorted."""
    n = scores.shape[0]
    k = min(k, n)
    if k <= 0:
        return []
    kth = np.partition(scores, n - k)[n - k]
    candidates = np.flatnonzero(scores >= kth)
    order = np.lexsort((candidates, -scores[candidates]))
    return candidates[order[:k]].tolist()


def embed_question(embedder: Embedder, question: str) -> np.ndarray:
    return embedder.encode([question])[0]
