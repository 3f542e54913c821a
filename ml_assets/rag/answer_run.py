"""`answer_evaluation`'s work as one plain function: choose the abstention cut and the
faithfulness threshold on the eval set, answer every question as the endpoint would, score
the answers, and calibrate the semantic cache."""

from __future__ import annotations

from pathlib import Path

from ml_assets.rag.answer_eval import (
    abstention_threshold,
    answer_questions,
    auroc,
    sentence_support,
    summarise,
    validate_faithfulness,
)
from ml_assets.rag.eval_set import EvalSet
from ml_assets.rag.generation import (
    ExtractiveGenerator,
    generator_from_env,
    judge_faithfulness,
    llm_client_from_env,
)
from ml_assets.rag.retrieval import RagIndex
from ml_assets.rag.semantic_cache import choose_threshold, pair_similarities
from ml_assets.rag.sentences import SentenceBank


def run_answer_evaluation(
    index_path: Path,
    eval_set: EvalSet,
    retriever: str,
    k: int,
    max_cache_false_hits: float,
    environ: dict,
    embedder=None,
) -> dict:
    from ml_assets.rag.embedding import shared_embedder

    embedder = embedder or shared_embedder()
    bank = SentenceBank(embedder)
    index = RagIndex(index_path)
    try:
        questions = eval_set.questions
        encoded = embedder.encode([q.question for q in questions])
        vectors = dict(zip([q.id for q in questions], encoded, strict=True))
        hits = {q.id: index.search(q.question, vectors[q.id], retriever, k) for q in questions}
        probe = ExtractiveGenerator(bank, min_similarity=-1.0)
        best = {q.id: probe.answer(q.question, vectors[q.id], hits[q.id]).support
                for q in questions}  # fmt: skip
        cut = abstention_threshold([best[q.id] for q in questions if q.answerable],
                                   [best[q.id] for q in questions if not q.answerable])  # fmt: skip
        supports = [sentence_support(a.answer, hits[a.question_id], bank)
                    for a in eval_set.labelled]  # fmt: skip
        grounded = [a.grounded for a in eval_set.labelled]
        proxy = validate_faithfulness(supports, grounded)
        generator = generator_from_env(environ, bank, cut)
        results = answer_questions(index, embedder, bank, generator,
                                   [(q.id, q.question, q.answerable) for q in questions],
                                   retriever, k, proxy.threshold)  # fmt: skip
        outcome = {
            "generator": generator.name,
            "retriever": retriever,
            "questions": len(questions),
            **summarise(results),
            "min_similarity": cut,
            "support_threshold": proxy.threshold,
            "faithfulness_auroc": proxy.auroc,
        }
        client = llm_client_from_env(environ)
        if client is not None:
            judged = [judge_faithfulness(client, a.answer, hits[a.question_id])
                      for a in eval_set.labelled]  # fmt: skip
            outcome["llm_judge_faithfulness_auroc"] = auroc(grounded, judged)
        cache = choose_threshold(pair_similarities(embedder, eval_set.paraphrase_pairs()),
                                 pair_similarities(embedder, eval_set.non_paraphrase_pairs()),
                                 max_cache_false_hits)  # fmt: skip
        outcome.update(cache_threshold=cache.threshold, cache_paraphrase_hit_rate=cache.hit_rate,
                       cache_false_hit_rate=cache.false_hit_rate,
                       cache_pairs=cache.pairs, cache_non_pairs=cache.non_pairs)  # fmt: skip
        return outcome
    finally:
        index.close()
