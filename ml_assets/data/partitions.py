"""The daily partitioning every dated table shares, built from the settings' first day."""

from __future__ import annotations

from datetime import date

import dagster as dg


def daily_partitions(start: date) -> dg.DailyPartitionsDefinition:
    """One partition per UTC day from `start` (ML_ASSETS_START) to yesterday."""
    return dg.DailyPartitionsDefinition(start_date=start.isoformat(), timezone="UTC")


def partition_day(context: dg.AssetExecutionContext) -> date:
    """The day a daily-partitioned run covers, from its time window."""
    return context.partition_time_window.start.date()
