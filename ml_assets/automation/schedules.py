"""Schedules: the daily pipeline for yesterday's partition, and a weekly retrain."""

import dagster as dg

from ml_assets.automation.jobs import DAILY_JOB, TRAIN_JOB


def build_schedules(jobs: list) -> list[dg.ScheduleDefinition]:
    daily_job = next(job for job in jobs if job.name == DAILY_JOB)
    return [
        dg.build_schedule_from_partitioned_job(
            daily_job,
            hour_of_day=2,
            description="Every night: yesterday's partition through ingestion, features and "
            "monitoring.",
        ),
        dg.ScheduleDefinition(
            name="weekly_retrain",
            job_name=TRAIN_JOB,
            cron_schedule="0 4 * * 1",
            execution_timezone="UTC",
            description="Mondays 04:00 UTC: retrain on the newest window (gates decide promotion).",
        ),
    ]
