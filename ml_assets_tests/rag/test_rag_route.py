"""POST /rag/query on the real endpoint (uvicorn on loopback): parity with the index the
asset built, the semantic cache and its reset on a new index, bad input, metrics."""

import httpx
import pytest

from ml_assets.rag.files import index_path
from ml_assets.rag.retrieval import RagIndex
from ml_assets.serving.app import create_app
from ml_assets.serving.config import ServingConfig
from ml_assets.serving.local_server import serve_in_thread
from ml_assets_tests.support.rag import build_index, offline_embedder, small_corpus

pytestmark = pytest.mark.slow
KEY = "rag-test-key"
QUESTION = "How many small transactions trigger the card-testing flag?"


class NoModels:
    """A registry without a champion: /rag/query needs none."""

    def resolve(self, alias: str) -> None:
        return None

    def load(self, version: str):
        raise LookupError(version)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    corpus = small_corpus(tmp_path_factory.mktemp("corpus"))
    build_index(home, corpus)
    app = create_app(ServingConfig(home=home, api_keys=(KEY,)), registry=NoModels())
    with (
        serve_in_thread(app) as url,
        httpx.Client(base_url=url, headers={"X-API-Key": KEY}, timeout=120) as client,
    ):
        yield client, home, corpus


def ask(client: httpx.Client, question: str, **extra) -> httpx.Response:
    return client.post("/rag/query", json={"question": question, **extra})


def test_same_chunks_as_the_index_the_asset_built(served):
    client, home, _ = served
    response = ask(client, QUESTION)
    assert response.status_code == 200, response.text
    body = response.json()
    index = RagIndex(index_path(home))
    expected = index.search(QUESTION, offline_embedder().encode([QUESTION])[0], "hybrid", 4)
    index.close()
    assert [c["chunk_id"] for c in body["chunks"]] == [h.chunk_id for h in expected]
    assert body["chunks"][0]["doc_id"] == "policy-card-testing"
    assert not body["abstained"] and body["citations"]
    assert all(f"[{c}]" in body["answer"] for c in body["citations"])
    assert set(body["latency_ms"]) == {"embed", "search", "generate", "total"}


def test_semantic_cache_hits_a_paraphrase_and_clears_on_a_new_index(served):
    client, home, corpus = served
    first = ask(client, "What are the chargeback time limits for filing?").json()
    again = ask(client, "What are the time limits for filing chargebacks?").json()
    assert again["cached"] and again["cache_similarity"] >= 0.9
    assert again["chunks"] == first["chunks"]
    other = ask(client, "What is the average restaurant ticket?").json()
    assert not other["cached"]

    doc = corpus / "chargeback-time-limits.md"
    doc.write_text(doc.read_text() + "\n## Note\nWeekends count as calendar days.\n")
    version = build_index(home, corpus)
    after = ask(client, "What are the chargeback time limits for filing?").json()
    assert not after["cached"] and after["index_version"] == version

    metrics = client.get("/metrics").text
    assert 'ml_assets_serving_rag_cache_total{outcome="hit"}' in metrics
    assert 'ml_assets_serving_rag_latency_seconds_count{stage="search"}' in metrics


@pytest.mark.parametrize(
    "body",
    [
        {"question": ""},
        {"question": "   "},
        {"question": "x" * 1001},
        {"question": "card\x00testing"},
        {"question": QUESTION, "k": 0},
        {"question": QUESTION, "retriever": "sparse"},
        {"question": QUESTION, "extra": 1},
        {"question": 42},
        {},
    ],
)
def test_bad_input_is_a_422_naming_the_field(served, body):
    client, _, _ = served
    response = client.post("/rag/query", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"]


def test_unreadable_bodies_and_missing_keys_are_4xx(served):
    client, _, _ = served
    latin1 = '{"question": "caf\xe9 purchase"}'.encode("latin-1")
    response = client.post("/rag/query", content=latin1,
                           headers={"content-type": "application/json"})  # fmt: skip
    assert 400 <= response.status_code < 500
    assert client.post("/rag/query", content=b"not json",
                       headers={"content-type": "application/json"}).status_code == 422  # fmt: skip
    keyless = httpx.post(f"{client.base_url}/rag/query", json={"question": QUESTION})
    assert keyless.status_code == 401
