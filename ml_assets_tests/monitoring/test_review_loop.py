"""The review loop through real materializations: reviewers' decisions in the review store
become `review_labels`, reach the training set of the day they were made and the champion's
`model_performance` of the day the transactions were scored, and a chargeback overrules a
review there and in the rows training reads."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import dagster as dg
import polars as pl
import pytest

from ml_assets.data.assets import REVIEW_LABELS
from ml_assets.data.demo_source import land_days
from ml_assets.data.generator import GeneratorConfig
from ml_assets.data.labels import CHARGEBACK, REVIEW, SOURCE
from ml_assets.data.landing import read_labels
from ml_assets.definitions import build_assets, build_resources
from ml_assets.features.assets import CUSTOMER_FEATURES_KEY, MERCHANT_FEATURES_KEY, TRAINING_SET
from ml_assets.features.training_set import resolve_training_rows
from ml_assets.monitoring.assets import MODEL_PERFORMANCE
from ml_assets.serving.review_queue import ReviewQueue
from ml_assets.warehouse import read_partition, write_partition

pytestmark = pytest.mark.xdist_group("review_loop")

START = date(2026, 3, 1)
DAY1, DAY2, DAY3 = (START + timedelta(days=i) for i in range(3))
REVIEWED_AT = datetime.combine(DAY2, time(12), UTC)
GENERATOR = GeneratorConfig(transactions_per_day=800)
DAILY = dg.AssetSelection.groups("data") | dg.AssetSelection.assets(
    CUSTOMER_FEATURES_KEY, MERCHANT_FEATURES_KEY, TRAINING_SET
)


def _materialize(settings, instance, selection, day: date) -> dg.ExecuteInProcessResult:
    result = dg.materialize(
        build_assets(settings),
        selection=selection,
        partition_key=day.isoformat(),
        resources=build_resources(settings),
        instance=instance,
    )
    assert result.success
    return result


def _metadata(instance, key: dg.AssetKey, day: date) -> dict[str, object]:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[day.isoformat()]), limit=1
    ).records
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


def _queue_item(txn: dict, transaction_id: str | None = None) -> dict:
    """What the endpoint queues for a transaction it answered with `review`."""
    transaction_id = transaction_id or txn["transaction_id"]
    return {
        "created_at": txn["event_time"],
        "request_id": f"req-{transaction_id}",
        "transaction_id": transaction_id,
        "score": 0.5,
        "path": "review",
        "request": {
            "transaction_id": transaction_id,
            "customer_id": txn["customer_id"],
            "merchant_id": txn["merchant_id"],
            "event_time": txn["event_time"].isoformat(),
        },  # fmt: skip
        "features": {},
    }


def _review(queue: ReviewQueue, txn: dict, decision: str) -> None:
    queue.add(_queue_item(txn))
    queue.decide(txn["transaction_id"], decision, "analyst-1", now=REVIEWED_AT)


def test_reviewer_labels_reach_training_and_performance_and_chargebacks_win(settings, instance):
    list(land_days(settings.landing_dir, START, 3, GENERATOR))
    _materialize(settings, instance, DAILY, DAY1)
    day1 = read_partition(settings.warehouse_dir, "validated_transactions", DAY1)
    charged = {d: read_labels(settings.landing_dir, d).frame for d in (DAY2, DAY3)}
    by_id = {r["transaction_id"]: r for r in day1.iter_rows(named=True)}
    # X: no chargeback in sight; Y: its chargeback lands the day of the review; Z: the day after.
    unlabelled = set(by_id) - set(pl.concat(charged.values())["transaction_id"])
    x = by_id[sorted(unlabelled)[0]]
    y_label = charged[DAY2].filter(pl.col("transaction_id").is_in(list(by_id))).row(0, named=True)
    z_label = charged[DAY3].filter(pl.col("transaction_id").is_in(list(by_id))).row(0, named=True)
    y, z = by_id[y_label["transaction_id"]], by_id[z_label["transaction_id"]]
    opposite = {0: "fraud", 1: "legitimate"}

    queue = ReviewQueue(settings.serving_dir)  # the store the endpoint's POST /review writes
    try:
        _review(queue, x, "fraud")
        _review(queue, y, opposite[y_label["is_fraud"]])
        _review(queue, z, opposite[z_label["is_fraud"]])
        queue.add(_queue_item(x, "W"))
        queue.decide("W", "escalate", "analyst-1", now=REVIEWED_AT)  # escalations: no label
    finally:
        queue.close()
    _materialize(settings, instance, DAILY, DAY2)
    _materialize(settings, instance, DAILY, DAY3)

    reviews = read_partition(settings.warehouse_dir, "review_labels", DAY2)
    assert sorted(reviews["transaction_id"]) == sorted([x["transaction_id"], y["transaction_id"],
                                                        z["transaction_id"]])  # fmt: skip
    assert _metadata(instance, REVIEW_LABELS, DAY2)["escalated"] == 1

    # The training set of the review day: X by its review; Y by the chargeback that arrived
    # the same day; Z by its review for now.
    training = read_partition(settings.warehouse_dir, "training_set", DAY2)
    label = {
        r["transaction_id"]: (r["is_fraud"], r[SOURCE]) for r in training.iter_rows(named=True)
    }
    assert label[x["transaction_id"]] == (1, REVIEW)
    assert label[y["transaction_id"]] == (y_label["is_fraud"], CHARGEBACK)
    assert label[z["transaction_id"]] == (1 - z_label["is_fraud"], REVIEW)
    assert training["transaction_id"].is_unique().all()
    assert _metadata(instance, TRAINING_SET, DAY2)["rows_by_source"][REVIEW] == 2
    # Z's chargeback came the next day: in the rows training reads, it overrules the review.
    window = resolve_training_rows(
        pl.concat(
            [read_partition(settings.warehouse_dir, "training_set", d) for d in (DAY2, DAY3)],
            how="diagonal_relaxed",
        )
    )
    z_rows = window.filter(pl.col("transaction_id") == z["transaction_id"])
    assert z_rows.select("is_fraud", SOURCE).rows() == [(z_label["is_fraud"], CHARGEBACK)]
    assert window["transaction_id"].is_unique().all()

    # The champion's performance on day 1: every chargeback, plus X by its review.
    scored = day1.select(
        "transaction_id",
        pl.col("event_time").alias("received_at"),
        pl.col("true_fraud_probability").alias("score"),
        "amount",
    )
    write_partition(settings.warehouse_dir, "scored_transactions", DAY1, scored)
    _materialize(settings, instance, [MODEL_PERFORMANCE], DAY1)
    performance = _metadata(instance, MODEL_PERFORMANCE, DAY1)
    charged_day1 = pl.concat(charged.values()).filter(pl.col("transaction_id").is_in(list(by_id)))
    assert performance["labels_by_source"] == {
        CHARGEBACK: charged_day1["transaction_id"].n_unique(),
        REVIEW: 1,
    }
    assert performance["labelled_rows"] == charged_day1["transaction_id"].n_unique() + 1
    assert performance["reviews_overruled"] == 2  # Y and Z
    assert performance["review_days_present"] == [d.isoformat() for d in (DAY1, DAY2, DAY3)]
