"""Did the endpoint's own decisions stop fraud, and did it serve what batch scoring gives?

`model_performance` judges the champion's batch re-scores; this module judges the answers the
endpoint actually gave (the prediction log), once their labels have arrived: ranking quality
of the served score, precision and recall of what it declined or sent to review, the legit
customers it declined, the review load, the fraud amount it caught and how often it answered
without the model. Beside each served number stands the batch re-score of the same
transactions, and the skew between the two says whether "what is served is what was
evaluated" held that day.

A transaction answered more than once (a retry, a replay) is judged by its last answer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from ml_assets.monitoring.plots import plot_series
from ml_assets.training.evaluation import pr_auc, roc_auc

LABEL = "is_fraud"
BATCH_SCORE, BATCH_DECISION = "batch_score", "batch_decision"
DECLINE, REVIEW = "decline", "review"  # the decisions of ml_assets.serving.decisions
EXACT_TOLERANCE = 1e-6  # below this a served and a batch score are the same number
LOG_COLUMNS = ("transaction_id", "received_at", "amount", "score", "decision", "path", "reason")
NO_LABELS = pl.DataFrame(schema={"transaction_id": pl.String(), LABEL: pl.Int8()})


@dataclass(frozen=True)
class SkewLimits:
    """How far the endpoint's model answers may stray from the batch re-scores of the same
    transactions before `served_matches_batch` warns: an AUC gap above `max_auc_gap`, or more
    than `max_skewed_share` of the compared answers off by more than `score_tolerance`.
    Fixed here rather than in Settings: they describe the serving contract (same features,
    same model, same number), not a deployment's taste."""

    max_auc_gap: float = 0.005
    score_tolerance: float = 0.01
    max_skewed_share: float = 0.01


SKEW_LIMITS = SkewLimits()


@dataclass(frozen=True)
class ServedPerformance:
    """One day of the endpoint's answers judged against their labels. Label-based numbers
    are None until labels arrive (or when the day has no fraud, or no legit row)."""

    day: date
    answers: int  # transactions answered (the last answer of each)
    labelled_rows: int
    positives: int
    roc_auc: float | None
    pr_auc: float | None
    decline_precision: float | None
    decline_recall: float | None
    flagged_precision: float | None  # flagged: declined or sent to review
    flagged_recall: float | None
    false_decline_rate: float | None  # declined legit / legit
    review_load: float  # share of answers sent to review
    fraud_amount_caught: float | None  # declined or reviewed fraud amount / fraud amount
    fallback_share: float  # share of answers the model did not give (a reason is logged)
    fallback_by_reason: dict[str, float]
    # The batch re-scores of the same labelled transactions, at the batch decisions.
    batch_rows: int
    batch_roc_auc: float | None
    batch_fraud_amount_caught: float | None


@dataclass(frozen=True)
class ServingSkew:
    """Served score against batch re-score, over the answers the model gave (fallbacks are
    left out: their rule scores differ from the model's by design, and the fallback share
    is watched on its own)."""

    compared: int  # model answers with a batch re-score
    unmatched: int  # answers with no batch re-score (e.g. a transaction later quarantined)
    differ_share: float  # |served - batch| > EXACT_TOLERANCE
    skewed_share: float  # |served - batch| > SkewLimits.score_tolerance
    decision_mismatch_share: float
    max_abs_diff: float | None
    labelled_rows: int
    served_roc_auc: float | None  # on the labelled compared answers
    batch_roc_auc: float | None  # on the same rows

    @property
    def auc_gap(self) -> float | None:
        if self.served_roc_auc is None or self.batch_roc_auc is None:
            return None
        return abs(self.served_roc_auc - self.batch_roc_auc)


def last_answers(log: pl.DataFrame) -> pl.DataFrame:
    """The endpoint's last answer per transaction (by `received_at`): a retried or replayed
    transaction is judged by what the endpoint said in the end."""
    missing = sorted(set(LOG_COLUMNS) - set(log.columns))
    if missing:
        raise ValueError(
            f"the prediction log lacks {missing}; read it with read_prediction_log "
            "(see PREDICTION_LOG_SCHEMA)"
        )
    return (
        log.sort("received_at", maintain_order=True)
        .unique("transaction_id", keep="last", maintain_order=True)
        .select(LOG_COLUMNS)
    )


