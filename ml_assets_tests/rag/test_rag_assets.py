"""The RAG assets through Dagster on a user's own small corpus folder: every asset and
check, the serving parameters written, one changed document re-embedding one chunk, and
the blocking recall gate refusing a version that loses recall@5."""

import json
from dataclasses import replace

import dagster as dg
import pytest

from ml_assets.definitions import RAG_ASSETS, build_resources
from ml_assets.rag.files import ServingParams, rag_dir
from ml_assets.settings import Settings
from ml_assets_tests.support.rag import offline_embedder, small_corpus

pytestmark = pytest.mark.slow


def materialize(settings, selection, instance):
    return dg.materialize(RAG_ASSETS, selection=selection, instance=instance,
                          resources=build_resources(settings), raise_on_error=False)  # fmt: skip


def metadata(result, key):
    [event] = [e for e in result.get_asset_materialization_events()
               if e.asset_key.to_user_string() == key]  # fmt: skip
    return {k: v.value for k, v in event.materialization.metadata.items()}


def checks(result):
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def test_rag_assets_end_to_end(tmp_path):
    offline_embedder()
    corpus = small_corpus(tmp_path / "corpus")
    settings = replace(Settings(home=tmp_path / "home"), rag_corpus_dir=str(corpus),
                       rag_sla_ms=600_000.0)  # fmt: skip
    instance = dg.DagsterInstance.ephemeral()
    result = materialize(settings, "*", instance)
    assert result.success
    passed = checks(result)
    assert set(passed) == {"recall_at_5_not_below_accepted", "recall_at_5_target",
                           "answer_latency_within_sla", "faithfulness_proxy_auroc"}  # fmt: skip
    assert passed["recall_at_5_not_below_accepted"] and passed["answer_latency_within_sla"]
    eval_set = metadata(result, "rag_eval_set")
    assert eval_set["unanswerable"] >= 20 and eval_set["qrels_dropped_documents"]
    assert metadata(result, "rag_corpus")["documents"] == 6
    index = metadata(result, "rag_index")
    assert index["embedded"] == index["chunks"] > 0
    params = ServingParams.read(settings.home)
    assert params.index_version == index["index_version"]
    answers = metadata(result, "answer_evaluation")
    assert answers["abstention_on_unanswerable"] >= 0.5
    assert 0.0 <= answers["cache_false_hit_rate"] <= 0.01

    doc = corpus / "mcc-fuel.md"
    doc.write_text(doc.read_text().replace("no one sees", "nobody sees"))
    again = materialize(settings, ["rag_corpus", "rag_chunks", "rag_index"], instance)
    assert metadata(again, "rag_corpus")["changed"] == ["mcc-fuel"]
    assert metadata(again, "rag_chunks")["documents_rechunked"] == 1
    assert (metadata(again, "rag_index")["embedded"], metadata(again, "rag_index")["reused"]) == (
        1, index["chunks"] - 1)  # fmt: skip

    accepted = rag_dir(settings.home) / "accepted_retrieval.json"
    record = json.loads(accepted.read_text())
    accepted.write_text(json.dumps({**record, "recall@5": 1.01}))  # a baseline it cannot reach
    gated = materialize(settings, ["retrieval_evaluation"], instance)
    assert checks(gated)["recall_at_5_not_below_accepted"] is False
    assert json.loads(accepted.read_text())["recall@5"] == 1.01  # a refused version is not accepted
