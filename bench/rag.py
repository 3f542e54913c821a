"""RAG figures against issue 12's targets, in one run: embeddings per second, query latency
(question embedding + search, no generation) at the shipped corpus size, at ~10k chunks
and (full run) at 100x, dense vs BM25 vs hybrid recall on the eval set, and the semantic
cache's hit and false-hit rates. Each figure is printed with its target and the ratio
figure / target (for a ceiling such as p95 <= 50 ms, a ratio <= 1 meets it; for a floor
such as >= 200 chunks/s, a ratio >= 1 does).

The peer for dense search is the DuckDB query the index file supports itself (exact
`array_cosine_similarity` on `FLOAT[384]`, the table loaded in memory), against the served
in-memory NumPy search over the same matrix.

Synthetic chunks are shuffled words of real chunks with random unit embeddings: the cost
of exact search and of BM25 does not depend on the values, and embedding 10k chunks here
would take longer than the rest of the bench. Questions are the eval set's, embedded by
the shipped model. A query's latency is its embedding time plus its search time.

    python bench/rag.py            # shipped, ~10k and 100x; 200 queries; all chunks embedded
    python bench/rag.py --quick    # shipped and ~10k; 60 queries; 100 chunks embedded
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

import duckdb
import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ml_assets.rag.chunking import ChunkingConfig, chunk_documents  # noqa: E402
from ml_assets.rag.documents import PROJECT_DOCS, SHIPPED_CORPUS, read_documents  # noqa: E402
from ml_assets.rag.embedding import DIMENSIONS, MODEL_ID  # noqa: E402
from ml_assets.rag.eval_set import load_eval_set  # noqa: E402
from ml_assets.rag.evaluation import evaluate_retrievers, percentile_ms  # noqa: E402
from ml_assets.rag.files import ServingParams  # noqa: E402
from ml_assets.rag.index_store import write_index  # noqa: E402
from ml_assets.rag.retrieval import RETRIEVERS, RagIndex  # noqa: E402
from ml_assets.rag.semantic_cache import choose_threshold, pair_similarities  # noqa: E402
from ml_assets_tests.support.rag import offline_embedder  # noqa: E402

P95_TARGET_MS = 50.0
EMBED_TARGET = 200.0  # chunks/s
RECALL5_TARGET = 0.9
CACHE_HIT_TARGET, FALSE_HIT_TARGET = 0.30, 0.01
TARGET_CHUNKS = 10_000


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


def ceiling(value: float, target: float, unit: str = "") -> str:
    verdict = "met" if value <= target else "MISSED"
    return f"(target <= {target:g}{unit}: ratio {value / target:.2f}, {verdict})"


def floor(value: float, target: float, unit: str = "") -> str:
    verdict = "met" if value >= target else "MISSED"
    return f"(target >= {target:g}{unit}: ratio {value / target:.2f}, {verdict})"


def embedding_rate(embedder, texts: list[str]) -> None:
    """Chunks/s and word pieces/s of the warm model, batch 32, on one thread (the default)
    and on every core."""
    model = embedder._load()
    pieces = [min(len(model.tokenizer(t)["input_ids"]), model.max_seq_length) for t in texts]
    long = sum(len(model.tokenizer(t)["input_ids"]) > model.max_seq_length for t in texts)
    print(f"embeddings: {len(texts)} chunks, mean {np.mean(pieces):.0f} word pieces "
          f"(max_seq_length {model.max_seq_length}; {long} chunks truncated)")  # fmt: skip
    best = 0.0
    for threads in sorted({1, os.cpu_count() or 1}):
        saved = embedder.batch_threads
        embedder.batch_threads = threads
        embedder.encode(texts[:8])  # warm at this thread count
        started = time.perf_counter()
        embedder.encode(texts)
        elapsed = time.perf_counter() - started
        embedder.batch_threads = saved
        rate = len(texts) / elapsed
        best = max(best, sum(pieces) / elapsed)
        print(f"  batch 32, {threads} torch thread(s): {rate:6.1f} chunks/s "
              f"{floor(rate, EMBED_TARGET, ' chunks/s')}, {sum(pieces) / elapsed:6.0f} "
              "word pieces/s")  # fmt: skip
    needed = EMBED_TARGET * np.mean(pieces)
    print(f"  the target at these chunks' length needs {needed:.0f} word pieces/s: "
          f"{needed / best:.1f}x the best measured")  # fmt: skip


class Timed:
    """Wall and CPU seconds of each call. With one torch and one BLAS thread the work runs
    on the calling thread, so its CPU time approximates the wall time on a free core (from
    above: sharing a core's caches slows the work itself too)."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def __enter__(self) -> Timed:
        self._wall, self._cpu = time.perf_counter(), time.thread_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall.append(time.perf_counter() - self._wall)
        self.cpu.append(time.thread_time() - self._cpu)


def embed_questions(embedder, questions: list[str]) -> tuple[np.ndarray, Timed]:
    """Each question alone, as the endpoint embeds it."""
    vectors, timed = [], Timed()
    for question in questions:
        with timed:
            vectors.append(embedder.encode([question])[0])
    return np.stack(vectors), timed


def search_times(index: RagIndex, questions, vectors, retriever: str) -> Timed:
    timed = Timed()
    for question, vector in zip(questions, vectors, strict=True):
        with timed:
            index.search(question, vector, retriever, 5)
    return timed


def duckdb_peer(path: Path, vectors: np.ndarray) -> list[float]:
    """The pre-change dense path: the table copied into an in-memory DuckDB, one SQL each."""
    con = duckdb.connect(":memory:")
    con.execute(f"ATTACH '{path}' AS source (READ_ONLY)")
    con.execute("CREATE TABLE chunks AS SELECT * FROM source.chunks")
    out = []
    for vector in vectors:
        started = time.perf_counter()
        con.execute(
            f"SELECT chunk_id, array_cosine_similarity(embedding, ?::FLOAT[{DIMENSIONS}]) AS s "
            "FROM chunks ORDER BY s DESC, chunk_id LIMIT 5",
            [vector.tolist()],
        ).fetchall()
        out.append(time.perf_counter() - started)
    con.close()
    return out


def latency_at(label, path, questions, vectors, embed: Timed, served: str) -> None:
    started = time.perf_counter()
    index = RagIndex(path)
    print(f"query latency, {label}: {len(index)} chunks (index loaded in "
          f"{time.perf_counter() - started:.1f} s), {len(questions)} questions")  # fmt: skip
    for retriever in RETRIEVERS:
        search = search_times(index, questions, vectors, retriever)
        with_embed = retriever != "bm25"
        total = [s + e * with_embed for s, e in zip(search.wall, embed.wall, strict=True)]
        cpu = [s + e * with_embed for s, e in zip(search.cpu, embed.cpu, strict=True)]
        p95 = percentile_ms(total, 95)
        mark = " (served)" if retriever == served else ""
        print(
            f"  {retriever:6s}{mark:9s} p50 {percentile_ms(total, 50):6.2f}  p95 {p95:6.2f}  "
            f"p99 {percentile_ms(total, 99):6.2f} ms {ceiling(p95, P95_TARGET_MS, ' ms')}"
        )
        print(f"  {'':15s} search alone p50 {percentile_ms(search.wall, 50):5.2f} p95 "
              f"{percentile_ms(search.wall, 95):5.2f} ms; CPU time of the query p50 "
              f"{percentile_ms(cpu, 50):5.2f} p95 {percentile_ms(cpu, 95):5.2f} ms")  # fmt: skip
    peer = duckdb_peer(path, vectors[:40])
    ours = search_times(index, questions[:40], vectors[:40], "dense").wall
    ratio = np.median(peer) / np.median(ours)
    print(
        f"  dense search alone: NumPy p50 {percentile_ms(ours, 50):.2f} ms vs DuckDB SQL p50 "
        f"{percentile_ms(peer, 50):.2f} ms (DuckDB / NumPy {ratio:.0f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n_queries, n_embed = (60, 100) if args.quick else (200, None)
    print(f"load average at start: {os.getloadavg()} ({os.cpu_count()} cores, shared: every "
          "figure moves with the load)")  # fmt: skip
    embedder = offline_embedder()
    embedder.encode(["warm up"])
    config = ChunkingConfig()
    chunks = chunk_documents(read_documents(SHIPPED_CORPUS, PROJECT_DOCS), config)
    embedding_rate(embedder, chunks["text"].to_list()[:n_embed])

    eval_set = load_eval_set()
    questions = [q.question for q in eval_set.questions]
    questions = (questions * (n_queries // len(questions) + 1))[:n_queries]
    vectors, embed = embed_questions(embedder, questions)
    print(f"question embedding (1 torch thread, batch of one): p50 "
          f"{percentile_ms(embed.wall, 50):.2f} p95 {percentile_ms(embed.wall, 95):.2f} p99 "
          f"{percentile_ms(embed.wall, 99):.2f} ms; CPU time p50 {percentile_ms(embed.cpu, 50):.2f}"
          f" p95 {percentile_ms(embed.cpu, 95):.2f} ms")  # fmt: skip
    served = ServingParams().retriever
    folder = Path(tempfile.mkdtemp(prefix="bench-rag-"))
    try:
        build = write_index(folder / "index.duckdb", chunks, embedder, config.version)
        index = RagIndex(build.path)
        asked = {q.id: q.question for q in eval_set.answerable}
        print(f"retrieval on {len(asked)} answerable eval questions (document-level qrels):")
        for r in evaluate_retrievers(index, embedder, asked, eval_set.qrels()):
            print(f"  {r.retriever:6s} recall@10 {r.metrics['recall@10']:.4f}  recall@5 "
                  f"{r.metrics['recall@5']:.4f} {floor(r.metrics['recall@5'], RECALL5_TARGET)}"
                  f"  mrr {r.metrics['mrr']:.4f}")  # fmt: skip
        sizes = [("shipped", build.path)]
        multiples = [round(TARGET_CHUNKS / build.chunks)] + ([] if args.quick else [100])
        for times in multiples:
            path = folder / f"x{times}.duckdb"
            shutil.copy(build.path, path)  # real chunks keep their real embeddings
            write_index(path, synthetic(chunks, times), SyntheticEmbedder(), config.version)
            sizes.append((f"{times}x synthetic", path))
        for label, path in sizes:
            latency_at(label, path, questions, vectors, embed, served)
        paraphrase = pair_similarities(embedder, eval_set.paraphrase_pairs())
        others = pair_similarities(embedder, eval_set.non_paraphrase_pairs())
        cache = choose_threshold(paraphrase, others, FALSE_HIT_TARGET)
        print(f"semantic cache at threshold {cache.threshold:.3f}: hit rate {cache.hit_rate:.1%} "
              f"on {cache.pairs} paraphrase pairs {floor(cache.hit_rate, CACHE_HIT_TARGET)}; "
              f"false hits {cache.false_hit_rate:.2%} on {cache.non_pairs} other pairs "
              f"{ceiling(cache.false_hit_rate, FALSE_HIT_TARGET)}")  # fmt: skip
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
