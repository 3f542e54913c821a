"""Heading-aware chunking of Markdown: a chunk never spans two sections, and each chunk
carries its heading path so a retrieved passage says where it came from.

Size and overlap are in words (the embedding model truncates at 256 word pieces, about
180 words, so the default stays under it). The config's `version` is recorded in the asset
metadata and the index: the retrieval gate compares versions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import polars as pl

from ml_assets.rag.documents import content_hash

HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
CHUNK_SCHEMA = {"chunk_id": pl.String, "doc_id": pl.String, "heading": pl.String,
                "text": pl.String, "content_hash": pl.String}  # fmt: skip


@dataclass(frozen=True)
class ChunkingConfig:
    size_words: int = 120
    overlap_words: int = 30

    def __post_init__(self) -> None:
        if not 0 <= self.overlap_words < self.size_words:
            raise ValueError(
                f"chunk overlap {self.overlap_words} must be >= 0 and below the size "
                f"{self.size_words} (words)"
            )

    @property
    def version(self) -> str:
        return f"md-headings-v1:size={self.size_words}:overlap={self.overlap_words}"


def sections(markdown: str) -> list[tuple[str, str]]:
    """(heading path, body) per section; code fences are kept whole, never read as headings."""
    path: list[str] = []
    out: list[tuple[str, list[str]]] = [("", [])]
    fenced = False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        match = None if fenced else HEADING.match(line)
        if match:
            level = len(match.group(1))
            path = path[: level - 1] + [match.group(2)]
            out.append((" > ".join(path), []))
        else:
            out[-1][1].append(line)
    return [(h, "\n".join(body).strip()) for h, body in out if "\n".join(body).strip()]


def split_words(text: str, config: ChunkingConfig) -> list[str]:
    words = text.split()
    if len(words) <= config.size_words:
        return [" ".join(words)]
    step = config.size_words - config.overlap_words
    starts = range(0, len(words) - config.overlap_words, step)
    return [" ".join(words[s : s + config.size_words]) for s in starts]


def chunk_document(doc_id: str, markdown: str, config: ChunkingConfig) -> list[tuple]:
    """Rows of CHUNK_SCHEMA. The heading path is prepended to the text that is embedded,
    because a section body alone often lacks the subject ("Steps", "Rule")."""
    rows = []
    for heading, body in sections(markdown):
        for piece in split_words(body, config):
            text = f"{heading}\n{piece}" if heading else piece
            rows.append((f"{doc_id}#{len(rows)}", doc_id, heading, text, content_hash(text)))
    return rows


def chunk_documents(documents: pl.DataFrame, config: ChunkingConfig) -> pl.DataFrame:
    rows = [
        row
        for doc_id, content in documents.select("doc_id", "content").rows()
        for row in chunk_document(doc_id, content, config)
    ]
    return pl.DataFrame(rows, schema=CHUNK_SCHEMA, orient="row")


def update_chunks(
    previous: pl.DataFrame | None,
    documents: pl.DataFrame,
    to_process: list[str],
    config: ChunkingConfig,
    same_version: bool,
) -> pl.DataFrame:
    """The chunks of `documents`: those of unchanged documents kept from `previous` when the
    chunking version is the same, the rest chunked anew."""
    if previous is None or not same_version:
        return chunk_documents(documents, config)
    keep = previous.filter(
        pl.col("doc_id").is_in(documents["doc_id"].to_list()) & ~pl.col("doc_id").is_in(to_process)
    )
    fresh = chunk_documents(documents.filter(pl.col("doc_id").is_in(to_process)), config)
    return pl.concat([keep, fresh]).sort("doc_id", "chunk_id")
