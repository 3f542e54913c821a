"""Overload, failed authentication and readiness on a live server: a saturated replica sheds
load with 503 + Retry-After instead of queueing, an address guessing keys is locked out with
429 while other clients go on, and a replica whose breaker is open reports not ready."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from ml_assets.serving.app import create_app
from ml_assets.serving.batcher import MicroBatcher, Overloaded
from ml_assets.serving.gateway import FailureWindow
from ml_assets_tests.support.worlds import API_KEY, ControlledRegistry, World, metric_value


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# -- the parts, without a server ------------------------------------------------------------


def test_submit_many_admits_all_items_or_none() -> None:
    batcher: MicroBatcher[int, int] = MicroBatcher(lambda items: items, max_queue=4,
                                                   retry_after_s=2.5)  # fmt: skip
    # Not started: nothing leaves the queue, so admission alone decides.

    async def main() -> None:
        assert len(batcher.submit_many([1, 2, 3])) == 3
        with pytest.raises(Overloaded) as refused:
            batcher.submit_many([4, 5])
        assert refused.value.retry_after_s == 2.5
        assert batcher.queued == 3  # nothing of the refused request was queued
        batcher.submit(4)
        with pytest.raises(Overloaded):
            batcher.submit(5)
        with pytest.raises(Overloaded, match="split the batch"):
            MicroBatcher(lambda items: items, max_queue=2).submit_many([1, 2, 3])

    asyncio.run(main())


def test_abandoned_entries_free_their_place() -> None:
    batcher: MicroBatcher[int, int] = MicroBatcher(lambda items: items, max_queue=2)

    async def main() -> None:
        first, second = batcher.submit_many([1, 2])
        first.cancel()  # its caller timed out
        assert len(batcher.submit_many([3])) == 1
        assert batcher.queued == 2
        assert not second.done()

    asyncio.run(main())


def test_failure_window_locks_an_address_for_a_minute_and_stays_bounded() -> None:
    clock = Clock()
    window = FailureWindow(3, window_s=60.0, max_clients=2, clock=clock)
    for t in (0.0, 10.0, 20.0):
        assert window.blocked("a") == 0
        clock.now = t
        window.record("a")
    assert window.blocked("a") == pytest.approx(40.0)  # until the first failure is 60 s old
    assert window.blocked("b") == 0
    clock.now = 60.0
    assert window.blocked("a") == 0  # the oldest failure left the window: one more try
    window.record("a")
    assert window.blocked("a") == pytest.approx(10.0)
    window.record("b")
    window.record("c")  # a third address: the least recently failing one is forgotten
    assert len(window) == 2
    assert window.blocked("a") == 0
    assert FailureWindow(0).blocked("a") == 0  # 0 disables the lockout


# -- on a live server -----------------------------------------------------------------------


async def _post_all(
    client: httpx.AsyncClient, path: str, bodies: Sequence[dict[str, Any]]
) -> list[httpx.Response]:
    return list(await asyncio.gather(*(client.post(path, json=b) for b in bodies)))


async def _until(condition: Any, what: str) -> None:
    """Wait (bounded) until `condition()` holds; nothing is asserted about how long it took."""
    for _ in range(3000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


@pytest.mark.slow
@pytest.mark.xdist_group("serving")
def test_a_full_queue_answers_503_with_retry_after_and_admitted_requests_are_scored(
    world: World, tmp_path: Path
) -> None:
    registry = ControlledRegistry(world.tracking_uri)
    max_queue = 4
    config = world.config(
        tmp_path, max_queue=max_queue, retry_after_s=2.0, batch_max_size=64,
        request_timeout_s=30.0, breaker_failures=1_000, cache_size=0, shadow=False,
    )  # fmt: skip
    app = create_app(config, registry=registry)
    batcher = app.state.service.batcher
    # The service builds its batcher from the config.
    assert (batcher.max_queue, batcher.retry_after_s) == (max_queue, 2.0)
    with world.serve(app) as sync_client:
        model = registry.loaded[world.versions[0]]
        model.mode, model.delay_s = "slow", 2.0

        async def scenario() -> dict[str, Any]:
            async with httpx.AsyncClient(
                base_url=str(sync_client.base_url), headers={"X-API-Key": API_KEY}, timeout=60,
                limits=httpx.Limits(max_connections=64),
            ) as client:  # fmt: skip
                out: dict[str, Any] = {}
                # 1. The worker is busy with one request; the queue fills up to max_queue.
                calls = model.calls
                blocker = asyncio.create_task(client.post("/predict", json=world.transaction(0)))
                await _until(lambda: model.calls > calls, "the model is busy")
                three = [world.transaction(i) for i in range(1, 4)]
                batch = asyncio.create_task(
                    client.post("/predict/batch", json={"transactions": three})
                )
                await _until(lambda: batcher.queued == 3, "the batch of 3 is queued")
                two = [world.transaction(i) for i in range(4, 6)]
                out["refused_batch"] = await client.post("/predict/batch",
                                                         json={"transactions": two})  # fmt: skip
                assert batcher.queued == 3  # all or none: nothing of the refused batch queued
                single = asyncio.create_task(client.post("/predict", json=world.transaction(6)))
                await _until(lambda: batcher.queued == max_queue, "the queue is full")
                out["refused_single"] = await client.post("/predict", json=world.transaction(7))
                out["admitted"] = [await blocker, await batch, await single]

                # 2. A burst of concurrent requests against a busy worker and an empty queue.
                calls = model.calls
                blocker = asyncio.create_task(client.post("/predict", json=world.transaction(10)))
                await _until(lambda: model.calls > calls, "the model is busy again")
                burst = [world.transaction(100 + i) for i in range(12)]
                out["burst"] = await _post_all(client, "/predict", burst)
                out["burst_blocker"] = await blocker
                return out

        out = asyncio.run(scenario())
        model.mode = "ok"
        metrics = sync_client.get("/metrics").text

    for refused in (out["refused_batch"], out["refused_single"]):
        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"] == "2"
        assert "queue" in refused.json()["detail"]
    blocker, batch, single = out["admitted"]
    assert blocker.status_code == batch.status_code == single.status_code == 200
    answers = [blocker.json(), *batch.json()["predictions"], single.json()]
    assert [a["transaction_id"] for a in answers] == ["T-0", "T-1", "T-2", "T-3", "T-6"]
    assert {a["path"] for a in answers} <= {"model", "review"}  # scored by the model

    statuses = Counter(r.status_code for r in out["burst"])
    assert statuses == {200: max_queue, 503: len(out["burst"]) - max_queue}, statuses
    assert out["burst_blocker"].status_code == 200
    for response in out["burst"]:
        if response.status_code == 503:
            assert response.headers["retry-after"] == "2"
        else:
            assert response.json()["path"] in {"model", "review"}
    for status in ("500", "502", "504"):
        assert metric_value(metrics, "ml_assets_serving_http_requests_total",
                            route="/predict", status=status) == 0  # fmt: skip
    assert metric_value(metrics, "ml_assets_serving_http_requests_total", route="/predict",
                        status="503") == 1 + len(out["burst"]) - max_queue  # fmt: skip


@pytest.mark.slow
@pytest.mark.xdist_group("serving")
def test_wrong_keys_from_one_address_are_locked_out_while_other_clients_go_on(
    world: World, tmp_path: Path
) -> None:
    limit = 5
    config = world.config(tmp_path, auth_failures_per_min=limit)
    with world.serve(create_app(config)) as client:  # client: 127.0.0.1
        other = httpx.Client(
            base_url=str(client.base_url), headers={"X-API-Key": API_KEY},
            transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=30,
        )  # fmt: skip
        with other:
            body = world.transaction(1)
            wrong = {"X-API-Key": "guess"}
            first = [client.post("/predict", json=body, headers=wrong).status_code
                     for _ in range(limit - 1)]  # fmt: skip
            missing = httpx.post(f"{client.base_url}/predict", json=body)  # a failure too
            assert first == [403] * (limit - 1) and missing.status_code == 401

            locked = client.post("/predict", json=body, headers=wrong)
            assert locked.status_code == 429, locked.text
            assert 1 <= int(locked.headers["retry-after"]) <= 60
            assert "failed authentications" in locked.json()["detail"]
            # The locked address gets 429 whatever key it sends: guessing stops here...
            assert client.post("/predict", json=body).status_code == 429
            assert client.post("/admin/reload").status_code == 429
            assert client.get("/health").status_code == 200  # ...the public routes stay open

            # Another address is unaffected, keeps its own count.
            assert other.post("/predict", json=body).status_code == 200
            assert other.get("/admin/models").status_code == 200
            assert other.post("/predict", json=body, headers=wrong).status_code == 403
            assert other.post("/predict", json=body).status_code == 200

            metrics = other.get("/metrics").text
    assert metric_value(metrics, "ml_assets_serving_rate_limited_total") == 3
    assert metric_value(metrics, "ml_assets_serving_http_requests_total", route="/predict",
                        status="429") == 2  # fmt: skip


@pytest.mark.slow
@pytest.mark.xdist_group("serving")
def test_not_ready_while_the_breaker_is_open(world: World, tmp_path: Path) -> None:
    registry = ControlledRegistry(world.tracking_uri)
    config = world.config(tmp_path, breaker_failures=2, breaker_reset_s=0.5, cache_size=0)
    with world.serve(create_app(config, registry=registry)) as client:
        model = registry.loaded[world.versions[0]]
        model.mode = "fail"
        reasons = [client.post("/predict", json=world.transaction(i)).json()["reason"]
                   for i in range(3)]  # fmt: skip
        assert reasons == ["model_error", "model_error", "breaker_open"]
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["ready"] is False and "breaker" in ready.json()["reason"]
        assert client.get("/health").status_code == 200  # alive, just not to be routed to
        assert client.get("/admin/models").json()["breaker"] == "open"

        model.mode = "ok"
        statuses = []
        for _ in range(400):  # half-open after breaker_reset_s: routable again (bounded wait)
            statuses.append(client.get("/ready").status_code)
            if statuses[-1] == 200:
                break
            time.sleep(0.01)
        assert statuses[-1] == 200 and set(statuses) <= {200, 503}
        answer = client.post("/predict", json=world.transaction(50)).json()
        assert answer["path"] in {"model", "review"}  # the trial call closed the breaker
        assert client.get("/admin/models").json()["breaker"] == "closed"
