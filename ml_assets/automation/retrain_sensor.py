"""A sensor that retrains when drift persists: one run per drift episode."""

from datetime import date

import dagster as dg

from ml_assets.automation.jobs import TRAIN_JOB
from ml_assets.monitoring.assets import DRIFT_REPORT, DRIFT_SHARE_KEY
from ml_assets.monitoring.drift import DRIFT_SHARE
from ml_assets.monitoring.episodes import drift_episodes
from ml_assets.resources import SettingsResource


def latest_drift_shares(instance: dg.DagsterInstance, limit: int = 400) -> dict[date, float]:
    """The newest drift share recorded for each day's drift_report partition."""
    records = instance.fetch_materializations(DRIFT_REPORT, limit=limit).records
    shares: dict[date, float] = {}
    for record in sorted(records, key=lambda r: r.storage_id):
        materialization = record.asset_materialization
        if (
            materialization
            and materialization.partition
            and DRIFT_SHARE_KEY in materialization.metadata
        ):
            day = date.fromisoformat(materialization.partition)
            shares[day] = float(materialization.metadata[DRIFT_SHARE_KEY].value)
    return shares


@dg.sensor(
    job_name=TRAIN_JOB,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests a retrain when the drift share stays above its threshold for "
    "ML_ASSETS_RETRAIN_DRIFT_DAYS consecutive days; the run key is the episode's first "
    "day, so one episode retrains once. The new model still has to pass the gates.",
)
def drift_retrain_sensor(context: dg.SensorEvaluationContext, settings: SettingsResource):
    min_days = settings.retrain_drift_days
    shares = latest_drift_shares(context.instance)
    # Only drift that is still going on is a reason to retrain now; an episode that ended
    # (e.g. the warm-up days before the windows filled) is history.
    episodes = [e for e in drift_episodes(shares, DRIFT_SHARE, min_days) if e.end == max(shares)]
    if not episodes:
        return dg.SkipReason(f"no ongoing drift episode of {min_days}+ consecutive days")
    return [
        dg.RunRequest(run_key=e.run_key, tags={"drift_episode": f"{e.start}..{e.end}"})
        for e in episodes
    ]
