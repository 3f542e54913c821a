"""Served performance on a small hand-made day: eleven transactions answered by the endpoint
(one of them twice), their late labels and their batch re-scores. Every expected number is
counted by hand from the table below (AUCs also by sklearn), then the asset is materialized
on a real temporary instance against the same files."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from ml_assets.definitions import build_assets, build_resources
from ml_assets.monitoring.assets import CHECK_SERVED, SERVED_PERFORMANCE
from ml_assets.monitoring.served import (
    NO_LABELS,
    ServingSkew,
    SkewLimits,
    daily_row,
    daily_served_performance,
    last_answers,
    plot_served,
    served_rows,
    serving_skew,
    skew_verdict,
)
from ml_assets.serving.prediction_log import prediction_log_root, write_log_file
from ml_assets.settings import Settings
from ml_assets.warehouse import write_partition

DAY = date(2026, 3, 10)
NOON = datetime(2026, 3, 10, 12, tzinfo=UTC)
# transaction, amount, served score, decision, path, reason, label, batch score, batch decision
DAY_TABLE = [
    ("t1", 100.0, 0.90, "decline", "model", None, 1, 0.90, "decline"),
    ("t2", 50.0, 0.50, "review", "review", None, 1, 0.50, "review"),
    ("t3", 200.0, 0.10, "approve", "model", None, 1, 0.105, "approve"),  # off by 0.005
    ("t4", 10.0, 0.80, "decline", "model", None, 0, 0.80, "decline"),
    ("t5", 20.0, 0.40, "review", "review", None, 0, 0.40, "review"),
    ("t6", 30.0, 0.05, "approve", "model", None, 0, 0.05, "approve"),
    ("t7", 40.0, 0.20, "approve", "fallback", "timeout", 0, 0.30, "review"),
    ("t8", 60.0, 0.35, "review", "cache", None, None, 0.29, "approve"),  # off by 0.06
    ("t9", 70.0, 0.20, "approve", "fallback", "breaker_open", 1, 0.95, "decline"),
    ("t10", 15.0, 0.45, "review", "review", None, 0, 0.45, "review"),
    ("t11", 5.0, 0.01, "approve", "model", None, None, None, None),  # batch never saw it
]
# t1 was first answered by a timeout fallback, then retried; the retry is the answer judged.
FIRST_T1 = ("t1", 100.0, 0.20, "approve", "fallback", "timeout")


def _record(i: int, row: tuple, received_at: datetime) -> dict[str, object]:
    tid, amount, score, decision, path, reason = row[:6]
    return {
        "request_id": f"r{i}", "received_at": received_at, "event_time": NOON,
        "transaction_id": tid, "customer_id": f"c{i}", "merchant_id": "m1", "amount": amount,
        "score": score, "decision": decision, "path": path, "reason": reason,
        "model_name": "fraud_student", "model_version": "3", "latency_ms": 2.0,
    }  # fmt: skip


def log_records() -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """The day's answers, and the earlier answer to t1 (kept apart: a later flush)."""
    answers = [_record(i, r, NOON + timedelta(seconds=i)) for i, r in enumerate(DAY_TABLE)]
    return answers, [_record(99, FIRST_T1, NOON - timedelta(seconds=1))]


def prediction_log() -> pl.DataFrame:
    answers, first = log_records()
    # The retry's earlier answer comes last in file order: only received_at may decide.
    return pl.DataFrame(answers + first)


def labels() -> pl.DataFrame:
    rows = [(r[0], r[6]) for r in DAY_TABLE if r[6] is not None] + [("other-day", 1)]
    return pl.DataFrame(
        rows, schema={"transaction_id": pl.String, "is_fraud": pl.Int8}, orient="row"
    )


def batch_scores() -> pl.DataFrame:
    rows = [(r[0], NOON, r[7], r[8]) for r in DAY_TABLE if r[7] is not None]
    schema = {"transaction_id": pl.String, "received_at": pl.Datetime("us", "UTC"),
              "score": pl.Float64, "decision": pl.String}  # fmt: skip
    return pl.DataFrame(rows, schema=schema, orient="row")


@pytest.fixture(scope="module")
def rows() -> pl.DataFrame:
    return served_rows(prediction_log(), labels(), batch_scores())


def test_the_last_answer_per_transaction_is_judged() -> None:
    answers = last_answers(prediction_log())
    assert answers.height == 11 and answers["transaction_id"].n_unique() == 11
    t1 = answers.filter(pl.col("transaction_id") == "t1").row(0, named=True)
    assert (t1["score"], t1["decision"], t1["reason"]) == (0.9, "decline", None)


