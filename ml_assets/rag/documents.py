"""The RAG corpus on disk: Markdown documents, each with a stable id and a content hash.

Incremental by change detection (not dynamic partitions): a corpus is a few hundred files
that change a few at a time, so one unpartitioned asset compares today's hashes with the
previous snapshot and only new or changed documents are re-chunked and re-embedded
downstream. Dynamic partitions would give one run per document for no gain at this size.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from ml_assets.settings import REPO_ROOT

SHIPPED_CORPUS = Path(__file__).resolve().parent / "corpus"
# The project's own docs, read from where they live so the corpus never holds a stale copy.
PROJECT_DOCS = {
    "project-readme": REPO_ROOT / "README.md",
    "serving-readme": REPO_ROOT / "ml_assets" / "serving" / "README.md",
}
DOCUMENT_SCHEMA = {"doc_id": pl.String, "path": pl.String, "content": pl.String,
                   "content_hash": pl.String}  # fmt: skip


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_documents(folder: Path, extra: dict[str, Path] | None = None) -> pl.DataFrame:
    """Every `*.md` under `folder` (id: its path relative to `folder`, without `.md`) plus
    the `extra` files under their given ids, sorted by id."""
    if not folder.is_dir():
        raise FileNotFoundError(
            f"RAG corpus folder {folder} does not exist: set ML_ASSETS_RAG_CORPUS_DIR to a "
            "folder of Markdown files, or leave it empty for the shipped corpus"
        )
    paths = {p.relative_to(folder).with_suffix("").as_posix(): p for p in folder.rglob("*.md")}
    paths.update({k: v for k, v in (extra or {}).items() if v.is_file()})
    if not paths:
        raise ValueError(f"RAG corpus folder {folder} holds no *.md file")
    rows = []
    for doc_id in sorted(paths):
        text = paths[doc_id].read_text(encoding="utf-8")
        rows.append((doc_id, str(paths[doc_id]), text, content_hash(text)))
    return pl.DataFrame(rows, schema=DOCUMENT_SCHEMA, orient="row")


@dataclass(frozen=True)
class CorpusChanges:
    """What differs from the previous snapshot: only `added` and `changed` flow on."""

    added: list[str]
    changed: list[str]
    removed: list[str]
    unchanged: int

    @property
    def to_process(self) -> list[str]:
        return sorted(self.added + self.changed)


def diff_documents(previous: pl.DataFrame | None, current: pl.DataFrame) -> CorpusChanges:
    """Compare two snapshots by id and content hash."""
    before = {} if previous is None else dict(previous.select("doc_id", "content_hash").rows())
    now = dict(current.select("doc_id", "content_hash").rows())
    added = sorted(set(now) - set(before))
    changed = sorted(d for d in now if d in before and before[d] != now[d])
    removed = sorted(set(before) - set(now))
    return CorpusChanges(added, changed, removed, len(now) - len(added) - len(changed))
