"""The shipped evaluation set, and its export in the BEIR layout (corpus.jsonl,
queries.jsonl, qrels/test.tsv) so any IR toolkit can read it.

Qrels are per document with graded relevance (2: answers it, 1: related), not per chunk:
a chunk id changes with the chunking version, a document id does not, and the retrieval
gate compares chunking versions on the same qrels.
"""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from ml_assets.atomic_files import write_text_atomically

SHIPPED_EVAL_SET = Path(__file__).resolve().parent / "eval_set"


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answer: str | None  # None: the corpus cannot answer it
    qrels: dict[str, int]
    paraphrase: str | None = None

    @property
    def answerable(self) -> bool:
        return bool(self.qrels)


@dataclass(frozen=True)
class LabelledAnswer:
    question_id: str
    answer: str
    grounded: bool


@dataclass(frozen=True)
class EvalSet:
    questions: list[Question]
    labelled: list[LabelledAnswer]

    @property
    def answerable(self) -> list[Question]:
        return [q for q in self.questions if q.answerable]

    def qrels(self) -> dict[str, dict[str, int]]:
        return {q.id: dict(q.qrels) for q in self.answerable}

    def by_id(self) -> dict[str, Question]:
        return {q.id: q for q in self.questions}

    def paraphrase_pairs(self) -> list[tuple[str, str]]:
        return [(q.question, q.paraphrase) for q in self.questions if q.paraphrase]

    def non_paraphrase_pairs(self, limit: int = 2000, seed: int = 7) -> list[tuple[str, str]]:
        """Pairs of different questions: every pair on the same document first (the hard
        case for a cache: same topic, another answer), then a seeded sample of the rest."""
        answerable = self.answerable
        same_doc = [(a.question, b.question) for a, b in itertools.combinations(answerable, 2)
                    if set(a.qrels) & set(b.qrels)]  # fmt: skip
        others = [(a.question, b.question) for a, b in itertools.combinations(self.questions, 2)
                  if not set(a.qrels) & set(b.qrels)]  # fmt: skip
        random.Random(seed).shuffle(others)
        return (same_doc + others)[:limit]


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def load_eval_set(folder: Path = SHIPPED_EVAL_SET) -> EvalSet:
    questions = [Question(**row) for row in _jsonl(folder / "questions.jsonl")]
    labelled = [LabelledAnswer(**row) for row in _jsonl(folder / "labelled_answers.jsonl")]
    known = {q.id for q in questions}
    unknown = sorted({a.question_id for a in labelled} - known)
    if unknown:
        raise ValueError(f"labelled_answers.jsonl names unknown question ids {unknown}")
    return EvalSet(questions, labelled)


def check_qrels(eval_set: EvalSet, doc_ids: set[str]) -> list[str]:
    """Qrels naming documents the corpus lacks: those questions could never be retrieved."""
    return sorted({d for q in eval_set.questions for d in q.qrels if d not in doc_ids})


def write_beir(eval_set: EvalSet, documents: pl.DataFrame, folder: Path) -> dict[str, Path]:
    """corpus.jsonl (`_id`, `title`, `text`), queries.jsonl (`_id`, `text`, plus the
    reference answer in `metadata`), qrels/test.tsv (`query-id corpus-id score`)."""
    corpus = "".join(
        json.dumps({"_id": d, "title": text.splitlines()[0].lstrip("# "), "text": text}) + "\n"
        for d, text in documents.select("doc_id", "content").rows()
    )
    queries = "".join(
        json.dumps({"_id": q.id, "text": q.question, "metadata": {"answer": q.answer}}) + "\n"
        for q in eval_set.questions
    )
    qrels = "query-id\tcorpus-id\tscore\n" + "".join(
        f"{q.id}\t{d}\t{g}\n" for q in eval_set.answerable for d, g in sorted(q.qrels.items())
    )
    paths = {"corpus": folder / "corpus.jsonl", "queries": folder / "queries.jsonl",
             "qrels": folder / "qrels" / "test.tsv"}  # fmt: skip
    for name, text in (("corpus", corpus), ("queries", queries), ("qrels", qrels)):
        write_text_atomically(paths[name], text)
    return paths
