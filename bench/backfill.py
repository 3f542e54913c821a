"""Backfill throughput through the real daemon: days of data + features per minute.

Starts `dagster dev` (webserver + daemon) on loopback with a temporary DAGSTER_HOME holding
this repository's dagster.yaml (its queued run coordinator and concurrency limits), stops
every running sensor and schedule so only the backfill runs, lands N generated days
(20k transactions a day, as the demo's generator does), launches a backfill of the data and
features groups over them through the GraphQL API (`launchPartitionBackfill`), waits for it
with a progress bar, and prints runs launched, wall time and days per minute. Beside it, the
same backfill of `--compare-days` days one partition per run (ML_ASSETS_BACKFILL_DAYS_PER_RUN=1,
the behaviour before range runs), with the ratio. Target: 365 days in <= 15 min on 2 cores.

    python bench/backfill.py [--days 90] [--compare-days 10] [--rows-per-day 20000]
    python bench/backfill.py --days 365 --compare-days 0
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from tqdm import tqdm

from ml_assets.data.assets import (
    QUARANTINED_TRANSACTIONS,
    RAW_TRANSACTIONS,
    TRANSACTION_LABELS,
    VALIDATED_TRANSACTIONS,
)
from ml_assets.data.demo_source import land_days
from ml_assets.data.generator import GeneratorConfig
from ml_assets.features.assets import (
    CUSTOMER_FEATURES_KEY,
    MERCHANT_FEATURES_KEY,
    ONLINE_FEATURES,
    TRAINING_SET,
)
from ml_assets.serving.local_server import free_port
from ml_assets.settings import Settings
from ml_assets_tests.support.platforms import day_keys
from ml_assets_tests.support.servers import stop_process

REPO = Path(__file__).resolve().parent.parent
# The data and features groups: what a backfill of history has to rebuild.
ASSETS = [RAW_TRANSACTIONS, VALIDATED_TRANSACTIONS, QUARANTINED_TRANSACTIONS, TRANSACTION_LABELS,
          CUSTOMER_FEATURES_KEY, MERCHANT_FEATURES_KEY, TRAINING_SET, ONLINE_FEATURES]  # fmt: skip
TARGET_DAYS, TARGET_S = 365, 15 * 60  # the target, on 2 cores

LOCATIONS = """{ locationStatusesOrError { ... on WorkspaceLocationStatusEntries {
  entries { name loadStatus } } } }"""
INSTIGATORS = """{ repositoriesOrError { ... on RepositoryConnection { nodes {
  sensors { name sensorState { id status } }
  schedules { name scheduleState { id status } } } } } }"""
STOP_SENSOR = "mutation($id: String) { stopSensor(id: $id) { __typename } }"
STOP_SCHEDULE = "mutation($id: String) { stopRunningSchedule(id: $id) { __typename } }"
LAUNCH = """mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) { __typename
    ... on LaunchBackfillSuccess { backfillId } ... on Error { message }
    ... on PythonError { stack } } }"""
STATUS = """query($id: String!) { partitionBackfillOrError(backfillId: $id) {
  ... on PartitionBackfill { status runs { status } assetBackfillData { assetBackfillStatuses {
    ... on AssetPartitionsStatusCounts { numPartitionsTargeted numPartitionsMaterialized
        numPartitionsFailed } } } }
  ... on Error { message } } }"""
DONE = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}


@dataclass(frozen=True)
class Figure:
    days: int
    days_per_run: int
    runs: int
    wall_s: float
    status: str

    @property
    def days_per_minute(self) -> float:
        return self.days / (self.wall_s / 60)


def graphql(client: httpx.Client, query: str, **variables: object) -> dict:
    body = client.post("/graphql", json={"query": query, "variables": variables}).json()
    if "errors" in body:
        raise RuntimeError(f"GraphQL error: {body['errors']}")
    return body["data"]


@contextmanager
def dagster_dev(home: Path, env: dict[str, str], log: Path) -> Iterator[httpx.Client]:
    """`dagster dev` on a free loopback port with this repo's dagster.yaml in `home`; yields a
    client once the code location has loaded. The instance's relative storage folders resolve
    against the working directory, so the process runs in `home`."""
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    port = free_port()
    command = [sys.executable, "-m", "dagster", "dev", "-h", "127.0.0.1", "-p", str(port),
               "-m", "ml_assets.definitions"]  # fmt: skip
    with open(log, "wb") as out:
        # Own session: dagster dev's webserver, daemon and code server go down with it.
        process = subprocess.Popen(command, cwd=home, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            deadline = time.monotonic() + 600
            while True:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"dagster dev did not load the code location; see {log}")
                try:
                    entries = graphql(client, LOCATIONS)["locationStatusesOrError"]["entries"]
                    if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                        break
                except (httpx.HTTPError, ValueError):
                    pass
                time.sleep(1)
            yield client
    finally:
        stop_process(process, timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # whatever of its session outlived it


def stop_instigators(client: httpx.Client) -> list[str]:
    """Stop every running sensor and schedule (the landing sensor would ingest the landed
    days itself), so the backfill is the only work; returns their names."""
    stopped = []
    for repo in graphql(client, INSTIGATORS)["repositoriesOrError"]["nodes"]:
        for kind, mutation in (("sensor", STOP_SENSOR), ("schedule", STOP_SCHEDULE)):
            for item in repo[f"{kind}s"]:
                state = item[f"{kind}State"]
                if state["status"] == "RUNNING":
                    graphql(client, mutation, id=state["id"])
                    stopped.append(item["name"])
    return stopped


def launch(client: httpx.Client, days: list[str]) -> str:
    params = {
        "partitionNames": days,
        "assetSelection": [{"path": key.path} for key in ASSETS],
        "title": f"bench: {len(days)} days of data + features",
    }
    answer = graphql(client, LAUNCH, params=params)["launchPartitionBackfill"]
    if answer["__typename"] != "LaunchBackfillSuccess":
        raise RuntimeError(f"backfill not launched: {answer}")
    return answer["backfillId"]


def wait(client: httpx.Client, backfill_id: str, label: str) -> tuple[str, int]:
    """Poll the backfill until it ends, with a bar of materialized asset partitions; returns
    its final status and how many runs it launched."""
    with tqdm(desc=label, unit="asset-day", mininterval=5) as bar:
        while True:
            state = graphql(client, STATUS, id=backfill_id)["partitionBackfillOrError"]
            counts = state["assetBackfillData"]["assetBackfillStatuses"]
            bar.total = sum(c.get("numPartitionsTargeted", 0) for c in counts)
            failed = sum(c.get("numPartitionsFailed", 0) for c in counts)
            bar.set_postfix(runs=len(state["runs"]), failed=failed, refresh=False)
            bar.update(sum(c.get("numPartitionsMaterialized", 0) for c in counts) - bar.n)
            if state["status"] in DONE:
                return state["status"], len(state["runs"])
            time.sleep(2)


def measure(days: int, days_per_run: int, rows: int, keep: Path) -> Figure:
    """One backfill of `days` days under ML_ASSETS_BACKFILL_DAYS_PER_RUN=`days_per_run`, in a
    fresh data dir and instance; the wall time runs from launch to the backfill's end."""
    start = datetime.now(UTC).date() - timedelta(days=days)  # the last day is yesterday
    with tempfile.TemporaryDirectory(prefix="bench_backfill_") as tmp:
        home = Path(tmp)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
            "DAGSTER_HOME": str(home),
            "ML_ASSETS_HOME": str(home / "data"),
            "ML_ASSETS_START": start.isoformat(),
            "ML_ASSETS_TRANSACTIONS_PER_DAY": str(rows),
            "ML_ASSETS_BACKFILL_DAYS_PER_RUN": str(days_per_run),
        }
        log = keep / f"dagster_dev_{days}d_{days_per_run}perrun.log"
        with dagster_dev(home, env, log) as client:
            stopped = stop_instigators(client)
            print(f"stopped {', '.join(stopped) or 'nothing'}; landing {days} days", flush=True)
            landing = Settings(home=home / "data").landing_dir
            config = GeneratorConfig(transactions_per_day=rows)
            for _ in tqdm(land_days(landing, start, days, config), total=days, desc="landing"):
                pass
            began = time.perf_counter()
            backfill_id = launch(client, day_keys(start, days))
            label = f"{days} days, {days_per_run} a run"
            status, runs = wait(client, backfill_id, label)
            wall = time.perf_counter() - began
    return Figure(days, days_per_run, runs, wall, status)


