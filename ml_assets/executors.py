"""Where a run's steps execute, chosen by `ML_ASSETS_EXECUTOR`: child processes of the run
(`multiprocess`, Dagster's default, one machine) or one Kubernetes pod per step (`k8s`,
dagster-k8s's `k8s_job_executor`), so a backfill's days and a run's independent assets spread
over a cluster's nodes. Step pods inherit the image, environment and volumes of the run (the
Helm values of deploy/helm/values.yaml); the sizes below are what only the steps know."""

from __future__ import annotations

from typing import Any

import dagster as dg

EXECUTORS = ("multiprocess", "k8s")

_MODEL_STEP = {
    "container_config": {
        "resources": {"requests": {"cpu": "2", "memory": "6Gi"}, "limits": {"memory": "8Gi"}}
    }
}

# The k8s_job_executor's config: a data or feature step reads a few days of Parquet; training
# holds a training window in memory and uses every core LightGBM and torch get.
K8S_STEP_CONFIG: dict[str, Any] = {
    "max_concurrent": 16,  # pods of one run at once; the run queue bounds runs
    "step_k8s_config": {
        "container_config": {
            "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "4Gi"}}
        }
    },
    "per_step_k8s_config": {"teacher_model": _MODEL_STEP, "student_model": _MODEL_STEP},
}


def build_executor(kind: str) -> dg.ExecutorDefinition | None:
    """The executor of every job of the code location; None keeps Dagster's default."""
    if kind == "multiprocess":
        return None
    if kind == "k8s":
        # dagster-k8s is installed in the cluster images (the `k8s` extra), not on a laptop.
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor.configured(K8S_STEP_CONFIG, name="k8s_step_pods")
    raise ValueError(
        f"ML_ASSETS_EXECUTOR={kind!r} is not an executor; use one of {', '.join(EXECUTORS)}"
    )
