"""A rollout played end to end on landed days: a candidate enters, shadows the champion,
goes to canary, and ends as champion or rolled back, each step decided by the real sensors
on the real evidence assets.

Live traffic is the days' validated transactions with the features the endpoint would read
(the batch point-in-time join), scored by the real registered models and written to the
prediction log through `write_log_file`, in the shape the endpoint writes: in shadow the
champion answers every request and the candidate scores it beside; in canary the customers
`in_canary` are answered by the candidate. Model timings are each model's batch scoring
time per row (the endpoint's own timings come with the replay through it).

`play_rollout` is a plain function the demo can call; the tests call it on a test platform.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import dagster as dg
import numpy as np
import polars as pl

from ml_assets.automation.jobs import DEPLOY_JOB, QUIET
from ml_assets.automation.promotion_sensor import endpoint_reload_sensor, promotion_sensor
from ml_assets.automation.replay import post_day
from ml_assets.automation.rollout_sensors import canary_sensor, champion_sensor, shadow_sensor
from ml_assets.data.assets import VALIDATED_TRANSACTIONS
from ml_assets.features.assets import CUSTOMER_FEATURES_KEY, MERCHANT_FEATURES_KEY
from ml_assets.features.registry import CUSTOMER_FEATURES, MERCHANT_FEATURES, history_days
from ml_assets.features.training_set import attach_features
from ml_assets.monitoring.rollout_assets import AB_ANALYSIS, SHADOW_COMPARISON
from ml_assets.resources import WarehouseReader, table_name
from ml_assets.serving.decisions import decide_many
from ml_assets.serving.prediction_log import prediction_log_root, write_log_file
from ml_assets.settings import Settings
from ml_assets.training.deployment import DEPLOYED_MODEL
from ml_assets.training.registry_reader import STUDENT_MODEL_NAME, load_model_version
from ml_assets.training.rollout import stage_aliases, stage_of
from ml_assets.training.rollout_stages import CANARY, CANARY_ARM, CHAMPION_ARM, SHADOW, in_canary
from ml_assets.warehouse import read_partition


@dataclass
class RolloutStory:
    """What happened to one candidate: each step, the evidence, where it ended."""

    version: str
    steps: list[str] = field(default_factory=list)
    final_stage: str | None = None
    caught_in: str | None = None  # shadow | canary, when rolled back
    evidence: dict[str, dict[str, Any]] = field(default_factory=dict)
    reloads: list[str] = field(default_factory=list)  # the reload sensor, after each change

    def lines(self) -> list[str]:
        return [f"v{self.version}: {s}" for s in self.steps]


def day_rows(settings: Settings, day: date) -> pl.DataFrame:
    """The day's validated transactions with the features as of each (what is served)."""
    warehouse = WarehouseReader(root=str(settings.warehouse_dir))

    def window(key: dg.AssetKey, entity: str) -> pl.DataFrame:
        days = [(day - timedelta(days=k)).isoformat() for k in range(history_days(entity), -1, -1)]
        table = table_name(key)
        return warehouse.read(table, warehouse.days_present([table], days))

    rows = warehouse.read(table_name(VALIDATED_TRANSACTIONS), [day.isoformat()])
    features = {
        CUSTOMER_FEATURES: window(CUSTOMER_FEATURES_KEY, "customer"),
        MERCHANT_FEATURES: window(MERCHANT_FEATURES_KEY, "merchant"),
    }
    return attach_features(rows.sort("event_time"), features)


def _timed_scores(model, rows: pl.DataFrame):
    started = time.perf_counter()
    scores = model.predict_proba(rows)
    return scores, (time.perf_counter() - started) * 1000.0 / max(rows.height, 1)


