"""The index file: only changed chunks are re-embedded (counted), exact cosine search in
DuckDB finds the right document, and hybrid fuses both retrievers."""

import pytest

from ml_assets.rag.chunking import ChunkingConfig, chunk_documents
from ml_assets.rag.documents import read_documents
from ml_assets.rag.index_store import read_meta, write_index
from ml_assets.rag.retrieval import RagIndex
from ml_assets_tests.support.rag import CountingEmbedder, offline_embedder, small_corpus

pytestmark = pytest.mark.slow


def build(folder, path, embedder, config=None):
    config = config or ChunkingConfig()
    chunks = chunk_documents(read_documents(folder), config)
    return chunks, write_index(path, chunks, embedder, config.version)


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
