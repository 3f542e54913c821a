"""Schedules: the daily pipeline for yesterday's partition, and a weekly retrain."""

import dagster as dg

from ml_assets.automation.jobs import daily_job, train_job

daily_schedule = dg.build_schedule_from_partitioned_job(
    daily_job,
    hour_of_day=2,
    description="Every night: yesterday's partition through ingestion, features and monitoring.",
)

weekly_retrain_schedule = dg.ScheduleDefinition(
    name="weekly_retrain",
    job=train_job,
    cron_schedule="0 4 * * 1",
    execution_timezone="UTC",
    description="Mondays 04:00 UTC: retrain on the newest window (gates decide promotion).",
)

schedules = [daily_schedule, weekly_retrain_schedule]
