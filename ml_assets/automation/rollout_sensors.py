"""The sensors that move a version through the rollout, one stage per run.

Each reads the new materializations of the asset that holds its evidence (the rollout
itself, `shadow_comparison`, `ab_analysis`) since its cursor, checks in the registry that
the version is still at the stage the evidence is about, and requests the `deploy_model`
job with the version and the target stage. Run keys are `rollout-<name>-v<version>-<stage>`,
so each version reaches each stage in one run at most, however often the evidence repeats.
The rollout asset re-reads the evidence itself before moving anything.
"""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg

from ml_assets.automation.jobs import DEPLOY_JOB
from ml_assets.monitoring.rollout_assets import AB_ANALYSIS, SHADOW_COMPARISON
from ml_assets.resources import MlflowResource
from ml_assets.training.deployment import DEPLOYED_MODEL, RolloutConfig
from ml_assets.training.registry_reader import CHAMPION, STUDENT_MODEL_NAME
from ml_assets.training.rollout import ROLLED_BACK, stage_aliases, stage_of
from ml_assets.training.rollout_evidence import BLOCKED, PROMOTE, READY, WORSE
from ml_assets.training.rollout_stages import CANARY, CANDIDATE, SHADOW


def rollout_run_key(name: str, version: str, stage: str) -> str:
    return f"rollout-{name}-v{version}-{stage}"


def rollout_request(version: str, stage: str, reason: str) -> dg.RunRequest:
    """A `deploy_model` run that moves `version` (of the served model) to `stage`."""
    config = RolloutConfig(version=str(version), stage=stage, reason=reason)
    return dg.RunRequest(
        run_key=rollout_run_key(STUDENT_MODEL_NAME, version, stage),
        run_config=dg.RunConfig(ops={DEPLOYED_MODEL.path[-1]: config}),
        tags={"rollout/version": str(version), "rollout/stage": stage},
    )


def new_metadata(
    context: dg.SensorEvaluationContext, key: dg.AssetKey
) -> tuple[list[dict[str, object]], str | None]:
    """Metadata values of `key`'s materializations after the cursor (oldest first), and
    the cursor to store."""
    after = int(context.cursor) if context.cursor else None
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, after_storage_id=after), limit=100, ascending=True
    ).records
    events = [{k: v.value for k, v in r.asset_materialization.metadata.items()} for r in records]
    return events, str(records[-1].storage_id) if records else context.cursor


def _decide(
    context: dg.SensorEvaluationContext,
    key: dg.AssetKey,
    mlflow: MlflowResource,
    requests_for: Callable[[dict[str, object], dict[str, str]], list[dg.RunRequest]],
) -> dg.SensorResult | dg.SkipReason:
    events, cursor = new_metadata(context, key)
    if not events:
        return dg.SkipReason(f"no new {key.to_user_string()} materialization")
    stages = stage_aliases(mlflow.tracking_uri, STUDENT_MODEL_NAME)
    requests = [r for event in events for r in requests_for(event, stages)]
    if not requests:
        context.update_cursor(cursor)
        return dg.SkipReason(
            f"{len(events)} new {key.to_user_string()} materialization(s); nothing to move"
        )
    return dg.SensorResult(run_requests=requests, cursor=cursor)


def _at(stages: dict[str, str], version: object, stage: str) -> bool:
    return version is not None and stage_of(stages, str(version)) == stage


@dg.sensor(
    job_name=DEPLOY_JOB,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="candidate -> shadow: a version that entered the rollout as candidate "
    "(passed every offline gate) starts scoring live traffic in shadow.",
)
def shadow_sensor(context: dg.SensorEvaluationContext, mlflow: MlflowResource):
    def requests(event, stages):
        version = event.get("version")
        if event.get("stage") != CANDIDATE or not _at(stages, version, CANDIDATE):
            return []
        return [rollout_request(str(version), SHADOW, "passed every offline gate")]

    return _decide(context, DEPLOYED_MODEL, mlflow, requests)


@dg.sensor(
    job_name=DEPLOY_JOB,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="shadow -> canary once shadow_comparison says the version is ready (enough "
    "compared requests, no day blocked); a blocked shadow is rolled back.",
)
def canary_sensor(context: dg.SensorEvaluationContext, mlflow: MlflowResource):
    def requests(event, stages):
        version, state = event.get("shadow_version"), event.get("readiness")
        if not _at(stages, version, SHADOW):
            return []
        why = str(event.get("readiness_summary", ""))
        if state == READY:
            return [rollout_request(str(version), CANARY, why)]
        if state == BLOCKED:
            return [rollout_request(str(version), ROLLED_BACK, why)]
        return []

    return _decide(context, SHADOW_COMPARISON, mlflow, requests)


@dg.sensor(
    job_name=DEPLOY_JOB,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="canary -> champion when ab_analysis reaches its planned sample without the "
    "canary being worse; a canary significantly worse is rolled back automatically.",
)
def champion_sensor(context: dg.SensorEvaluationContext, mlflow: MlflowResource):
    def requests(event, stages):
        version, verdict = event.get("canary_version"), event.get("verdict")
        if not _at(stages, version, CANARY):
            return []
        why = str(event.get("summary", ""))
        if verdict == PROMOTE:
            return [rollout_request(str(version), CHAMPION, why)]
        if verdict == WORSE:
            return [rollout_request(str(version), ROLLED_BACK, why)]
        return []

    return _decide(context, AB_ANALYSIS, mlflow, requests)


rollout_sensors = [shadow_sensor, canary_sensor, champion_sensor]
