"""`deployed_model` and the sensor that promotes an evaluated candidate once its gates pass."""

import dagster as dg

from ml_assets.automation.promotion import endpoint_urls, notify_endpoints, promote_candidate
from ml_assets.resources import MlflowResource
from ml_assets.training.assets import MODEL_EVALUATION
from ml_assets.training.mlflow_registry import CHAMPION, resolve_version

DEPLOYED_MODEL = dg.AssetKey("deployed_model")
DEPLOY_JOB = "deploy_model"


@dg.asset(
    key=DEPLOYED_MODEL,
    group_name="models",
    kinds={"mlflow"},
    pool="mlflow",
    description="The model the endpoint serves: the evaluated candidate becomes `champion` (the "
    "replaced one becomes `challenger`, scored in shadow) and running endpoints reload.",
)
def deployed_model(
    context: dg.AssetExecutionContext, model_evaluation: dict, mlflow: MlflowResource
) -> dg.MaterializeResult:
    candidate = model_evaluation["candidate"]
    if not model_evaluation["passed"]:
        failed = [g["message"] for g in model_evaluation["gates"] if not g["passed"]]
        raise dg.Failure(f"{candidate.name} v{candidate.version} failed its gates: {failed}")
    promotion = promote_candidate(
        mlflow.tracking_uri,
        candidate.name,
        candidate.version,
        reason=f"passed all gates in evaluation run {model_evaluation['run_id']}",
    )
    notified = notify_endpoints(endpoint_urls())
    context.log.info(f"champion {candidate.name} v{promotion.version} (was {promotion.replaced})")
    return dg.MaterializeResult(
        metadata={
            "live": f"{promotion.name} v{promotion.version}",
            "replaced": promotion.replaced or "none",
            "challenger": promotion.challenger or "none",
            "reason": promotion.reason,
            "training_window": f"{candidate.partitions[0]}..{candidate.partitions[-1]}",
            "endpoints_notified": notified or "none configured (ML_ASSETS_ENDPOINTS)",
        }
    )


deploy_job = dg.define_asset_job(
    DEPLOY_JOB, selection=[DEPLOYED_MODEL], description="Promote the evaluated candidate."
)


@dg.asset_sensor(
    asset_key=MODEL_EVALUATION,
    job=deploy_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests a deployment when a model evaluation passed all its gates; one run "
    "per model version (run key), never for a failed one.",
)
def promotion_sensor(
    context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry, mlflow: MlflowResource
):
    metadata = asset_event.asset_materialization.metadata
    candidate = metadata["candidate"].value  # "fraud_student v7"
    name, version = candidate.split(" v")
    if not metadata["gates_passed"].value:
        return dg.SkipReason(f"{candidate} failed a promotion gate; not promoting")
    if resolve_version(mlflow.tracking_uri, name, CHAMPION) == version:
        return dg.SkipReason(f"{candidate} is already the champion")
    return dg.RunRequest(run_key=f"promote-{name}-v{version}")
