"""`ml-assets demo-rollout`: after `make demo`, two retrained candidates go through the staged
rollout (candidate, shadow, canary, champion) with the demo's days replayed through a real
endpoint on loopback, each transition decided by the real sensors on the evidence assets.

- A weak student (two hidden units, one epoch) passes offline gates loosened for it on
  purpose: the scenario shows what live evidence catches that offline gates let through. Its
  shadow days show the decision flips and it is rolled back.
- The drift retrain (teacher and student on every labelled day, what `drift_retrain_sensor`
  launches) passes the real gates, shadows, takes half the customers in canary, and becomes
  champion once the A/B analysis reaches its planned sample without finding it worse.

The canary's share and the A/B plan's detectable effect are set for a demo that must decide
within two days of traffic (`ML_ASSETS_CANARY_SHARE=0.5`, `ML_ASSETS_AB_MDE=0.25`, unless the
environment says otherwise); production keeps the defaults in `Settings`.
"""

from __future__ import annotations

import os
from datetime import date, timedelta

DEMO_ENV = {"ML_ASSETS_CANARY_SHARE": "0.5", "ML_ASSETS_AB_MDE": "0.25"}
WEAK_STUDENT = {"hidden": [2], "epochs": 1, "max_rows": 3_000}
LOOSE_GATES = {
    "min_auc": 0.5,
    "min_student_teacher_auc_ratio": 0.5,
    "slice_auc_floor": 0.0,
    "max_ece": 0.5,
    "max_regression_vs_champion": 1.0,
}


def rollout_days(last_day: date) -> tuple[list[date], list[date]]:
    """Shadow on the two clean days before the drift; canary on the next two, the latest
    whose labels have all landed (labels arrive up to three days late)."""
    shadow = [last_day - timedelta(days=k) for k in (6, 5)]
    canary = [last_day - timedelta(days=k) for k in (4, 3)]
    return shadow, canary


def run_rollout_demo() -> int:
    for name, value in DEMO_ENV.items():
        os.environ.setdefault(name, value)
    import dagster as dg

    from ml_assets.automation.jobs import QUIET
    from ml_assets.automation.rollout_scenario import play_rollout
    from ml_assets.definitions import build_definitions
    from ml_assets.settings import get_settings

    settings = get_settings()
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.get()
    job = defs.resolve_implicit_global_asset_job_def()
    shadow_days, canary_days = rollout_days(date.today() - timedelta(days=1))
    candidates = [
        ("a weak student under loosened offline gates", ["student_model", "model_evaluation"],
         {"student_model": {"config": WEAK_STUDENT},
          "model_evaluation": {"config": LOOSE_GATES}}),
        ("the drift retrain on every labelled day", ["teacher_model", "student_model",
                                                     "model_evaluation"], {}),
    ]  # fmt: skip
    failed = False
    for title, selection, ops in candidates:
        print(f"\ntraining {title} ...")
        result = job.execute_in_process(
            instance=instance,
            asset_selection=[dg.AssetKey(k) for k in selection],
            run_config={**QUIET, "ops": ops},
            raise_on_error=False,
        )
        if not result.success:
            print("  its training or evaluation run failed; see the UI's Runs page")
            failed = True
            continue
        story = play_rollout(defs, instance, settings, shadow_days, canary_days,
                             through_endpoint=True)  # fmt: skip
        print("\n".join("  " + line for line in story.lines()))
        for day, evidence in story.evidence.items():
            print(f"  {day}: " + ", ".join(f"{k}={evidence[k]}" for k in _SHOWN if k in evidence))
    print("\nthe stages are in the UI (deployed_model, shadow_comparison, ab_analysis) and on "
          "the endpoint's GET /admin/models")  # fmt: skip
    return 1 if failed else 0


# The evidence figures worth a line each in the console (all of them are in the UI).
_SHOWN = ("compared", "flip_rate", "mean_abs_score_diff", "summary", "auc_diff", "auc_interval")
