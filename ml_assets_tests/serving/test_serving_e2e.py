"""The endpoint end to end: uvicorn on loopback, a real MLflow registry and online store."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from ml_assets.serving.app import create_app
from ml_assets.serving.prediction_log import PREDICTION_LOG_SCHEMA
from ml_assets.settings import DecisionThresholds
from ml_assets.training.registry_aliases import promote, rollback
from ml_assets_tests.support.worlds import (
    MODEL_NAME,
    ControlledRegistry,
    World,
    metric_value,
    read_prediction_log,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("serving")]
PATHS = {"model", "fallback", "cache", "review"}


def test_predict_scores_with_the_champion_and_logs_every_answer(
    world: World, tmp_path: Path
) -> None:
    app = create_app(world.config(tmp_path))
    with world.serve(app) as client:
        ready = client.get("/ready").json()
        champion = ready["champion"]
        assert (champion["name"], champion["version"]) == (MODEL_NAME, world.versions[0])
        assert datetime.fromisoformat(champion["loaded_at"]) <= datetime.now(UTC)
        assert ready["canary"] is None and ready["shadow"] is None

        one = client.post("/predict", json=world.transaction(1))
        assert one.status_code == 200, one.text
        body = one.json()
        assert body["transaction_id"] == "T-1"
        assert body["path"] in {"model", "review"}
        assert body["model_version"] == world.versions[0]
        assert body["arm"] == "champion"
        assert 0.0 <= body["score"] <= 1.0
        assert body["decision"] in {"approve", "review", "decline"}
        # Read from the store as of the event time: yesterday's events are too old for the
        # 1-hour windows (partial), never missing for a known entity.
        assert set(body["feature_status"]) == {"customer", "merchant"}
        assert set(body["feature_status"].values()) <= {"ok", "partial"}
        assert body["unknown_entities"] == []

        again = client.post("/predict", json=world.transaction(1)).json()  # a retry
        assert again["path"] == "cache"
        assert again["score"] == body["score"]

        batch = [world.transaction(i) for i in range(2, 42)]
        answers = client.post("/predict/batch", json={"transactions": batch})
        assert answers.status_code == 200, answers.text
        predictions = answers.json()["predictions"]
        assert [p["transaction_id"] for p in predictions] == [t["transaction_id"] for t in batch]
        assert {p["path"] for p in predictions} <= PATHS

        stranger = world.transaction(50, customer_id="C-NEVER-SEEN", merchant_id="M-NOPE")
        unknown = client.post("/predict", json=stranger).json()
        assert unknown["unknown_entities"] == ["customer", "merchant"]
        assert unknown["feature_status"]["customer"] == "missing_entity"
        assert unknown["path"] in {"model", "review"}  # still scored, with missing features

        metrics = client.get("/metrics").text
        assert metric_value(metrics, "ml_assets_serving_cache_hits_total") >= 1
        assert metric_value(
            metrics, "ml_assets_serving_http_requests_total", route="/predict", status="200"
        ) == 3  # fmt: skip
        assert metric_value(metrics, "ml_assets_serving_batch_size_count") >= 1
        assert metric_value(metrics, "ml_assets_serving_breaker_state") == 0
        assert metric_value(
            metrics, "ml_assets_serving_unknown_entities_total", entity="customer"
        ) == 1  # fmt: skip
        assert "ml_assets_serving_request_latency_seconds_bucket" in metrics
        answered = 3 + len(batch)

    log = read_prediction_log(tmp_path)  # the server is down: shutdown flushed the buffer
    assert dict(log.schema) == PREDICTION_LOG_SCHEMA
    assert log.height == answered
    assert set(log["path"].unique()) <= PATHS
    # T-1 was answered twice (the retry from the cache), with the same score both times.
    assert log.filter(pl.col("transaction_id") == "T-1")["score"].to_list() == [body["score"]] * 2
    first = log.filter(pl.col("request_id") == body["request_id"]).row(0, named=True)
    assert json.loads(first["features"]).keys() >= {"customer__amount_mean_30d"}
    assert json.loads(first["feature_status"]) == body["feature_status"]


def test_breaker_opens_on_a_dead_model_answers_with_rules_then_recovers(
    world: World, tmp_path: Path
) -> None:
    registry = ControlledRegistry(world.tracking_uri)
    config = world.config(tmp_path, breaker_failures=3, breaker_reset_s=0.3, cache_size=0)
    with world.serve(create_app(config, registry=registry)) as client:
        model = registry.loaded[world.versions[0]]
        model.mode = "fail"
        reasons = [
            client.post("/predict", json=world.transaction(i)).json()["reason"] for i in range(6)
        ]
        assert reasons[:3] == ["model_error"] * 3
        assert reasons[3:] == ["breaker_open"] * 3  # no model calls while open
        calls_while_open = model.calls
        metrics = client.get("/metrics").text
        assert metric_value(metrics, "ml_assets_serving_breaker_state") == 2
        assert metric_value(metrics, "ml_assets_serving_degraded_total", reason="breaker_open") == 3
        fallback = client.post("/predict", json=world.transaction(7)).json()
        assert fallback["path"] == "fallback" and fallback["model_name"] == "rules"
        assert model.calls == calls_while_open

        model.mode = "ok"
        for attempt in range(200):  # half-opens after breaker_reset_s; bounded retry
            answer = client.post("/predict", json=world.transaction(100 + attempt)).json()
            if answer["path"] in {"model", "review"}:
                break
            time.sleep(0.05)
        assert answer["model_version"] == world.versions[0]
        metrics = client.get("/metrics").text
        assert metric_value(metrics, "ml_assets_serving_breaker_state") == 0
        assert metric_value(
            metrics, "ml_assets_serving_breaker_transitions_total", state="closed"
        ) == 1  # fmt: skip


def test_nan_scores_count_as_model_failures(world: World, tmp_path: Path) -> None:
    registry = ControlledRegistry(world.tracking_uri)
    config = world.config(tmp_path, breaker_failures=2, breaker_reset_s=60, cache_size=0)
    with world.serve(create_app(config, registry=registry)) as client:
        registry.loaded[world.versions[0]].mode = "corrupt"
        reasons = [
            client.post("/predict", json=world.transaction(i)).json()["reason"] for i in range(3)
        ]
        assert reasons == ["model_error", "model_error", "breaker_open"]


def test_a_model_failing_one_slice_fails_only_that_slice(world: World, tmp_path: Path) -> None:
    """NaN for online transactions: those rows (and only those) fall back, each on its own,
    and the breaker stays closed for the rest of the traffic."""
    registry = ControlledRegistry(world.tracking_uri)
    config = world.config(tmp_path, breaker_failures=5, cache_size=0)
    with world.serve(create_app(config, registry=registry)) as client:
        registry.loaded[world.versions[0]].mode = "nan_online"
        batch = [world.transaction(i) for i in range(60)]  # every third one is online
        answers = client.post("/predict/batch", json={"transactions": batch}).json()
        for request, answer in zip(batch, answers["predictions"], strict=True):
            if request["channel"] == "online":
                assert (answer["path"], answer["reason"]) == ("fallback", "model_error")
                assert answer["decision"] != "approve"
            else:
                assert answer["path"] in {"model", "review"}, answer
        assert client.get("/admin/models").json()["breaker"] == "closed"


def test_a_slow_model_answers_on_time_and_never_approves(world: World, tmp_path: Path) -> None:
    registry = ControlledRegistry(world.tracking_uri)
    config = world.config(tmp_path, request_timeout_s=0.2, breaker_failures=100)
    with world.serve(create_app(config, registry=registry)) as client:
        model = registry.loaded[world.versions[0]]
        model.mode, model.delay_s = "slow", 1.0
        answer = client.post("/predict", json=world.transaction(1)).json()
        assert answer["path"] == "fallback"
        assert answer["reason"] == "timeout"
        assert answer["model_name"] == "rules"
        assert answer["decision"] in {"review", "decline"}  # the model did not give it
        metrics = client.get("/metrics").text
        assert metric_value(metrics, "ml_assets_serving_degraded_total", reason="timeout") == 1
        model.mode = "ok"


def test_shadow_is_logged_and_never_changes_answers(world: World, tmp_path: Path) -> None:
    config = world.config(tmp_path, cache_size=0)
    requests = [world.transaction(i) for i in range(30)]
    with world.serve(create_app(config)) as client:
        before = client.post("/predict/batch", json={"transactions": requests}).json()
        from ml_assets.training.registry_aliases import set_alias

        set_alias(world.tracking_uri, MODEL_NAME, "shadow", world.versions[1])
        reloaded = client.post("/admin/reload", params={"wait": "true"}).json()
        assert reloaded["shadow"]["version"] == world.versions[1]
        assert reloaded["canary"] is None
        after = client.post("/predict/batch", json={"transactions": requests}).json()
        for old, new in zip(before["predictions"], after["predictions"], strict=True):
            assert new["score"] == old["score"]
            assert new["decision"] == old["decision"]
            assert new["model_version"] == world.versions[0]
            assert new["arm"] == "champion"
    log = read_prediction_log(tmp_path)
    assert (log["arm"] == "champion").all()
    shadowed = log.filter(pl.col("shadow_version").is_not_null())
    assert shadowed.height == len(requests)
    assert (shadowed["shadow_version"] == world.versions[1]).all()
    assert (shadowed["score"] - shadowed["shadow_score"]).abs().max() > 0
    assert (shadowed["shadow_latency_ms"] > 0).all()
    unshadowed = log.filter(pl.col("shadow_version").is_null())
    assert unshadowed.height == len(requests)
    assert unshadowed["shadow_latency_ms"].is_null().all()


def test_the_old_challenger_alias_is_not_shadowed(world: World, tmp_path: Path) -> None:
    """The shadow is the version before it answers anyone (alias `shadow`); `challenger`
    (the replaced champion) is no longer followed."""
    from ml_assets.training.registry_aliases import set_alias

    set_alias(world.tracking_uri, MODEL_NAME, "challenger", world.versions[1])
    with world.serve(create_app(world.config(tmp_path, cache_size=0))) as client:
        reloaded = client.post("/admin/reload", params={"wait": "true"}).json()
        assert {r["role"] for r in reloaded["results"]} == {"champion", "canary", "shadow"}
        assert reloaded["shadow"] is None and "challenger" not in reloaded
        client.post("/predict", json=world.transaction(1))
    assert read_prediction_log(tmp_path)["shadow_version"].is_null().all()


def test_shadow_metrics_count_agreement(world: World, tmp_path: Path) -> None:
    from ml_assets.training.registry_aliases import set_alias

    set_alias(world.tracking_uri, MODEL_NAME, "shadow", world.versions[1])
    with world.serve(create_app(world.config(tmp_path, cache_size=0))) as client:
        # Ready means a champion; the shadow may still be loading: wait for it.
        assert client.post("/admin/reload", params={"wait": "true"}).json()["shadow"]
        batch = [world.transaction(i) for i in range(20)]
        client.post("/predict/batch", json={"transactions": batch})
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            metrics = client.get("/metrics").text
            agree = metric_value(metrics, "ml_assets_serving_shadow_total", outcome="agree")
            disagree = metric_value(metrics, "ml_assets_serving_shadow_total", outcome="disagree")
            if agree + disagree == len(batch):
                break
            time.sleep(0.05)
        assert agree + disagree == len(batch)
        assert metric_value(metrics, "ml_assets_serving_shadow_score_diff_count") == len(batch)
        assert metric_value(metrics, "ml_assets_serving_shadow_agreement") == pytest.approx(
            agree / len(batch)
        )
        assert metric_value(metrics, "ml_assets_serving_shadow_latency_seconds_count") >= 1


def test_promote_and_roll_back_while_requests_flow_fail_nothing(
    world: World, tmp_path: Path
) -> None:
    v1, v2 = world.versions
    with world.serve(create_app(world.config(tmp_path))) as client:
        seen: list[tuple[int, str | None]] = []
        stop = threading.Event()

        def load() -> None:
            i = 0
            while not stop.is_set() and i < 3_000:
                response = client.post("/predict", json=world.transaction(i))
                body = response.json()
                seen.append((response.status_code, body.get("model_version")))
                assert body.get("path") in PATHS
                i += 1

        workers = [threading.Thread(target=load) for _ in range(3)]
        for worker in workers:
            worker.start()
        try:
            while len(seen) < 30:
                time.sleep(0.01)
            assert promote(world.tracking_uri, MODEL_NAME, v2) == v1
            swap = client.post("/admin/reload", params={"wait": "true"}).json()
            assert swap["champion"]["version"] == v2
            mark = len(seen)
            while len(seen) < mark + 30:
                time.sleep(0.01)
            assert rollback(world.tracking_uri, MODEL_NAME) == v1
            back = client.post("/admin/reload", params={"wait": "true"}).json()
            assert back["champion"]["version"] == v1
            mark = len(seen)
            while len(seen) < mark + 30:
                time.sleep(0.01)
        finally:
            stop.set()
            for worker in workers:
                worker.join(30)
        assert all(status == 200 for status, _ in seen), [s for s in seen if s[0] != 200][:5]
        versions = [version for _, version in seen]
        assert v2 in versions and v1 in versions
        assert versions[-1] == v1
        metrics = client.get("/metrics").text
        assert metric_value(
            metrics, "ml_assets_serving_model_reloads_total", role="champion", outcome="swapped"
        ) == 3  # fmt: skip


def test_a_version_that_cannot_load_is_refused_and_the_champion_stays(
    world: World, tmp_path: Path
) -> None:
    class BrokenOnV2(ControlledRegistry):
        def load(self, version: str):  # noqa: ANN201
            if version == world.versions[1]:
                raise OSError("artifact missing: model.lgb")
            return super().load(version)

    with world.serve(
        create_app(world.config(tmp_path), registry=BrokenOnV2(world.tracking_uri))
    ) as c:
        promote(world.tracking_uri, MODEL_NAME, world.versions[1])
        result = c.post("/admin/reload", params={"wait": "true"}).json()
        champion = next(r for r in result["results"] if r["role"] == "champion")
        assert champion["outcome"] == "refused" and "artifact missing" in champion["error"]
        assert result["champion"]["version"] == world.versions[0]
        assert c.post("/predict", json=world.transaction(3)).json()["model_version"] == "1"


def test_review_band_goes_to_the_review_queue(world: World, tmp_path: Path) -> None:
    config = world.config(tmp_path, decisions=DecisionThresholds(0.0, 1.0), cache_size=0)
    with world.serve(create_app(config)) as client:
        answer = client.post("/predict", json=world.transaction(5)).json()
        assert answer["decision"] == "review" and answer["path"] == "review"
        listed = client.get("/review").json()
        assert listed["count"] == 1
        item = listed["items"][0]
        assert item["request_id"] == answer["request_id"]
        assert item["transaction_id"] == "T-5"
        assert item["score"] == pytest.approx(answer["score"])
        assert "customer__amount_mean_30d" in item["features"]
        assert item["request"]["amount"] == world.transaction(5)["amount"]
    assert (tmp_path / "serving" / "review_queue.sqlite").exists()


def test_not_ready_before_a_champion_exists(world: World, tmp_path: Path) -> None:
    config = world.config(tmp_path, champion_alias="no-such-alias")
    with world.serve(create_app(config), ready=False) as client:
        assert client.get("/health").json() == {"status": "ok"}
        time.sleep(0.2)
        assert client.get("/ready").status_code == 503
        answer = client.post("/predict", json=world.transaction(1)).json()
        assert answer["path"] == "fallback" and answer["reason"] == "no_model"
