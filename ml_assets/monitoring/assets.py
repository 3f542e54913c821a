"""Monitoring assets, one partition per day: the champion's batch scores, feature and
prediction drift against the champion's training window, performance once labels arrive,
the endpoint's served decisions against labels and batch re-scores, and serving latency
from the prediction log. Checks warn; they never block."""

import warnings
from dataclasses import asdict
from datetime import date, timedelta

import dagster as dg
import polars as pl

from ml_assets.data.assets import REVIEW_LABELS, TRANSACTION_LABELS, VALIDATED_TRANSACTIONS
from ml_assets.data.labels import combine_labels, conflicts, count_by_source
from ml_assets.data.partitions import partition_day
from ml_assets.features.assets import CUSTOMER_FEATURES_KEY, MERCHANT_FEATURES_KEY
from ml_assets.features.registry import CUSTOMER_FEATURES, MERCHANT_FEATURES, history_days
from ml_assets.features.training_set import attach_features
from ml_assets.monitoring.drift import compute_drift, drift_markdown
from ml_assets.monitoring.latency import daily_latency, plot_latency
from ml_assets.monitoring.monitored_rows import DRIFT_COLUMNS, drift_frame, score_frame
from ml_assets.monitoring.performance import daily_performance, join_scores_labels, plot_performance
from ml_assets.monitoring.prediction_drift import compute_prediction_drift
from ml_assets.monitoring.publish import publish_drift
from ml_assets.monitoring.reference import (
    NoChampionError,
    at_most,
    cached_frame,
    champion_reference,
    drift_reference,
    reference_folder,
)
from ml_assets.monitoring.series import upsert_day
from ml_assets.monitoring.served import (
    NO_LABELS,
    daily_row,
    daily_served_performance,
    plot_served,
    served_metadata,
    served_rows,
    serving_skew,
    skew_verdict,
)
from ml_assets.resources import MlflowResource, SettingsResource, WarehouseReader, table_name
from ml_assets.serving.prediction_log import read_prediction_log
from ml_assets.training.deployment import DEPLOYED_MODEL
from ml_assets.training.registry_reader import STUDENT_MODEL_NAME, load_model_version

SCORED_TRANSACTIONS = dg.AssetKey("scored_transactions")
DRIFT_REPORT = dg.AssetKey("drift_report")
PREDICTION_DRIFT = dg.AssetKey("prediction_drift")
MODEL_PERFORMANCE = dg.AssetKey("model_performance")
SERVING_LATENCY = dg.AssetKey("serving_latency")
SERVED_PERFORMANCE = dg.AssetKey("served_performance")
PREDICTION_LOG = dg.AssetKey("prediction_log")
GROUP = "monitoring"
CHECK_DRIFT = "drift_share_below_threshold"
CHECK_PERFORMANCE = "auc_above_floor"
CHECK_FALLBACK = "fallback_share_below_ceiling"
CHECK_SERVED = "served_matches_batch"
SERVED_REPORTS = "served_performance"  # folder under reports/
DRIFT_SHARE_KEY = "drift_share"  # metadata key the retrain sensor reads

prediction_log = dg.AssetSpec(
    PREDICTION_LOG,
    group_name=GROUP,
    kinds={"parquet"},
    description="Every answer the endpoint gave (ml-assets serve), daily Parquet files written "
    "off the request path. Produced outside Dagster; monitoring reads it.",
)


def _window(start: int, end: int) -> dg.TimeWindowPartitionMapping:
    return dg.TimeWindowPartitionMapping(start_offset=start, end_offset=end)


def _champion(mlflow: MlflowResource) -> tuple[str, list[str]]:
    try:
        return champion_reference(mlflow.tracking_uri)
    except NoChampionError as error:
        raise dg.Failure(str(error)) from error


