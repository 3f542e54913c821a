"""The demo: land 30 generated days and materialize every asset for them on the real
Dagster instance, so the runs, checks and lineage show in the UI afterwards."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg
from tqdm import tqdm

from ml_assets.data.demo_source import demo_scenarios, land_days
from ml_assets.data.generator import GeneratorConfig
from ml_assets.settings import get_settings


def _partitioned_and_unpartitioned(defs: dg.Definitions) -> tuple[list, list]:
    graph = defs.resolve_asset_graph()
    keys = [k for k in graph.get_all_asset_keys() if graph.get(k).is_materializable]
    partitioned = [k for k in keys if graph.get(k).partitions_def is not None]
    return partitioned, [k for k in keys if k not in partitioned]


def run_demo(days: int = 30) -> int:
    from ml_assets.definitions import defs

    settings = get_settings()
    last_day = date.today() - timedelta(days=1)
    first_day = last_day - timedelta(days=days - 1)
    config = GeneratorConfig(
        seed=settings.seed,
        transactions_per_day=settings.transactions_per_day,
        scenarios=demo_scenarios(last_day),
    )
    for _ in tqdm(
        land_days(settings.landing_dir, first_day, days, config),
        total=days,
        unit="day",
        desc="landing",
    ):
        pass
    instance = dg.DagsterInstance.get()
    job = defs.resolve_implicit_global_asset_job_def()
    partitioned, unpartitioned = _partitioned_and_unpartitioned(defs)
    failed = []
    for offset in tqdm(range(days), unit="day", desc="materializing"):
        day = (first_day + timedelta(days=offset)).isoformat()
        result = job.execute_in_process(
            partition_key=day, instance=instance, asset_selection=partitioned, raise_on_error=False
        )
        if not result.success:
            failed.append(day)
    if unpartitioned:
        # Train on the days before the drift scenarios, so the monitoring of the last days
        # compares drifted data with what the champion learned from.
        end = min(s.start for s in config.scenarios).isoformat()
        print(f"training and evaluating the models on label days up to {end} ...")
        result = job.execute_in_process(
            instance=instance,
            asset_selection=unpartitioned,
            raise_on_error=False,
            run_config={"ops": {"teacher_model": {"config": {"end_date": end}}}},
        )
        if not result.success:
            failed.append("unpartitioned assets")
    print(f"\nDemo data: {first_day}..{last_day} in {settings.home}")
    print("Open the Dagster UI with `make ui` (http://127.0.0.1:3000): Assets > data group.")
    if failed:
        print(f"Runs that failed (see the UI's Runs page for why): {', '.join(failed)}")
        return 1
    return 0
