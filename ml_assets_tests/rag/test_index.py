"""The index file: only changed chunks are re-embedded (counted), the in-memory exact cosine
search returns what DuckDB's `array_cosine_similarity` on the file returns, and hybrid fuses
both retrievers."""

import numpy as np
import pytest

from ml_assets.rag.chunking import ChunkingConfig, chunk_documents
from ml_assets.rag.documents import read_documents
from ml_assets.rag.index_store import read_meta, sql_dense, write_index
from ml_assets.rag.retrieval import RagIndex, top_k
from ml_assets_tests.support.rag import CountingEmbedder, offline_embedder, small_corpus


def build(folder, path, embedder, config=None):
    config = config or ChunkingConfig()
    chunks = chunk_documents(read_documents(folder), config)
    return chunks, write_index(path, chunks, embedder, config.version)


@pytest.mark.slow
def test_only_changed_chunks_are_reembedded(tmp_path):
    folder = small_corpus(tmp_path / "corpus")
    embedder = CountingEmbedder(offline_embedder())
    path = tmp_path / "index.duckdb"
    chunks, first = build(folder, path, embedder)
    assert first.embedded == chunks.height == embedder.texts and first.reused == 0

    _, again = build(folder, path, embedder)
    assert (again.embedded, again.index_version) == (0, first.index_version)

    doc = folder / "mcc-fuel.md"
    doc.write_text(doc.read_text().replace("no one sees", "nobody sees"))
    before = embedder.texts
    changed, third = build(folder, path, embedder)
    new_hashes = set(changed["content_hash"]) - set(chunks["content_hash"])
    assert len(new_hashes) == 1  # one section of one document changed
    assert third.embedded == embedder.texts - before == 1
    assert third.reused == changed.height - 1
    assert third.index_version != first.index_version
    assert read_meta(path)["index_version"] == third.index_version


@pytest.mark.slow
def test_dense_bm25_and_hybrid_find_the_document(tmp_path):
    folder = small_corpus(tmp_path / "corpus")
    embedder = offline_embedder()
    _, built = build(folder, tmp_path / "index.duckdb", embedder)
    index = RagIndex(built.path)
    question = "How many small transactions under 5 EUR trigger the card-testing flag?"
    vector = embedder.encode([question])[0]
    for retriever in ("dense", "bm25", "hybrid"):
        hits = index.search(question, vector, retriever, 3)
        assert hits[0].doc_id == "policy-card-testing", retriever
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    dense = index.dense(vector, 2)
    assert 0.3 < dense[0].score <= 1.0 + 1e-6
    assert index.bm25("zzzz qqqq", 3) == []
    with pytest.raises(ValueError, match="retriever"):
        index.search(question, vector, "sparse", 3)
    index.close()


def test_top_k_is_best_first_with_ties_to_the_lower_position():
    scores = np.array([0.5, 0.9, 0.5, 0.1, 0.5], dtype=np.float32)
    assert top_k(scores, 1) == [1]
    assert top_k(scores, 2) == [1, 0]
    assert top_k(scores, 3) == [1, 0, 2]
    assert top_k(scores, 9) == [1, 0, 2, 4, 3]
    assert top_k(scores, 0) == [] and top_k(scores[:0], 3) == []


@pytest.mark.slow
def test_in_memory_dense_matches_duckdb_exact_search(tmp_path):
    folder = small_corpus(tmp_path / "corpus")
    embedder = offline_embedder()
    _, built = build(folder, tmp_path / "index.duckdb", embedder)
    index = RagIndex(built.path)
    questions = ["How many small transactions under 5 EUR trigger the card-testing flag?",
                 "When must a chargeback be filed?", "fuel pump pre-authorisation amount",
                 "restaurant tips added after the card was presented"]  # fmt: skip
    for question, vector in zip(questions, embedder.encode(questions), strict=True):
        ours = [(h.chunk_id, h.score) for h in index.dense(vector, 10)]
        sql = sql_dense(built.path, vector, 10)
        assert [c for c, _ in ours] == [c for c, _ in sql], question
        assert np.allclose([s for _, s in ours], [s for _, s in sql], atol=1e-5)
    assert len(index) > 10
    index.close()


@pytest.mark.slow
def test_torch_threads_follow_the_kind_of_call():
    import torch

    embedder = offline_embedder()
    embedder.encode(["one question"])
    assert torch.get_num_threads() == embedder.query_threads == 1
    embedder.encode(["a batch", "of two"])
    assert torch.get_num_threads() == embedder.batch_threads == 1  # no switch by default
    embedder.batch_threads = 2
    try:
        embedder.encode(["a batch", "of two"])
        assert torch.get_num_threads() == 2
        embedder.encode(["one question"])
        assert torch.get_num_threads() == 1
    finally:
        embedder.batch_threads = 1
