"""`deployed_model`: the rollout of model versions. Each materialization moves one version one
stage (candidate -> shadow -> canary -> champion, or out again) and records why, and a
blocking check scores a probe row with the champion, as serving will load it.

One asset rather than one per stage or a partition per version: every materialization
names its version and stage in its metadata (the UI's history of the asset is the rollout
log), and the demo's first run, which materializes every unpartitioned asset, still makes
its first model champion (the bootstrap rule of `rollout.enter`).
"""

import dagster as dg

from ml_assets.resources import MlflowResource, SettingsResource
from ml_assets.settings import Settings
from ml_assets.training.model_contracts import EvaluationOutcome, probe_error
from ml_assets.training.registry_reader import (
    CHAMPION,
    STUDENT_MODEL_NAME,
    load_model_version,
    resolve_version,
)
from ml_assets.training.rollout import ROLLED_BACK, RolloutError, Transition, advance, enter, retire
from ml_assets.training.rollout_evidence import (
    PROMOTE,
    READY,
    ShadowLimits,
    ab_verdict,
    shadow_readiness,
)
from ml_assets.training.rollout_stages import CANARY, SHADOW

DEPLOYED_MODEL = dg.AssetKey("deployed_model")
CHECK_PROBE = "champion_scores_probe"
ROLLOUT_KEYS = ("version", "stage")  # metadata keys the rollout sensors read


class RolloutConfig(dg.Config):
    """Which version moves where. Empty `version`: the evaluated candidate enters the
    rollout (as `candidate`, or as champion when there is none). `stage`: shadow, canary,
    champion, or rolled_back (out of whatever stage it holds)."""

    version: str = ""
    stage: str = ""
    reason: str = ""


def _evidence(stage: str, version: str, settings: Settings) -> tuple[bool, str]:
    """Whether the live evidence allows `version` into `stage`, and the figures that say so."""
    if stage == CANARY:
        ready = shadow_readiness(
            settings.reports_dir, version, ShadowLimits.from_settings(settings)
        )
        return ready.state == READY, ready.summary
    if stage == CHAMPION:
        verdict, summary = ab_verdict(settings.reports_dir, version)
        return verdict == PROMOTE, summary or f"A/B verdict {verdict}"
    if stage == SHADOW:
        return True, "passed every offline gate as candidate"
    return True, ""


def _move(uri: str, config: RolloutConfig, settings: Settings) -> tuple[Transition, str]:
    name = STUDENT_MODEL_NAME
    if config.stage == ROLLED_BACK:
        return retire(uri, name, config.version), config.reason or "rolled back on request"
    allowed, evidence = _evidence(config.stage, config.version, settings)
    if not allowed:
        raise dg.Failure(
            f"{name} v{config.version} may not move to {config.stage}: {evidence}",
            metadata={"evidence": evidence},
        )
    return advance(uri, name, config.version, config.stage, settings.canary_share), evidence


@dg.asset(
    key=DEPLOYED_MODEL,
    group_name="models",
    kinds={"mlflow"},
    pool="mlflow",
    description="The rollout of model versions: each materialization moves one version one "
    "stage (candidate -> shadow -> canary -> champion, or rolled back) on the MLflow aliases, "
    "with the evidence in its metadata; sensors request each step. Without config the "
    "evaluated candidate enters as `candidate` (champion directly when there is none yet).",
)
def deployed_model(
    context: dg.AssetExecutionContext,
    config: RolloutConfig,
    model_evaluation: EvaluationOutcome,
    mlflow: MlflowResource,
    settings: SettingsResource,
) -> dg.MaterializeResult:
    uri = mlflow.tracking_uri
    try:
        if config.version:
            transition, evidence = _move(uri, config, settings.settings)
        else:
            candidate = model_evaluation.candidate
            if not model_evaluation.passed:
                raise dg.Failure(
                    f"{candidate.name} v{candidate.version} failed its gates: "
                    f"{model_evaluation.failed_gates}"
                )
            transition = enter(uri, candidate.name, candidate.version)
            evidence = f"passed all gates in evaluation run {model_evaluation.run_id}"
    except RolloutError as error:
        raise dg.Failure(str(error)) from error
    t = transition
    context.log.info(f"{t.name} v{t.version}: {t.previous_stage or 'new'} -> {t.stage}")
    return dg.MaterializeResult(
        metadata={
            **t.to_metadata(),
            "live": f"{t.name} v{t.aliases.get(CHAMPION, 'none')}",
            "evidence": evidence,
            **({"reason": config.reason} if config.reason else {}),
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