def served_rows(log: pl.DataFrame, labels: pl.DataFrame, batch: pl.DataFrame) -> pl.DataFrame:
    """Each transaction's last served answer with its label (null until it arrives) and its
    batch re-score and decision (null when batch scoring never saw it)."""
    if not {"transaction_id", LABEL} <= set(labels.columns):
        raise ValueError(f"labels need 'transaction_id' and '{LABEL}'; pass transaction_labels")
    if not {"transaction_id", "score", "decision"} <= set(batch.columns):
        raise ValueError(
            "batch scores need 'transaction_id', 'score' and 'decision'; pass scored_transactions"
        )
    return (
        last_answers(log)
        .join(
            labels.select("transaction_id", LABEL).unique("transaction_id", keep="last"),
            on="transaction_id",
            how="left",
        )
        .join(
            batch.select(
                "transaction_id",
                pl.col("score").alias(BATCH_SCORE),
                pl.col("decision").alias(BATCH_DECISION),
            ).unique("transaction_id", keep="last"),
            on="transaction_id",
            how="left",
        )
    )


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _ranking(y: np.ndarray, p: np.ndarray) -> tuple[float | None, float | None]:
    return (roc_auc(y, p), pr_auc(y, p)) if len(y) else (None, None)


def _amount_caught(fraud: np.ndarray, flagged: np.ndarray, amount: np.ndarray) -> float | None:
    total = float(amount[fraud].sum())
    return float(amount[fraud & flagged].sum()) / total if total else None


def daily_served_performance(rows: pl.DataFrame, day: date) -> ServedPerformance:
    """The day's served answers (from `served_rows`) judged at the endpoint's own decisions."""
    if rows.height == 0:
        raise ValueError(f"no served answers for {day}; was the endpoint serving that day?")
    reasons = rows["reason"].drop_nulls().value_counts(sort=True)
    labelled = rows.filter(pl.col(LABEL).is_not_null() & pl.col("score").is_not_null())
    fraud = labelled[LABEL].cast(pl.Boolean).to_numpy()
    decision = labelled["decision"].to_numpy()
    declined = decision == DECLINE
    flagged = declined | (decision == REVIEW)
    amount = labelled["amount"].cast(pl.Float64).to_numpy()
    roc, pr = _ranking(fraud.astype(float), labelled["score"].to_numpy())
    batch = labelled.filter(pl.col(BATCH_SCORE).is_not_null())
    batch_fraud = batch[LABEL].cast(pl.Boolean).to_numpy()
    batch_decision = batch[BATCH_DECISION].to_numpy()
    return ServedPerformance(
        day=day,
        answers=rows.height,
        labelled_rows=labelled.height,
        positives=int(fraud.sum()),
        roc_auc=roc,
        pr_auc=pr,
        decline_precision=_share(int((declined & fraud).sum()), int(declined.sum())),
        decline_recall=_share(int((declined & fraud).sum()), int(fraud.sum())),
        flagged_precision=_share(int((flagged & fraud).sum()), int(flagged.sum())),
        flagged_recall=_share(int((flagged & fraud).sum()), int(fraud.sum())),
        false_decline_rate=_share(int((declined & ~fraud).sum()), int((~fraud).sum())),
        review_load=float((rows["decision"] == REVIEW).sum()) / rows.height,
        fraud_amount_caught=_amount_caught(fraud, flagged, amount),
        fallback_share=float(rows["reason"].is_not_null().sum()) / rows.height,
        fallback_by_reason={str(r): n / rows.height for r, n in reasons.iter_rows()},
        batch_rows=batch.height,
        batch_roc_auc=_ranking(batch_fraud.astype(float), batch[BATCH_SCORE].to_numpy())[0],
        batch_fraud_amount_caught=_amount_caught(
            batch_fraud,
            (batch_decision == DECLINE) | (batch_decision == REVIEW),
            batch["amount"].cast(pl.Float64).to_numpy(),
        ),
    )


def serving_skew(rows: pl.DataFrame, limits: SkewLimits = SKEW_LIMITS) -> ServingSkew:
    """How far the model's served scores are from the batch re-scores of the same
    transactions (rows from `served_rows`)."""
    model = rows.filter(pl.col("reason").is_null() & pl.col("score").is_not_null())
    compared = model.filter(pl.col(BATCH_SCORE).is_not_null())
    diff = (compared["score"] - compared[BATCH_SCORE]).abs().to_numpy()
    labelled = compared.filter(pl.col(LABEL).is_not_null())
    y = labelled[LABEL].cast(pl.Float64).to_numpy()
    mismatched = int((compared["decision"] != compared[BATCH_DECISION]).sum())
    n = compared.height
    return ServingSkew(
        compared=n,
        unmatched=rows.filter(pl.col(BATCH_SCORE).is_null()).height,
        differ_share=_share(int((diff > EXACT_TOLERANCE).sum()), n) or 0.0,
        skewed_share=_share(int((diff > limits.score_tolerance).sum()), n) or 0.0,
        decision_mismatch_share=_share(mismatched, n) or 0.0,
        max_abs_diff=float(diff.max()) if n else None,
        labelled_rows=labelled.height,
        served_roc_auc=_ranking(y, labelled["score"].to_numpy())[0],
        batch_roc_auc=_ranking(y, labelled[BATCH_SCORE].to_numpy())[0],
    )


