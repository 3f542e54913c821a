"""The rollout's live evidence, one partition per day: `shadow_comparison` (the shadow model
against the champion on the same requests) and `ab_analysis` (champion and canary arms
against their labels). Their checks are blocking and ERROR-severity: they are the gates
the rollout sensors read before moving a version to canary or champion, or rolling it back."""

import dagster as dg
import polars as pl

from ml_assets.data.assets import TRANSACTION_LABELS
from ml_assets.data.partitions import partition_day
from ml_assets.monitoring.ab_analysis import (
    AbPlan,
    ab_metadata,
    analyse_day,
    canary_version,
    daily_point,
    day_rows,
    plot_ab,
)
from ml_assets.monitoring.assets import (
    GROUP,
    PREDICTION_LOG,
    _arrived_labels,
    _labels_after,
    _late_labels_arrived,
)
from ml_assets.monitoring.plots import plot_series
from ml_assets.monitoring.series import upsert_day
from ml_assets.monitoring.shadow_comparison import compare_shadow, shadow_verdict
from ml_assets.resources import SettingsResource, WarehouseReader
from ml_assets.serving.prediction_log import read_prediction_log
from ml_assets.training.rollout_evidence import (
    WORSE,
    ShadowLimits,
    ab_table_path,
    readiness,
    shadow_table_path,
)

SHADOW_COMPARISON = dg.AssetKey("shadow_comparison")
AB_ANALYSIS = dg.AssetKey("ab_analysis")
CHECK_SHADOW = "shadow_within_limits"
CHECK_AB = "canary_not_worse"


def _gate(check: str, passed: bool, description: str, **metadata) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=check,
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=description,
        metadata={"summary": description, **metadata},
    )