def live_records(
    rows: pl.DataFrame,
    settings: Settings,
    champion: tuple[str, Any],
    candidate: tuple[str, Any],
    stage: str,
) -> list[dict[str, Any]]:
    """Prediction-log records for `rows` with (version, model) `candidate` in `stage`
    (shadow or canary) beside `champion`, as the endpoint logs them."""
    (champion_version, champion_model), (candidate_version, candidate_model) = champion, candidate
    champion_scores, champion_ms = _timed_scores(champion_model, rows)
    candidate_scores, candidate_ms = _timed_scores(candidate_model, rows)
    share = settings.canary_share if stage == CANARY else 0.0
    keys = rows.select("transaction_id", "customer_id", "merchant_id", "amount", "event_time")
    canary = np.array([in_canary(c, share) for c in keys["customer_id"].to_list()], dtype=bool)
    served = np.where(canary, candidate_scores, champion_scores).astype(np.float64)
    decisions = decide_many(served, settings.decisions)
    records = []
    for i, row in enumerate(keys.iter_rows(named=True)):
        record = {
            **row,
            "request_id": f"scenario-{row['transaction_id']}",
            "received_at": row["event_time"],
            "score": float(served[i]),
            "decision": str(decisions[i]),
            "path": "model",
            "model_name": STUDENT_MODEL_NAME,
            "model_version": candidate_version if canary[i] else champion_version,
            "arm": CANARY_ARM if canary[i] else CHAMPION_ARM,
            "latency_ms": candidate_ms if canary[i] else champion_ms,
            "model_latency_ms": candidate_ms if canary[i] else champion_ms,
        }
        if stage == SHADOW:
            record.update(
                shadow_score=float(candidate_scores[i]),
                shadow_version=candidate_version,
                shadow_latency_ms=candidate_ms,
            )
        records.append(record)
    return records


class _Driver:
    """Ticks the rollout sensors and runs what they request, as the daemon would."""

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance):
        self.defs, self.instance = defs, instance
        self.cursors: dict[str, str | None] = {}

    def evaluate(self, sensor):
        context = dg.build_sensor_context(
            instance=self.instance,
            cursor=self.cursors.get(sensor.name),
            resources=self.defs.resources,
        )
        result = sensor.evaluate_tick(context)
        self.cursors[sensor.name] = result.cursor
        return result

    def tick(self, sensor) -> list[dg.RunRequest]:
        return list(self.evaluate(sensor).run_requests or [])

    def run(self, request: dg.RunRequest, story: RolloutStory | None = None):
        """Run a requested rollout step; after a stage change the reload sensor ticks."""
        job = self.defs.resolve_job_def(DEPLOY_JOB)
        result = job.execute_in_process(
            instance=self.instance,
            run_config={**(request.run_config or {}), **QUIET},
            tags=request.tags,
            raise_on_error=False,
        )
        if result.success and story is not None:
            story.reloads.append(self.evaluate(endpoint_reload_sensor).skip_message or "")
        return result

    def materialize(self, key: dg.AssetKey, day: date) -> dg.ExecuteInProcessResult:
        return self.defs.resolve_implicit_global_asset_job_def().execute_in_process(
            partition_key=day.isoformat(),
            instance=self.instance,
            asset_selection=[key],
            raise_on_error=False,
            run_config=QUIET,
        )

    def step(self, sensor, story: RolloutStory) -> None:
        for request in self.tick(sensor):
            result = self.run(request, story)
            stage = (request.tags or {}).get("rollout/stage")
            story.steps.append(f"{sensor.name} -> {stage}: {'ok' if result.success else 'failed'}")


def _latest(instance: dg.DagsterInstance, key: dg.AssetKey, day: date) -> dict[str, Any]:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[day.isoformat()]), limit=1
    ).records
    if not records:
        return {}
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


def _stage(settings: Settings, version: str) -> str | None:
    return stage_of(stage_aliases(settings.mlflow_tracking_uri, STUDENT_MODEL_NAME), version)


def _clear_log(settings: Settings, day: date) -> None:
    """The day's prediction log will be this traffic only (a re-played day replaces its log)."""
    for old in (prediction_log_root(settings.home) / f"date={day.isoformat()}").glob("*.parquet"):
        old.unlink()


