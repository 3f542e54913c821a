"""The two RAG evaluations as assets, their gates as blocking checks: a new chunking or
embedding version may not lose recall@5 against the last accepted one, and retrieval +
generation p95 must stay within ML_ASSETS_RAG_SLA_MS."""

import json
import os
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from ml_assets.atomic_files import write_text_atomically
from ml_assets.rag import files
from ml_assets.rag.assets import (
    ANSWER_EVALUATION,
    FAITHFULNESS_AUROC,
    GROUP,
    LATENCY_SLA,
    RECALL_NOT_LOWER,
    RECALL_TARGET,
    RETRIEVAL_EVALUATION,
    AnswerEvalConfig,
    IndexRef,
    RetrievalEvalConfig,
)
from ml_assets.rag.eval_set import EvalSet
from ml_assets.resources import SettingsResource


@dataclass(frozen=True)
class RetrievalReport:
    index_version: str
    best_retriever: str
    metrics: dict[str, dict[str, float]]


def _table(rows: list[dict]) -> dg.MetadataValue:
    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(r[h]) for h in head) + " |" for r in rows]
    return dg.MetadataValue.md("\n".join(lines))


def recall_gate(current: float, accepted: dict | None, tolerance: float) -> tuple[bool, str]:
    """Pass when there is no accepted version yet, or recall@5 did not drop beyond tolerance."""
    if not accepted:
        return True, f"first evaluated version: recall@5 {current:.4f} becomes the baseline"
    floor = accepted["recall@5"] - tolerance
    verdict = "kept" if current >= floor else "LOST"
    return current >= floor, (
        f"recall@5 {current:.4f} vs {accepted['recall@5']:.4f} accepted for index "
        f"{accepted['index_version']} ({accepted['chunking_version']}): {verdict}"
    )


@dg.asset(
    key=RETRIEVAL_EVALUATION,
    group_name=GROUP,
    kinds={"ranx"},
    check_specs=[
        dg.AssetCheckSpec(
            RECALL_NOT_LOWER,
            asset=RETRIEVAL_EVALUATION,
            blocking=True,
            description="recall@5 of the best retriever not below the last "
            "accepted chunking/embedding version",
        ),
        dg.AssetCheckSpec(
            RECALL_TARGET,
            asset=RETRIEVAL_EVALUATION,
            description="recall@5 of the best retriever at the target (0.9)",
        ),
    ],  # fmt: skip
    description="Dense vs BM25 vs hybrid on the eval set: recall@1/5/10, MRR, nDCG@10 (ranx) "
    "and query latency p50/p95 (question embedding + search).",
)
def retrieval_evaluation(
    config: RetrievalEvalConfig,
    settings: SettingsResource,
    rag_index: IndexRef,
    rag_eval_set: EvalSet,
):  # -> MaterializeResult[RetrievalReport]; unannotated: checks are outputs too
    from ml_assets.rag.embedding import shared_embedder
    from ml_assets.rag.evaluation import best, evaluate_retrievers
    from ml_assets.rag.retrieval import RagIndex

    index = RagIndex(Path(rag_index.path))
    try:
        questions = {q.id: q.question for q in rag_eval_set.answerable}
        results = evaluate_retrievers(index, shared_embedder(), questions, rag_eval_set.qrels())
    finally:
        index.close()
    winner = best(results)
    recall5 = winner.metrics["recall@5"]
    accepted_file = files.rag_dir(Path(settings.home)) / "accepted_retrieval.json"
    accepted = json.loads(accepted_file.read_text()) if accepted_file.is_file() else None
    passed, message = recall_gate(recall5, accepted, config.tolerance)
    if passed:
        baseline = {"recall@5": recall5, "retriever": winner.retriever,
                    "index_version": rag_index.index_version,
                    "chunking_version": rag_index.chunking_version,
                    "model_id": rag_index.model_id}  # fmt: skip
        write_text_atomically(accepted_file, json.dumps(baseline))
    report = RetrievalReport(rag_index.index_version, winner.retriever,
                             {r.retriever: r.row() for r in results})  # fmt: skip
    return dg.MaterializeResult(
        value=report,
        metadata={
            "retrievers": _table([r.row() for r in results]),
            "best_retriever": winner.retriever,
            "recall@5": round(recall5, 4),
            "questions": len(questions),
            "index_version": rag_index.index_version,
            "chunking_version": rag_index.chunking_version,
            "accepted_baseline": accepted["recall@5"] if accepted else "none",
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=RECALL_NOT_LOWER,
                passed=passed,
                severity=dg.AssetCheckSeverity.ERROR,
                description=message,
                metadata={"recall@5": recall5},
            ),
            dg.AssetCheckResult(
                check_name=RECALL_TARGET,
                passed=recall5 >= config.recall_target,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"recall@5": recall5, "target": config.recall_target},
            ),
        ],  # fmt: skip
    )


@dg.asset(
    key=ANSWER_EVALUATION,
    group_name=GROUP,
    kinds={"pytorch"},
    check_specs=[
        dg.AssetCheckSpec(
            LATENCY_SLA,
            asset=ANSWER_EVALUATION,
            blocking=True,
            description="retrieval + generation p95 within ML_ASSETS_RAG_SLA_MS",
        ),
        dg.AssetCheckSpec(
            FAITHFULNESS_AUROC,
            asset=ANSWER_EVALUATION,
            description="the faithfulness proxy separates the labelled grounded "
            "and ungrounded answers (AUROC >= 0.9)",
        ),
    ],  # fmt: skip
    description="Answers with citations (extractive, or an LLM when ML_ASSETS_LLM_URL is set): "
    "faithfulness and relevance proxies, abstention, latency against the SLA, and the "
    "semantic-cache threshold chosen on the paraphrase pairs; writes the serving parameters.",
)
def answer_evaluation(
    config: AnswerEvalConfig,
    settings: SettingsResource,
    rag_index: IndexRef,
    rag_eval_set: EvalSet,
    retrieval_evaluation: RetrievalReport,
):  # -> MaterializeResult[dict]; unannotated: checks are outputs too
    from ml_assets.rag.answer_run import run_answer_evaluation

    outcome = run_answer_evaluation(
        Path(rag_index.path), rag_eval_set, retrieval_evaluation.best_retriever, config.k,
        config.max_cache_false_hits, dict(os.environ),
    )  # fmt: skip
    params = files.ServingParams(
        rag_index.index_version, retrieval_evaluation.best_retriever, config.k,
        outcome["min_similarity"], outcome["cache_threshold"],
    )  # fmt: skip
    params.write(Path(settings.home))
    p95, sla = outcome["answer_p95_ms"], settings.rag_sla_ms
    return dg.MaterializeResult(
        value=outcome,
        metadata={
            **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in outcome.items()},
            "serving_params": str(files.serving_params_path(Path(settings.home))),
        },  # fmt: skip
        check_results=[
            dg.AssetCheckResult(
                check_name=LATENCY_SLA,
                passed=p95 <= sla,
                severity=dg.AssetCheckSeverity.ERROR,
                description=f"answer p95 {p95:.1f} ms vs SLA {sla:.0f} ms",
                metadata={"p95_ms": p95, "sla_ms": sla},
            ),
            dg.AssetCheckResult(
                check_name=FAITHFULNESS_AUROC,
                passed=outcome["faithfulness_auroc"] >= 0.9,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    "auroc": outcome["faithfulness_auroc"],
                    "support_threshold": outcome["support_threshold"],
                },
            ),
        ],  # fmt: skip
    )
