"""Answer evaluation with proxies that need no LLM, each stated as a proxy:
- faithfulness: the share of answer sentences whose closest context sentence is at least
  `support_threshold` cosine-similar and whose figures appear in the closest context (an
  embedding-similarity proxy, not entailment: a changed figure barely moves an embedding,
  hence the figure check);
- relevance: cosine similarity of the answer to the question;
- abstention: unanswerable questions answered with the abstain sentence.
The faithfulness proxy is validated on labelled grounded/ungrounded answers (AUROC), and
its threshold is the one that separates them best there.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass

import numpy as np

from ml_assets.rag.evaluation import percentile_ms
from ml_assets.rag.generation import Generator
from ml_assets.rag.retrieval import Hit, RagIndex
from ml_assets.rag.sentences import SentenceBank, chunk_body, split_sentences

FIGURE = re.compile(r"\d+(?:[.,]\d+)*")
FIGURE_SOURCES = 2  # a claim's figures must appear in one of its 2 nearest context sentences
SUPPORT_GRID = tuple(round(0.40 + 0.05 * i, 2) for i in range(12))  # 0.40 .. 0.95


def sentence_support(answer: str, hits: list[Hit], bank: SentenceBank) -> np.ndarray:
    """Per answer sentence, its best cosine similarity to any sentence of the context, or 0
    when it states a figure that its nearest context sentences do not contain."""
    claims = split_sentences(answer)
    context = [s for h in hits for s in split_sentences(chunk_body(h.text, h.heading))]
    if not claims:
        return np.zeros(0)
    if not context:
        return np.zeros(len(claims))
    similarity = bank.embed(claims) @ bank.embed(context).T
    nearest = np.argsort(-similarity, axis=1)[:, :FIGURE_SOURCES]
    unfounded = [
        bool(set(FIGURE.findall(c)) - {f for j in near for f in FIGURE.findall(context[j])})
        for c, near in zip(claims, nearest, strict=True)
    ]
    return np.where(unfounded, 0.0, similarity.max(axis=1))


def faithfulness(support: np.ndarray, threshold: float) -> float:
    """Share of supported sentences (1.0 for an answer without a claim: nothing unsupported)."""
    return float((support >= threshold).mean()) if support.size else 1.0


def auroc(labels: list[bool], scores: list[float]) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores)) if len(set(labels)) == 2 else float("nan")


@dataclass(frozen=True)
class ProxyValidation:
    auroc: float
    threshold: float
    by_threshold: dict[float, float]


def validate_faithfulness(
    supports: list[np.ndarray], grounded: list[bool], grid: tuple[float, ...] = SUPPORT_GRID
) -> ProxyValidation:
    """AUROC of the faithfulness proxy at each support threshold; the best one is kept
    (ties to the stricter threshold)."""
    table = {t: auroc(grounded, [faithfulness(s, t) for s in supports]) for t in grid}
    valid = {t: a for t, a in table.items() if not math.isnan(a)}
    chosen = max(valid, key=lambda t: (valid[t], t)) if valid else grid[0]
    return ProxyValidation(valid.get(chosen, float("nan")), chosen, table)


def abstention_threshold(answerable: list[float], unanswerable: list[float]) -> float:
    """The similarity cut between best-sentence similarities of answerable and unanswerable
    questions that maximises balanced accuracy (Youden's J)."""
    candidates = sorted(set(answerable) | set(unanswerable))
    if not candidates:
        return 0.5

    def j(t: float) -> float:
        kept = np.mean([s >= t for s in answerable]) if answerable else 0.0
        refused = np.mean([s < t for s in unanswerable]) if unanswerable else 0.0
        return float(kept + refused)

    return max(candidates, key=lambda t: (j(t), -t))


@dataclass(frozen=True)
class QuestionResult:
    question_id: str
    answerable: bool
    abstained: bool
    faithfulness: float
    relevance: float
    latency_s: float


def answer_questions(
    index: RagIndex,
    embedder,
    bank: SentenceBank,
    generator: Generator,
    questions: list[tuple[str, str, bool]],
    retriever: str,
    k: int,
    support_threshold: float,
) -> list[QuestionResult]:
    """Retrieve and answer each (id, question, answerable); time both, score the answer."""
    results = []
    for qid, question, answerable in questions:
        started = time.perf_counter()
        vector = embedder.encode([question])[0]
        hits = index.search(question, vector, retriever, k)
        answer = generator.answer(question, vector, hits)
        elapsed = time.perf_counter() - started
        if answer.abstained:
            faith, relevance = float("nan"), float("nan")
        else:
            faith = faithfulness(sentence_support(answer.text, hits, bank), support_threshold)
            relevance = float(embedder.encode([answer.text])[0] @ vector)
        results.append(QuestionResult(qid, answerable, answer.abstained, faith, relevance, elapsed))
    return results


def summarise(results: list[QuestionResult]) -> dict[str, float]:
    answerable = [r for r in results if r.answerable]
    unanswerable = [r for r in results if not r.answerable]
    answered = [r for r in answerable if not r.abstained]
    latencies = [r.latency_s for r in results]

    def mean(values: list[float]) -> float:
        return float(np.mean(values)) if values else float("nan")

    return {
        "faithfulness": mean([r.faithfulness for r in answered]),
        "relevance": mean([r.relevance for r in answered]),
        "abstention_on_unanswerable": mean([float(r.abstained) for r in unanswerable]),
        "false_abstention_on_answerable": mean([float(r.abstained) for r in answerable]),
        "answer_p50_ms": percentile_ms(latencies, 50),
        "answer_p95_ms": percentile_ms(latencies, 95),
    }
