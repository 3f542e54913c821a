"""Serving the rollout stages: the canary answers its share of customers, the shadow scores
off the response path, a failing canary never costs an answer or approves unscored, and the
stages move under load with no failed request. A real MLflow registry and online store; the
endpoint on uvicorn on loopback."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest

from ml_assets.serving.app import create_app
from ml_assets.serving.model_source import MlflowRegistry, ModelSource, parse_share
from ml_assets.training.registry_aliases import promote, rollback
from ml_assets.training.rollout_stages import DEFAULT_CANARY_SHARE, in_canary
from ml_assets_tests.support.worlds import (
    MODEL_NAME,
    ControlledRegistry,
    World,
    metric_value,
    read_prediction_log,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("serving")]
MODEL_PATHS = {"model", "review"}


def _customers(world: World, share: float) -> tuple[list[int], list[int]]:
    """Transaction indexes (into `world.transaction`) of canary and of champion customers."""
    n = len(world.customers)
    canary = [i for i in range(n) if in_canary(world.customers[i], share)]
    return canary, [i for i in range(n) if i not in set(canary)]


# -- the model source ---------------------------------------------------------------------


def test_parse_share_reads_the_tag_and_refuses_what_is_not_a_share() -> None:
    assert parse_share(None) == DEFAULT_CANARY_SHARE
    assert parse_share("0.25") == 0.25
    for bad in ("1.5", "-0.1", "half"):
        with pytest.raises(ValueError):
            parse_share(bad)


def test_source_follows_each_stage_alias_and_the_share_tag(world: World) -> None:
    v1, v2 = world.versions
    source = ModelSource(MlflowRegistry(world.tracking_uri, MODEL_NAME))
    source.refresh()
    assert source.champion.version == v1
    assert source.canary is None and source.shadow is None
    assert source.canary_share == DEFAULT_CANARY_SHARE

    world.set_stages(canary=v2, shadow=v2, canary_share=0.3)
    outcomes = {r.role: r.outcome for r in source.refresh()}
    assert outcomes == {"champion": "unchanged", "canary": "swapped", "shadow": "swapped"}
    assert (source.canary.version, source.shadow.version, source.canary_share) == (v2, v2, 0.3)
    assert set(source.loaded_at) == {"champion", "canary", "shadow"}

    world.set_stages(canary=v2, canary_share=0.7)  # share changed, shadow retired: no restart
    source.refresh()
    assert source.canary_share == 0.7 and source.shadow is None
    assert "shadow" not in source.loaded_at

    world.set_stages(canary=v2)
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=world.tracking_uri, registry_uri=world.tracking_uri)
    client.set_registered_model_tag(MODEL_NAME, "canary_share", "all of them")
    source.refresh()
    assert source.canary_share == 0.7  # a typo in the registry keeps the share it had

    world.set_stages()  # canary retired; the champion is never dropped for an unset alias
    client.delete_registered_model_alias(MODEL_NAME, "champion")
    source.refresh()
    assert source.canary is None and source.champion.version == v1


def test_disabled_stages_are_never_loaded(world: World) -> None:
    world.set_stages(canary=world.versions[1], shadow=world.versions[1], canary_share=1.0)
    source = ModelSource(
        MlflowRegistry(world.tracking_uri, MODEL_NAME), canary_alias=None, shadow_alias=None
    )
    assert [r.role for r in source.refresh()] == ["champion"]
    assert source.canary is None and source.shadow is None


# -- routing --------------------------------------------------------------------------------


def test_canary_customers_get_the_canary_and_the_rest_the_champion(
    world: World, tmp_path: Path
) -> None:
    v1, v2 = world.versions
    canary, champion = _customers(world, 0.5)
    assert canary and champion
    world.set_stages(canary=v2, canary_share=0.5)
    # Routing, not latency, is under test: a generous deadline on a shared machine.
    config = world.config(tmp_path, cache_size=0, request_timeout_s=5.0)
    registry = ControlledRegistry(world.tracking_uri)
    with world.serve(create_app(config, registry=registry)) as client:
        models = client.post("/admin/reload", params={"wait": "true"}).json()
        assert models["canary"]["version"] == v2 and models["canary"]["share"] == 0.5
        assert datetime.fromisoformat(models["canary"]["loaded_at"])
        assert models["champion"]["version"] == v1 and models["shadow"] is None
        listed = client.get("/admin/models").json()
        assert listed["canary"] == models["canary"] and listed["breaker"] == "closed"

        batch = [world.transaction(i) for i in range(len(world.customers))]
        answers = client.post("/predict/batch", json={"transactions": batch}).json()
        by_index = dict(enumerate(answers["predictions"]))
        for i in canary:
            assert (by_index[i]["arm"], by_index[i]["model_version"]) == ("canary", v2), (
                by_index[i]["reason"],
                by_index[i]["path"],
            )
        for i in champion:
            assert (by_index[i]["arm"], by_index[i]["model_version"]) == ("champion", v1)
        assert {a["path"] for a in by_index.values()} <= MODEL_PATHS
        # Each model scored its own arm's rows and no others (plus its probe row at load).
        assert registry.loaded[v2].rows == len(canary) + 1
        assert registry.loaded[v1].rows == len(champion) + 1
        metrics = client.get("/metrics").text
        by_arm = {
            arm: sum(
                metric_value(metrics, "ml_assets_serving_predictions_total", arm=arm, path=p,
                             decision=d)
                for d in ("approve", "review", "decline") for p in MODEL_PATHS
            )
            for arm in ("canary", "champion")
        }  # fmt: skip
        assert by_arm == {"canary": len(canary), "champion": len(champion)}
        assert metric_value(metrics, "ml_assets_serving_canary_share") == 0.5
        assert metric_value(
            metrics, "ml_assets_serving_model_info", role="canary", version=v2
        ) == 1  # fmt: skip
    log = read_prediction_log(tmp_path)
    answered = {a["request_id"]: a for a in answers["predictions"]}
    for row in log.iter_rows(named=True):
        assert row["arm"] == answered[row["request_id"]]["arm"]
        assert row["model_version"] == answered[row["request_id"]]["model_version"]


def test_a_failing_canary_is_answered_by_the_champion_then_bypassed(
    world: World, tmp_path: Path
) -> None:
    """Canary errors: each failed row gets the champion's score at once (arm champion); after
    `breaker_failures` in a row the canary's breaker opens and its customers go straight to
    the champion, whose breaker never hears of it."""
    v1, v2 = world.versions
    world.set_stages(canary=v2, canary_share=1.0)  # every customer is a canary customer
    registry = ControlledRegistry(world.tracking_uri)
    config = world.config(tmp_path, breaker_failures=3, breaker_reset_s=60, cache_size=0)
    with world.serve(create_app(config, registry=registry)) as client:
        assert client.post("/admin/reload", params={"wait": "true"}).json()["canary"]
        canary = registry.loaded[v2]
        canary.mode = "fail"
        answers = [client.post("/predict", json=world.transaction(i)).json() for i in range(6)]
        for answer in answers:
            assert (answer["arm"], answer["model_version"]) == ("champion", v1), answer
            assert answer["path"] in MODEL_PATHS and answer["reason"] is None
        assert canary.calls == 3 + 1  # the probe at load, then three failures; then bypassed
        metrics = client.get("/metrics").text
        assert metric_value(metrics, "ml_assets_serving_canary_diverted_total", reason="error") == 3
        assert metric_value(
            metrics, "ml_assets_serving_canary_diverted_total", reason="breaker_open"
        ) == 3  # fmt: skip
        assert metric_value(metrics, "ml_assets_serving_breaker_state") == 0
        assert client.get("/ready").status_code == 200


def test_a_canary_failing_one_slice_fails_only_that_slice(world: World, tmp_path: Path) -> None:
    v1, v2 = world.versions
    world.set_stages(canary=v2, canary_share=1.0)
    registry = ControlledRegistry(world.tracking_uri)
    config = world.config(tmp_path, breaker_failures=1_000, cache_size=0)
    with world.serve(create_app(config, registry=registry)) as client:
        assert client.post("/admin/reload", params={"wait": "true"}).json()["canary"]
        registry.loaded[v2].mode = "nan_online"
        batch = [world.transaction(i) for i in range(60)]
        answers = client.post("/predict/batch", json={"transactions": batch}).json()
        for request, answer in zip(batch, answers["predictions"], strict=True):
            expected = ("champion", v1) if request["channel"] == "online" else ("canary", v2)
            assert (answer["arm"], answer["model_version"]) == expected
            assert answer["path"] in MODEL_PATHS


def test_a_slow_canary_answers_with_the_rules_and_never_delays_the_champion(
    world: World, tmp_path: Path
) -> None:
    v1, v2 = world.versions
    canary_ids, champion_ids = _customers(world, 0.5)
    world.set_stages(canary=v2, canary_share=0.5)
    registry = ControlledRegistry(world.tracking_uri)
    # Margins wide enough for a busy machine: the champion's row takes milliseconds.
    config = world.config(tmp_path, request_timeout_s=1.0, breaker_failures=100, cache_size=0)
    with world.serve(create_app(config, registry=registry)) as client:
        assert client.post("/admin/reload", params={"wait": "true"}).json()["canary"]
        slow = registry.loaded[v2]
        slow.mode, slow.delay_s = "slow", 3.0
        batch = [world.transaction(canary_ids[0]), world.transaction(champion_ids[0])]
        late, prompt = client.post("/predict/batch", json={"transactions": batch}).json()[
            "predictions"
        ]
        assert (late["path"], late["reason"], late["arm"]) == ("fallback", "timeout", "canary")
        assert late["model_name"] == "rules" and late["decision"] != "approve"
        assert (prompt["arm"], prompt["model_version"]) == ("champion", v1)
        assert prompt["path"] in MODEL_PATHS
        metrics = client.get("/metrics").text
        assert metric_value(metrics, "ml_assets_serving_canary_diverted_total",
                            reason="timeout") == 1  # fmt: skip
        assert metric_value(metrics, "ml_assets_serving_breaker_state") == 0
        slow.mode = "ok"


# -- the stages move under load ---------------------------------------------------------------


class Load:
    """Threads posting /predict continuously; each answer is kept with the phase it was sent
    and received in (a phase is the span between two finished reloads)."""

    def __init__(self, client: httpx.Client, world: World, threads: int = 2) -> None:
        self.client, self.world = client, world
        self.phase: int | None = 0  # None while the aliases move
        self.seen: list[tuple[int | None, int, str, dict[str, Any]]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(k,)) for k in range(threads)]

    def _run(self, k: int) -> None:
        n = 0
        while not self._stop.is_set():
            i = (n * 7 + k) % len(self.world.customers)
            body = self.world.transaction(i, transaction_id=f"L-{k}-{n}", event_time=None)
            sent = self.phase
            response = self.client.post("/predict", json=body)
            phase = sent if self.phase == sent else None
            self.seen.append((phase, response.status_code, body["customer_id"], response.json()))
            n += 1

    def wait_for(self, phase: int, count: int = 40, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while sum(1 for p, *_ in self.seen if p == phase) < count:
            assert time.monotonic() < deadline, f"phase {phase}: too few answers"
            time.sleep(0.01)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)


def test_stages_move_under_load_with_no_failed_request(world: World, tmp_path: Path) -> None:
    """shadow set -> canary set (share 0.5) -> canary promoted (canary and shadow cleared)
    -> rolled back, each followed by /admin/reload, while requests flow."""
    v1, v2 = world.versions
    config = world.config(tmp_path, request_timeout_s=5.0, breaker_failures=1_000)
    moves = [
        lambda: world.set_stages(shadow=v2),
        lambda: world.set_stages(canary=v2, canary_share=0.5),
        lambda: (promote(world.tracking_uri, MODEL_NAME, v2), world.set_stages()),
        lambda: rollback(world.tracking_uri, MODEL_NAME),
    ]
    with world.serve(create_app(config)) as client, Load(client, world) as load:
        load.wait_for(0)
        for phase, move in enumerate(moves, start=1):
            load.phase = None
            move()
            assert client.post("/admin/reload", params={"wait": "true"}).status_code == 200
            load.phase = phase
            load.wait_for(phase)
        models = client.get("/admin/models").json()
    assert all(status == 200 for _, status, _, _ in load.seen), [
        s for s in load.seen if s[1] != 200
    ][:5]
    assert (models["champion"]["version"], models["canary"], models["shadow"]) == (v1, None, None)

    # phase -> (canary customers' arm and version, the others' arm and version, shadow)
    expected = {
        0: (("champion", v1), ("champion", v1), None),
        1: (("champion", v1), ("champion", v1), v2),
        2: (("canary", v2), ("champion", v1), None),
        3: (("champion", v2), ("champion", v2), None),
        4: (("champion", v1), ("champion", v1), None),
    }
    phase_of = {}
    for phase, _, customer, answer in load.seen:
        if phase is None:
            continue
        phase_of[answer["request_id"]] = phase
        assert answer["path"] in MODEL_PATHS, answer
        canary_arm, champion_arm, _ = expected[phase]
        want = canary_arm if in_canary(customer, 0.5) else champion_arm
        assert (answer["arm"], answer["model_version"]) == want, (phase, answer)
    assert {a["arm"] for p, _, _, a in load.seen if p == 2} == {"canary", "champion"}

    log = read_prediction_log(tmp_path)  # the server is down: every record is flushed
    assert log.height == len(load.seen)
    checked = log.filter(pl.col("request_id").is_in(list(phase_of)))
    answers = {a["request_id"]: a for *_, a in load.seen}
    for row in checked.iter_rows(named=True):
        answer, shadow = answers[row["request_id"]], expected[phase_of[row["request_id"]]][2]
        assert (row["arm"], row["model_version"]) == (answer["arm"], answer["model_version"])
        assert row["shadow_version"] == shadow
        if shadow is None:
            assert row["shadow_score"] is None and row["shadow_latency_ms"] is None
        else:
            assert 0.0 <= row["shadow_score"] <= 1.0 and row["shadow_latency_ms"] > 0
