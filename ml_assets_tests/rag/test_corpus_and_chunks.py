"""Corpus change detection and heading-aware chunking (plain functions, no model)."""

import polars as pl
import pytest

from ml_assets.rag.chunking import (
    ChunkingConfig,
    chunk_document,
    sections,
    split_words,
    update_chunks,
)
from ml_assets.rag.documents import PROJECT_DOCS, SHIPPED_CORPUS, diff_documents, read_documents

DOC = """# Card testing

Intro line.

## Rule
Three or more small amounts.

```bash
# not a heading
```

## After
Block the card.
"""


def test_sections_follow_headings_and_ignore_fenced_hashes():
    found = sections(DOC)
    assert [h for h, _ in found] == ["Card testing", "Card testing > Rule", "Card testing > After"]
    assert "# not a heading" in found[1][1]


def test_a_chunk_never_spans_two_sections_and_carries_its_heading():
    chunks = chunk_document("d", DOC, ChunkingConfig(size_words=50, overlap_words=10))
    assert [c[0] for c in chunks] == ["d#0", "d#1", "d#2"]
    assert chunks[2][3] == "Card testing > After\nBlock the card."


def test_long_sections_split_by_size_with_overlap():
    words = " ".join(f"w{i}" for i in range(25))
    pieces = split_words(words, ChunkingConfig(size_words=10, overlap_words=4))
    assert [p.split()[0] for p in pieces] == ["w0", "w6", "w12", "w18"]
    assert pieces[1].split()[:4] == pieces[0].split()[-4:]  # the overlap
    assert pieces[-1].split()[-1] == "w24"


def test_chunking_version_names_size_and_overlap_and_rejects_bad_overlap():
    assert ChunkingConfig(100, 20).version == "md-headings-v1:size=100:overlap=20"
    with pytest.raises(ValueError, match="overlap"):
        ChunkingConfig(10, 10)


def test_shipped_corpus_has_forty_documents_and_the_project_docs(tmp_path):
    documents = read_documents(SHIPPED_CORPUS, PROJECT_DOCS)
    assert documents.height >= 40
    assert {"project-readme", "serving-readme"} <= set(documents["doc_id"])
    assert documents["content_hash"].n_unique() == documents.height


def test_change_detection_flows_only_new_and_changed_documents(tmp_path):
    for name, text in {"a": "# A\nalpha", "b": "# B\nbeta", "c": "# C\ngamma"}.items():
        (tmp_path / f"{name}.md").write_text(text)
    before = read_documents(tmp_path)
    assert diff_documents(None, before).to_process == ["a", "b", "c"]
    (tmp_path / "b.md").write_text("# B\nbeta, revised")
    (tmp_path / "c.md").unlink()
    (tmp_path / "d.md").write_text("# D\ndelta")
    after = read_documents(tmp_path)
    changes = diff_documents(before, after)
    assert (changes.added, changes.changed, changes.removed, changes.unchanged) == (
        ["d"], ["b"], ["c"], 1)  # fmt: skip

    config = ChunkingConfig()
    from ml_assets.rag.chunking import chunk_documents

    old_chunks = chunk_documents(before, config)
    updated = update_chunks(old_chunks, after, changes.to_process, config, same_version=True)
    assert set(updated["doc_id"]) == {"a", "b", "d"}
    assert updated.filter(pl.col("doc_id") == "b")["text"].str.contains("revised").all()


def test_a_missing_corpus_folder_says_which_setting_to_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="ML_ASSETS_RAG_CORPUS_DIR"):
        read_documents(tmp_path / "nope")
