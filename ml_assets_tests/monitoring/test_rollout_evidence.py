"""The shadow comparison and the A/B analysis on prediction logs with known answers: flips,
agreement and latency counted exactly; a shadow version blocked, waiting or ready; a canary
that catches less fraud judged worse only once the planned sample is reached, and an equal
one promoted; and the two assets on a real instance."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import dagster as dg
import numpy as np
import polars as pl
import pytest

from ml_assets.definitions import build_assets, build_resources
from ml_assets.monitoring.ab_analysis import AbPlan, arm_counts, day_rows, plan_for, pooled
from ml_assets.monitoring.rollout_assets import (
    AB_ANALYSIS,
    CHECK_AB,
    CHECK_SHADOW,
    SHADOW_COMPARISON,
)
from ml_assets.monitoring.shadow_comparison import compare_shadow, shadow_verdict
from ml_assets.serving.prediction_log import (
    prediction_log_root,
    read_prediction_log,
    write_log_file,
)
from ml_assets.settings import DecisionThresholds, Settings
from ml_assets.training.rollout_evidence import (
    BLOCKED,
    PROMOTE,
    READY,
    WAITING,
    WORSE,
    ShadowLimits,
    readiness,
)
from ml_assets.training.rollout_stages import CANARY_ARM, CHAMPION_ARM

DAY = date(2026, 3, 2)
THRESHOLDS = DecisionThresholds()  # review from 0.3, decline from 0.7


def record(i: int, **fields) -> dict:
    at = datetime(2026, 3, 2, 12, tzinfo=UTC) + timedelta(seconds=i)
    return {
        "request_id": f"r{i}", "transaction_id": f"t{i}", "customer_id": f"c{i}",
        "merchant_id": "m", "amount": 50.0, "received_at": at, "event_time": at,
        "path": "model", "model_name": "fraud_student", "model_version": "1",
        "arm": CHAMPION_ARM, "latency_ms": 2.0, **fields,
    }  # fmt: skip


def logged(tmp_path, records: list[dict]) -> pl.DataFrame:
    """Through the prediction log's own writer and reader, as monitoring sees it."""
    write_log_file(tmp_path / "prediction_log", DAY.isoformat(), records)
    return read_prediction_log(tmp_path, DAY.isoformat())


@pytest.fixture
def shadow_log(tmp_path) -> pl.DataFrame:
    """100 champion answers scored 0.1; the shadow (v2) agrees on 95, declines 5 (0.9).
    Beside them: a fallback answer and a canary answer, neither of which is compared."""
    records = [
        record(i, score=0.1, decision="approve", shadow_score=0.9 if i < 5 else 0.12,
               shadow_version="2", shadow_latency_ms=float(i % 10))
        for i in range(100)
    ]  # fmt: skip
    records.append(record(100, score=0.5, decision="review", reason="timeout", path="fallback",
                          shadow_score=0.9, shadow_version="2"))  # fmt: skip
    records.append(record(101, score=0.1, decision="approve", arm=CANARY_ARM, model_version="3",
                          shadow_score=0.9, shadow_version="2"))  # fmt: skip
    return logged(tmp_path, records)


def test_shadow_flips_agreement_and_latency_are_counted_on_model_answers(shadow_log):
    c = compare_shadow(shadow_log, DAY, THRESHOLDS)
    assert (c.requests, c.compared, c.shadow_version, c.champion_version) == (102, 100, "2", "1")
    assert c.flips == {"approve->decline": 5}
    assert c.flip_rate == pytest.approx(0.05) and c.agreement_rate == pytest.approx(0.95)
    assert c.score_diff["q50"] == pytest.approx(0.02)
    assert c.score_diff["q99"] == pytest.approx(0.8)
    assert c.shadow_p50_ms == pytest.approx(4.5) and c.champion_p95_ms == pytest.approx(2.0)


def test_shadow_verdict_blocks_on_flips_or_latency_and_passes_otherwise(shadow_log):
    c = compare_shadow(shadow_log, DAY, THRESHOLDS)
    blocked, why = shadow_verdict(c, ShadowLimits(max_flip_rate=0.02, latency_budget_ms=20))
    assert not blocked and "5.00% of 100 decisions flip" in why
    slow, why = shadow_verdict(c, ShadowLimits(max_flip_rate=0.10, latency_budget_ms=5))
    assert not slow and "over the budget 5" in why
    assert shadow_verdict(c, ShadowLimits(max_flip_rate=0.10, latency_budget_ms=20))[0]


def test_readiness_waits_for_traffic_and_any_blocked_day_blocks():
    table = pl.DataFrame(
        {"day": [DAY, DAY + timedelta(days=1), DAY], "shadow_version": ["2", "2", "3"],
         "compared": [600, 600, 5_000], "passed": [True, True, False]}
    )  # fmt: skip
    limits = ShadowLimits(min_requests=1_000)
    assert readiness(table, "2", limits).state == READY
    assert readiness(table.head(1), "2", limits).state == WAITING
    assert readiness(table, "3", limits).state == BLOCKED
    assert readiness(pl.DataFrame(), "4", limits).state == WAITING


