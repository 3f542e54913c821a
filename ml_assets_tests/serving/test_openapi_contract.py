"""The OpenAPI schema is the contract: schemathesis generates valid and invalid requests for
every operation of the live endpoint (a real registry, a real online store, uvicorn on
loopback) and checks each answer against the schema with every check enabled. Extreme
inputs are refused with a 4xx naming the field, never a 500."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import settings

from ml_assets.serving.app import REVIEW_EXAMPLE_TRANSACTION, create_app
from ml_assets.serving.review_queue import ReviewQueue
from ml_assets_tests.support.rag import build_index, small_corpus
from ml_assets_tests.support.worlds import API_KEY, World, metric_value

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("serving")]

SCORING = ["/predict", "/predict/batch", "/events"]
# What positive_data_acceptance accepts by default, plus 422 for the scoring operations: the
# event-time window is relative to the clock, which JSON Schema cannot state. The extra check
# below allows that 422 only when every named field is an event_time.
POSITIVE_STATUSES = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]


@dataclass
class Tally:
    """Answers seen per operation and status (the run must not be vacuous)."""

    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)


@pytest.fixture
def served(world: World, tmp_path: Path) -> Iterator[tuple[httpx.Client, Tally]]:
    # Schemathesis sends wrong and missing keys on purpose (the ignored_auth check) and
    # many requests a second: the lockout and the key rate stay out of its way here (both
    # have tests of their own).
    config = world.config(tmp_path, auth_failures_per_min=1_000_000, rate_limit_per_s=1e6,
                          rate_limit_burst=1_000_000)  # fmt: skip
    build_index(config.home, small_corpus(tmp_path / "corpus"))  # /rag/query answers too
    _queue_review_example(config.serving_dir, world)  # POST /review/{id}'s example can be decided
    tally = Tally()
    # Every stage loaded, so the answers of both arms and /admin/models' canary and shadow
    # are held to the schema too.
    world.set_stages(canary=world.versions[1], shadow=world.versions[1], canary_share=0.5)
    with world.serve(create_app(config)) as client:
        assert client.post("/admin/reload", params={"wait": "true"}).json()["canary"]
        yield client, tally
        seen = {operation for operation, status in tally.statuses if 200 <= status < 300}
        every = {label for label, _ in tally.statuses}
        assert seen == every, f"operations never answered 2xx: {every - seen}"
        assert not any(status >= 500 for _, status in tally.statuses), tally.statuses
        assert metric_value(client.get("/metrics").text, "ml_assets_serving_http_requests_total",
                            status="500") == 0  # fmt: skip


def _queue_review_example(serving_dir: Path, world: World) -> None:
    """Queue the item that POST /review/{transaction_id}'s documented example decides."""
    queue = ReviewQueue(serving_dir)
    request = world.transaction(1, transaction_id=REVIEW_EXAMPLE_TRANSACTION)
    queue.add(
        {
            "created_at": world.now,
            "request_id": "example",
            "score": 0.5,
            "path": "review",
            "transaction_id": REVIEW_EXAMPLE_TRANSACTION,
            "request": request,
            "features": {},
        }
    )
    queue.close()


@pytest.fixture
def api_schema(served: tuple[httpx.Client, Tally]) -> Any:
    client, _ = served
    config = schemathesis.Config.from_dict(
        {
            "generation": {"max-examples": 30, "database": "none"},
            "auth": {"openapi": {"ApiKey": {"api_key": API_KEY}}},
            "operations": [
                {
                    "include-path": SCORING,
                    "checks": {
                        "positive_data_acceptance": {
                            "expected-statuses": [*POSITIVE_STATUSES, "422"]
                        }
                    },
                }
            ],
        }
    )
    return schemathesis.openapi.from_url(f"{client.base_url}/openapi.json", config=config)


