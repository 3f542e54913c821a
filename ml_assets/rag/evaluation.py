"""Retrieval evaluation: each retriever's document ranking per question, scored with ranx
(recall@k, MRR, nDCG@10), and the latency of each query (question embedding + search).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ml_assets.rag.embedding import Embedder
from ml_assets.rag.retrieval import RETRIEVERS, RagIndex, distinct_docs

METRICS = ("recall@1", "recall@5", "recall@10", "mrr", "ndcg@10")
CHUNK_DEPTH = 30  # chunks fetched to fill 10 distinct documents


def ranx_scores(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]]) -> dict:
    """METRICS by ranx. A question with no retrieved document scores 0 (ranx needs one)."""
    from ranx import Qrels, Run, evaluate

    filled = {q: run.get(q) or {"__none__": 0.0} for q in qrels}
    scores = evaluate(Qrels(qrels), Run(filled), list(METRICS), make_comparable=True)
    return {m: float(scores[m]) for m in METRICS}


def doc_run(docs: list[str], depth: int = 10) -> dict[str, float]:
    """A ranking as ranx scores: strictly decreasing, so ranx keeps our order."""
    return {d: float(depth - i) for i, d in enumerate(docs[:depth])}


def percentile_ms(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000.0, q)) if values else float("nan")


@dataclass(frozen=True)
class RetrievalResult:
    retriever: str
    metrics: dict[str, float]
    p50_ms: float
    p95_ms: float
    runs: dict[str, list[str]]  # question id -> documents, best first

    def row(self) -> dict[str, float | str]:
        return {"retriever": self.retriever, **{k: round(v, 4) for k, v in self.metrics.items()},
                "p50_ms": round(self.p50_ms, 2), "p95_ms": round(self.p95_ms, 2)}  # fmt: skip


def evaluate_retrievers(
    index: RagIndex,
    embedder: Embedder,
    questions: dict[str, str],
    qrels: dict[str, dict[str, int]],
    retrievers: tuple[str, ...] = RETRIEVERS,
) -> list[RetrievalResult]:
    """Each retriever on every question of `qrels`. Each question is embedded once, alone,
    as the endpoint does; its embedding time is added to dense and hybrid latencies."""
    ids = [q for q in questions if q in qrels]
    vectors, embed_s = {}, {}
    for qid in ids:
        started = time.perf_counter()
        vectors[qid] = embedder.encode([questions[qid]])[0]
        embed_s[qid] = time.perf_counter() - started
    results = []
    for retriever in retrievers:
        runs, latencies = {}, []
        for qid in ids:
            started = time.perf_counter()
            hits = index.search(questions[qid], vectors[qid], retriever, CHUNK_DEPTH)
            elapsed = time.perf_counter() - started
            latencies.append(elapsed + (embed_s[qid] if retriever != "bm25" else 0.0))
            runs[qid] = distinct_docs(hits)
        metrics = ranx_scores(qrels, {q: doc_run(d) for q, d in runs.items()})
        results.append(RetrievalResult(retriever, metrics, percentile_ms(latencies, 50),
                                       percentile_ms(latencies, 95), runs))  # fmt: skip
    return results


def best(results: list[RetrievalResult], metric: str = "recall@5") -> RetrievalResult:
    """The winner on `metric`, ties to the simpler retriever (dense, then BM25, then hybrid)."""
    return max(results, key=lambda r: (r.metrics[metric], -RETRIEVERS.index(r.retriever)))
