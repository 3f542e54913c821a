"""Import time of the code location beside `import dagster` alone, each in fresh interpreters.

Every Dagster run process and every step subprocess of the multiprocess executor imports the
code location before doing any work, so this is paid once per run and once per step. Prints
the median of `--runs` fresh processes for each (the two interleaved, so a change of load
hits both), the ratio, and the issue's target.

    python bench/import_time.py [--runs 5] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from ml_assets_tests.support.imports import FreshImport, import_fresh  # noqa: E402

TARGET_S = 2.5  # the target for `python -c "import ml_assets.definitions"`
OURS, PEER = "ml_assets.definitions", "dagster"


def _load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per module")
    parser.add_argument("--quick", action="store_true", help="3 processes per module")
    args = parser.parse_args()
    runs = 3 if args.quick else args.runs
    print(f"load average at start (1/5/15 min): {_load_average()} on {os.cpu_count()} cores")
    results: dict[str, list[FreshImport]] = {OURS: [], PEER: []}
    for _ in range(runs):
        for module in (PEER, OURS):
            results[module].append(import_fresh(module))
    process = {m: statistics.median(r.process_s for r in rs) for m, rs in results.items()}
    statement = {m: statistics.median(r.import_s for r in rs) for m, rs in results.items()}
    cpu = {m: statistics.median(r.cpu_s for r in rs) for m, rs in results.items()}
    print(f"\nmedian of {runs} fresh interpreters")
    print(
        f"{'import':<24}{'process wall s':>16}{'vs dagster':>12}{'import stmt s':>15}"
        f"{'process CPU s':>15}{'vs dagster':>12}  heavy"
    )
    for module, rs in results.items():
        heavy = ", ".join(rs[0].heavy()) or "none"
        print(
            f"{module:<24}{process[module]:>16.2f}{process[module] / process[PEER]:>11.2f}x"
            f"{statement[module]:>15.2f}{cpu[module]:>15.2f}{cpu[module] / cpu[PEER]:>11.2f}x"
            f"  {heavy}"
        )
    verdict = "MET" if process[OURS] <= TARGET_S else "MISSED"
    print(
        f"\n[{verdict}] `python -c 'import {OURS}'`: {process[OURS]:.2f} s <= {TARGET_S} s"
        f" (dagster alone: {process[PEER]:.2f} s)"
    )
    print(f"load average at end (1/5/15 min): {_load_average()}")


if __name__ == "__main__":
    main()