def _number(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _plot_shadow(table: pl.DataFrame, path):
    panels = {
        "decision flip rate": ["flip_rate"],
        "p95 ms: shadow scoring vs champion answer": ["shadow_p95_ms", "champion_p95_ms"],
    }
    filled = table.sort("day").with_columns(
        pl.col(c).cast(pl.Float64).fill_null(float("nan")) for cs in panels.values() for c in cs
    )
    return plot_series(filled, panels, path, "Shadow against champion per day")


def build_rollout_monitoring_assets(
    partitions: dg.PartitionsDefinition, label_delay_max_days: int
) -> list[dg.AssetsDefinition]:
    """`shadow_comparison` and `ab_analysis` over `partitions`; the A/B waits for labels up
    to `label_delay_max_days` days late, as `served_performance` does."""

    @dg.asset(
        key=SHADOW_COMPARISON,
        group_name=GROUP,
        partitions_def=partitions,
        kinds={"polars", "png"},
        deps=[PREDICTION_LOG],
        check_specs=[
            dg.AssetCheckSpec(
                CHECK_SHADOW,
                asset=SHADOW_COMPARISON,
                blocking=True,
                description="Blocks the move to canary: the shadow's decisions flip more often "
                "than shadow_max_flip_rate, or its p95 scoring time exceeds "
                "shadow_latency_budget_ms.",
            )
        ],
        description="The shadow model against the champion on the day's requests, from the "
        "prediction log: agreement rate, decision flips by kind, quantiles of the score "
        "difference, and the p50/p95 latency of the shadow's scoring beside the champion's "
        "answer. Its check is the gate into canary; a picture over days is linked.",
    )
    def shadow_comparison(
        context: dg.AssetExecutionContext, settings: SettingsResource
    ) -> dg.MaterializeResult:
        day, s = partition_day(context), settings.settings
        comparison = compare_shadow(read_prediction_log(s.home, day.isoformat()), day, s.decisions)
        limits = ShadowLimits.from_settings(s)
        passed, summary = shadow_verdict(comparison, limits)
        c = comparison
        metadata: dict[str, object] = {
            "requests": c.requests,
            "compared": c.compared,
            "shadow_version": c.shadow_version or "none",
            "champion_version": c.champion_version or "none",
            "agreement_rate": _number(c.agreement_rate),
            "flip_rate": _number(c.flip_rate),
            "flips": c.flips,
            "score_diff_quantiles": c.score_diff,
            "mean_abs_score_diff": _number(c.mean_abs_diff),
            "champion_p50_ms": _number(c.champion_p50_ms),
            "champion_p95_ms": _number(c.champion_p95_ms),
            "shadow_p50_ms": _number(c.shadow_p50_ms),
            "shadow_p95_ms": _number(c.shadow_p95_ms),
            "limits": f"flips <= {limits.max_flip_rate:.2%}, shadow p95 <= "
            f"{limits.latency_budget_ms} ms, >= {limits.min_requests} compared to move on",
        }
        if c.compared:
            path = shadow_table_path(s.reports_dir)
            picture = upsert_day(
                path, {**c.to_row(), "passed": passed},
                lambda t: _plot_shadow(t, path.with_name("shadow_comparison.png")),
            )  # fmt: skip
            ready = readiness(pl.read_parquet(path), c.shadow_version, limits)
            metadata.update(
                readiness=ready.state,
                readiness_summary=ready.summary,
                version_compared=ready.compared,
                over_time=dg.MetadataValue.path(str(picture)),
            )
        return dg.MaterializeResult(
            metadata=metadata,
            check_results=[
                _gate(
                    CHECK_SHADOW,
                    passed,
                    summary,
                    flip_rate=_number(c.flip_rate),
                    shadow_p95_ms=_number(c.shadow_p95_ms),
                    champion_p95_ms=_number(c.champion_p95_ms),
                    max_flip_rate=limits.max_flip_rate,
                    latency_budget_ms=limits.latency_budget_ms,
                )
            ],
        )

    @dg.asset(
        key=AB_ANALYSIS,
        group_name=GROUP,
        partitions_def=partitions,
        kinds={"polars", "png"},
        deps=[
            PREDICTION_LOG,
            dg.AssetDep(TRANSACTION_LABELS, partition_mapping=_labels_after(label_delay_max_days)),
        ],
        check_specs=[
            dg.AssetCheckSpec(
                CHECK_AB,
                asset=AB_ANALYSIS,
                blocking=True,
                description="Gates canary -> champion: fails when, at the planned sample, the "
                "canary is significantly worse than the champion on fraud caught, "
                "false-decline rate, review load or AUC (then the canary is rolled back).",
            )
        ],
        automation_condition=_late_labels_arrived(label_delay_max_days),
        description="Champion and canary arms over the same days, once labels land: fraud "
        "caught, false-decline rate, review load (two-proportion tests) and AUC (bootstrap "
        "interval), pooled over every day the canary version answered, per ticket-size slice "
        "too; the sample size is planned before the test and the verdict waits for it. A "
        "picture of each difference with its interval over the days is linked.",
    )
    def ab_analysis(
        context: dg.AssetExecutionContext, warehouse: WarehouseReader, settings: SettingsResource
    ) -> dg.MaterializeResult:
        day, s = partition_day(context), settings.settings
        log = read_prediction_log(s.home, day.isoformat())
        labels, present = _arrived_labels(warehouse, day, label_delay_max_days)
        rows = day_rows(log, labels, day)
        if canary_version(rows) is None:
            return dg.MaterializeResult(
                metadata={"requests": log.height, "note": "no canary model answer that day"},
                check_results=[
                    _gate(CHECK_AB, True, "no canary answer that day: nothing to judge")
                ],
            )
        result = analyse_day(s.reports_dir, rows, day, AbPlan(s.ab_mde, s.ab_alpha, s.ab_power))
        table = ab_table_path(s.reports_dir)
        picture = upsert_day(
            table, daily_point(result, day),
            lambda t: plot_ab(t, table.with_name("ab_analysis.png")),
        )  # fmt: skip
        return dg.MaterializeResult(
            metadata={
                "requests": log.height,
                "label_days_present": present,
                **ab_metadata(result),
                "over_time": dg.MetadataValue.path(str(picture)),
            },
            check_results=[
                _gate(
                    CHECK_AB,
                    result.verdict != WORSE,
                    result.summary,
                    verdict=result.verdict,
                    canary_version=result.version,
                )
            ],
        )

    return [shadow_comparison, ab_analysis]
