"""Feature assets: per-entity feature rows per day, the point-in-time training set, and the
push of the latest values to the online store. All derive from the one registry."""

import dagster as dg
import polars as pl

from ml_assets.data.assets import REVIEW_LABELS, TRANSACTION_LABELS, VALIDATED_TRANSACTIONS
from ml_assets.data.partitions import partition_days
from ml_assets.features.compute import compute_entity_features
from ml_assets.features.event_log import retention
from ml_assets.features.online import write_events
from ml_assets.features.registry import (
    CUSTOMER_FEATURES,
    MERCHANT_FEATURES,
    FeatureSet,
    feature_versions,
    history_days,
)
from ml_assets.features.training_set import build_training_set
from ml_assets.resources import (
    OnlineStoreResource,
    SettingsResource,
    WarehouseReader,
    table_name,
)
from ml_assets.warehouse import window_frame, window_keys

CUSTOMER_FEATURES_KEY = dg.AssetKey("customer_features")
MERCHANT_FEATURES_KEY = dg.AssetKey("merchant_features")
TRAINING_SET = dg.AssetKey("training_set")
ONLINE_FEATURES = dg.AssetKey("online_features")

GROUP = "features"
KINDS = {"polars", "parquet"}


def _window(days_back: int) -> dg.TimeWindowPartitionMapping:
    return dg.TimeWindowPartitionMapping(start_offset=-days_back, end_offset=0)


def features_markdown(feature_set: FeatureSet) -> str:
    rows = "\n".join(
        f"| {f.column} | {f.aggregation} | {f.window} | {f.ttl} | {f.version} |"
        for f in feature_set.features
    )
    return "| feature | aggregation | window | ttl | version |\n|---|---|---|---|---|\n" + rows


def _feature_asset(
    feature_set: FeatureSet,
    key: dg.AssetKey,
    partitions: dg.PartitionsDefinition,
    backfill: dg.BackfillPolicy | None,
) -> dg.AssetsDefinition:
    days_back = history_days(feature_set.entity)

    @dg.asset(
        key=key,
        group_name=GROUP,
        partitions_def=partitions,
        kinds=KINDS,
        io_manager_key="warehouse_io_manager",
        ins={"validated": dg.AssetIn(VALIDATED_TRANSACTIONS, partition_mapping=_window(days_back))},
        backfill_policy=backfill,
        automation_condition=dg.AutomationCondition.eager(),
        description=f"{feature_set.entity.title()} features after each of the day's events "
        f"(feature set {feature_set.name}); day D reads only D and the {days_back} days "
        "before it, so a new day costs the same however long the history.",
    )
    def _asset(
        context: dg.AssetExecutionContext, validated: dict[str, pl.DataFrame]
    ) -> dg.Output[dict[str, pl.DataFrame]]:
        by_day = {}
        for day in partition_days(context):
            # The same days, hence the same rows, as a single-day run of `day` reads.
            events = window_frame(validated, table_name(VALIDATED_TRANSACTIONS), day, days_back)
            features = compute_entity_features(events, feature_set, day)
            context.log.info(
                f"{feature_set.name} {day}: {features.height} rows from {events.height} events"
            )
            context.add_asset_metadata(
                {"events_read": events.height, "entities": features[feature_set.key].n_unique()},
                partition_key=day.isoformat(),
            )
            by_day[day.isoformat()] = features
        return dg.Output(
            by_day,
            metadata={
                "feature_set_version": feature_set.version,
                "features": dg.MetadataValue.md(features_markdown(feature_set)),
                "history_days": days_back,
            },
        )

    return _asset


def feature_lookback_days(label_delay_max_days: int) -> int:
    """How many days before a label day the training set reads feature rows: a transaction
    may be that old, and its latest feature row as old as the longest TTL (window)."""
    return label_delay_max_days + max(
        history_days(CUSTOMER_FEATURES.entity), history_days(MERCHANT_FEATURES.entity)
    )


