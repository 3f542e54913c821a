"""Data assets: landed files -> raw -> validated + quarantined, and the labels of each day."""

from collections.abc import Iterator
from datetime import date, timedelta

import dagster as dg
import polars as pl

from ml_assets.data.labels import count_by_source
from ml_assets.data.landing import landing_fingerprint, read_labels, read_transactions
from ml_assets.data.partitions import partition_days
from ml_assets.data.quality import (
    Outcome,
    combined_outcome,
    conservation_outcome,
    null_rates_outcome,
    quarantine_share_outcome,
    row_count_outcome,
    schema_outcome,
)
from ml_assets.data.review_decisions import (
    ESCALATE,
    labels_from_decisions,
    read_decisions,
    review_store,
)
from ml_assets.data.validation import ValidationSplit, split_valid_quarantine
from ml_assets.resources import LandingZone, SettingsResource, WarehouseReader, table_name
from ml_assets.warehouse import window_frame

RAW_TRANSACTIONS = dg.AssetKey("raw_transactions")
VALIDATED_TRANSACTIONS = dg.AssetKey("validated_transactions")
QUARANTINED_TRANSACTIONS = dg.AssetKey("quarantined_transactions")
TRANSACTION_LABELS = dg.AssetKey("transaction_labels")
REVIEW_DECISIONS = dg.AssetKey("review_decisions")
REVIEW_LABELS = dg.AssetKey("review_labels")

LANDING_FINGERPRINT = "landing_fingerprint"

CHECK_SCHEMA = "schema"
CHECK_CONSERVATION = "rows_conserved"
CHECK_QUARANTINE_SHARE = "quarantine_share"
CHECK_ROW_COUNT = "row_count_in_bounds"
CHECK_NULL_RATES = "null_rates"

GROUP = "data"
KINDS = {"polars", "parquet"}


def _check(name: str, description: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        name, asset=VALIDATED_TRANSACTIONS, blocking=True, description=description
    )


def _result(name: str, outcome: Outcome) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=name,
        asset_key=VALIDATED_TRANSACTIONS,
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=outcome.description,
        metadata={"summary": outcome.description, **outcome.metadata},
    )


def top_reasons_markdown(quarantined: pl.DataFrame) -> str:
    """The ten commonest quarantine reasons of a day, as a markdown table."""
    reasons = quarantined.group_by("quarantine_reason").len().sort("len", descending=True).head(10)
    return "| reason | rows |\n|---|---|\n" + "\n".join(
        f"| {r} | {n} |" for r, n in reasons.iter_rows()
    )


def day_outcomes(
    day: date,
    raw_rows: int,
    split: ValidationSplit,
    warehouse: WarehouseReader,
    settings: SettingsResource,
) -> dict[str, Outcome]:
    """The five data-quality outcomes of one validated day, by check name."""
    trailing_days = [
        day - timedelta(days=i) for i in range(1, settings.row_count_trailing_days + 1)
    ]
    trailing = warehouse.partition_row_counts(table_name(RAW_TRANSACTIONS), trailing_days)
    valid, quarantined = split.valid.height, split.quarantined.height
    return {
        CHECK_SCHEMA: schema_outcome(split.valid, day),
        CHECK_CONSERVATION: conservation_outcome(raw_rows, valid, quarantined),
        CHECK_QUARANTINE_SHARE: quarantine_share_outcome(
            valid, quarantined, settings.max_quarantine_share
        ),
        CHECK_ROW_COUNT: row_count_outcome(raw_rows, trailing, settings.row_count_tolerance),
        CHECK_NULL_RATES: null_rates_outcome(split.valid, settings.max_null_share),
    }


