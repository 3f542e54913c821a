"""Search over the index file the `rag_index` asset wrote: dense (exact cosine in DuckDB),
BM25 (bm25s, built in memory from the same chunks at load) and hybrid (reciprocal rank
fusion of the two). The endpoint and the evaluation assets both search through this one
class, so what is evaluated is what is served. No dagster here.

With DuckDB's `vss` extension (not fetchable on this machine) the dense query would use an
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
    """A read-only view of one index file. Thread-safe: each search uses its own cursor."""

    def __init__(self, path: Path) -> None:
        import bm25s

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(
                f"no RAG index at {self.path}: materialize the rag_index asset first"
            )
        # Copied into an in-memory database, the file closed at once: DuckDB hands a process
        # the instance it already has open for a path, so a replica holding the file open
        # would read its old content after the asset replaced it.
        self._con = duckdb.connect(":memory:")
        source = str(self.path).replace("'", "''")
        self._con.execute(f"ATTACH '{source}' AS source (READ_ONLY)")
        self._con.execute("CREATE TABLE chunks AS SELECT * FROM source.chunks")
        self._con.execute("CREATE TABLE meta AS SELECT * FROM source.meta")
        self._con.execute("DETACH source")
        self.meta = dict(self._con.execute("SELECT key, value FROM meta").fetchall())
        rows = self._con.execute(
            "SELECT chunk_id, doc_id, heading, text FROM chunks ORDER BY chunk_id"
        ).fetchall()
        self.chunks = {r[0]: Hit(r[0], r[1], r[2], r[3], 0.0) for r in rows}
        self._ids = [r[0] for r in rows]
        self._bm25 = bm25s.BM25()
        self._bm25.index(bm25s.tokenize([r[3] for r in rows], show_progress=False),
                         show_progress=False)  # fmt: skip
        self._bm25_lock = threading.Lock()

    @property
    def version(self) -> str:
        return self.meta["index_version"]

    def close(self) -> None:
        self._con.close()

    def _hit(self, chunk_id: str, score: float) -> Hit:
        c = self.chunks[chunk_id]
        return Hit(c.chunk_id, c.doc_id, c.heading, c.text, float(score))

    def dense(self, vector: np.ndarray, k: int) -> list[Hit]:
        rows = (
            self._con.cursor()
            .execute(
                f"SELECT chunk_id, array_cosine_similarity(embedding, ?::FLOAT[{DIMENSIONS}]) AS s "
                "FROM chunks ORDER BY s DESC, chunk_id LIMIT ?",
                [vector.astype(np.float32).tolist(), k],
            )
            .fetchall()
        )
        return [self._hit(cid, s) for cid, s in rows]

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


def embed_question(embedder: Embedder, question: str) -> np.ndarray:
    return embedder.encode([question])[0]
