"""The sensor that enters an evaluated candidate into the rollout once its gates pass, and
the one that tells running endpoints to reload after every stage change."""

import dagster as dg

from ml_assets.automation.endpoints import endpoint_urls, notify_endpoints
from ml_assets.automation.jobs import DEPLOY_JOB
from ml_assets.resources import MlflowResource
from ml_assets.training.assets import MODEL_EVALUATION
from ml_assets.training.deployment import DEPLOYED_MODEL
from ml_assets.training.model_contracts import Verdict
from ml_assets.training.rollout import stage_aliases, stage_of


@dg.asset_sensor(
    asset_key=MODEL_EVALUATION,
    job_name=DEPLOY_JOB,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests the rollout entry (deploy_model) when a model evaluation passed all "
    "its gates: the version becomes candidate, or champion when there is none yet. One run "
    "per model version (run key), never for a failed one.",
)
def promotion_sensor(
    context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry, mlflow: MlflowResource
):
    metadata = asset_event.asset_materialization.metadata
    verdict = Verdict.from_metadata({k: v.value for k, v in metadata.items()})
    candidate = f"{verdict.name} v{verdict.version}"
    if not verdict.passed:
        return dg.SkipReason(f"{candidate} failed a promotion gate; not promoting")
    stage = stage_of(stage_aliases(mlflow.tracking_uri, verdict.name), verdict.version)
    if stage is not None:
        return dg.SkipReason(f"{candidate} is already the {stage}")
    return dg.RunRequest(run_key=f"promote-{verdict.name}-v{verdict.version}")


@dg.asset_sensor(
    asset_key=DEPLOYED_MODEL,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After each rollout stage change (every deployed_model materialization), asks "
    "the endpoints in ML_ASSETS_ENDPOINTS to reload now; an endpoint it cannot reach follows "
    "the aliases at its next poll.",
)
def endpoint_reload_sensor(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
    urls = endpoint_urls()
    if not urls:
        return dg.SkipReason("no endpoints configured (ML_ASSETS_ENDPOINTS)")
    outcome = notify_endpoints(urls)
    context.log.info(f"asked endpoints to reload: {outcome}")
    return dg.SkipReason(f"asked endpoints to reload: {outcome}")
