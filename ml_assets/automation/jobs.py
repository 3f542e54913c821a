"""Jobs: named selections of assets that sensors and schedules launch."""

import dagster as dg

from ml_assets.data.partitions import daily_partitions

INGEST_JOB = "ingest_landing"
DAILY_JOB = "daily_pipeline"
TRAIN_JOB = "train_models"

ingest_job = dg.define_asset_job(
    INGEST_JOB,
    selection=dg.AssetSelection.groups("data"),
    partitions_def=daily_partitions,
    description="Ingest one day's landed files: raw, validated, quarantined, labels.",
)

daily_job = dg.define_asset_job(
    DAILY_JOB,
    selection=dg.AssetSelection.groups("data", "features", "monitoring"),
    partitions_def=daily_partitions,
    description="One day end to end: ingestion, features, online store, monitoring.",
)

train_job = dg.define_asset_job(
    TRAIN_JOB,
    selection=dg.AssetSelection.assets("teacher_model", "student_model", "model_evaluation"),
    description="Retrain teacher and student on the newest window and evaluate them; the "
    "promotion sensor deploys the candidate only if every gate passed.",
)

jobs = [ingest_job, daily_job, train_job]
