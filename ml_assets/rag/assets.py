"""RAG assets (group `rag`, unpartitioned: a corpus is not daily data): the corpus with
change detection, heading-aware chunks, the DuckDB index with only changed chunks
re-embedded, the evaluation set, and retrieval and answer evaluations whose blocking checks
gate a new chunking or embedding version and the latency budget."""

from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import polars as pl

from ml_assets.atomic_files import write_parquet_atomically, write_text_atomically
from ml_assets.rag import files
from ml_assets.rag.chunking import ChunkingConfig, update_chunks
from ml_assets.rag.documents import (
    PROJECT_DOCS,
    SHIPPED_CORPUS,
    CorpusChanges,
    diff_documents,
    read_documents,
)
from ml_assets.rag.eval_set import EvalSet, check_qrels, load_eval_set, write_beir
from ml_assets.resources import SettingsResource

GROUP = "rag"
RAG_CORPUS = dg.AssetKey("rag_corpus")
RAG_CHUNKS = dg.AssetKey("rag_chunks")
RAG_INDEX = dg.AssetKey("rag_index")
RAG_EVAL_SET = dg.AssetKey("rag_eval_set")
RETRIEVAL_EVALUATION = dg.AssetKey("retrieval_evaluation")
ANSWER_EVALUATION = dg.AssetKey("answer_evaluation")
RECALL_NOT_LOWER = "recall_at_5_not_below_accepted"
RECALL_TARGET = "recall_at_5_target"
LATENCY_SLA = "answer_latency_within_sla"
FAITHFULNESS_AUROC = "faithfulness_proxy_auroc"


@dataclass(frozen=True)
class CorpusUpdate:
    documents: pl.DataFrame
    changes: CorpusChanges


@dataclass(frozen=True)
class ChunkSet:
    chunks: pl.DataFrame
    version: str


@dataclass(frozen=True)
class IndexRef:
    path: str
    index_version: str
    chunking_version: str
    model_id: str


class ChunkingAssetConfig(dg.Config):
    """Chunk size and overlap in words; their pair is the chunking version."""

    size_words: int = ChunkingConfig.size_words
    overlap_words: int = ChunkingConfig.overlap_words


class RetrievalEvalConfig(dg.Config):
    recall_target: float = 0.9
    tolerance: float = 0.0  # recall@5 a new version may lose against the accepted one


class AnswerEvalConfig(dg.Config):
    k: int = 5  # chunks given to the generator
    max_cache_false_hits: float = 0.01


def corpus_source(settings: SettingsResource) -> tuple[Path, dict[str, Path]]:
    """The user's folder when ML_ASSETS_RAG_CORPUS_DIR is set, else the shipped corpus plus
    the project's own README and serving README."""
    if settings.rag_corpus_dir:
        return Path(settings.rag_corpus_dir), {}
    return SHIPPED_CORPUS, PROJECT_DOCS


def _read_parquet(path: Path) -> pl.DataFrame | None:
    return pl.read_parquet(path) if path.is_file() else None


@dg.asset(
    key=RAG_CORPUS,
    group_name=GROUP,
    kinds={"markdown", "parquet"},
    description="The Markdown documents reviewers ask about, each with an id and a content "
    "hash; compared with the previous snapshot so only new or changed documents flow on.",
)
def rag_corpus(settings: SettingsResource) -> dg.MaterializeResult[CorpusUpdate]:
    folder, extra = corpus_source(settings)
    documents = read_documents(folder, extra)
    snapshot = files.rag_dir(Path(settings.home)) / "corpus.parquet"
    changes = diff_documents(_read_parquet(snapshot), documents)
    write_parquet_atomically(documents, snapshot)
    return dg.MaterializeResult(
        value=CorpusUpdate(documents, changes),
        metadata={
            "folder": str(folder),
            "documents": documents.height,
            "added": len(changes.added),
            "changed": changes.changed,
            "removed": changes.removed,
            "unchanged": changes.unchanged,
            "dagster/row_count": documents.height,
        },
    )


