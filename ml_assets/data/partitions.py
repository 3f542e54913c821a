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


def range_backfill(days_per_run: int) -> dg.BackfillPolicy:
    """The backfill policy of every data and feature asset (ML_ASSETS_BACKFILL_DAYS_PER_RUN).

    They share one policy so the daemon can put a range's data and features in one run.
    Bounded (31 by default) so a year's backfill still spreads over parallel runs, one run's
    memory stays a month of data, and a failed blocking check holds back a month, not all.
    """
    if days_per_run < 1:
        raise ValueError(
            f"ML_ASSETS_BACKFILL_DAYS_PER_RUN must be at least 1 (one run per day), "
            f"got {days_per_run}"
        )
    return dg.BackfillPolicy.multi_run(max_partitions_per_run=days_per_run)


# `backfill_policy=` is beta in Dagster 1.13 and warns at every decorator that uses it; this
# module is where the platform opts in, so it says so once here.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)


def partition_days(context: dg.AssetExecutionContext) -> list[date]:
    """Every day a run covers, in order: one for a single partition, many for a range."""
    return [date.fromisoformat(key) for key in context.partition_keys]
