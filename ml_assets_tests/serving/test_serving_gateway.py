"""Bad input never gets a 500: auth, rate limit, body size and validation on a live server."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from ml_assets.serving.app import create_app
from ml_assets_tests.support.worlds import World, metric_value

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("serving")]


def _fields(response: httpx.Response) -> list[str]:
    assert response.status_code == 422, response.text
    return [d["field"] for d in response.json()["detail"]]


def test_bad_requests_are_refused_with_the_right_status(world: World, tmp_path: Path) -> None:
    config = world.config(tmp_path, max_body_bytes=20_000, max_batch_items=50)
    with world.serve(create_app(config)) as client:
        good = world.transaction(1)

        assert client.post("/predict", json=good, headers={"X-API-Key": ""}).status_code == 401
        anonymous = httpx.post(f"{client.base_url}/predict", json=good)
        assert anonymous.status_code == 401
        assert "X-API-Key" in anonymous.json()["detail"]
        assert client.post("/predict", json=good, headers={"X-API-Key": "nope"}).status_code == 403
        bearer = httpx.post(f"{client.base_url}/predict", json=good,
                            headers={"Authorization": "Bearer test-key-0123456789"})  # fmt: skip
        assert bearer.status_code == 200
        assert client.post("/admin/reload", headers={"X-API-Key": "nope"}).status_code == 403
        assert httpx.get(f"{client.base_url}/review").status_code == 401
        assert httpx.get(f"{client.base_url}/health").status_code == 200  # public

        assert _fields(client.post("/predict", json={**good, "amount": "12.5"})) == ["amount"]
        assert _fields(client.post("/predict", json={**good, "customer_id": 17})) == ["customer_id"]
        missing = {k: v for k, v in good.items() if k != "merchant_id"}
        assert _fields(client.post("/predict", json=missing)) == ["merchant_id"]
        assert _fields(client.post("/predict", json={**good, "amount": -3})) == ["amount"]
        assert _fields(client.post("/predict", json={**good, "event_time": "yesterday"})) == [
            "event_time"
        ]
        for literal in ("NaN", "Infinity", "-Infinity", "1e999"):
            raw = client.post(
                "/predict",
                content=httpx.Request("POST", "/", json=good).content.replace(
                    b'"amount":' + str(good["amount"]).encode(), b'"amount":' + literal.encode()
                ),
                headers={"content-type": "application/json"},
            )
            assert _fields(raw) == ["amount"], literal
        malformed = client.post("/predict", content=b'{"transaction_id": ',
                                headers={"content-type": "application/json"})  # fmt: skip
        assert malformed.status_code == 422
        assert client.post("/predict", json=[good]).status_code == 422
        assert client.post("/predict/batch", json={"transactions": []}).status_code == 422
        too_many = {"transactions": [world.transaction(i) for i in range(51)]}
        too_many_response = client.post("/predict/batch", json=too_many)
        assert too_many_response.status_code in (413, 422)

        huge = {"transactions": [good] * 2_000}
        assert client.post("/predict/batch", json=huge).status_code == 413

        def chunks():  # no Content-Length: the streamed body is counted
            for _ in range(100):
                yield b" " * 1_000

        streamed = client.post("/predict", content=chunks(),
                               headers={"content-type": "application/json"})  # fmt: skip
        assert streamed.status_code == 413

        metrics = client.get("/metrics").text
        assert metric_value(
            metrics, "ml_assets_serving_http_requests_total", route="/predict", status="500"
        ) == 0  # fmt: skip


def test_each_key_is_rate_limited(world: World, tmp_path: Path) -> None:
    config = world.config(tmp_path, rate_limit_per_s=0.001, rate_limit_burst=3,
                          api_keys=("key-a", "key-b"))  # fmt: skip
    with world.serve(create_app(config), ready=False) as client:
        body = world.transaction(1)
        statuses = [
            client.post("/predict", json=body, headers={"X-API-Key": "key-a"}).status_code
            for _ in range(5)
        ]
        assert statuses == [200, 200, 200, 429, 429]
        limited = client.post("/predict", json=body, headers={"X-API-Key": "key-a"})
        assert int(limited.headers["retry-after"]) >= 1
        other = client.post("/predict", json=body, headers={"X-API-Key": "key-b"})
        assert other.status_code == 200  # another key has its own bucket
        assert client.get("/health").status_code == 200
        assert metric_value(client.get("/metrics").text,
                            "ml_assets_serving_rate_limited_total") == 3  # fmt: skip
