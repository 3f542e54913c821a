"""Monitoring assets, one partition per day: the champion's batch scores, feature and
prediction drift against the champion's training window, performance once labels arrive,
and serving latency from the prediction log. Checks warn; they never block."""

import functools
import hashlib
import warnings
from dataclasses import asdict
from datetime import timedelta

import dagster as dg
import polars as pl

from ml_assets.automation.deployment import DEPLOYED_MODEL
from ml_assets.data.assets import TRANSACTION_LABELS, VALIDATED_TRANSACTIONS
from ml_assets.data.partitions import daily_partitions, partition_day
from ml_assets.features.assets import CUSTOMER_FEATURES_KEY, MERCHANT_FEATURES_KEY
from ml_assets.features.registry import CUSTOMER_FEATURES, MERCHANT_FEATURES, history_days
from ml_assets.features.training_set import attach_features
from ml_assets.monitoring.drift import compute_drift, drift_markdown
from ml_assets.monitoring.drift_methods import calibrate_thresholds
from ml_assets.monitoring.inputs import (
    DRIFT_COLUMNS,
    cached_frame,
    cached_methods,
    drift_frame,
    read_prediction_log,
    score_frame,
    transaction_days,
)
from ml_assets.monitoring.latency import daily_latency, plot_latency
from ml_assets.monitoring.performance import daily_performance, join_scores_labels, plot_performance
from ml_assets.monitoring.prediction_drift import compute_prediction_drift
from ml_assets.monitoring.publish import publish_drift
from ml_assets.monitoring.series import upsert_day
from ml_assets.resources import MlflowResource, Warehouse, table_name
from ml_assets.serving.config import ServingConfig
from ml_assets.settings import get_settings
from ml_assets.training.mlflow_registry import (
    CHAMPION,
    STUDENT_MODEL_NAME,
    load_model_version,
    recover_lineage,
    resolve_version,
)

SCORED_TRANSACTIONS = dg.AssetKey("scored_transactions")
DRIFT_REPORT = dg.AssetKey("drift_report")
PREDICTION_DRIFT = dg.AssetKey("prediction_drift")
MODEL_PERFORMANCE = dg.AssetKey("model_performance")
SERVING_LATENCY = dg.AssetKey("serving_latency")
PREDICTION_LOG = dg.AssetKey("prediction_log")
GROUP = "monitoring"
CHECK_DRIFT = "drift_share_below_threshold"
CHECK_PERFORMANCE = "auc_above_floor"
CHECK_FALLBACK = "fallback_share_below_ceiling"

prediction_log = dg.AssetSpec(
    PREDICTION_LOG,
    group_name=GROUP,
    kinds={"parquet"},
    description="Every answer the endpoint gave (ml-assets serve), daily Parquet files written "
    "off the request path. Produced outside Dagster; monitoring reads it.",
)


def _window(start: int, end: int) -> dg.TimeWindowPartitionMapping:
    return dg.TimeWindowPartitionMapping(start_offset=start, end_offset=end)


def _champion_reference(mlflow: MlflowResource) -> tuple[str, list[str]]:
    """The champion's version and the days it was trained on: what "normal" means."""
    uri = mlflow.tracking_uri
    version = resolve_version(uri, STUDENT_MODEL_NAME, CHAMPION)
    if version is None:
        raise dg.Failure(
            "monitoring compares each day with the champion's training window, and there is no "
            "champion yet: materialize the models group (teacher_model .. deployed_model) first"
        )
    label_days = recover_lineage(STUDENT_MODEL_NAME, version, uri).training_partitions
    return version, transaction_days(label_days)


REFERENCE_ROWS = 50_000


def _at_most(frame: pl.DataFrame, rows: int = REFERENCE_ROWS) -> pl.DataFrame:
    """A seeded sample: drift methods on distributions need thousands of rows, not millions."""
    return frame.sample(rows, seed=0) if frame.height > rows else frame


def _reference_folder(reports_dir, kind: str, days: list[str]):
    """Where what depends only on the reference window is kept (thresholds, a sample)."""
    if not days:
        raise dg.Failure(
            f"none of the champion's training days have the tables {kind} needs; materialize "
            "data and features for them first"
        )
    versions = f"{days}{CUSTOMER_FEATURES.version}{MERCHANT_FEATURES.version}"
    return reports_dir / kind / "reference" / hashlib.sha256(versions.encode()).hexdigest()[:12]


