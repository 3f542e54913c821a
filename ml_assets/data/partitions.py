"""The daily partitioning every dated table shares."""

from __future__ import annotations

from datetime import date

import dagster as dg

from ml_assets.settings import get_settings

daily_partitions = dg.DailyPartitionsDefinition(
    start_date=get_settings().partitions_start.isoformat(), timezone="UTC"
)


def partition_day(context: dg.AssetExecutionContext) -> date:
    """The day a daily-partitioned run covers, from its time window."""
    return context.partition_time_window.start.date()