def build_data_assets(
    partitions: dg.PartitionsDefinition, backfill: dg.BackfillPolicy | None = None
) -> list[dg.AssetsDefinition]:
    """The data group over `partitions`, backfilled in ranges by `backfill` (None: a run per
    day), both built by `build_definitions` from the settings."""

    @dg.asset(
        key=RAW_TRANSACTIONS,
        group_name=GROUP,
        partitions_def=partitions,
        kinds=KINDS,
        io_manager_key="warehouse_io_manager",
        backfill_policy=backfill,
        description="The day's landed transaction files, typed by the column contract. Added "
        "columns are kept and listed; a missing required column fails with its name.",
    )
    def raw_transactions(
        context: dg.AssetExecutionContext, landing: LandingZone
    ) -> dict[str, pl.DataFrame]:
        frames = {}
        for day in partition_days(context):
            read = read_transactions(landing.root, day)
            context.log.info(
                f"read {read.frame.height} rows from {len(read.files)} file(s) for {day}"
            )
            if read.added_columns:
                context.log.warning(f"columns beyond the contract, kept: {read.added_columns}")
            context.add_asset_metadata(
                {
                    "files": [str(p) for p in read.files],
                    LANDING_FINGERPRINT: landing_fingerprint(landing.root, day),
                    "added_columns": read.added_columns,
                    "absent_optional_columns": read.absent_optional_columns,
                },
                partition_key=day.isoformat(),
            )
            frames[day.isoformat()] = read.frame
        return frames

    @dg.multi_asset(
        outs={
            "validated_transactions": dg.AssetOut(
                key=VALIDATED_TRANSACTIONS,
                group_name=GROUP,
                kinds=KINDS,
                io_manager_key="warehouse_io_manager",
                description="Rows that pass the pandera schema: what every feature is computed "
                "from.",
            ),
            "quarantined_transactions": dg.AssetOut(
                key=QUARANTINED_TRANSACTIONS,
                group_name=GROUP,
                kinds=KINDS,
                io_manager_key="warehouse_io_manager",
                description="Rows that failed the schema, each with the checks and columns it "
                "failed.",
            ),
        },
        ins={"raw": dg.AssetIn(RAW_TRANSACTIONS)},
        partitions_def=partitions,
        backfill_policy=backfill,
        check_specs=[
            _check(CHECK_SCHEMA, "The stored valid rows pass the schema."),
            _check(CHECK_CONSERVATION, "raw rows = valid rows + quarantined rows."),
            _check(CHECK_QUARANTINE_SHARE, "The quarantined share stays under its ceiling."),
            _check(CHECK_ROW_COUNT, "The day's row count is within bounds of the trailing days."),
            _check(CHECK_NULL_RATES, "Null shares of required columns stay under the ceiling."),
        ],
    )
    def validated_and_quarantined_transactions(
        context: dg.AssetExecutionContext,
        raw: dict[str, pl.DataFrame],
        warehouse: WarehouseReader,
        settings: SettingsResource,
    ) -> Iterator[dg.Output | dg.AssetCheckResult]:
        valid, quarantined, outcomes = {}, {}, {}
        for day in partition_days(context):
            key = day.isoformat()
            day_raw = window_frame(raw, table_name(RAW_TRANSACTIONS), day, 0)
            split = split_valid_quarantine(day_raw, day)
            context.log.info(
                f"{day}: {split.valid.height} valid, {split.quarantined.height} quarantined"
            )
            valid[key], quarantined[key] = split.valid, split.quarantined
            context.add_asset_metadata(
                {"top_reasons": dg.MetadataValue.md(top_reasons_markdown(split.quarantined))},
                asset_key=QUARANTINED_TRANSACTIONS,
                partition_key=key,
            )
            outcomes[day] = day_outcomes(day, day_raw.height, split, warehouse, settings)
        yield dg.Output(valid, output_name="validated_transactions")
        yield dg.Output(quarantined, output_name="quarantined_transactions")
        for name in outcomes[min(outcomes)]:
            yield _result(name, combined_outcome({d: o[name] for d, o in outcomes.items()}))

    @dg.asset(
        key=TRANSACTION_LABELS,
        group_name=GROUP,
        partitions_def=partitions,
        kinds=KINDS,
        io_manager_key="warehouse_io_manager",
        backfill_policy=backfill,
        description="Fraud outcomes that became known on this day, for transactions of "
        "earlier days.",
    )
    def transaction_labels(
        context: dg.AssetExecutionContext, landing: LandingZone
    ) -> dict[str, pl.DataFrame]:
        frames = {}
        for day in partition_days(context):
            read = read_labels(landing.root, day)
            if not read.files:
                context.log.warning(f"no label file landed for {day}: no labels arrived that day")
            fraud = int(read.frame["is_fraud"].sum()) if read.frame.height else 0
            context.add_asset_metadata(
                {
                    "files": [str(p) for p in read.files],
                    "fraud_labels": fraud,
                    "labels_by_source": count_by_source(read.frame),
                },
                partition_key=day.isoformat(),
            )
            frames[day.isoformat()] = read.frame
        return frames

    review_decisions = dg.AssetSpec(
        REVIEW_DECISIONS,
        group_name=GROUP,
        kinds={"sqlite"},
        description="Reviewers' decisions on the human-review queue (POST /review/{id} on the "
        "endpoint), in the review store under serving/. Produced outside Dagster.",
    )

    @dg.asset(
        key=REVIEW_LABELS,
        group_name=GROUP,
        partitions_def=partitions,
        kinds=KINDS,
        io_manager_key="warehouse_io_manager",
        backfill_policy=backfill,
        deps=[REVIEW_DECISIONS],
        description="Reviewers' fraud/legitimate decisions made on this day, as labels with "
        "source `review` (escalations are not labels). Monitoring and the training set use "
        "them beside transaction_labels until a chargeback overrules them.",
    )
    def review_labels(
        context: dg.AssetExecutionContext, settings: SettingsResource
    ) -> dict[str, pl.DataFrame]:
        store = review_store(settings.settings.serving_dir)
        frames = {}
        for day in partition_days(context):
            decisions = read_decisions(store, day)
            labels = labels_from_decisions(decisions)
            context.add_asset_metadata(
                {
                    "store": str(store),
                    "decisions": decisions.height,
                    "escalated": int((decisions["decision"] == ESCALATE).sum()),
                    "fraud_labels": int(labels["is_fraud"].sum()) if labels.height else 0,
                    "labels": labels.height,
                },
                partition_key=day.isoformat(),
            )
            frames[day.isoformat()] = labels
        return frames

    return [
        raw_transactions,
        validated_and_quarantined_transactions,
        transaction_labels,
        review_decisions,
        review_labels,
    ]