# Re-judge a recent day whenever one of its label days lands (eager() would only ever look
# at the newest partition, whose labels have not arrived yet).
LATE_LABELS_ARRIVED = (
    dg.AutomationCondition.in_latest_time_window(
        lookback_delta=timedelta(days=get_settings().label_delay_max_days + 1)
    )
    & dg.AutomationCondition.any_deps_updated()
    & ~dg.AutomationCondition.in_progress()
).with_label("late labels arrived")


def _labels_after() -> dg.TimeWindowPartitionMapping:
    """The label days after a transaction day: labels arrive 1..max-delay days late, and the
    newest of them do not exist yet (allowed, so the day can be judged on what has come)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)  # allow_nonexistent_...: beta in 1.13
        return dg.TimeWindowPartitionMapping(
            start_offset=1,
            end_offset=get_settings().label_delay_max_days,
            allow_nonexistent_upstream_partitions=True,
        )


def _warn(check: str, passed: bool, description: str, **metadata) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=check,
        passed=passed,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata={"summary": description, **metadata},
    )


@dg.asset(
    key=SCORED_TRANSACTIONS,
    group_name=GROUP,
    partitions_def=daily_partitions,
    kinds={"polars", "parquet"},
    io_manager_key="warehouse_io_manager",
    deps=[DEPLOYED_MODEL],
    ins={
        "transactions": dg.AssetIn(VALIDATED_TRANSACTIONS),
        "customer": dg.AssetIn(
            CUSTOMER_FEATURES_KEY, partition_mapping=_window(-history_days("customer"), 0)
        ),
        "merchant": dg.AssetIn(
            MERCHANT_FEATURES_KEY, partition_mapping=_window(-history_days("merchant"), 0)
        ),
    },
    description="The champion's batch scores and decisions for every validated transaction of "
    "the day, with the features it would have seen online (batch inference, in the "
    "prediction log's shape): what performance and prediction drift watch.",
)
def scored_transactions(
    context: dg.AssetExecutionContext,
    transactions: pl.DataFrame,
    customer: pl.DataFrame,
    merchant: pl.DataFrame,
    mlflow: MlflowResource,
) -> dg.Output:
    version, _ = _champion_reference(mlflow)
    model = load_model_version(STUDENT_MODEL_NAME, version, mlflow.tracking_uri)
    rows = attach_features(
        transactions.sort("event_time"), {CUSTOMER_FEATURES: customer, MERCHANT_FEATURES: merchant}
    )
    serving = ServingConfig()
    scores = model.predict_proba(rows)
    scored = score_frame(
        rows, scores, STUDENT_MODEL_NAME, version, serving.review_low, serving.decline_at
    )
    context.log.info(f"scored {scored.height} transactions with {STUDENT_MODEL_NAME} v{version}")
    decisions = dict(scored["decision"].value_counts().iter_rows())
    return dg.Output(
        scored,
        metadata={"model": f"{STUDENT_MODEL_NAME} v{version}", "decisions": decisions},
    )


@dg.asset(
    key=DRIFT_REPORT,
    group_name=GROUP,
    partitions_def=daily_partitions,
    kinds={"evidently", "html"},
    deps=[DEPLOYED_MODEL],
    ins={
        "transactions": dg.AssetIn(VALIDATED_TRANSACTIONS),
        "customer": dg.AssetIn(CUSTOMER_FEATURES_KEY),
        "merchant": dg.AssetIn(MERCHANT_FEATURES_KEY),
    },
    check_specs=[dg.AssetCheckSpec(CHECK_DRIFT, asset=DRIFT_REPORT)],
    description="Evidently drift of the day's model inputs against the champion's training "
    "window, per column with a method and threshold chosen on purpose (Wasserstein / "
    "Jensen-Shannon, thresholds calibrated on the clean reference days). HTML + JSON under "
    "reports/drift/, an index page, and a snapshot in the Evidently workspace.",
)
def drift_report(
    context: dg.AssetExecutionContext,
    transactions: pl.DataFrame,
    customer: pl.DataFrame,
    merchant: pl.DataFrame,
    warehouse: Warehouse,
    mlflow: MlflowResource,
):
    day = partition_day(context)
    settings = get_settings()
    version, reference_days = _champion_reference(mlflow)
    tables = [
        table_name(k)
        for k in (VALIDATED_TRANSACTIONS, CUSTOMER_FEATURES_KEY, MERCHANT_FEATURES_KEY)
    ]
    usable = [d for d in reference_days if all(warehouse.partitions_exist(t, [d]) for t in tables)]
    folder = _reference_folder(settings.reports_dir, "drift", usable)

    @functools.cache
    def reference_days_frames() -> list[pl.DataFrame]:
        # Read once even when neither the thresholds nor the sample are cached yet.
        return [drift_frame(*(warehouse.read(t, [d]) for t in tables)) for d in usable]

    # Both the calibrated thresholds and the reference sample depend only on the window:
    # computed by the first day compared with it, reused by the others.
    methods, cached = cached_methods(
        folder / "thresholds.json",
        lambda: calibrate_thresholds(reference_days_frames(), DRIFT_COLUMNS),
    )
    reference = cached_frame(
        folder / "reference.parquet", lambda: _at_most(pl.concat(reference_days_frames()))
    )
    current = drift_frame(transactions, customer, merchant)
    result = compute_drift(current, reference, DRIFT_COLUMNS, methods, day=day)
    published = publish_drift(result, settings.reports_dir)
    context.log.info(
        f"{day}: drift share {result.drift_share:.2f}, drifted {result.drifted_columns}"
    )
    yield dg.MaterializeResult(
        metadata={
            "drift_share": result.drift_share,
            "drifted_columns": dg.MetadataValue.md(
                drift_markdown(result, only_drifted=True) or "none"
            ),
            "all_columns": dg.MetadataValue.md(drift_markdown(result)),
            "report": dg.MetadataValue.path(str(published.html)),
            "index": dg.MetadataValue.path(str(published.index)),
            "reference": f"champion v{version}: {len(usable)} days {usable[0]}..{usable[-1]}",
            "thresholds": "calibrated on the reference days" + (" (cached)" if cached else ""),
            "sampled_rows": f"current {result.current_sample_rows} of {result.current_rows}, "
            f"reference {result.reference_sample_rows} of {result.reference_rows}",
        }
    )
    yield _warn(
        CHECK_DRIFT,
        result.drift_share < result.share_threshold,
        f"drift share {result.drift_share:.2f} (threshold {result.share_threshold:.2f}); "
        f"drifted: {', '.join(result.drifted_columns) or 'none'}",
        drift_share=result.drift_share,
    )


@dg.asset(
    key=PREDICTION_DRIFT,
    group_name=GROUP,
    partitions_def=daily_partitions,
    kinds={"evidently", "html"},
    deps=[PREDICTION_LOG],
    ins={"scored": dg.AssetIn(SCORED_TRANSACTIONS)},
    description="Drift of the day's scores and approve/review/decline mix against the scores "
    "of the champion's training days. Uses the served prediction log when the endpoint "
    "answered traffic that day, else the batch scores.",
)
def prediction_drift(
    context: dg.AssetExecutionContext,
    scored: pl.DataFrame,
    warehouse: Warehouse,
    mlflow: MlflowResource,
) -> dg.MaterializeResult:
    day = partition_day(context)
    settings = get_settings()
    version, reference_days = _champion_reference(mlflow)
    served = read_prediction_log(settings.home, day.isoformat())
    current, source = (served, "prediction log") if served.height else (scored, "batch scores")
    table = table_name(SCORED_TRANSACTIONS)
    available = [d for d in reference_days if warehouse.partitions_exist(table, [d])]
    if not available:
        raise dg.Failure(
            f"no scored_transactions for the champion's training days {reference_days[0]}.."
            f"{reference_days[-1]}: materialize scored_transactions for them first"
        )
    reference = cached_frame(
        _reference_folder(settings.reports_dir, "prediction_drift", available) / "scores.parquet",
        lambda: _at_most(warehouse.read(table, available).select("score", "decision")),
    )
    result = compute_prediction_drift(current, reference, day=day)
    published = publish_drift(result, settings.reports_dir)
    return dg.MaterializeResult(
        metadata={
            "source": source,
            "drift_share": result.drift_share,
            "columns": dg.MetadataValue.md(drift_markdown(result)),
            "report": dg.MetadataValue.path(str(published.html)),
            "index": dg.MetadataValue.path(str(published.index)),
            "reference": f"champion v{version} scores on {len(available)} training days",
        }
    )


@dg.asset(
    key=MODEL_PERFORMANCE,
    group_name=GROUP,
    partitions_def=daily_partitions,
    kinds={"polars", "png"},
    ins={"scored": dg.AssetIn(SCORED_TRANSACTIONS)},
    deps=[dg.AssetDep(TRANSACTION_LABELS, partition_mapping=_labels_after())],
    check_specs=[dg.AssetCheckSpec(CHECK_PERFORMANCE, asset=MODEL_PERFORMANCE)],
    automation_condition=LATE_LABELS_ARRIVED,
    description="The champion's AUC, PR-AUC, calibration and fraud amount caught on the day's "
    "transactions, from the labels that arrived in the days after; re-materializes as late "
    "labels land. A time-series picture of every day so far is linked.",
)
def model_performance(
    context: dg.AssetExecutionContext, scored: pl.DataFrame, warehouse: Warehouse
):
    day = partition_day(context)
    settings = get_settings()
    label_days = [
        (day + timedelta(days=k)).isoformat() for k in range(1, settings.label_delay_max_days + 1)
    ]
    present = [
        d for d in label_days if warehouse.partitions_exist(table_name(TRANSACTION_LABELS), [d])
    ]
    labels = warehouse.read(table_name(TRANSACTION_LABELS), present) if present else pl.DataFrame()
    joined = join_scores_labels(scored, labels) if present else pl.DataFrame()
    if joined.height == 0:
        yield dg.MaterializeResult(metadata={"labelled_rows": 0, "label_days_present": present})
        yield _warn(CHECK_PERFORMANCE, True, "no labels have arrived for this day yet")
        return
    performance = daily_performance(joined, day)
    row = asdict(performance)
    folder = settings.reports_dir / "performance"
    table = upsert_day(folder / "daily.parquet", row)
    picture = plot_performance(table, folder / "performance.png")
    yield dg.MaterializeResult(
        metadata={
            "labelled_rows": performance.rows,
            "labelled_share": performance.rows / scored.height if scored.height else 0.0,
            "label_days_present": present,
            "roc_auc": performance.roc_auc or float("nan"),
            "pr_auc": performance.pr_auc or float("nan"),
            "ece": performance.ece,
            "fraud_amount_caught": performance.fraud_amount_caught,
            "over_time": dg.MetadataValue.path(str(picture)),
        }
    )
    floor = settings.min_daily_auc
    auc = performance.roc_auc
    yield _warn(
        CHECK_PERFORMANCE,
        auc is None or auc >= floor,
        f"AUC {auc:.4f} vs floor {floor}" if auc is not None else "AUC undefined (one class)",
        roc_auc=auc if auc is not None else float("nan"),
    )


@dg.asset(
    key=SERVING_LATENCY,
    group_name=GROUP,
    partitions_def=daily_partitions,
    kinds={"polars", "png"},
    deps=[PREDICTION_LOG],
    check_specs=[dg.AssetCheckSpec(CHECK_FALLBACK, asset=SERVING_LATENCY)],
    description="p50/p95/p99 latency and the share of answers by path (model, fallback, cache, "
    "review) for the day, from the endpoint's prediction log; a picture over days.",
)
def serving_latency(context: dg.AssetExecutionContext):
    day = partition_day(context)
    settings = get_settings()
    log = read_prediction_log(settings.home, day.isoformat())
    if log.height == 0:
        yield dg.MaterializeResult(
            metadata={"requests": 0, "note": "the endpoint served no traffic"}
        )
        yield _warn(CHECK_FALLBACK, True, "no traffic that day")
        return
    latency = daily_latency(log, day)
    folder = settings.reports_dir / "latency"
    table = upsert_day(folder / "daily.parquet", latency.to_row())
    picture = plot_latency(table, folder / "latency.png")
    fallback = latency.path_shares.get("fallback", 0.0)
    yield dg.MaterializeResult(
        metadata={
            "requests": latency.requests,
            "p50_ms": latency.p50_ms,
            "p95_ms": latency.p95_ms,
            "p99_ms": latency.p99_ms,
            "path_shares": latency.path_shares,
            "over_time": dg.MetadataValue.path(str(picture)),
        }
    )
    yield _warn(
        CHECK_FALLBACK,
        fallback <= settings.max_fallback_share,
        f"fallback share {fallback:.2%} (ceiling {settings.max_fallback_share:.0%})",
        fallback_share=fallback,
    )


assets = [
    prediction_log,
    scored_transactions,
    drift_report,
    prediction_drift,
    model_performance,
    serving_latency,
]
