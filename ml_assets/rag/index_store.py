"""The RAG index file: one DuckDB database with the chunks, their `FLOAT[384]` embeddings
and the versions that built them. Written whole to a temporary and renamed, so the
endpoint reading it sees the old index or the new one, never half of one.

Incremental: embeddings are reused by (model, chunk content hash) from the previous file,
so a changed document costs the embeddings of its changed chunks only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from ml_assets.atomic_files import replace_atomically
from ml_assets.rag.embedding import DIMENSIONS, Embedder

META_KEYS = ("index_version", "chunking_version", "model_id")


@dataclass(frozen=True)
class IndexBuild:
    path: Path
    index_version: str
    chunks: int
    embedded: int  # computed by this build
    reused: int  # taken from the previous index


def index_version(model_id: str, chunking_version: str, chunks: pl.DataFrame) -> str:
    digest = hashlib.sha256(f"{model_id}|{chunking_version}".encode())
    for chunk_id, h in chunks.select("chunk_id", "content_hash").sort("chunk_id").rows():
        digest.update(f"|{chunk_id}:{h}".encode())
    return digest.hexdigest()[:16]


def read_meta(path: Path) -> dict[str, str]:
    with duckdb.connect(str(path), read_only=True) as con:
        return dict(con.execute("SELECT key, value FROM meta").fetchall())


def previous_embeddings(path: Path, model_id: str) -> dict[str, np.ndarray]:
    """content hash -> embedding from the index at `path`, if it was built by `model_id`."""
    if not path.is_file() or read_meta(path).get("model_id") != model_id:
        return {}
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute("SELECT content_hash, embedding FROM chunks").fetchall()
    return {h: np.asarray(e, dtype=np.float32) for h, e in rows}


def embed_chunks(
    chunks: pl.DataFrame, embedder: Embedder, known: dict[str, np.ndarray]
) -> tuple[np.ndarray, int]:
    """One embedding per chunk row, computing only those whose content hash is not known."""
    hashes = chunks["content_hash"].to_list()
    texts = dict(zip(hashes, chunks["text"].to_list(), strict=True))
    missing = sorted(set(hashes) - set(known))
    fresh = embedder.encode([texts[h] for h in missing])
    table = {**known, **dict(zip(missing, fresh, strict=True))}
    matrix = np.stack([table[h] for h in hashes]) if hashes else np.zeros((0, DIMENSIONS))
    return matrix.astype(np.float32), len(missing)


def write_index(
    path: Path, chunks: pl.DataFrame, embedder: Embedder, chunking_version: str
) -> IndexBuild:
    """Embed what changed, then write the whole index file atomically."""
    matrix, embedded = embed_chunks(chunks, embedder, previous_embeddings(path, embedder.model_id))
    version = index_version(embedder.model_id, chunking_version, chunks)
    table = chunks.with_columns(
        pl.Series("embedding", matrix, dtype=pl.Array(pl.Float32, DIMENSIONS))
    )
    meta = {"index_version": version, "chunking_version": chunking_version,
            "model_id": embedder.model_id}  # fmt: skip

    def write(temporary: Path) -> None:
        with duckdb.connect(str(temporary)) as con:
            con.register("frame", table.to_arrow())
            con.execute(
                f"CREATE TABLE chunks AS SELECT chunk_id, doc_id, heading, text, content_hash, "
                f"embedding::FLOAT[{DIMENSIONS}] AS embedding FROM frame"
            )
            con.execute("CREATE TABLE meta (key VARCHAR, value VARCHAR)")
            con.executemany("INSERT INTO meta VALUES (?, ?)", list(meta.items()))
            con.execute("CHECKPOINT")

    path.parent.mkdir(parents=True, exist_ok=True)
    replace_atomically(path, write)
    return IndexBuild(path, version, chunks.height, embedded, chunks.height - embedded)


def sql_dense(path: Path, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
    """(chunk id, cosine) of the `k` nearest chunks by DuckDB's exact `array_cosine_similarity`
    on the file itself, ties by chunk id: the store-of-record search that the in-memory one
    (`RagIndex.dense`) must agree with. Costs a connection per call; not for the request path."""
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(
            f"SELECT chunk_id, array_cosine_similarity(embedding, ?::FLOAT[{DIMENSIONS}]) AS s "
            "FROM chunks ORDER BY s DESC, chunk_id LIMIT ?",
            [np.asarray(vector, dtype=np.float32).tolist(), k],
        ).fetchall()
