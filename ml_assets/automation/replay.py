"""Parity, measured: replay a landed day through a running endpoint and compare its answers
with the batch scores of that day.

The online store is first brought to the state it had at the end of D-1 (events at or after
D forgotten, the retention window before D written again from the warehouse), then D's
validated transactions are posted in event-time order, as production would have sent them.
Each answer is joined with `scored_transactions` of D: if the endpoint serves what the
evaluation measured, the scores agree to the last digits and so do the AUCs.
"""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import time as clock
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import httpx
import polars as pl
from tqdm import tqdm

from ml_assets.features.event_log import retention
from ml_assets.features.online import OnlineStore, open_online_store, truncate_from, write_events
from ml_assets.features.registry import FEATURE_SETS
from ml_assets.serving.app import create_app
from ml_assets.serving.config import ServingConfig
from ml_assets.serving.local_server import serve_in_thread
from ml_assets.settings import Settings
from ml_assets.storage import read_parquet
from ml_assets.warehouse import existing_partitions, read_partition

VALIDATED, SCORED, LABELS = "validated_transactions", "scored_transactions", "transaction_labels"
REQUEST_COLUMNS = [
    "transaction_id", "customer_id", "merchant_id", "amount", "channel", "device",
    "merchant_category", "merchant_country", "customer_country", "event_time",
]  # fmt: skip


def restore_store_before(store: OnlineStore, warehouse_dir, day: date) -> int:
    """The store as of the end of `day - 1`: later events forgotten, and the events of the
    retention window before `day` (re)written from the warehouse. Returns events written."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    days_back = max(math.ceil(retention(fs) / timedelta(days=1)) for fs in FEATURE_SETS.values())
    history = [day - timedelta(days=k) for k in range(days_back, 0, -1)]
    paths = existing_partitions(warehouse_dir, VALIDATED, history)
    events = pl.concat([read_parquet(p) for p in paths]) if paths else None
    for feature_set in FEATURE_SETS.values():
        truncate_from(store, feature_set, start)
        if events is not None:
            write_events(store, feature_set, events)
    return 0 if events is None else events.height


def request_batches(transactions: pl.DataFrame, size: int) -> Iterator[list[dict]]:
    """The day's transactions as request bodies, in event-time order, `size` per request."""
    ordered = transactions.sort("event_time", "transaction_id").select(REQUEST_COLUMNS)
    ordered = ordered.with_columns(pl.col("event_time").dt.strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00"))
    for start in range(0, ordered.height, size):
        yield ordered.slice(start, size).to_dicts()


def post_batch(client: httpx.Client, batch: list[dict]) -> list[dict]:
    """One /predict/batch call; a refusal says which request and why."""
    response = client.post("/predict/batch", json={"transactions": batch})
    if response.status_code != 200:
        raise RuntimeError(
            f"the endpoint answered {response.status_code} to a batch starting at "
            f"{batch[0]['transaction_id']}: {response.text[:500]}"
        )
    return response.json()["predictions"]


def answers_frame(answers: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "transaction_id": [a["transaction_id"] for a in answers],
            "served_score": [float(a["score"]) for a in answers],
            "served_decision": [a["decision"] for a in answers],
            "path": [a["path"] for a in answers],
            "status": [
                "/".join(f"{k}:{v}" for k, v in sorted(a["feature_status"].items()))
                for a in answers
            ],
        }
    )


@dataclass(frozen=True)
class Parity:
    """How the endpoint's answers of a day compare with that day's batch scores."""

    day: str
    rows: int
    off_1e6: float  # share of rows with |served - batch| > 1e-6
    off_001: float  # share with |served - batch| > 0.01
    max_diff: float
    decisions_differ: float
    labelled: int
    served_auc: float | None
    batch_auc: float | None
    paths: dict[str, int]
    feature_status: dict[str, int]

    def lines(self) -> list[str]:
        def auc(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.6f}"

        return [
            f"replayed {self.rows} transactions of {self.day}",
            f"  |served - batch| > 1e-6: {self.off_1e6:.4%} of rows   > 0.01: "
            f"{self.off_001:.4%}   max {self.max_diff:.3g}",
            f"  decisions that differ: {self.decisions_differ:.4%}",
            f"  AUC on {self.labelled} labelled rows: served {auc(self.served_auc)}   batch "
            f"{auc(self.batch_auc)}",
            f"  answer paths: {self.paths}",
            f"  feature status: {self.feature_status}",
        ]


