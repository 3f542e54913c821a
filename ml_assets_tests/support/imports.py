"""Importing a module in a fresh interpreter: what it costs and which libraries it loads.

Every Dagster run process and every step subprocess imports the code location before doing
any work, so both the test of what it loads and the bench of what it costs meet it as those
processes do: a new interpreter started from the repository root.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Imported where they are used, never with the code location (DESIGN, known pitfalls): each
# costs a run process seconds of CPU. scipy, pandas and pandera come in with the others.
HEAVY_LIBRARIES = (
    "torch",
    "mlflow",
    "evidently",
    "lightgbm",
    "sklearn",
    "matplotlib",
    "scipy",
    "pandas",
    "pandera",
)

_CHILD = """
import json, sys, time
start = time.perf_counter()
import {module}
seconds = time.perf_counter() - start
loaded = sorted({{m.split(".")[0] for m in sys.modules}})
print(json.dumps({{"seconds": seconds, "loaded": loaded}}))
"""


@dataclass(frozen=True)
class FreshImport:
    module: str
    import_s: float  # the import statement alone
    process_s: float  # interpreter start, import and exit: what a run process pays
    cpu_s: float  # the process's user + system CPU: steadier than wall on a busy machine
    loaded: frozenset[str]  # top-level packages in sys.modules afterwards

    def heavy(self) -> list[str]:
        return sorted(self.loaded & set(HEAVY_LIBRARIES))


def import_fresh(module: str, timeout_s: float = 300) -> FreshImport:
    """Import `module` in a new interpreter whose working directory is the repository root
    (so this checkout's `ml_assets` is the one imported)."""
    cpu_before = _children_cpu_s()
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", _CHILD.format(module=module)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    process_s = time.perf_counter() - start
    cpu_s = _children_cpu_s() - cpu_before
    if result.returncode != 0:
        raise RuntimeError(f"`import {module}` failed in a fresh interpreter:\n{result.stderr}")
    out = json.loads(result.stdout.strip().splitlines()[-1])
    return FreshImport(module, out["seconds"], process_s, cpu_s, frozenset(out["loaded"]))


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
