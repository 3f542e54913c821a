"""The rollout's stage rules on MLflow's real SQLite registry: bootstrap to champion, one
stage at a time, the aliases mirroring the stage, the canary share tag, and rollback from
every stage. The versions are registered without models: the rules read aliases and the
`gates_passed` run tag only."""

from __future__ import annotations

import re

import pytest
from mlflow import MlflowClient

from ml_assets.cli import main
from ml_assets.settings import Settings
from ml_assets.training.model_contracts import GATES_PASSED
from ml_assets.training.registry_reader import CHALLENGER, CHAMPION
from ml_assets.training.rollout import (
    ROLLED_BACK,
    RolloutError,
    advance,
    enter,
    retire,
    stage_aliases,
)
from ml_assets.training.rollout_stages import CANARY, CANARY_SHARE_TAG, CANDIDATE, SHADOW


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    # One database for the module (creating one costs seconds); a model per test.
    return f"sqlite:///{tmp_path_factory.mktemp('rollout') / 'mlflow.db'}"


@pytest.fixture
def registry(tracking_uri: str, request: pytest.FixtureRequest) -> tuple[str, MlflowClient, str]:
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    name = re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)
    client.create_registered_model(name)
    return tracking_uri, client, name


def register(registry, passed: bool = True) -> str:
    uri, client, name = registry
    experiment = client.get_experiment_by_name("Default")
    run = client.create_run(experiment.experiment_id if experiment else "0")
    client.set_tag(run.info.run_id, GATES_PASSED, str(passed))
    return str(client.create_model_version(name, "file:///nowhere", run_id=run.info.run_id).version)


def test_first_candidate_becomes_champion_by_bootstrap(registry):
    uri, _, name = registry
    v1 = register(registry)
    moved = enter(uri, name, v1)
    assert (moved.stage, moved.bootstrap, moved.previous_stage) == (CHAMPION, True, None)
    assert "no champion yet" in moved.to_metadata()["rule"]
    assert stage_aliases(uri, name) == {CHAMPION: v1}


def test_a_version_walks_every_stage_and_the_aliases_follow(registry):
    uri, client, name = registry
    v1, v2 = register(registry), register(registry)
    enter(uri, name, v1)
    assert enter(uri, name, v2).stage == CANDIDATE
    assert stage_aliases(uri, name) == {CANDIDATE: v2, CHAMPION: v1}
    assert advance(uri, name, v2, SHADOW).previous_stage == CANDIDATE
    assert stage_aliases(uri, name) == {SHADOW: v2, CHAMPION: v1}
    advance(uri, name, v2, CANARY, canary_share=0.25)
    assert stage_aliases(uri, name) == {CANARY: v2, CHAMPION: v1}
    assert client.get_registered_model(name).tags[CANARY_SHARE_TAG] == "0.25"
    moved = advance(uri, name, v2, CHAMPION)
    assert (moved.replaced, moved.aliases) == (v1, {CHAMPION: v2})
    # The replaced champion stays registered as the challenger (as before the rollout).
    assert str(client.get_model_version_by_alias(name, CHALLENGER).version) == v1


def test_stages_are_never_skipped_and_failed_gates_never_enter(registry):
    uri, _, name = registry
    v1, v2, failed = register(registry), register(registry), register(registry, passed=False)
    enter(uri, name, v1)
    enter(uri, name, v2)
    with pytest.raises(RolloutError, match="can move to shadow, not canary"):
        advance(uri, name, v2, CANARY)
    with pytest.raises(RolloutError, match="has not passed its promotion gates"):
        enter(uri, name, failed)
    assert stage_aliases(uri, name) == {CANDIDATE: v2, CHAMPION: v1}


@pytest.mark.parametrize("stage", [CANDIDATE, SHADOW, CANARY])
def test_rollback_from_a_stage_before_champion_leaves_the_champion(registry, stage):
    uri, _, name = registry
    v1, v2 = register(registry), register(registry)
    enter(uri, name, v1)
    enter(uri, name, v2)
    for step in {CANDIDATE: (), SHADOW: (SHADOW,), CANARY: (SHADOW, CANARY)}[stage]:
        advance(uri, name, v2, step)
    moved = retire(uri, name, v2)
    assert (moved.stage, moved.previous_stage, moved.restored) == (ROLLED_BACK, stage, None)
    assert stage_aliases(uri, name) == {CHAMPION: v1}


def test_rollback_of_a_champion_restores_the_one_it_replaced(registry):
    uri, _, name = registry
    v1, v2 = register(registry), register(registry)
    enter(uri, name, v1)
    enter(uri, name, v2)
    for stage in (SHADOW, CANARY, CHAMPION):
        advance(uri, name, v2, stage)
    moved = retire(uri, name, v2)
    assert (moved.previous_stage, moved.restored) == (CHAMPION, v1)
    assert stage_aliases(uri, name)[CHAMPION] == v1
    with pytest.raises(RolloutError, match="holds no rollout stage"):
        retire(uri, name, v2)


def test_cli_rollback_takes_the_version_out_of_any_stage(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ML_ASSETS_HOME", str(tmp_path))
    monkeypatch.delenv("ML_ASSETS_ENDPOINTS", raising=False)
    (tmp_path / "mlflow").mkdir()
    uri = Settings.from_env().mlflow_tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model("fraud_student")
    registry = (uri, client, "fraud_student")
    v1, v2 = register(registry), register(registry)
    enter(uri, "fraud_student", v1)
    enter(uri, "fraud_student", v2)
    advance(uri, "fraud_student", v2, SHADOW)

    assert main(["rollback", "--stage", "shadow"]) == 0
    assert f"fraud_student v{v2}: shadow -> rolled_back" in capsys.readouterr().out
    assert stage_aliases(uri, "fraud_student") == {CHAMPION: v1}
    assert main(["rollback", "--version", v2]) == 2  # it holds no stage any more
    assert "holds no rollout stage" in capsys.readouterr().err