def _late_labels_arrived(label_delay_max_days: int) -> dg.AutomationCondition:
    """Re-judge a recent day whenever one of its label days lands (eager() would only ever
    look at the newest partition, whose labels have not arrived yet)."""
    return (
        dg.AutomationCondition.in_latest_time_window(
            lookback_delta=timedelta(days=label_delay_max_days + 1)
        )
        & dg.AutomationCondition.any_deps_updated()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("late labels arrived")


def _labels_after(label_delay_max_days: int) -> dg.TimeWindowPartitionMapping:
    """The label days after a transaction day: labels arrive 1..max-delay days late, and the
    newest of them do not exist yet (allowed, so the day can be judged on what has come)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)  # allow_nonexistent_...: beta in 1.13
        return dg.TimeWindowPartitionMapping(
            start_offset=1,
            end_offset=label_delay_max_days,
            allow_nonexistent_upstream_partitions=True,
        )


def _arrived_labels(
    warehouse: WarehouseReader, day: date, label_delay_max_days: int
) -> tuple[pl.DataFrame, list[str]]:
    """The labels landed so far for `day`'s transactions (those of the label days after it
    that exist), and which label days those were."""
    table = table_name(TRANSACTION_LABELS)
    label_days = [(day + timedelta(days=k)).isoformat() for k in range(1, label_delay_max_days + 1)]
    present = warehouse.days_present([table], label_days)
    return (warehouse.read(table, present) if present else NO_LABELS), present


def _reviews_after(label_delay_max_days: int) -> dg.TimeWindowPartitionMapping:
    """The review days from a transaction's own day on: reviewers decide the queue within
    hours, while its chargebacks can still arrive (the newest days need not exist yet)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        return dg.TimeWindowPartitionMapping(
            start_offset=0,
            end_offset=label_delay_max_days,
            allow_nonexistent_upstream_partitions=True,
        )


def _labels_with_reviews(
    warehouse: WarehouseReader, day: date, label_delay_max_days: int
) -> tuple[pl.DataFrame, list[str], list[str]]:
    """Chargebacks of the label days after `day` and reviewers' labels from `day` on, as
    one frame with a `source` column (not yet resolved), and which days of each were there."""
    frames, present = [], []
    for key, first in ((TRANSACTION_LABELS, 1), (REVIEW_LABELS, 0)):
        table = table_name(key)
        days = [(day + timedelta(days=k)).isoformat()
                for k in range(first, label_delay_max_days + 1)]  # fmt: skip
        present.append(warehouse.days_present([table], days))
        if present[-1]:
            frames.append(warehouse.read(table, present[-1]))
    return combine_labels(*frames), *present


def _warn(check: str, passed: bool, description: str, **metadata) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=check,
        passed=passed,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata={"summary": description, **metadata},
    )