def batch_traffic(
    settings: Settings, day: date, stage: str, champion: tuple[str, Any], candidate: tuple[str, Any]
) -> None:
    """The day's traffic scored in batch by the two models, logged as the endpoint would."""
    _clear_log(settings, day)
    records = live_records(day_rows(settings, day), settings, champion, candidate, stage)
    write_log_file(prediction_log_root(settings.home), day.isoformat(), records)


def endpoint_traffic(settings: Settings, day: date) -> None:
    """The day's transactions posted through a real replica on loopback, which follows the
    stage aliases as any replica does (the shadow scores beside the champion, the canary
    answers its customers), so the prediction log is what the endpoint answered."""
    _clear_log(settings, day)
    transactions = read_partition(settings.warehouse_dir, table_name(VALIDATED_TRANSACTIONS), day)
    post_day(settings, day, transactions, batch=250, shadow=True, canary=True,
             shadow_queue_size=transactions.height + 1)  # fmt: skip


def play_rollout(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    settings: Settings,
    shadow_days: Sequence[date],
    canary_days: Sequence[date],
    through_endpoint: bool = False,
) -> RolloutStory:
    """Take the evaluated candidate (the latest `model_evaluation`) through the rollout:
    entry, shadow traffic on `shadow_days`, canary traffic on `canary_days` (whose labels
    must have landed), each transition requested by the sensors. Returns what happened.
    `through_endpoint` posts each day through a real replica (`endpoint_traffic`) instead of
    scoring it in batch (`batch_traffic`)."""
    driver = _Driver(defs, instance)
    for sensor in (shadow_sensor, canary_sensor, champion_sensor, endpoint_reload_sensor):
        driver.tick(sensor)  # start their cursors after whatever happened before
    # The promotion sensor's first tick looks at the latest evaluation: the candidate.
    requests = driver.tick(promotion_sensor)
    story = RolloutStory("?")
    entry = driver.run(requests[0], story) if requests else None
    if entry is None or not entry.success:
        story.steps.append("the candidate did not enter the rollout (gates failed?)")
        return story
    (event,) = entry.asset_materializations_for_node(DEPLOYED_MODEL.path[-1])
    meta = {k: v.value for k, v in event.metadata.items()}
    story.version = str(meta["version"])
    story.steps.append(f"entered as {meta['stage']}")
    uri = settings.mlflow_tracking_uri
    champion_version = stage_aliases(uri, STUDENT_MODEL_NAME).get("champion")
    champion = (champion_version, load_model_version(STUDENT_MODEL_NAME, champion_version, uri))
    candidate = (story.version, load_model_version(STUDENT_MODEL_NAME, story.version, uri))

    def send(day: date, stage: str) -> None:
        if through_endpoint:
            endpoint_traffic(settings, day)
        else:
            batch_traffic(settings, day, stage, champion, candidate)

    def play_stage(stage: str, days: Sequence[date], evidence: dg.AssetKey, sensor) -> None:
        """Each day of `stage`'s traffic, its evidence, then the sensor that may move on;
        stops at the first day the version leaves the stage."""
        for day in days if _stage(settings, story.version) == stage else ():
            send(day, stage)
            driver.materialize(evidence, day)
            story.evidence[f"{'shadow' if stage == SHADOW else 'ab'} {day}"] = _latest(
                instance, evidence, day
            )
            driver.step(sensor, story)
            if _stage(settings, story.version) != stage:
                break

    driver.step(shadow_sensor, story)
    play_stage(SHADOW, shadow_days, SHADOW_COMPARISON, canary_sensor)
    if _stage(settings, story.version) is None:
        story.caught_in = SHADOW
    play_stage(CANARY, canary_days, AB_ANALYSIS, champion_sensor)
    if story.caught_in is None and _stage(settings, story.version) is None:
        story.caught_in = CANARY
    story.final_stage = _stage(settings, story.version) or "rolled_back"
    story.steps.append(f"ended {story.final_stage}")
    return story