def ab_rows(rng: np.random.Generator, n: int, caught_a: float, caught_b: float) -> pl.DataFrame:
    """`n` answers per arm, 10% fraud; each arm flags its frauds at its own rate and
    declines 1% of legit customers."""
    records, labels = [], []
    for arm, version, caught in ((CHAMPION_ARM, "1", caught_a), (CANARY_ARM, "2", caught_b)):
        for i in range(n):
            fraud = i % 10 == 0
            flagged = rng.random() < (caught if fraud else 0.01)
            tid = f"{arm}{i}"
            records.append(record(i, transaction_id=tid, arm=arm, model_version=version,
                                  score=0.8 if flagged else 0.1,
                                  decision="decline" if flagged else "approve"))  # fmt: skip
            labels.append({"transaction_id": tid, "is_fraud": int(fraud)})
    log = pl.DataFrame(records).with_columns(reason=pl.lit(None, pl.String))
    return day_rows(log, pl.DataFrame(labels), DAY)


def test_ab_rows_keep_the_last_model_answer_with_its_arm_and_label():
    rows = ab_rows(np.random.default_rng(0), 50, 0.8, 0.8)
    assert rows.height == 100 and set(rows["arm"]) == {CHAMPION_ARM, CANARY_ARM}
    counts = arm_counts(rows.filter(pl.col("arm") == CANARY_ARM))
    assert (counts.answers, counts.labelled, counts.frauds) == (50, 50, 5)


def test_a_canary_that_catches_less_fraud_is_worse_only_at_the_planned_sample(tmp_path):
    plan = plan_for(tmp_path / "plan.json", "2", arm_counts(pl.DataFrame(
        schema={"is_fraud": pl.Int8, "decision": pl.String})), AbPlan(mde=0.25))  # fmt: skip
    frauds_needed = plan.n_per_arm
    early = pooled(ab_rows(np.random.default_rng(1), 10 * frauds_needed // 2, 0.8, 0.3), "2", plan)
    assert early.verdict == WAITING and "fixed horizon" in early.summary
    late = pooled(ab_rows(np.random.default_rng(1), 10 * frauds_needed * 2, 0.8, 0.3), "2", plan)
    assert late.verdict == WORSE and "fraud_caught" in late.summary
    assert late.tests["fraud_caught"].high < 0
    # The plan, once stated, is what later days read.
    assert plan_for(tmp_path / "plan.json", "2", late.champion, AbPlan(mde=0.05)) == plan


def test_an_equal_canary_is_promoted_at_the_planned_sample(tmp_path):
    plan = plan_for(tmp_path / "plan.json", "2", arm_counts(pl.DataFrame(
        schema={"is_fraud": pl.Int8, "decision": pl.String})), AbPlan(mde=0.25))  # fmt: skip
    result = pooled(ab_rows(np.random.default_rng(2), 10 * plan.n_per_arm * 2, 0.8, 0.8), "2", plan)
    assert result.verdict == PROMOTE, result.summary
    assert result.auc is not None and result.auc.low < 0 < result.auc.high


# The assets through dg.materialize on a real instance: a day without shadow or canary
# traffic (the demo's days) passes quietly; a shadow day past the flip limit records its
# figures, says the version is blocked, and fails its blocking check.


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(home=tmp_path / "data", partitions_start=date(2026, 3, 1))


def run(settings: Settings, key: dg.AssetKey, instance) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        build_assets(settings),
        selection=[key],
        partition_key=DAY.isoformat(),
        resources=build_resources(settings),
        instance=instance,
        raise_on_error=False,
    )


def metadata(result: dg.ExecuteInProcessResult, key: dg.AssetKey) -> dict[str, object]:
    (event,) = result.asset_materializations_for_node(key.path[-1])
    return {k: v.value for k, v in event.metadata.items()}


def test_a_day_without_shadow_or_canary_traffic_passes(settings):
    answers = [record(i, score=0.1, decision="approve") for i in range(20)]
    write_log_file(prediction_log_root(settings.home), DAY.isoformat(), answers)
    with dg.instance_for_test() as instance:
        for key, check in ((SHADOW_COMPARISON, CHECK_SHADOW), (AB_ANALYSIS, CHECK_AB)):
            result = run(settings, key, instance)
            assert result.success
            (evaluation,) = result.get_asset_check_evaluations()
            assert evaluation.check_name == check and evaluation.passed
        assert (
            metadata(run(settings, SHADOW_COMPARISON, instance), SHADOW_COMPARISON)["compared"] == 0
        )


def test_a_shadow_day_past_the_flip_limit_fails_its_blocking_check(settings):
    answers = [
        record(i, score=0.1, decision="approve", shadow_score=0.9 if i < 10 else 0.1,
               shadow_version="2", shadow_latency_ms=1.0)
        for i in range(100)
    ]  # fmt: skip
    write_log_file(prediction_log_root(settings.home), DAY.isoformat(), answers)
    with dg.instance_for_test() as instance:
        result = run(settings, SHADOW_COMPARISON, instance)
        assert not result.success  # a failed blocking check fails the run
        (evaluation,) = result.get_asset_check_evaluations()
        assert not evaluation.passed
        assert evaluation.metadata["flip_rate"].value == pytest.approx(0.10)
        figures = metadata(result, SHADOW_COMPARISON)
        assert (figures["shadow_version"], figures["readiness"]) == ("2", BLOCKED)
        assert figures["flips"] == {"approve->decline": 10}