def skew_verdict(skew: ServingSkew, limits: SkewLimits = SKEW_LIMITS) -> tuple[bool, str]:
    """Whether served and batch agree within `limits`, and a sentence that says why not."""
    if skew.compared == 0:
        return True, "no model answer had a batch re-score to compare with"
    gap = skew.auc_gap
    problems = []
    if skew.skewed_share > limits.max_skewed_share:
        problems.append(
            f"{skew.skewed_share:.2%} of {skew.compared} model answers differ from the batch "
            f"re-score by more than {limits.score_tolerance} (limit {limits.max_skewed_share:.0%})"
        )
    if gap is not None and gap > limits.max_auc_gap:
        problems.append(
            f"served AUC {skew.served_roc_auc:.4f} vs batch {skew.batch_roc_auc:.4f} on the same "
            f"{skew.labelled_rows} labelled rows (gap above {limits.max_auc_gap})"
        )
    if problems:
        return False, "served and batch diverge: " + "; ".join(problems)
    auc = f"AUC gap {gap:.4f}" if gap is not None else "AUC gap not measurable yet"
    return True, (
        f"{skew.skewed_share:.2%} of {skew.compared} model answers off by more than "
        f"{limits.score_tolerance}; {auc}"
    )


def daily_row(performance: ServedPerformance, skew: ServingSkew) -> dict[str, object]:
    """One row of the daily table: every number of both, skew columns prefixed `skew_`."""
    row = {k: v for k, v in asdict(performance).items() if k != "fallback_by_reason"}
    row.update({f"skew_{k}": v for k, v in asdict(skew).items()})
    row["skew_auc_gap"] = skew.auc_gap
    return row


def _number(value: float | None) -> float:
    return float("nan") if value is None else value


def served_metadata(performance: ServedPerformance, skew: ServingSkew) -> dict[str, object]:
    """The day's numbers as asset metadata: flat numbers (NaN when undefined) the UI can
    plot across materializations, and the fallback shares by reason."""
    p = performance
    return {
        "answers": p.answers,
        "labelled_rows": p.labelled_rows,
        "fraud_labels": p.positives,
        "roc_auc": _number(p.roc_auc),
        "pr_auc": _number(p.pr_auc),
        "decline_precision": _number(p.decline_precision),
        "decline_recall": _number(p.decline_recall),
        "flagged_precision": _number(p.flagged_precision),
        "flagged_recall": _number(p.flagged_recall),
        "false_decline_rate": _number(p.false_decline_rate),
        "review_load": p.review_load,
        "fraud_amount_caught": _number(p.fraud_amount_caught),
        "fallback_share": p.fallback_share,
        "fallback_by_reason": p.fallback_by_reason,
        "batch_roc_auc": _number(p.batch_roc_auc),
        "batch_fraud_amount_caught": _number(p.batch_fraud_amount_caught),
        "skew_compared_rows": skew.compared,
        "skew_unmatched_rows": skew.unmatched,
        "skew_differ_share": skew.differ_share,
        "skew_skewed_share": skew.skewed_share,
        "skew_decision_mismatch_share": skew.decision_mismatch_share,
        "skew_max_abs_diff": _number(skew.max_abs_diff),
        "skew_served_roc_auc": _number(skew.served_roc_auc),
        "skew_batch_roc_auc": _number(skew.batch_roc_auc),
    }


def plot_served(table: pl.DataFrame, path: Path) -> Path:
    """The served line beside the batch re-score line per day, and the skew (PNG)."""
    panels = {
        "ROC-AUC: served vs batch re-score": ["roc_auc", "batch_roc_auc"],
        "fraud amount caught at the decisions: served vs batch": [
            "fraud_amount_caught",
            "batch_fraud_amount_caught",
        ],
        "served decisions": [
            "flagged_precision",
            "flagged_recall",
            "false_decline_rate",
            "review_load",
        ],
        "skew and fallbacks (share of answers)": ["skew_skewed_share", "fallback_share"],
    }
    columns = [c for cs in panels.values() for c in cs]
    # A day without labels has null metrics: a gap in the line, not a failed plot.
    filled = table.sort("day").with_columns(
        pl.col(c).cast(pl.Float64).fill_null(float("nan")) for c in columns
    )
    return plot_series(filled, panels, path, "Served decisions per day, beside the batch re-score")
