"""A sensor that ingests exactly the days whose landing files are new or changed."""

import json
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from ml_assets.automation.jobs import INGEST_JOB
from ml_assets.data.assets import LANDING_FINGERPRINT, RAW_TRANSACTIONS
from ml_assets.data.landing import TRANSACTIONS, landing_files, landing_fingerprint
from ml_assets.data.partitions import daily_partitions
from ml_assets.resources import LandingZone, SettingsResource


@dataclass(frozen=True)
class LandingChange:
    day: str
    fingerprint: str

    @property
    def run_key(self) -> str:
        return f"{self.day}:{self.fingerprint}"


def landed_days(landing_dir: Path) -> list[str]:
    if not landing_dir.is_dir():
        return []
    return sorted(p.name.removeprefix("date=") for p in landing_dir.glob("date=*") if p.is_dir())


def find_changes(
    landing_dir: Path, seen: dict[str, str], valid_days: set[str]
) -> tuple[list[LandingChange], list[str]]:
    """Days whose files differ from what the cursor saw, and days outside the partitions."""
    changes, skipped = [], []
    for day in landed_days(landing_dir):
        files = landing_files(landing_dir, day, TRANSACTIONS)
        if not files:
            continue
        if day not in valid_days:
            skipped.append(day)
            continue
        # Labels count too: a late label file re-ingests its day.
        current = landing_fingerprint(landing_dir, day)
        if seen.get(day) != current:
            changes.append(LandingChange(day, current))
    return changes, skipped


def ingested_fingerprint(instance: dg.DagsterInstance, day: str) -> str | None:
    """The landing fingerprint the newest raw_transactions of `day` was read from."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=RAW_TRANSACTIONS, asset_partitions=[day]), limit=1
    ).records
    if not records or records[0].asset_materialization is None:
        return None
    value = records[0].asset_materialization.metadata.get(LANDING_FINGERPRINT)
    return value.value if value is not None else None


@dg.sensor(
    job_name=INGEST_JOB,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests an ingest run for each day whose landing files are new or changed.",
)
def landing_sensor(
    context: dg.SensorEvaluationContext, landing: LandingZone, settings: SettingsResource
) -> dg.SensorResult:
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    partitions = daily_partitions(settings.settings.partitions_start)
    valid_days = set(partitions.get_partition_keys())
    changes, skipped = find_changes(landing.root, seen, valid_days)
    if skipped:
        context.log.warning(
            f"landing days outside the partitions ({partitions.start:%Y-%m-%d}..yesterday) "
            f"ignored: {skipped[:5]}{'...' if len(skipped) > 5 else ''}"
        )
    # Days ingested by other runs (the demo, a backfill) with these very files need no run.
    already = [c for c in changes if ingested_fingerprint(context.instance, c.day) == c.fingerprint]
    seen.update({c.day: c.fingerprint for c in changes})
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(run_key=c.run_key, partition_key=c.day)
            for c in changes
            if c not in already
        ],
        cursor=json.dumps(seen, sort_keys=True),
    )
