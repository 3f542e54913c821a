"""Jobs: named selections of assets that sensors and schedules launch. Sensors and schedules
name them (`job_name=`), so only the partitioned ones are built from the settings."""

import dagster as dg

from ml_assets.training.deployment import DEPLOYED_MODEL

INGEST_JOB = "ingest_landing"
DAILY_JOB = "daily_pipeline"
TRAIN_JOB = "train_models"
DEPLOY_JOB = "deploy_model"
# Run config for runs started from a command line tool: the console shows its own progress,
# every step's log stays in the UI's run view.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def build_jobs(partitions: dg.PartitionsDefinition) -> list:
    return [
        dg.define_asset_job(
            INGEST_JOB,
            selection=dg.AssetSelection.groups("data"),
            partitions_def=partitions,
            description="Ingest one day's landed files: raw, validated, quarantined, labels.",
        ),
        dg.define_asset_job(
            DAILY_JOB,
            selection=dg.AssetSelection.groups("data", "features", "monitoring"),
            partitions_def=partitions,
            description="One day end to end: ingestion, features, online store, monitoring.",
        ),
        dg.define_asset_job(
            TRAIN_JOB,
            selection=dg.AssetSelection.assets(
                "teacher_model", "student_model", "model_evaluation"
            ),
            description="Retrain teacher and student on the newest window and evaluate them; the "
            "promotion sensor deploys the candidate only if every gate passed.",
        ),
        dg.define_asset_job(
            DEPLOY_JOB,
            selection=[DEPLOYED_MODEL],
            description="One rollout step: the evaluated candidate enters (no config), or a "
            "version moves to shadow, canary, champion or is rolled back (the sensors' config).",
        ),
    ]
