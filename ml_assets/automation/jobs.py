"""Jobs: named selections of assets that sensors and schedules launch."""

from __future__ import annotations

import dagster as dg

from ml_assets.data.partitions import daily_partitions

INGEST_JOB = "ingest_landing"

ingest_job = dg.define_asset_job(
    INGEST_JOB,
    selection=dg.AssetSelection.groups("data"),
    partitions_def=daily_partitions,
    description="Ingest one day's landed files: raw, validated, quarantined, labels.",
)

jobs = [ingest_job]
