"""The daily partitioning every dated table shares, built from the settings' first day."""

from __future__ import annotations

import warnings
from datetime import date

import dagster as dg


def daily_partitions(start: date) -> dg.DailyPartitionsDefinition:
    """One partition per UTC day from `start` (ML_ASSETS_START) to yesterday."""
    return dg.DailyPartitionsDefinition(start_date=start.isoformat(), timezone="UTC")


def partition_day(context: dg.AssetExecutionContext) -> date:
    """The day a daily-partitioned run covers, from its time window."""
    return context.partition_time_window.start.date()


# How many days one backfill run covers. Data and feature assets share this one policy so the
# daemon can put a range's data and features in the same run; bounded so a year's backfill
# still spreads over parallel runs and a failed blocking check holds back one month, not all.
DAYS_PER_RUN = 31
RANGE_BACKFILL = dg.BackfillPolicy.multi_run(max_partitions_per_run=DAYS_PER_RUN)
# `backfill_policy=` is beta in Dagster 1.13 and warns at every decorator that uses it; this
# module is where the platform opts in, so it says so once here.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)


def partition_days(context: dg.AssetExecutionContext) -> list[date]:
    """Every day a run covers, in order: one for a single partition, many for a range."""
    return [date.fromisoformat(key) for key in context.partition_keys]
