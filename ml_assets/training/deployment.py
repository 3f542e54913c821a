"""`deployed_model`: the evaluated candidate becomes the champion, and a blocking check
scores a probe row with the version that is live, as serving will load it."""

import dagster as dg

from ml_assets.resources import MlflowResource
from ml_assets.training.model_contracts import EvaluationOutcome, probe_error
from ml_assets.training.registry_aliases import promote_candidate
from ml_assets.training.registry_reader import (
    CHAMPION,
    STUDENT_MODEL_NAME,
    load_model_version,
    resolve_version,
)

DEPLOYED_MODEL = dg.AssetKey("deployed_model")
CHECK_PROBE = "champion_scores_probe"


@dg.asset(
    key=DEPLOYED_MODEL,
    group_name="models",
    kinds={"mlflow"},
    pool="mlflow",
    description="The model the endpoint serves: the evaluated candidate becomes `champion` (the "
    "replaced one becomes `challenger`, scored in shadow); endpoints follow the alias.",
)
def deployed_model(
    context: dg.AssetExecutionContext, model_evaluation: EvaluationOutcome, mlflow: MlflowResource
) -> dg.MaterializeResult:
    candidate = model_evaluation.candidate
    if not model_evaluation.passed:
        raise dg.Failure(
            f"{candidate.name} v{candidate.version} failed its gates: "
            f"{model_evaluation.failed_gates}"
        )
    promotion = promote_candidate(
        mlflow.tracking_uri,
        candidate.name,
        candidate.version,
        reason=f"passed all gates in evaluation run {model_evaluation.run_id}",
    )
    context.log.info(f"champion {candidate.name} v{promotion.version} (was {promotion.replaced})")
    return dg.MaterializeResult(
        metadata={
            "live": f"{promotion.name} v{promotion.version}",
            "replaced": promotion.replaced or "none",
            "challenger": promotion.challenger or "none",
            "reason": promotion.reason,
            "training_window": f"{candidate.partitions[0]}..{candidate.partitions[-1]}",
        }
    )


@dg.asset_check(
    asset=DEPLOYED_MODEL,
    name=CHECK_PROBE,
    blocking=True,
    description="Loads the champion through the registry reader, as the endpoint does, and "
    "scores a probe row: a live model that cannot predict stops everything downstream.",
)
def champion_scores_probe(mlflow: MlflowResource) -> dg.AssetCheckResult:
    name = STUDENT_MODEL_NAME
    version = resolve_version(mlflow.tracking_uri, name, CHAMPION)
    if version is None:
        return dg.AssetCheckResult(passed=False, description=f"{name} has no champion alias")
    error = probe_error(load_model_version(name, version, mlflow.tracking_uri))
    return dg.AssetCheckResult(
        passed=error is None,
        description=error or f"{name} v{version} scored the probe row",
        metadata={"champion": f"{name} v{version}"},
    )