def only_event_time_is_refused(ctx: Any, response: Any, case: schemathesis.Case) -> None:
    """A schema-valid request may be refused only for its event time (outside the window
    around the clock); any other field the schema allows must be accepted."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    if response.status_code != 422:
        return
    fields = [d["field"] for d in json.loads(response.content)["detail"]]
    others = [f for f in fields if f.rsplit(".", 1)[-1] != "event_time"]
    assert not others, f"schema-valid request refused for {others}: {response.content[:300]!r}"


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=30, deadline=None)
def test_every_operation_answers_as_documented(
    case: schemathesis.Case, served: tuple[httpx.Client, Tally]
) -> None:
    response = case.call_and_validate(additional_checks=[only_event_time_is_refused])
    served[1].statuses[(case.operation.label, response.status_code)] += 1


def test_the_schema_documents_errors_and_content_types(world: World, tmp_path: Path) -> None:
    app = create_app(world.config(tmp_path, max_batch_items=50))
    spec = app.openapi()
    app.state.service.reader.close()  # never served: nothing else was opened
    paths = spec["paths"]
    for path in SCORING:
        responses = paths[path]["post"]["responses"]
        assert {"400", "401", "403", "413", "422", "429", "503"} <= set(responses), path
        assert "Retry-After" in responses["429"]["headers"]
        assert "Retry-After" in responses["503"]["headers"]
    assert "202" in paths["/events"]["post"]["responses"]
    assert {"200", "202"} <= set(paths["/admin/reload"]["post"]["responses"])
    assert set(paths["/metrics"]["get"]["responses"]["200"]["content"]) == {"text/plain"}
    assert "503" in paths["/ready"]["get"]["responses"]
    error = spec["components"]["schemas"]["FieldError"]
    assert set(error["required"]) == {"field", "type", "msg"}
    assert set(spec["components"]["schemas"]["ValidationErrorBody"]["required"]) == {
        "detail", "message",
    }  # fmt: skip
    batch = spec["components"]["schemas"]["BatchRequest"]["properties"]["transactions"]
    assert batch["maxItems"] == 50
    assert paths["/predict"]["post"]["security"] and "security" not in paths["/health"]["get"]


EXTREME_TIMES = [
    "0001-01-01T00:30:00+01:00",  # before year 1 in UTC
    "9999-12-31T23:00:00-01:00",  # after year 9999 in UTC
    "0001-01-01T00:00:00",
    "9999-12-31T23:59:59.999999",
    "2026-02-30T00:00:00Z",
    "",
    "x" * 100_000,
]


def test_extreme_inputs_are_refused_with_a_4xx_naming_the_field(
    world: World, tmp_path: Path
) -> None:
    config = world.config(tmp_path, max_body_bytes=200_000)
    with world.serve(create_app(config)) as client:
        good = world.transaction(1, event_time=None)

        def fields(response: httpx.Response) -> list[str]:
            assert response.status_code == 422, response.text
            return [d["field"] for d in response.json()["detail"]]

        for moment in EXTREME_TIMES:
            assert fields(client.post("/predict", json={**good, "event_time": moment})) == [
                "event_time"
            ], moment
            batch = {"transactions": [good, {**good, "event_time": moment}]}
            expected = ["transactions.1.event_time"]
            assert fields(client.post("/predict/batch", json=batch)) == expected, moment
            assert fields(client.post("/events", json=batch)) == expected, moment

        for name in ("transaction_id", "customer_id", "merchant_id", "channel"):
            assert fields(client.post("/predict", json={**good, name: ""})) == [name]
            assert fields(client.post("/predict", json={**good, name: "x" * 129})) == [name]
        huge = client.post("/predict", json={**good, "customer_id": "x" * 300_000})
        assert huge.status_code == 413
        raw = json.dumps(good).encode()
        for literal in (b"NaN", b"-Infinity", b"1e999"):
            body = raw.replace(f'"amount": {good["amount"]}'.encode(), b'"amount": ' + literal)
            assert fields(client.post("/predict", content=body,
                                      headers={"content-type": "application/json"})) == [
                "amount"
            ]  # fmt: skip
        for body in (raw.replace(b'"T-1"', b'"T-\xff\xfe"'), b"\xff\xfe\xfd", b"\xc3("):
            response = client.post("/predict", content=body,
                                   headers={"content-type": "application/json"})  # fmt: skip
            assert response.status_code == 400, response.text
            assert response.json()["detail"]
        assert client.post("/predict", content=b"", headers={"content-type": "application/json"}
                           ).status_code == 422  # fmt: skip
        assert client.post("/events", json={"transactions": []}).status_code == 422
        too_many = {"transactions": [good] * (config.max_batch_items + 1)}
        assert fields(client.post("/events", json=too_many)) == ["transactions"]

        metrics = client.get("/metrics").text
    for route in SCORING:
        assert metric_value(metrics, "ml_assets_serving_http_requests_total", route=route,
                            status="500") == 0  # fmt: skip
