"""The evaluation arithmetic on tiny fixtures whose values are computed by hand here."""

import math

import numpy as np
import pytest

from ml_assets.rag.answer_eval import abstention_threshold, faithfulness, validate_faithfulness
from ml_assets.rag.evaluation import doc_run, ranx_scores
from ml_assets.rag.evaluation_assets import recall_gate
from ml_assets.rag.retrieval import rrf
from ml_assets.rag.semantic_cache import SemanticCache, choose_threshold

QRELS = {"q1": {"d1": 2, "d2": 1}, "q2": {"d3": 1}}
RUN = {"q1": ["d3", "d1", "d4", "d2"], "q2": ["d1", "d2", "d4", "d5", "d6", "d3"]}


def test_ranx_metrics_match_hand_computed_values():
    scores = ranx_scores(QRELS, {q: doc_run(docs) for q, docs in RUN.items()})
    # recall@1: no relevant document first for either question.
    assert scores["recall@1"] == pytest.approx(0.0)
    # recall@5: q1 finds d1 (rank 2) and d2 (rank 4) = 1; q2's d3 is 6th = 0.
    assert scores["recall@5"] == pytest.approx(0.5)
    assert scores["recall@10"] == pytest.approx(1.0)
    # MRR: q1 first relevant at rank 2, q2 at rank 6.
    assert scores["mrr"] == pytest.approx((1 / 2 + 1 / 6) / 2)
    # nDCG@10 with gain = grade, discount log2(rank + 1).
    q1 = (2 / math.log2(3) + 1 / math.log2(5)) / (2 / math.log2(2) + 1 / math.log2(3))
    q2 = (1 / math.log2(7)) / 1.0
    assert scores["ndcg@10"] == pytest.approx((q1 + q2) / 2, abs=1e-4)


def test_a_question_without_results_scores_zero():
    scores = ranx_scores(QRELS, {"q1": doc_run(["d1"])})
    assert scores["recall@1"] == pytest.approx(0.5 / 2)  # q1: d1 of {d1, d2}; q2: nothing


def test_rrf_by_hand_and_equal_to_ranx_fuse():
    from ranx import Run, fuse

    fused = rrf([["a", "b", "c"], ["b", "c", "d"]], k=60)
    assert [item for item, _ in fused] == ["b", "c", "a", "d"]
    assert dict(fused)["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert dict(fused)["d"] == pytest.approx(1 / 63)
    runs = [Run({"q": {"a": 3.0, "b": 2.0, "c": 1.0}}), Run({"q": {"b": 3.0, "c": 2.0, "d": 1.0}})]
    theirs = fuse(runs, method="rrf", params={"k": 60}).to_dict()["q"]
    assert sorted(theirs, key=lambda d: -theirs[d]) == ["b", "c", "a", "d"]
    assert theirs == pytest.approx(dict(fused))


def test_recall_gate_blocks_a_version_that_loses_recall():
    accepted = {"recall@5": 0.9, "index_version": "v1", "chunking_version": "c1"}
    assert recall_gate(0.95, None, 0.0)[0]
    assert recall_gate(0.9, accepted, 0.0)[0]
    passed, message = recall_gate(0.85, accepted, 0.0)
    assert not passed and "LOST" in message
    assert recall_gate(0.85, accepted, 0.05)[0]


def test_cache_threshold_is_the_lowest_within_the_false_hit_budget():
    paraphrase = np.array([0.95, 0.9, 0.8])
    others = np.array([0.85, 0.5, 0.3, 0.2])
    strict = choose_threshold(paraphrase, others, max_false_hits=0.0)
    assert strict.threshold == pytest.approx(0.9)  # 0.85 would let one of four through
    assert strict.hit_rate == pytest.approx(2 / 3) and strict.false_hit_rate == 0.0
    loose = choose_threshold(paraphrase, others, max_false_hits=0.25)
    assert loose.threshold == pytest.approx(0.8) and loose.hit_rate == pytest.approx(1.0)


def test_semantic_cache_hits_within_threshold_and_clears_on_new_version():
    cache = SemanticCache(threshold=0.9, max_items=2)
    cache.clear_if_version_changed("v1")
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    cache.put(a, "answer a")
    near = np.array([0.96, 0.28])  # cosine 0.96 to a
    assert cache.get(near) == ("answer a", pytest.approx(0.96))
    assert cache.get(b) is None
    assert not cache.clear_if_version_changed("v1")
    assert cache.clear_if_version_changed("v2") and cache.get(a) is None


def test_faithfulness_proxy_threshold_and_auroc_by_hand():
    assert faithfulness(np.array([0.9, 0.5]), 0.6) == 0.5
    assert faithfulness(np.zeros(0), 0.6) == 1.0
    supports = [np.array([0.9, 0.8]), np.array([0.9, 0.5]), np.array([0.6])]
    grounded = [True, False, False]
    result = validate_faithfulness(supports, grounded)
    # t=0.40: scores 1, 1, 1 -> AUROC 0.5; t=0.55: 1, .5, 1 -> 0.75; t in 0.65..0.80:
    # 1, .5, 0 -> 1.0 (the strictest, 0.80, is kept); t=0.85: .5, .5, 0 -> 0.75.
    assert result.by_threshold[0.4] == pytest.approx(0.5)
    assert result.by_threshold[0.55] == pytest.approx(0.75)
    assert result.by_threshold[0.85] == pytest.approx(0.75)
    assert (result.threshold, result.auroc) == (0.8, pytest.approx(1.0))


def test_abstention_threshold_maximises_balanced_accuracy():
    # t=0.6 keeps 2 of 3 answerable and refuses both unanswerable: 2/3 + 1, the best.
    assert abstention_threshold([0.7, 0.6, 0.4], [0.3, 0.5]) == pytest.approx(0.6)


def test_sentences_keep_figures_and_drop_list_markers_and_citations():
    from ml_assets.rag.sentences import split_sentences

    text = "1. Check the merchant [a#1]. 10,000 EUR for premium cards. - At most 3,000 EUR.\n- Ok."
    assert split_sentences(text) == [
        "Check the merchant.", "10,000 EUR for premium cards.", "At most 3,000 EUR."
    ]  # fmt: skip
