"""POST /review/{transaction_id} on the live endpoint (uvicorn on loopback, a real registry
and online store): a reviewer resolves what the model sent to review, and the decision is
what the data layer reads as a label."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from ml_assets.data.review_decisions import labels_from_decisions, read_decisions, review_store
from ml_assets.serving.app import create_app
from ml_assets.settings import DecisionThresholds
from ml_assets_tests.support.worlds import World, metric_value

pytestmark = pytest.mark.xdist_group("serving")


def _queue(client: httpx.Client, world: World, *numbers: int) -> list[str]:
    """Score transactions that the review-everything thresholds send to the queue (the
    model's answers, or the rules' if the model timed out: both are queued)."""
    ids = []
    for i in numbers:
        answer = client.post("/predict", json=world.transaction(i)).json()
        assert answer["decision"] == "review", answer
        ids.append(answer["transaction_id"])
    return ids


def test_reviewers_resolve_queued_items_once(world: World, tmp_path: Path) -> None:
    config = world.config(tmp_path, decisions=DecisionThresholds(0.0, 1.0), cache_size=0)
    with world.serve(create_app(config)) as client:
        fraud, legit, escalated = _queue(client, world, 11, 12, 13)
        assert client.get("/review").json()["count"] == 3

        decision = {"decision": "fraud", "reviewer_id": "ana", "note": "mule"}
        first = client.post(f"/review/{fraud}", json=decision)
        assert first.status_code == 200, first.text
        body = first.json()
        assert (body["decision"], body["status"], body["is_fraud"]) == ("fraud", "decided", 1)
        assert (body["reviewer_id"], body["note"]) == ("ana", "mule")
        # The first final decision stands: a second one is refused and names it.
        second = client.post(f"/review/{fraud}", json={"decision": "legitimate",
                                                       "reviewer_id": "bo"})  # fmt: skip
        assert second.status_code == 409 and "fraud by ana" in second.json()["detail"]

        legit_answer = client.post(
            f"/review/{legit}", json={"decision": "legitimate", "reviewer_id": "ana"}
        ).json()
        assert legit_answer["is_fraud"] == 0

        # Escalation hands the item to a second reviewer, who then decides it.
        up = client.post(
            f"/review/{escalated}", json={"decision": "escalate", "reviewer_id": "ana"}
        )
        assert (up.status_code, up.json()["status"], up.json()["is_fraud"]) == (
            200,
            "escalated",
            None,
        )
        again = client.post(
            f"/review/{escalated}", json={"decision": "escalate", "reviewer_id": "bo"}
        )
        assert again.status_code == 409
        waiting = client.get("/review", params={"status": "escalated"}).json()["items"]
        assert [i["transaction_id"] for i in waiting] == [escalated]
        final = client.post(
            f"/review/{escalated}", json={"decision": "fraud", "reviewer_id": "lead"}
        )
        assert final.json()["status"] == "decided"

        assert client.get("/review").json()["count"] == 0
        decided = client.get("/review", params={"status": "decided"}).json()["items"]
        assert {(i["transaction_id"], i["decision"]) for i in decided} == {
            (fraud, "fraud"), (legit, "legitimate"), (escalated, "fraud"),
        }  # fmt: skip

        # A scored-again transaction that was decided stays decided.
        _queue(client, world, 11)
        assert client.get("/review").json()["count"] == 0

        assert client.post("/review/T-never-queued", json={"decision": "fraud",
                            "reviewer_id": "ana"}).status_code == 404  # fmt: skip
        metrics = client.get("/metrics").text

    assert metric_value(metrics, "ml_assets_serving_http_requests_total", route="other",
                        status="500") == 0  # fmt: skip
    # What the review_labels asset reads: two labels of today, the escalation left out.
    today = datetime.now(UTC).date()
    labels = labels_from_decisions(read_decisions(review_store(config.serving_dir), today))
    assert dict(zip(labels["transaction_id"], labels["is_fraud"], strict=True)) == {
        fraud: 1, legit: 0, escalated: 1,
    }  # fmt: skip


BAD_BODIES = [
    ({"decision": "maybe", "reviewer_id": "ana"}, "decision"),
    ({"decision": "fraud"}, "reviewer_id"),
    ({"decision": "fraud", "reviewer_id": ""}, "reviewer_id"),
    ({"decision": "fraud", "reviewer_id": 7}, "reviewer_id"),
    ({"decision": "fraud", "reviewer_id": "ana", "note": "x" * 2001}, "note"),
    ({"decision": "fraud", "reviewer_id": "ana", "label": 1}, "label"),
]


def test_bad_decisions_are_refused_naming_the_field(world: World, tmp_path: Path) -> None:
    config = world.config(tmp_path, decisions=DecisionThresholds(0.0, 1.0), cache_size=0)
    with world.serve(create_app(config)) as client:
        (queued,) = _queue(client, world, 21)
        for body, field in BAD_BODIES:
            response = client.post(f"/review/{queued}", json=body)
            assert response.status_code == 422, (body, response.text)
            assert [d["field"] for d in response.json()["detail"]] == [field], body
        good = {"decision": "fraud", "reviewer_id": "ana"}
        too_long = client.post("/review/" + "x" * 129, json=good)
        assert too_long.status_code == 422
        assert [d["field"] for d in too_long.json()["detail"]] == ["path.transaction_id"]
        headers = {"content-type": "application/json"}
        not_utf8 = client.post(f"/review/{queued}", content=b"\xff\xfe\xfd", headers=headers)
        assert not_utf8.status_code == 400
        assert client.get("/review").json()["count"] == 1  # nothing was decided
