"""RAG figures: embeddings per second, query latency (question embedding + search, no
generation) at the shipped corpus size and at 100x with synthetic chunks, dense vs BM25 vs
hybrid recall@10 on the eval set, and the semantic cache's hit and false-hit rates. The
peer for search is a NumPy brute-force cosine over the same matrix (ratio DuckDB / NumPy).

Synthetic chunks are shuffled words of real chunks with random unit embeddings: the cost
of exact search does not depend on the values, and embedding 17k chunks here would take
longer than the rest of the bench.

    python bench/rag.py            # 100x synthetic, 200 queries
    python bench/rag.py --quick    # 10x synthetic, 40 queries
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ml_assets.rag.chunking import ChunkingConfig, chunk_documents  # noqa: E402
from ml_assets.rag.documents import PROJECT_DOCS, SHIPPED_CORPUS, read_documents  # noqa: E402
from ml_assets.rag.embedding import DIMENSIONS, MODEL_ID  # noqa: E402
from ml_assets.rag.eval_set import load_eval_set  # noqa: E402
from ml_assets.rag.evaluation import evaluate_retrievers, percentile_ms  # noqa: E402
from ml_assets.rag.index_store import write_index  # noqa: E402
from ml_assets.rag.retrieval import RagIndex  # noqa: E402
from ml_assets.rag.semantic_cache import choose_threshold, pair_similarities  # noqa: E402
from ml_assets_tests.support.rag import offline_embedder  # noqa: E402


class SyntheticEmbedder:
    """Random unit vectors for synthetic chunks (real ones are reused from the index)."""

    model_id = MODEL_ID

    def __init__(self, seed: int = 7) -> None:
        self.rng = np.random.default_rng(seed)

    def encode(self, texts: list[str]) -> np.ndarray:
        vectors = self.rng.standard_normal((len(texts), DIMENSIONS)).astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def synthetic(chunks: pl.DataFrame, times: int, seed: int = 7) -> pl.DataFrame:
    rng = random.Random(seed)
    rows = []
    for copy in range(1, times):
        for cid, doc, heading, text, _ in chunks.rows():
            words = text.split()
            rng.shuffle(words)
            body = " ".join(words)
            rows.append((f"{cid}~{copy}", f"{doc}~{copy}", heading, body, f"syn{copy}:{cid}"))
    return pl.concat([chunks, pl.DataFrame(rows, schema=chunks.schema, orient="row")])


def query_latency(index: RagIndex, embedder, questions: list[str], retriever: str) -> list[float]:
    out = []
    for question in questions:
        started = time.perf_counter()
        vector = embedder.encode([question])[0] if retriever != "bm25" else None
        index.search(question, vector, retriever, 5)
        out.append(time.perf_counter() - started)
    return out


def numpy_peer(index: RagIndex, vectors: np.ndarray, queries: np.ndarray) -> list[float]:
    out = []
    for q in queries:
        started = time.perf_counter()
        np.argsort(-(vectors @ q))[:5]
        out.append(time.perf_counter() - started)
    return out


def dense_only(index: RagIndex, queries: np.ndarray) -> list[float]:
    out = []
    for q in queries:
        started = time.perf_counter()
        index.dense(q, 5)
        out.append(time.perf_counter() - started)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    times, n_queries = (10, 40) if args.quick else (100, 200)
    print(f"load average at start: {os.getloadavg()} (2 shared cores: figures move with load)")
    embedder = offline_embedder()
    embedder.encode(["warm up"])
    config = ChunkingConfig()
    chunks = chunk_documents(read_documents(SHIPPED_CORPUS, PROJECT_DOCS), config)
    eval_set = load_eval_set()
    questions = [q.question for q in eval_set.questions]
    questions = (questions * (n_queries // len(questions) + 1))[:n_queries]
    folder = Path(tempfile.mkdtemp(prefix="bench-rag-"))
    try:
        started = time.perf_counter()
        build = write_index(folder / "index.duckdb", chunks, embedder, config.version)
        rate = build.embedded / (time.perf_counter() - started)
        print(f"embeddings: {build.embedded} chunks at {rate:.0f} chunks/s (target >= 200: "
              f"{'MET' if rate >= 200 else 'MISSED'})")  # fmt: skip
        index = RagIndex(build.path)
        asked = {q.id: q.question for q in eval_set.answerable}
        results = evaluate_retrievers(index, embedder, asked, eval_set.qrels())
        for r in results:
            print(f"  {r.retriever:7s} recall@5 {r.metrics['recall@5']:.4f} recall@10 "
                  f"{r.metrics['recall@10']:.4f} mrr {r.metrics['mrr']:.4f}")  # fmt: skip
        big_path = folder / "big.duckdb"
        shutil.copy(build.path, big_path)
        big = write_index(big_path, synthetic(chunks, times), SyntheticEmbedder(), config.version)
        for label, path in ((f"shipped ({build.chunks} chunks)", build.path),
                            (f"{times}x ({big.chunks} chunks)", big.path)):  # fmt: skip
            idx = RagIndex(path)
            for retriever in ("dense", "bm25", "hybrid"):
                lat = query_latency(idx, embedder, questions, retriever)
                p95 = percentile_ms(lat, 95)
                print(f"query {label} {retriever:7s} p50 {percentile_ms(lat, 50):7.2f} ms  "
                      f"p95 {p95:7.2f} ms  p99 {percentile_ms(lat, 99):7.2f} ms")  # fmt: skip
            vectors = np.asarray(idx._con.execute("SELECT embedding FROM chunks").fetchnumpy()
                                 ["embedding"].tolist(), dtype=np.float32)  # fmt: skip
            queries = embedder.encode(questions[:40])
            ours, peer = dense_only(idx, queries), numpy_peer(idx, vectors, queries)
            ratio = np.median(ours) / np.median(peer)
            print(f"  dense search alone: DuckDB p50 {percentile_ms(ours, 50):.2f} ms vs NumPy "
                  f"{percentile_ms(peer, 50):.2f} ms (ratio {ratio:.1f}x)")  # fmt: skip
            idx.close()
        paraphrase = pair_similarities(embedder, eval_set.paraphrase_pairs())
        others = pair_similarities(embedder, eval_set.non_paraphrase_pairs())
        cache = choose_threshold(paraphrase, others, 0.01)
        print(f"semantic cache: threshold {cache.threshold:.3f}, hit rate {cache.hit_rate:.1%} on "
              f"{cache.pairs} paraphrase pairs, false hits {cache.false_hit_rate:.2%} on "
              f"{cache.non_pairs} other pairs (targets >= 30% / <= 1%)")  # fmt: skip
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