@dg.asset(
    key=RAG_CHUNKS,
    group_name=GROUP,
    kinds={"parquet"},
    description="Heading-aware chunks of the corpus (size and overlap configurable, recorded "
    "as the chunking version); unchanged documents keep their chunks.",
)
def rag_chunks(
    config: ChunkingAssetConfig, settings: SettingsResource, rag_corpus: CorpusUpdate
) -> dg.MaterializeResult[ChunkSet]:
    chunking = ChunkingConfig(config.size_words, config.overlap_words)
    folder = files.rag_dir(Path(settings.home))
    version_file = folder / "chunks.version"
    same = version_file.is_file() and version_file.read_text() == chunking.version
    chunks = update_chunks(_read_parquet(folder / "chunks.parquet"), rag_corpus.documents,
                           rag_corpus.changes.to_process, chunking, same)  # fmt: skip
    write_parquet_atomically(chunks, folder / "chunks.parquet")
    write_text_atomically(version_file, chunking.version)
    rechunked = rag_corpus.documents.height if not same else len(rag_corpus.changes.to_process)
    words = chunks["text"].str.split(" ").list.len()
    return dg.MaterializeResult(
        value=ChunkSet(chunks, chunking.version),
        metadata={
            "chunking_version": chunking.version,
            "chunks": chunks.height,
            "documents_rechunked": rechunked,
            "words_per_chunk_mean": round(float(words.mean() or 0), 1),
            "words_per_chunk_max": int(words.max() or 0),
            "dagster/row_count": chunks.height,
        },
    )


@dg.asset(
    key=RAG_INDEX,
    group_name=GROUP,
    kinds={"duckdb", "pytorch"},
    description="all-MiniLM-L6-v2 embeddings (FLOAT[384], exact cosine search) of every chunk "
    "in one DuckDB file, the one /rag/query reads; only chunks whose text changed are embedded.",
)
def rag_index(
    context: dg.AssetExecutionContext, settings: SettingsResource, rag_chunks: ChunkSet
) -> dg.MaterializeResult[IndexRef]:
    from ml_assets.rag.embedding import shared_embedder
    from ml_assets.rag.index_store import write_index

    embedder = shared_embedder()
    build = write_index(files.index_path(Path(settings.home)), rag_chunks.chunks, embedder,
                        rag_chunks.version)  # fmt: skip
    context.log.info(f"embedded {build.embedded} chunks, reused {build.reused}")
    return dg.MaterializeResult(
        value=IndexRef(str(build.path), build.index_version, rag_chunks.version, embedder.model_id),
        metadata={
            "path": str(build.path),
            "index_version": build.index_version,
            "chunking_version": rag_chunks.version,
            "model_id": embedder.model_id,
            "chunks": build.chunks,
            "embedded": build.embedded,
            "reused": build.reused,
        },
    )


@dg.asset(
    key=RAG_EVAL_SET,
    group_name=GROUP,
    kinds={"json"},
    description="Questions with graded document qrels (BEIR layout), reference answers, "
    "unanswerable questions, paraphrase pairs and labelled grounded/ungrounded answers.",
)
def rag_eval_set(
    settings: SettingsResource, rag_corpus: CorpusUpdate
) -> dg.MaterializeResult[EvalSet]:
    eval_set = load_eval_set()
    doc_ids = set(rag_corpus.documents["doc_id"].to_list())
    missing = check_qrels(eval_set, doc_ids)
    if missing:
        # A user's own corpus: keep the questions whose documents it has, and the
        # unanswerable ones; say what was dropped.
        keep = [q for q in eval_set.questions if not set(q.qrels) - doc_ids]
        if not any(q.answerable for q in keep):
            raise ValueError(
                f"no question of the shipped eval set has its documents in the corpus "
                f"(missing e.g. {missing[:3]}): write an eval set for your corpus"
            )
        ids = {q.id for q in keep}
        eval_set = EvalSet(keep, [a for a in eval_set.labelled if a.question_id in ids])
    paths = write_beir(eval_set, rag_corpus.documents, files.rag_dir(Path(settings.home)) / "beir")
    return dg.MaterializeResult(
        value=eval_set,
        metadata={
            "questions": len(eval_set.questions),
            "answerable": len(eval_set.answerable),
            "unanswerable": len(eval_set.questions) - len(eval_set.answerable),
            "paraphrase_pairs": len(eval_set.paraphrase_pairs()),
            "labelled_answers": len(eval_set.labelled),
            "ungrounded_labelled": sum(not a.grounded for a in eval_set.labelled),
            "qrels_dropped_documents": missing,
            "beir_folder": str(paths["qrels"].parent.parent),
        },
    )