def parity(day: str, served: pl.DataFrame, scored: pl.DataFrame, labels: pl.DataFrame) -> Parity:
    """Join the served answers with the batch scores (and the labels that arrived)."""
    from sklearn.metrics import roc_auc_score

    joined = served.join(
        scored.select("transaction_id", pl.col("score").alias("batch_score"),
                      pl.col("decision").alias("batch_decision")),
        on="transaction_id", how="inner",
    )  # fmt: skip
    diff = (joined["served_score"] - joined["batch_score"]).abs()
    labelled = joined.join(
        labels.unique("transaction_id", keep="last").select("transaction_id", "is_fraud"),
        on="transaction_id",
    )
    both_classes = labelled.height and 0 < labelled["is_fraud"].sum() < labelled.height
    rows = max(joined.height, 1)
    return Parity(
        day=day,
        rows=joined.height,
        off_1e6=float((diff > 1e-6).sum()) / rows,
        off_001=float((diff > 0.01).sum()) / rows,
        max_diff=float(diff.max() or 0.0),
        decisions_differ=float((joined["served_decision"] != joined["batch_decision"]).sum())
        / rows,
        labelled=labelled.height,
        served_auc=float(roc_auc_score(labelled["is_fraud"], labelled["served_score"]))
        if both_classes else None,
        batch_auc=float(roc_auc_score(labelled["is_fraud"], labelled["batch_score"]))
        if both_classes else None,
        paths=dict(Counter(joined["path"].to_list()).most_common()),
        feature_status=dict(Counter(joined["status"].to_list()).most_common(6)),
    )  # fmt: skip


def day_tables(warehouse_dir, day: date, label_delay_max_days: int):
    """The validated transactions and batch scores of `day`, and the labels that arrived."""
    transactions = read_partition(warehouse_dir, VALIDATED, day)
    scored = read_partition(warehouse_dir, SCORED, day)
    label_days = [day + timedelta(days=k) for k in range(1, label_delay_max_days + 1)]
    paths = existing_partitions(warehouse_dir, LABELS, label_days)
    labels = (
        pl.concat([read_parquet(p) for p in paths])
        if paths
        else pl.DataFrame(schema={"transaction_id": pl.String, "is_fraud": pl.Int8})
    )
    return transactions, scored, labels


def run_replay(settings: Settings, day: date, url: str = "", batch: int = 200) -> Parity:
    """The whole replay: restore the store to the end of D-1, post D through the endpoint at
    `url` (default: a replica started here on loopback, accepting D's event times), and
    compare with D's batch scores. No canary and no shadow: parity is with the champion."""
    transactions, scored, labels = day_tables(
        settings.warehouse_dir, day, settings.label_delay_max_days
    )
    answers = post_day(settings, day, transactions, url, batch, shadow=False, canary=False)
    return parity(day.isoformat(), answers_frame(answers), scored, labels)


def post_day(
    settings: Settings,
    day: date,
    transactions: pl.DataFrame,
    url: str = "",
    batch: int = 200,
    **serving: Any,
) -> list[dict]:
    """Restore the online store to the end of D-1, then post D's `transactions` in event-time
    order through the endpoint at `url`, or through a replica started here on loopback with
    the `serving` config changes (its prediction log and stages are the data dir's).
    Returns the answers."""
    store = open_online_store(settings.online_store_url, settings.home)
    try:
        restored = restore_store_before(store, settings.warehouse_dir, day)
    finally:
        store.close()
    print(f"online store as of the end of {day - timedelta(days=1)} ({restored} earlier events)")
    with contextlib.ExitStack() as stack:
        if url:
            key = os.environ.get("ML_ASSETS_API_KEY", "").split(",")[0].strip()
        else:
            key = secrets.token_hex(16)
            lag = (datetime.now(UTC) - datetime.combine(day, time(), UTC)).total_seconds()
            config = ServingConfig.from_env().with_(
                home=settings.home, online_store_url=settings.online_store_url,
                tracking_uri=settings.mlflow_tracking_uri, api_keys=(key,),
                max_event_lag_s=lag + 2 * 86_400, request_timeout_s=60.0, reload_poll_s=0,
                rate_limit_per_s=1e9, rate_limit_burst=10**9, **serving,
            )  # fmt: skip
            url = stack.enter_context(serve_in_thread(create_app(config)))
        client = stack.enter_context(
            httpx.Client(base_url=url, headers={"X-API-Key": key} if key else {}, timeout=120)
        )
        wait_ready(client)
        answers: list[dict] = []
        total = -(-transactions.height // batch)
        for body in tqdm(request_batches(transactions, batch), total=total, unit="batch",
                         desc=f"replaying {day}"):  # fmt: skip
            answers += post_batch(client, body)
    return answers


def wait_ready(client: httpx.Client, seconds: float = 120.0) -> None:
    """Until the endpoint has loaded a champion (GET /ready answers 200)."""
    deadline = clock.monotonic() + seconds
    while clock.monotonic() < deadline:
        response = client.get("/ready")
        if response.status_code == 200:
            return
        clock.sleep(0.2)
    raise LookupError(f"the endpoint at {client.base_url} is not ready: {response.text}")