def build_monitoring_assets(
    partitions: dg.PartitionsDefinition, label_delay_max_days: int
) -> list[dg.AssetsDefinition | dg.AssetSpec]:
    """The monitoring group over `partitions`; performance waits for labels up to
    `label_delay_max_days` days late."""

    @dg.asset(
        key=SCORED_TRANSACTIONS,
        group_name=GROUP,
        partitions_def=partitions,
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
        description="The champion's batch scores and decisions for every validated transaction "
        "of the day, with the features it would have seen online (batch inference, in the "
        "prediction log's shape, decided by the endpoint's thresholds): what performance and "
        "prediction drift watch.",
    )
    def scored_transactions(
        context: dg.AssetExecutionContext,
        transactions: pl.DataFrame,
        customer: pl.DataFrame,
        merchant: pl.DataFrame,
        mlflow: MlflowResource,
        settings: SettingsResource,
    ) -> dg.MaterializeResult[pl.DataFrame]:
        version, _ = _champion(mlflow)
        model = load_model_version(STUDENT_MODEL_NAME, version, mlflow.tracking_uri)
        rows = attach_features(
            transactions.sort("event_time"),
            {CUSTOMER_FEATURES: customer, MERCHANT_FEATURES: merchant},
        )
        decisions = settings.settings.decisions
        scored = score_frame(
            rows, model.predict_proba(rows), STUDENT_MODEL_NAME, version, decisions
        )
        context.log.info(
            f"scored {scored.height} transactions with {STUDENT_MODEL_NAME} v{version}"
        )
        return dg.MaterializeResult(
            value=scored,
            metadata={
                "model": f"{STUDENT_MODEL_NAME} v{version}",
                "decisions": dict(scored["decision"].value_counts().iter_rows()),
                "thresholds": f"review from {decisions.review_low}, decline from "
                f"{decisions.decline_at}",
            },
        )

    @dg.asset(
        key=DRIFT_REPORT,
        group_name=GROUP,
        partitions_def=partitions,
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
        warehouse: WarehouseReader,
        mlflow: MlflowResource,
        settings: SettingsResource,
    ) -> dg.MaterializeResult:
        day = partition_day(context)
        reports_dir = settings.settings.reports_dir
        version, reference_days = _champion(mlflow)
        tables = [table_name(k) for k in (VALIDATED_TRANSACTIONS, CUSTOMER_FEATURES_KEY,
                                          MERCHANT_FEATURES_KEY)]  # fmt: skip
        usable = warehouse.days_present(tables, reference_days)
        reference = drift_reference(
            reference_folder(reports_dir, "drift", usable),
            usable,
            lambda d: drift_frame(*(warehouse.read(t, [d]) for t in tables)),
            DRIFT_COLUMNS,
        )
        current = drift_frame(transactions, customer, merchant)
        result = compute_drift(current, reference.sample, DRIFT_COLUMNS, reference.methods, day=day)
        published = publish_drift(
            result, reports_dir, workspace_dir=settings.settings.evidently_workspace_dir
        )
        context.log.info(
            f"{day}: drift share {result.drift_share:.2f}, drifted {result.drifted_columns}"
        )
        return dg.MaterializeResult(
            metadata={
                DRIFT_SHARE_KEY: result.drift_share,
                "drifted_columns": dg.MetadataValue.md(
                    drift_markdown(result, only_drifted=True) or "none"
                ),
                "all_columns": dg.MetadataValue.md(drift_markdown(result)),
                "report": dg.MetadataValue.path(str(published.html)),
                "index": dg.MetadataValue.path(str(published.index)),
                "reference": f"champion v{version}: {len(usable)} days {usable[0]}..{usable[-1]}",
                "thresholds": "calibrated on the reference days"
                + (" (cached)" if reference.thresholds_cached else ""),
                "sampled_rows": f"current {result.current_sample_rows} of {result.current_rows}, "
                f"reference {result.reference_sample_rows} of {result.reference_rows}",
            },
            check_results=[
                _warn(
                    CHECK_DRIFT,
                    result.drift_share < result.share_threshold,
                    f"drift share {result.drift_share:.2f} (threshold "
                    f"{result.share_threshold:.2f}); drifted: "
                    f"{', '.join(result.drifted_columns) or 'none'}",
                    drift_share=result.drift_share,
                )
            ],
        )

    @dg.asset(
        key=PREDICTION_DRIFT,
        group_name=GROUP,
        partitions_def=partitions,
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
        warehouse: WarehouseReader,
        mlflow: MlflowResource,
        settings: SettingsResource,
    ) -> dg.MaterializeResult:
        day = partition_day(context)
        home, reports_dir = settings.settings.home, settings.settings.reports_dir
        version, reference_days = _champion(mlflow)
        served = read_prediction_log(home, day.isoformat())
        current, source = (served, "prediction log") if served.height else (scored, "batch scores")
        table = table_name(SCORED_TRANSACTIONS)
        available = warehouse.days_present([table], reference_days)
        if not available:
            raise dg.Failure(
                f"no scored_transactions for the champion's training days {reference_days[0]}.."
                f"{reference_days[-1]}: materialize scored_transactions for them first"
            )
        reference = cached_frame(
            reference_folder(reports_dir, "prediction_drift", available) / "scores.parquet",
            lambda: at_most(warehouse.read(table, available).select("score", "decision")),
        )
        result = compute_prediction_drift(current, reference, day=day)
        published = publish_drift(
            result, reports_dir, workspace_dir=settings.settings.evidently_workspace_dir
        )
        return dg.MaterializeResult(
            metadata={
                "source": source,
                DRIFT_SHARE_KEY: result.drift_share,
                "columns": dg.MetadataValue.md(drift_markdown(result)),
                "report": dg.MetadataValue.path(str(published.html)),
                "index": dg.MetadataValue.path(str(published.index)),
                "reference": f"champion v{version} scores on {len(available)} training days",
            }
        )

    @dg.asset(
        key=MODEL_PERFORMANCE,
        group_name=GROUP,
        partitions_def=partitions,
        kinds={"polars", "png"},
        ins={"scored": dg.AssetIn(SCORED_TRANSACTIONS)},
        deps=[
            dg.AssetDep(TRANSACTION_LABELS, partition_mapping=_labels_after(label_delay_max_days)),
            dg.AssetDep(REVIEW_LABELS, partition_mapping=_reviews_after(label_delay_max_days)),
        ],
        check_specs=[dg.AssetCheckSpec(CHECK_PERFORMANCE, asset=MODEL_PERFORMANCE)],
        automation_condition=_late_labels_arrived(label_delay_max_days),
        description="The champion's AUC, PR-AUC, calibration and fraud amount caught on the "
        "day's transactions, from the labels that arrived in the days after (chargebacks, "
        "and reviewers' decisions until a chargeback overrules them); re-materializes as "
        "late labels land. A time-series picture of every day so far is linked.",
    )
    def model_performance(
        context: dg.AssetExecutionContext,
        scored: pl.DataFrame,
        warehouse: WarehouseReader,
        settings: SettingsResource,
    ) -> dg.MaterializeResult:
        day = partition_day(context)
        labels, present, reviewed = _labels_with_reviews(warehouse, day, label_delay_max_days)
        joined = join_scores_labels(scored, labels) if labels.height else pl.DataFrame()
        if joined.height == 0:
            return dg.MaterializeResult(
                metadata={
                    "labelled_rows": 0,
                    "label_days_present": present,
                    "review_days_present": reviewed,
                },
                check_results=[_warn(CHECK_PERFORMANCE, True, "no labels have arrived yet")],
            )
        performance = daily_performance(joined, day)
        folder = settings.settings.reports_dir / "performance"
        picture = upsert_day(
            folder / "daily.parquet",
            asdict(performance),
            lambda t: plot_performance(t, folder / "performance.png"),
        )
        floor, auc = settings.min_daily_auc, performance.roc_auc
        return dg.MaterializeResult(
            metadata={
                "labelled_rows": performance.rows,
                "labelled_share": performance.rows / scored.height if scored.height else 0.0,
                "label_days_present": present,
                "review_days_present": reviewed,
                "labels_by_source": count_by_source(joined),
                "reviews_overruled": conflicts(labels).height,
                "roc_auc": auc or float("nan"),
                "pr_auc": performance.pr_auc or float("nan"),
                "ece": performance.ece,
                "fraud_amount_caught": performance.fraud_amount_caught,
                "over_time": dg.MetadataValue.path(str(picture)),
            },
            check_results=[
                _warn(
                    CHECK_PERFORMANCE,
                    auc is None or auc >= floor,
                    f"AUC {auc:.4f} vs floor {floor}" if auc is not None else "AUC undefined",
                    roc_auc=auc if auc is not None else float("nan"),
                )
            ],
        )

    @dg.asset(
        key=SERVED_PERFORMANCE,
        group_name=GROUP,
        partitions_def=partitions,
        kinds={"polars", "png"},
        deps=[
            PREDICTION_LOG,
            SCORED_TRANSACTIONS,
            dg.AssetDep(TRANSACTION_LABELS, partition_mapping=_labels_after(label_delay_max_days)),
        ],
        check_specs=[
            dg.AssetCheckSpec(
                CHECK_SERVED,
                asset=SERVED_PERFORMANCE,
                description="The endpoint's model answers match the batch re-scores of the "
                "same transactions (score and AUC on the same labelled rows).",
            )
        ],
        automation_condition=_late_labels_arrived(label_delay_max_days),
        description="What the endpoint actually answered on the day's transactions, judged "
        "against the labels that arrived in the days after: AUC and PR-AUC of the served "
        "score, precision and recall of decline and of decline-or-review, false-decline "
        "rate, review load, fraud amount caught, fallback share by reason; beside it the "
        "batch re-scores (scored_transactions) of the same transactions and the skew between "
        "them. Re-materializes as late labels land; a picture over days is linked.",
    )
    def served_performance(
        context: dg.AssetExecutionContext, warehouse: WarehouseReader, settings: SettingsResource
    ) -> dg.MaterializeResult:
        day = partition_day(context)
        log = read_prediction_log(settings.settings.home, day.isoformat())
        if log.height == 0:
            return dg.MaterializeResult(
                metadata={"requests": 0, "note": "the endpoint served no traffic"},
                check_results=[_warn(CHECK_SERVED, True, "no traffic that day")],
            )
        scored_table = table_name(SCORED_TRANSACTIONS)
        if not warehouse.partitions_exist(scored_table, [day.isoformat()]):
            raise dg.Failure(
                f"the endpoint served {log.height} requests on {day} but scored_transactions "
                f"has no partition {day}: materialize scored_transactions for {day} first, "
                "then served_performance compares the served answers with it"
            )
        labels, present = _arrived_labels(warehouse, day, label_delay_max_days)
        rows = served_rows(log, labels, warehouse.read(scored_table, [day.isoformat()]))
        performance, skew = daily_served_performance(rows, day), serving_skew(rows)
        folder = settings.settings.reports_dir / SERVED_REPORTS
        picture = upsert_day(
            folder / "daily.parquet",
            daily_row(performance, skew),
            lambda t: plot_served(t, folder / "served_performance.png"),
        )
        passed, summary = skew_verdict(skew)
        return dg.MaterializeResult(
            metadata={
                "requests": log.height,
                "label_days_present": present,
                **served_metadata(performance, skew),
                "over_time": dg.MetadataValue.path(str(picture)),
            },
            check_results=[
                _warn(
                    CHECK_SERVED,
                    passed,
                    summary,
                    skewed_share=skew.skewed_share,
                    auc_gap=skew.auc_gap if skew.auc_gap is not None else float("nan"),
                )
            ],
        )

    @dg.asset(
        key=SERVING_LATENCY,
        group_name=GROUP,
        partitions_def=partitions,
        kinds={"polars", "png"},
        deps=[PREDICTION_LOG],
        check_specs=[dg.AssetCheckSpec(CHECK_FALLBACK, asset=SERVING_LATENCY)],
        description="p50/p95/p99 latency and the share of answers by path (model, fallback, "
        "cache, review) for the day, from the endpoint's prediction log; a picture over days.",
    )
    def serving_latency(
        context: dg.AssetExecutionContext, settings: SettingsResource
    ) -> dg.MaterializeResult:
        day = partition_day(context)
        log = read_prediction_log(settings.settings.home, day.isoformat())
        if log.height == 0:
            return dg.MaterializeResult(
                metadata={"requests": 0, "note": "the endpoint served no traffic"},
                check_results=[_warn(CHECK_FALLBACK, True, "no traffic that day")],
            )
        latency = daily_latency(log, day)
        folder = settings.settings.reports_dir / "latency"
        picture = upsert_day(
            folder / "daily.parquet",
            latency.to_row(),
            lambda t: plot_latency(t, folder / "latency.png"),
        )
        fallback, ceiling = latency.path_shares.get("fallback", 0.0), settings.max_fallback_share
        return dg.MaterializeResult(
            metadata={
                "requests": latency.requests,
                "p50_ms": latency.p50_ms,
                "p95_ms": latency.p95_ms,
                "p99_ms": latency.p99_ms,
                "path_shares": latency.path_shares,
                "over_time": dg.MetadataValue.path(str(picture)),
            },
            check_results=[
                _warn(
                    CHECK_FALLBACK,
                    fallback <= ceiling,
                    f"fallback share {fallback:.2%} (ceiling {ceiling:.0%})",
                    fallback_share=fallback,
                )
            ],
        )

    return [
        prediction_log,
        scored_transactions,
        drift_report,
        prediction_drift,
        model_performance,
        served_performance,
        serving_latency,
    ]