def test_rows_carry_label_and_batch_score(rows: pl.DataFrame) -> None:
    assert rows.height == 11  # the label of another day's transaction is not a row
    assert rows["is_fraud"].null_count() == 2  # t8 and t11 have no label yet
    assert rows.filter(pl.col("batch_score").is_null())["transaction_id"].to_list() == ["t11"]


def test_served_metrics_at_the_actual_decisions(rows: pl.DataFrame) -> None:
    p = daily_served_performance(rows, DAY)
    labelled = [r for r in DAY_TABLE if r[6] is not None]
    y = [r[6] for r in labelled]
    assert (p.answers, p.labelled_rows, p.positives) == (11, 9, 4)
    # Served fraud scores 0.9, 0.5, 0.1, 0.2 against legit 0.8, 0.4, 0.05, 0.2, 0.45:
    # 5 + 4 + 1 + 1.5 (a tie) of 20 pairs.
    assert p.roc_auc == pytest.approx(11.5 / 20)
    assert p.roc_auc == pytest.approx(roc_auc_score(y, [r[2] for r in labelled]))
    assert p.pr_auc == pytest.approx(average_precision_score(y, [r[2] for r in labelled]))
    assert p.decline_precision == pytest.approx(1 / 2)  # t1 fraud, t4 legit
    assert p.decline_recall == pytest.approx(1 / 4)  # of t1, t2, t3, t9
    assert p.flagged_precision == pytest.approx(2 / 5)  # t1, t2 of t1, t2, t4, t5, t10
    assert p.flagged_recall == pytest.approx(2 / 4)
    assert p.false_decline_rate == pytest.approx(1 / 5)  # t4 of t4, t5, t6, t7, t10
    assert p.review_load == pytest.approx(4 / 11)  # t2, t5, t8, t10 of every answer
    assert p.fraud_amount_caught == pytest.approx((100 + 50) / (100 + 50 + 200 + 70))
    assert p.fallback_share == pytest.approx(2 / 11)  # t1's first, timed-out answer is gone
    assert p.fallback_by_reason == pytest.approx({"timeout": 1 / 11, "breaker_open": 1 / 11})
    # The batch re-scores of the same nine labelled transactions: 5 + 4 + 1 + 5 of 20.
    assert p.batch_rows == 9
    assert p.batch_roc_auc == pytest.approx(15 / 20)
    assert p.batch_roc_auc == pytest.approx(roc_auc_score(y, [r[7] for r in labelled]))
    assert p.batch_fraud_amount_caught == pytest.approx((100 + 50 + 70) / 420)


def test_skew_over_the_model_answers(rows: pl.DataFrame) -> None:
    skew = serving_skew(rows)
    # Model answers with a batch score: t1-t6, t8, t10 (t7, t9 fell back; t11 unmatched).
    assert (skew.compared, skew.unmatched) == (8, 1)
    assert skew.differ_share == pytest.approx(2 / 8)  # t3 and t8
    assert skew.skewed_share == pytest.approx(1 / 8)  # t8
    assert skew.decision_mismatch_share == pytest.approx(1 / 8)  # t8: review vs approve
    assert skew.max_abs_diff == pytest.approx(0.06)
    # Labelled compared rows t1-t6, t10 rank the same either way: 8 of 12 pairs.
    assert skew.labelled_rows == 7
    assert skew.served_roc_auc == pytest.approx(8 / 12)
    assert skew.batch_roc_auc == pytest.approx(8 / 12)
    assert skew.auc_gap == pytest.approx(0.0)
    passed, summary = skew_verdict(skew)
    assert not passed and "12.50% of 8 model answers" in summary


def test_identical_scores_pass() -> None:
    same = batch_scores().join(
        last_answers(prediction_log()).select("transaction_id", "score", "decision"),
        on="transaction_id",
        suffix="_served",
    )
    same = same.select("transaction_id", pl.col("score_served").alias("score"),
                       pl.col("decision_served").alias("decision"))  # fmt: skip
    skew = serving_skew(served_rows(prediction_log(), labels(), same))
    assert skew.differ_share == 0.0 and skew.auc_gap == 0.0
    assert skew_verdict(skew)[0]


@pytest.mark.parametrize(
    ("skewed_share", "served_auc", "passed"),
    [
        (0.01, 0.900, True),  # exactly 1% is not more than 1%
        (0.011, 0.900, False),
        (0.0, 0.904, True),
        (0.0, 0.906, False),  # AUC gap 0.006
        (0.0, None, True),  # no labels yet: judged on the scores alone
    ],
)
def test_verdict_thresholds(skewed_share: float, served_auc: float | None, passed: bool) -> None:
    skew = ServingSkew(
        compared=1000, unmatched=0, differ_share=skewed_share, skewed_share=skewed_share,
        decision_mismatch_share=0.0, max_abs_diff=0.5, labelled_rows=1000,
        served_roc_auc=served_auc, batch_roc_auc=0.9,
    )  # fmt: skip
    assert skew_verdict(skew, SkewLimits())[0] is passed


