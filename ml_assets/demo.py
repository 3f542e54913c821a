"""The demo: land 30 generated days and materialize every asset for them on the real
Dagster instance, so the runs, checks and lineage show in the UI afterwards.

Three stages, in the order data flows: each day's data and features; then the models on
the days before the drift scenarios (evaluated, gated, promoted); then each day's
monitoring against that champion."""

from __future__ import annotations

import functools
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from datetime import date, timedelta

import dagster as dg
from tqdm import tqdm

from ml_assets.automation.jobs import QUIET
from ml_assets.data.demo_source import demo_scenarios, land_days
from ml_assets.data.generator import GeneratorConfig
from ml_assets.settings import get_settings

MONITORING, RAG = "monitoring", "rag"
WARM_UP_DAYS = 7  # the first week: the 7-day feature windows are still filling
REPLAY_DAYS_BACK = (5,)  # a clean day with all its labels, just before the drift scenarios


def _replay(settings, days: list[date]) -> list[str]:
    """Replay `days` through an endpoint on loopback; the parity lines of each. The online
    store is then brought back to every landed day, for `make serve`."""
    from ml_assets.automation.replay import restore_store_before, run_replay
    from ml_assets.features.online import open_online_store

    lines = []
    for day in days:
        lines += run_replay(settings, day, batch=250).lines()
    store = open_online_store(settings.online_store_url, settings.home)
    try:
        restore_store_before(store, settings.warehouse_dir, date.today())
    finally:
        store.close()
    return lines


def _stages(defs: dg.Definitions) -> tuple[list, list, list[list], list]:
    """Daily data and features; the models; the two monitoring stages; the RAG assets (apart:
    the reviewers' knowledge base neither feeds nor blocks the fraud models)."""
    graph = defs.resolve_asset_graph()
    nodes = [graph.get(k) for k in graph.get_all_asset_keys() if graph.get(k).is_materializable]
    rag = [n.key for n in nodes if n.group_name == RAG]
    nodes = [n for n in nodes if n.group_name != RAG]
    daily = [n for n in nodes if n.partitions_def is not None]
    monitoring = [n for n in daily if n.group_name == MONITORING]
    # Batch scores first for every day: prediction drift compares with the training days'.
    first = [n.key for n in monitoring if not any(graph.get(p).group_name == MONITORING
                                                   for p in n.parent_keys)]  # fmt: skip
    return (
        [n.key for n in daily if n.group_name != MONITORING],
        [n.key for n in nodes if n.partitions_def is None],
        [first, [n.key for n in monitoring if n.key not in first]],
        rag,
    )


@functools.cache
def _instance() -> dg.DagsterInstance:
    """This process's instance (DAGSTER_HOME): opened once, shared by its runs."""
    return dg.DagsterInstance.get()


def _run_day(day: str | None, selection: list[str]) -> bool:
    """One day's run of `selection` (None: unpartitioned assets) on the instance of
    DAGSTER_HOME, in this process or a worker."""
    from ml_assets.definitions import defs

    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        partition_key=day,
        instance=_instance(),
        asset_selection=[dg.AssetKey.from_user_string(k) for k in selection],
        raise_on_error=False,
        run_config=QUIET,
    )
    return result.success


def _each_day(days: list[str], selection: list, desc: str, workers: int = 1) -> list[str]:
    """Run `selection` once per day, `workers` days at a time. Days of one stage whose assets
    read no other day's output of that stage are independent, so the monitoring stages use
    every core; data and features run in order (a day's windows read the days before)."""
    keys = [k.to_user_string() for k in selection]
    failed = []
    if workers <= 1:
        for day in tqdm(days, unit="day", desc=desc):
            if not _run_day(day, keys):
                failed.append(f"{desc} {day}")
        return failed
    # spawn, not fork: the parent has trained with torch, whose thread pool does not survive
    # a fork; each worker imports the code location once and runs many days.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        runs = {pool.submit(_run_day, day, keys): day for day in days}
        for done in tqdm(as_completed(runs), total=len(runs), unit="day", desc=desc):
            if not done.result():
                failed.append(f"{desc} {runs[done]}")
    return sorted(failed)