def build_feature_assets(
    partitions: dg.PartitionsDefinition,
    label_delay_max_days: int,
    backfill: dg.BackfillPolicy | None = None,
) -> list[dg.AssetsDefinition]:
    """The features group over `partitions`, backfilled in ranges by `backfill` (None: a run
    per day). Labels of day
    E refer to transactions of up to `label_delay_max_days` days before E, so the training
    set reaches that far back."""
    label_lookback = label_delay_max_days
    feature_lookback = feature_lookback_days(label_delay_max_days)

    @dg.asset(
        key=TRAINING_SET,
        group_name=GROUP,
        partitions_def=partitions,
        kinds=KINDS,
        io_manager_key="warehouse_io_manager",
        ins={
            "labels": dg.AssetIn(TRANSACTION_LABELS),
            "transactions": dg.AssetIn(
                VALIDATED_TRANSACTIONS, partition_mapping=_window(label_lookback)
            ),
            "customer": dg.AssetIn(
                CUSTOMER_FEATURES_KEY, partition_mapping=_window(feature_lookback)
            ),
            "merchant": dg.AssetIn(
                MERCHANT_FEATURES_KEY, partition_mapping=_window(feature_lookback)
            ),
        },
        deps=[REVIEW_LABELS],
        backfill_policy=backfill,
        automation_condition=dg.AutomationCondition.eager(),
        description="The labels that arrived on this day (chargebacks, and reviewers' "
        "decisions: `source` says which), each joined to its transaction and to the feature "
        "values as of just before the transaction (point in time, TTL applied). Partitioned "
        "by label arrival day, so each label enters training once; where a chargeback later "
        "overrules a review, training keeps the chargeback.",
    )
    def training_set(
        context: dg.AssetExecutionContext,
        labels: dict[str, pl.DataFrame],
        transactions: dict[str, pl.DataFrame],
        customer: dict[str, pl.DataFrame],
        merchant: dict[str, pl.DataFrame],
        warehouse: WarehouseReader,
    ) -> dg.Output[dict[str, pl.DataFrame]]:
        # Each input with the days back a single-day run of a label day reads of it.
        inputs = {
            "labels": (TRANSACTION_LABELS, labels, 0),
            "transactions": (VALIDATED_TRANSACTIONS, transactions, label_lookback),
            "customer": (CUSTOMER_FEATURES_KEY, customer, feature_lookback),
            "merchant": (MERCHANT_FEATURES_KEY, merchant, feature_lookback),
        }
        by_day = {}
        for day in partition_days(context):
            rows = {
                name: window_frame(frames, table_name(key), day, back)
                for name, (key, frames, back) in inputs.items()
            }
            # Read, not an input: review_labels may lack the day (a data dir from before the
            # review loop, or a run of training_set alone), and then the day has no reviews.
            reviewed = warehouse.days_present([table_name(REVIEW_LABELS)], [day.isoformat()])
            built = build_training_set(
                rows["labels"],
                rows["transactions"],
                {CUSTOMER_FEATURES: rows["customer"], MERCHANT_FEATURES: rows["merchant"]},
                reviews=warehouse.read(table_name(REVIEW_LABELS), reviewed) if reviewed else None,
            )
            context.log.info(
                f"training_set {day}: {built.frame.height} labelled rows, "
                f"{built.unmatched_labels} labels without a validated transaction"
            )
            lineage = {
                table_name(key): warehouse.partition_digests(
                    table_name(key), window_keys(day, back)
                )
                for key, back in [*((k, b) for k, _, b in inputs.values()), (REVIEW_LABELS, 0)]
            }
            context.add_asset_metadata(
                {
                    "input_data_versions": lineage,
                    "fraud_rate": built.fraud_rate,
                    "rows_by_source": built.rows_by_source,
                    "unmatched_labels": built.unmatched_labels,
                    "feature_coverage": dg.MetadataValue.md(built.coverage_markdown()),
                },
                partition_key=day.isoformat(),
            )
            by_day[day.isoformat()] = built.frame
        return dg.Output(
            by_day,
            metadata={
                "feature_versions": {
                    fs.name: fs.version for fs in (CUSTOMER_FEATURES, MERCHANT_FEATURES)
                }
                | feature_versions(),
            },
        )

    @dg.asset(
        key=ONLINE_FEATURES,
        group_name=GROUP,
        partitions_def=partitions,
        kinds={"sqlite", "redis"},
        ins={"validated": dg.AssetIn(VALIDATED_TRANSACTIONS)},
        pool="online_store",
        backfill_policy=backfill,
        automation_condition=dg.AutomationCondition.eager(),
        description="The day's validated events written to the online store under each "
        "feature set's version, then each entity's log compacted. The endpoint keeps the store "
        "current from its own traffic; this repairs and backfills it, and never overwrites "
        "newer state (an event counts once, whoever writes it first).",
    )
    def online_features(
        context: dg.AssetExecutionContext,
        validated: dict[str, pl.DataFrame],
        online_store: OnlineStoreResource,
        settings: SettingsResource,
    ) -> dg.MaterializeResult:
        lateness_us = int(settings.max_event_lag_s * 1e6)
        store = online_store.open()
        try:
            # Day by day in order, as a sequence of single-day runs would write them.
            for day in partition_days(context):
                events = window_frame(validated, table_name(VALIDATED_TRANSACTIONS), day, 0)
                written = {
                    fs.name: write_events(store, fs, events, lateness_us)
                    for fs in (CUSTOMER_FEATURES, MERCHANT_FEATURES)
                }
                context.log.info(f"online store {store!r}: {events.height} events for {written}")
                context.add_asset_metadata(
                    {"events": events.height, "entities_written": written},
                    partition_key=day.isoformat(),
                )
        finally:
            store.close()
        return dg.MaterializeResult(
            metadata={
                "versions": {fs.name: fs.version for fs in (CUSTOMER_FEATURES, MERCHANT_FEATURES)},
                "store": repr(store),
                "retention": {
                    fs.name: str(retention(fs)) for fs in (CUSTOMER_FEATURES, MERCHANT_FEATURES)
                },
            }
        )

    return [
        _feature_asset(CUSTOMER_FEATURES, CUSTOMER_FEATURES_KEY, partitions, backfill),
        _feature_asset(MERCHANT_FEATURES, MERCHANT_FEATURES_KEY, partitions, backfill),
        training_set,
        online_features,
    ]
