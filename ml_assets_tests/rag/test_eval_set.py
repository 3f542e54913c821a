"""The shipped evaluation set: sizes the issue asks for, qrels that name real documents,
and its BEIR export."""

import json

from ml_assets.rag.documents import PROJECT_DOCS, SHIPPED_CORPUS, read_documents
from ml_assets.rag.eval_set import check_qrels, load_eval_set, write_beir


def test_shipped_eval_set_sizes():
    eval_set = load_eval_set()
    assert len(eval_set.answerable) >= 120
    assert len(eval_set.questions) - len(eval_set.answerable) >= 20
    assert all(q.answer for q in eval_set.answerable)
    assert len(eval_set.paraphrase_pairs()) >= 30
    labels = [a.grounded for a in eval_set.labelled]
    assert labels.count(False) >= 20 and labels.count(True) >= 20
    assert len({q.id for q in eval_set.questions}) == len(eval_set.questions)


def test_qrels_name_documents_of_the_shipped_corpus():
    documents = read_documents(SHIPPED_CORPUS, PROJECT_DOCS)
    assert check_qrels(load_eval_set(), set(documents["doc_id"])) == []


def test_non_paraphrase_pairs_start_with_same_document_pairs():
    eval_set = load_eval_set()
    pairs = eval_set.non_paraphrase_pairs(limit=50)
    by_text = {q.question: q for q in eval_set.questions}
    first = pairs[0]
    assert set(by_text[first[0]].qrels) & set(by_text[first[1]].qrels)
    assert not set(eval_set.paraphrase_pairs()) & set(pairs)


def test_beir_layout(tmp_path):
    eval_set = load_eval_set()
    documents = read_documents(SHIPPED_CORPUS, PROJECT_DOCS)
    paths = write_beir(eval_set, documents, tmp_path)
    corpus = [json.loads(line) for line in paths["corpus"].read_text().splitlines()]
    queries = [json.loads(line) for line in paths["queries"].read_text().splitlines()]
    qrels = paths["qrels"].read_text().splitlines()
    assert paths["qrels"] == tmp_path / "qrels" / "test.tsv"
    assert set(corpus[0]) == {"_id", "title", "text"} and len(corpus) == documents.height
    assert len(queries) == len(eval_set.questions)
    assert qrels[0] == "query-id\tcorpus-id\tscore"
    assert len(qrels) - 1 == sum(len(q.qrels) for q in eval_set.answerable)