def drift_summary(reports_dir, scenario_days: set[str], warm_up: set[str]) -> str:
    """How the drift reports did on the demo: scenario days flagged (sensitivity), clean days
    flagged (false alarms). The first days are counted apart: their 7- and 30-day windows
    are not yet full, which is real drift of the inputs, not a false alarm."""
    from ml_assets.monitoring.reports import read_summaries

    flagged = {s["day"]: s["dataset_drift"] for s in read_summaries(reports_dir / "drift")}
    scenario = [flagged[d] for d in flagged if d in scenario_days]
    clean = [flagged[d] for d in flagged if d not in scenario_days and d not in warm_up]
    early = [flagged[d] for d in flagged if d in warm_up]
    return (
        f"drift flagged on {sum(scenario)}/{len(scenario)} scenario days, "
        f"{sum(clean)}/{len(clean)} clean days, and {sum(early)}/{len(early)} warm-up days"
    )


def run_demo(days: int = 30, workers: int = min(2, os.cpu_count() or 1)) -> int:
    from ml_assets.definitions import defs

    settings = get_settings()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    last_day = date.today() - timedelta(days=1)
    first_day = last_day - timedelta(days=days - 1)
    config = GeneratorConfig.from_settings(settings, scenarios=demo_scenarios(last_day))
    for _ in tqdm(land_days(settings.landing_dir, first_day, days, config), total=days,
                  unit="day", desc="landing"):  # fmt: skip
        pass
    job = defs.resolve_implicit_global_asset_job_def()
    daily, models, monitoring, rag = _stages(defs)
    keys = [(first_day + timedelta(days=i)).isoformat() for i in range(days)]
    # The reviewers' knowledge base (RAG) neither reads nor feeds the fraud models: it is
    # built in a process of its own beside the data and features, which use one core.
    print("building the reviewers' knowledge base (RAG index and evaluations) alongside ...")
    side = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    rag_run = side.submit(_run_day, None, [k.to_user_string() for k in rag])
    failed = _each_day(keys, daily, "data+features")
    # Train on the days before the drift scenarios, so the monitoring of the last days
    # compares drifted data with what the champion learned from.
    end = min(s.start for s in config.scenarios).isoformat()
    print(f"training, evaluating and promoting the models on label days up to {end} ...")
    result = job.execute_in_process(
        instance=_instance(),
        asset_selection=models,
        raise_on_error=False,
        run_config={**QUIET, "ops": {"teacher_model": {"config": {"end_date": end}}}},
    )
    if not result.success:
        failed.append("models")
    else:
        first, then = monitoring
        failed += _each_day(keys, first, "monitoring", workers)
        # Traffic through the endpoint, so the served side of monitoring has answers to judge:
        # the clean days just before the drift, replayed as production would have sent them.
        parity_lines = _replay(settings, [last_day - timedelta(days=k) for k in REPLAY_DAYS_BACK])
        failed += _each_day(keys, then, "monitoring", workers)
    if rag_run.exception() is not None or not rag_run.result():
        failed.append("rag")
    side.shutdown()
    print(f"\nDemo data: {first_day}..{last_day} in {settings.home}")
    if "models" not in failed:
        print("\n".join("  " + line for line in parity_lines))
        scenario = {
            (s.start + timedelta(days=i)).isoformat()
            for s in config.scenarios
            if s.name == "amount_inflation"
            for i in range((s.end - s.start).days + 1)
        }
        print("  " + drift_summary(settings.reports_dir, scenario, set(keys[:WARM_UP_DAYS])))
    print(
        "  make ui          Dagster UI on http://127.0.0.1:3000 (Assets: data, features, "
        "models, monitoring)"
    )
    print("  make mlflow-ui   MLflow UI on http://127.0.0.1:5000 (runs, curves, registry)")
    print(f"  drift reports    {settings.reports_dir / 'drift' / 'index.html'}")
    print("  make serve       the champion on http://127.0.0.1:8000")
    if failed:
        print(f"Runs that failed (the UI's Runs page says why): {', '.join(failed)}")
        return 1
    return 0
