"""A sensor that ingests exactly the days whose landing files are new or changed."""

import json
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from ml_assets.automation.jobs import ingest_job
from ml_assets.data.landing import TRANSACTIONS, fingerprint, landing_files
from ml_assets.data.partitions import daily_partitions
from ml_assets.resources import LandingZone


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
        current = fingerprint(files + landing_files(landing_dir, day, "labels"))
        if seen.get(day) != current:
            changes.append(LandingChange(day, current))
    return changes, skipped


@dg.sensor(
    job=ingest_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests an ingest run for each day whose landing files are new or changed.",
)
def landing_sensor(context: dg.SensorEvaluationContext, landing: LandingZone) -> dg.SensorResult:
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    valid_days = set(daily_partitions.get_partition_keys(dynamic_partitions_store=None))
    changes, skipped = find_changes(landing.root, seen, valid_days)
    if skipped:
        context.log.warning(
            f"landing days outside the partitions ({daily_partitions.start:%Y-%m-%d}..yesterday) "
            f"ignored: {skipped[:5]}{'...' if len(skipped) > 5 else ''}"
        )
    seen.update({c.day: c.fingerprint for c in changes})
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=c.run_key, partition_key=c.day) for c in changes],
        cursor=json.dumps(seen, sort_keys=True),
    )
