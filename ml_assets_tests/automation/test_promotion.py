"""The promotion sensor and `deployed_model` against real evaluations: a passing evaluation
is requested once, a failing one never, the champion not again; the first deployment makes
the champion (bootstrap), the next enters the rollout as candidate and leaves the champion.

Each test sets up the registry state it needs, so the tests hold in any order."""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
import pytest

from ml_assets.automation.jobs import DEPLOY_JOB
from ml_assets.automation.promotion_sensor import promotion_sensor
from ml_assets.definitions import build_definitions
from ml_assets.training.assets import STUDENT_MODEL, TEACHER_MODEL, GateConfig
from ml_assets.training.deployment import DEPLOYED_MODEL
from ml_assets.training.registry_reader import CHAMPION, STUDENT_MODEL_NAME, resolve_version
from ml_assets.training.rollout_stages import CANDIDATE
from ml_assets_tests.support.platforms import (
    STUDENT,
    TRAINING,
    Platform,
    evaluated,
    materialized,
    platform_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("promotion")]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with platform_for(tmp_path_factory.mktemp("promotion")) as built:
        result = built.materialize([TEACHER_MODEL, STUDENT_MODEL], run_config=TRAINING)
        assert result.success, "the training run failed; see its step failure events"
        yield built


def tick(platform: Platform, cursor: str | None = None):
    """One evaluation of the sensor, as the daemon runs it (cursor in, cursor out)."""
    return promotion_sensor.evaluate_tick(platform.sensor_context(cursor))


def evaluate_and_tick(platform: Platform, gates: GateConfig | None = None):
    """Materialize model_evaluation under `gates`, then tick past every earlier evaluation.
    Returns the evaluated version and the tick."""
    cursor = tick(platform).cursor
    version = evaluated(platform.evaluate(gates, deploy=False)).version
    return version, tick(platform, cursor)


def launch(platform: Platform, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    """Run what the sensor requested: its job, with its config and tags."""
    job = build_definitions(platform.settings).resolve_job_def(promotion_sensor.job_name)
    return job.execute_in_process(
        instance=platform.instance, run_config=request.run_config, tags=request.tags
    )


def deployment_metadata(result: dg.ExecuteInProcessResult) -> dict[str, object]:
    assert result.success and materialized(result) == {DEPLOYED_MODEL}
    (event,) = result.asset_materializations_for_node(DEPLOYED_MODEL.path[-1])
    return {k: v.value for k, v in event.metadata.items()}


def test_passing_evaluation_requests_exactly_one_promotion(platform):
    platform.make_champion(None)
    version, first = evaluate_and_tick(platform)
    assert [r.run_key for r in first.run_requests] == [f"promote-{STUDENT_MODEL_NAME}-v{version}"]
    assert promotion_sensor.job_name == DEPLOY_JOB

    second = tick(platform, first.cursor)
    assert second.run_requests == [] and second.skip_message


def test_failing_evaluation_requests_nothing(platform):
    platform.make_champion(None)
    version, skipped = evaluate_and_tick(platform, GateConfig(min_auc=0.999))
    assert skipped.run_requests == []
    assert skipped.skip_message == (
        f"{STUDENT_MODEL_NAME} v{version} failed a promotion gate; not promoting"
    )


def test_the_champion_is_not_requested_again(platform):
    cursor = tick(platform).cursor
    version = evaluated(platform.evaluate(deploy=False)).version
    platform.make_champion(version)
    again = tick(platform, cursor)
    assert again.run_requests == []
    assert again.skip_message == f"{STUDENT_MODEL_NAME} v{version} is already the champion"


def test_first_deployment_bootstraps_the_champion_and_the_next_enters_as_candidate(platform):
    platform.make_champion(None)
    old, ticked = evaluate_and_tick(platform)
    (request,) = ticked.run_requests
    first = deployment_metadata(launch(platform, request))
    assert platform.champion() == old
    assert first["live"] == f"{STUDENT_MODEL_NAME} v{old}"
    assert (first["stage"], first["bootstrap"], first["replaced"]) == (CHAMPION, True, "none")
    assert first["evidence"].startswith("passed all gates")

    # A retrain on the same window (a scheduled one would see newer days) is the next candidate.
    retrained = platform.materialize(
        [STUDENT_MODEL], run_config=dg.RunConfig(ops={STUDENT_MODEL.path[-1]: STUDENT})
    )
    assert retrained.success
    new, ticked = evaluate_and_tick(platform)
    assert new != old
    (request,) = ticked.run_requests
    assert request.run_key == f"promote-{STUDENT_MODEL_NAME}-v{new}"
    second = deployment_metadata(launch(platform, request))
    # With a champion serving, a passing candidate waits for live evidence: no switch yet.
    assert (second["version"], second["stage"], second["bootstrap"]) == (new, CANDIDATE, False)
    assert second["live"] == f"{STUDENT_MODEL_NAME} v{old}"
    assert platform.champion() == old
    assert resolve_version(platform.tracking_uri, STUDENT_MODEL_NAME, CANDIDATE) == new
    again = tick(platform, ticked.cursor)
    assert again.run_requests == []