def row(name: str, figure: Figure) -> str:
    return (f"{name:<28} {figure.days:>5} {figure.runs:>5} {figure.wall_s:>9.1f} "
            f"{figure.days_per_minute:>8.2f}  {figure.status}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument(
        "--compare-days", type=int, default=10,
        help="also backfill this many days one partition per run (0: skip)",
    )  # fmt: skip
    parser.add_argument("--rows-per-day", type=int, default=20_000)
    args = parser.parse_args()
    ranges = Settings.from_env().backfill_days_per_run
    keep = Path(tempfile.mkdtemp(prefix="bench_backfill_logs_"))
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; "
          f"{args.rows_per_day:,} transactions a day; dagster dev logs in {keep}")  # fmt: skip
    figures = {"ranges": measure(args.days, ranges, args.rows_per_day, keep)}
    if args.compare_days:
        if args.compare_days != args.days:
            figures["ranges, small N"] = measure(args.compare_days, ranges, args.rows_per_day, keep)
        figures["one partition per run"] = measure(args.compare_days, 1, args.rows_per_day, keep)
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")
    print(f"{'backfill of data + features':<28} {'days':>5} {'runs':>5} {'wall s':>9} "
          f"{'days/min':>8}  status")  # fmt: skip
    for name, figure in figures.items():
        print(row(name, figure))
    if args.compare_days:
        small = figures.get("ranges, small N", figures["ranges"])
        single = figures["one partition per run"]
        print(f"ranges vs one partition per run at {args.compare_days} days: "
              f"{small.days_per_minute / single.days_per_minute:.2f}x the days per minute, "
              f"{single.runs / small.runs:.1f}x fewer runs")  # fmt: skip
    main_figure = figures["ranges"]
    if main_figure.days == TARGET_DAYS:
        verdict = "MET" if main_figure.wall_s <= TARGET_S else "MISSED"
        print(f"target: {TARGET_DAYS} days in <= {TARGET_S / 60:.0f} min; measured "
              f"{main_figure.wall_s / 60:.1f} min -> {verdict}")  # fmt: skip
    else:
        print(f"target: {TARGET_DAYS} days in <= {TARGET_S / 60:.0f} min; "
              f"run --days {TARGET_DAYS} to judge it")  # fmt: skip


if __name__ == "__main__":
    main()