def test_before_labels_arrive_only_unlabelled_numbers(rows: pl.DataFrame) -> None:
    unlabelled = served_rows(prediction_log(), NO_LABELS, batch_scores())
    p = daily_served_performance(unlabelled, DAY)
    assert p.labelled_rows == 0 and p.roc_auc is None and p.decline_precision is None
    assert p.fraud_amount_caught is None and p.batch_roc_auc is None
    assert p.review_load == pytest.approx(4 / 11) and p.fallback_share == pytest.approx(2 / 11)
    skew = serving_skew(unlabelled)
    assert skew.skewed_share == pytest.approx(1 / 8) and skew.auc_gap is None


def test_errors_name_what_is_missing() -> None:
    with pytest.raises(ValueError, match="reason"):
        last_answers(prediction_log().drop("reason"))
    with pytest.raises(ValueError, match="transaction_labels"):
        served_rows(prediction_log(), pl.DataFrame({"transaction_id": ["t1"]}), batch_scores())
    with pytest.raises(ValueError, match="endpoint serving"):
        daily_served_performance(served_rows(prediction_log().head(0), labels(),
                                             batch_scores()), DAY)  # fmt: skip


def test_picture_over_days_with_a_day_without_labels(rows: pl.DataFrame, tmp_path: Path) -> None:
    labelled = daily_row(daily_served_performance(rows, DAY), serving_skew(rows))
    unlabelled_rows = served_rows(prediction_log(), NO_LABELS, batch_scores())
    later = DAY + timedelta(days=1)
    unlabelled = daily_row(
        daily_served_performance(unlabelled_rows, later), serving_skew(unlabelled_rows)
    )
    table = pl.DataFrame([unlabelled, labelled]).sort("day")
    png = plot_served(table, tmp_path / "served.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert table["batch_roc_auc"].to_list() == [pytest.approx(0.75), None]


# -- the asset, materialized ------------------------------------------------------------------
def _metadata(result: dg.ExecuteInProcessResult) -> dict[str, object]:
    [materialization] = result.asset_materializations_for_node(SERVED_PERFORMANCE.path[-1])
    return {k: v.value for k, v in materialization.metadata.items()}


def test_asset_reports_served_day_and_empty_day(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "data", partitions_start=date(2026, 3, 1))
    answers, first = log_records()
    root = prediction_log_root(settings.home)
    write_log_file(root, DAY.isoformat(), answers)
    write_log_file(root, DAY.isoformat(), first)  # the older answer in the newer file
    write_partition(settings.warehouse_dir, "scored_transactions", DAY, batch_scores())
    # Labels land over two days; the third label day has not come yet.
    day_labels = labels()
    for offset, part in ((1, day_labels.head(4)), (2, day_labels.tail(-4))):
        write_partition(
            settings.warehouse_dir, "transaction_labels", DAY + timedelta(days=offset), part
        )
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:

        def run(day: date) -> dg.ExecuteInProcessResult:
            result = dg.materialize(
                build_assets(settings),
                selection=[SERVED_PERFORMANCE],
                partition_key=day.isoformat(),
                resources=build_resources(settings),
                instance=instance,
            )
            assert result.success
            return result

        served = run(DAY)
        metadata = _metadata(served)
        assert (metadata["requests"], metadata["answers"], metadata["labelled_rows"]) == (12, 11, 9)
        assert metadata["label_days_present"] == ["2026-03-11", "2026-03-12"]
        assert metadata["roc_auc"] == pytest.approx(11.5 / 20)
        assert metadata["batch_roc_auc"] == pytest.approx(15 / 20)
        assert metadata["false_decline_rate"] == pytest.approx(1 / 5)
        assert metadata["fraud_amount_caught"] == pytest.approx(150 / 420)
        assert metadata["fallback_by_reason"] == pytest.approx(
            {"timeout": 1 / 11, "breaker_open": 1 / 11}
        )
        assert metadata["skew_skewed_share"] == pytest.approx(1 / 8)
        picture = settings.reports_dir / "served_performance" / "served_performance.png"
        assert metadata["over_time"] == str(picture) and picture.read_bytes()[:4] == b"\x89PNG"
        [check] = served.get_asset_check_evaluations()
        assert check.check_name == CHECK_SERVED and not check.passed
        assert check.severity == dg.AssetCheckSeverity.WARN

        quiet = run(DAY + timedelta(days=1))
        assert _metadata(quiet)["requests"] == 0
        [check] = quiet.get_asset_check_evaluations()
        assert check.passed

    table = pl.read_parquet(settings.reports_dir / "served_performance" / "daily.parquet")
    assert table["day"].to_list() == [DAY]  # a day without traffic adds no row
