"""Champion against canary on live traffic, once the labels have landed: is the canary worse?

The canary answers a stable share of customers (`rollout_stages.in_canary`), the champion
the rest, over the same days, so the two arms are comparable as an experiment. Each day's
labelled answers are kept per arm (`day_rows`); the analysis of a canary version pools every
day it answered (`pooled`) and compares the arms on fraud caught (frauds declined or sent to
review), false-decline rate (legit declined), review load, and AUC with a bootstrap
interval. The statistics are `ml_assets.training.ab_testing`'s, under its fixed-horizon
rule: the sample size is planned on the first canary day from the champion's fraud-caught
rate and kept; the verdict acts only once both arms reached it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import polars as pl

from ml_assets.atomic_files import replace_atomically, write_parquet_atomically
from ml_assets.monitoring.plots import plot_series
from ml_assets.training.ab_testing import (
    ProportionTest,
    SamplePlan,
    auc_difference_ci,
    plan_sample_size,
    two_proportion_test,
)
from ml_assets.training.registry_reader import STUDENT_MODEL_NAME
from ml_assets.training.rollout_evidence import AB_FOLDER, PROMOTE, WAITING, WORSE
from ml_assets.training.rollout_stages import CANARY_ARM, CHAMPION_ARM

LABEL = "is_fraud"
DECLINE, REVIEW = "decline", "review"
ROW_SCHEMA = {
    "day": pl.Date(), "transaction_id": pl.String(), "arm": pl.String(),
    "model_version": pl.String(), "score": pl.Float64(), "decision": pl.String(),
    "amount": pl.Float64(), LABEL: pl.Int8(),
}  # fmt: skip
# Which way is good for each compared rate (fraud caught: up; the two costs: down).
METRICS = {"fraud_caught": True, "false_decline_rate": False, "review_load": False}
AMOUNT_BANDS = (100.0, 1_000.0)  # the slices: small, medium, large tickets


@dataclass(frozen=True)
class AbPlan:
    """The A/B knobs, fixed before the test (Settings: ab_mde, ab_alpha, ab_power)."""

    mde: float = 0.1
    alpha: float = 0.05
    power: float = 0.8


def day_rows(log: pl.DataFrame, labels: pl.DataFrame, day: date) -> pl.DataFrame:
    """Each transaction's last model answer of the day, with its arm and label (null until
    it lands). Fallback answers are left out: neither model gave them."""
    last = (
        log.filter(pl.col("reason").is_null() & pl.col("score").is_not_null())
        .sort("received_at", maintain_order=True)
        .unique("transaction_id", keep="last", maintain_order=True)
        .with_columns(pl.col("arm").fill_null(CHAMPION_ARM), pl.lit(day).alias("day"))
    )
    joined = last.join(
        labels.select("transaction_id", pl.col(LABEL).cast(pl.Int8)).unique(
            "transaction_id", keep="last"
        ),
        on="transaction_id",
        how="left",
    )
    return joined.select(list(ROW_SCHEMA)).cast(ROW_SCHEMA)  # type: ignore[arg-type]


def canary_version(rows: pl.DataFrame) -> str | None:
    """The version that answered most canary requests in `rows`."""
    versions = rows.filter(pl.col("arm") == CANARY_ARM)["model_version"].drop_nulls()
    return str(versions.mode().sort()[0]) if versions.len() else None


@dataclass(frozen=True)
class ArmCounts:
    answers: int
    labelled: int
    frauds: int
    caught: int  # frauds declined or sent to review
    legit: int
    false_declines: int
    reviews: int

    def successes(self, metric: str) -> tuple[int, int]:
        return {
            "fraud_caught": (self.caught, self.frauds),
            "false_decline_rate": (self.false_declines, self.legit),
            "review_load": (self.reviews, self.answers),
        }[metric]


def arm_counts(rows: pl.DataFrame) -> ArmCounts:
    labelled = rows.filter(pl.col(LABEL).is_not_null())
    fraud = labelled[LABEL] == 1
    decision = labelled["decision"]
    flagged = decision.is_in([DECLINE, REVIEW])
    return ArmCounts(
        answers=rows.height,
        labelled=labelled.height,
        frauds=int(fraud.sum()),
        caught=int((fraud & flagged).sum()),
        legit=int((~fraud).sum()),
        false_declines=int((~fraud & (decision == DECLINE)).sum()),
        reviews=int((rows["decision"] == REVIEW).sum()),
    )


@dataclass(frozen=True)
class AbResult:
    """The pooled comparison of one canary version against the champion arm."""

    version: str
    days: tuple[str, ...]
    champion: ArmCounts
    canary: ArmCounts
    plan: SamplePlan
    tests: dict[str, ProportionTest]
    auc: object | None  # ab_testing.IntervalEstimate, None without both classes in each arm
    slices: dict[str, dict[str, float | None]]
    verdict: str  # PROMOTE | WORSE | WAITING
    summary: str

    @property
    def reached(self) -> bool:
        return self.plan.reached(self.champion.frauds, self.canary.frauds)


def _rate(k: int, n: int) -> float | None:
    return k / n if n else None


def slice_rates(rows: pl.DataFrame) -> dict[str, dict[str, float | None]]:
    """Fraud caught and false-decline rate per arm and ticket size (the same slices for both)."""
    low, high = AMOUNT_BANDS
    band = (
        pl.when(pl.col("amount") < low)
        .then(pl.lit(f"amount<{low:g}"))
        .when(pl.col("amount") < high)
        .then(pl.lit(f"{low:g}<=amount<{high:g}"))
        .otherwise(pl.lit(f"amount>={high:g}"))
    )
    out: dict[str, dict[str, float | None]] = {}
    for (name, arm), part in sorted(
        rows.with_columns(band.alias("slice")).group_by("slice", "arm"), key=lambda g: g[0]
    ):
        c = arm_counts(part)
        out[f"{name} {arm}"] = {
            "fraud_caught": _rate(c.caught, c.frauds),
            "false_decline_rate": _rate(c.false_declines, c.legit),
            "labelled": c.labelled,
        }
    return out


def plan_for(path: Path, version: str, champion: ArmCounts, knobs: AbPlan) -> SamplePlan:
    """The version's sample plan: read if it was stated already, else stated now from the
    champion arm's fraud-caught rate so far and written down (it never changes after)."""
    if path.exists():
        return SamplePlan(**json.loads(path.read_text()))
    baseline = _rate(champion.caught, champion.frauds)
    # Without a fraud yet, plan at 0.5: the rate where a difference is hardest to see.
    p = min(max(baseline if baseline is not None else 0.5, 0.01), 0.99)
    if p - knobs.mde <= 0 or p + knobs.mde >= 1:
        p = min(max(p, knobs.mde + 0.01), 0.99 - knobs.mde)
    plan = plan_sample_size(p, knobs.mde, knobs.alpha, knobs.power)
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_atomically(path, lambda t: Path(t).write_text(json.dumps(asdict(plan))))
    return plan


def pooled(rows: pl.DataFrame, version: str, plan: SamplePlan) -> AbResult:
    """Champion vs canary `version` over the days of `rows` on which that version answered."""
    days_with = rows.filter((pl.col("arm") == CANARY_ARM) & (pl.col("model_version") == version))
    days = sorted({str(d) for d in days_with["day"].to_list()})
    period = rows.filter(pl.col("day").cast(pl.String).is_in(days))
    canary_rows = period.filter(
        (pl.col("arm") == CANARY_ARM) & (pl.col("model_version") == version)
    )
    champion_rows = period.filter(pl.col("arm") == CHAMPION_ARM)
    a, b = arm_counts(champion_rows), arm_counts(canary_rows)
    tests = {}
    for metric, higher_is_better in METRICS.items():
        (ka, na), (kb, nb) = a.successes(metric), b.successes(metric)
        if na and nb:
            tests[metric] = two_proportion_test(
                ka, na, kb, nb, plan.alpha, higher_is_better=higher_is_better
            )
    auc = _auc_interval(champion_rows, canary_rows, 1 - plan.alpha)
    verdict, summary = _verdict(version, a, b, plan, tests, auc)
    return AbResult(
        version, tuple(days), a, b, plan, tests, auc, slice_rates(period), verdict, summary
    )


def _auc_interval(champion: pl.DataFrame, canary: pl.DataFrame, confidence: float):
    arms = [r.filter(pl.col(LABEL).is_not_null()) for r in (champion, canary)]
    if any(r[LABEL].n_unique() < 2 for r in arms):
        return None
    (ya, sa), (yb, sb) = ((r[LABEL].to_numpy(), r["score"].to_numpy()) for r in arms)
    return auc_difference_ci(ya, sa, yb, sb, confidence=confidence, n_resamples=500)


def _verdict(version, a, b, plan, tests, auc) -> tuple[str, str]:
    """Fixed horizon: act only once both arms have the planned frauds; then a significantly
    worse rate (or an AUC interval wholly below 0) rolls back, anything else promotes."""
    head = f"canary v{version}: {b.frauds} vs {a.frauds} labelled frauds (plan {plan.n_per_arm})"
    if not plan.reached(a.frauds, b.frauds):
        return WAITING, head + "; not deciding before the planned sample (fixed horizon)"
    worse = [m for m, t in tests.items() if t.direction == "worse"]
    if auc is not None and auc.high < 0:
        worse.append("auc")
    if worse:
        return WORSE, head + f"; significantly worse on {', '.join(worse)}"
    return PROMOTE, head + "; not worse on any metric at the planned sample"


def _rows_path(reports_dir: Path, day: date) -> Path:
    return Path(reports_dir) / AB_FOLDER / "rows" / f"{day.isoformat()}.parquet"


def _kept_rows(reports_dir: Path) -> pl.DataFrame:
    files = sorted((Path(reports_dir) / AB_FOLDER / "rows").glob("*.parquet"))
    return pl.concat([pl.read_parquet(f) for f in files]) if files else pl.DataFrame()


def analyse_day(reports_dir: Path, rows: pl.DataFrame, day: date, knobs: AbPlan) -> AbResult:
    """Keep the day's rows (`day_rows`) beside the reports, then compare the day's canary
    version with the champion over every kept day up to `day` (a late-label re-run of an
    older day redraws that day only). The plan is stated on the version's first canary day."""
    write_parquet_atomically(rows, _rows_path(reports_dir, day))
    version = canary_version(rows)
    if version is None:
        raise ValueError(f"no canary answer on {day}: nothing to compare")
    kept = _kept_rows(reports_dir).filter(pl.col("day") <= day)
    canary = (pl.col("arm") == CANARY_ARM) & (pl.col("model_version") == version)
    first = kept.filter(canary)["day"].min()
    baseline = arm_counts(kept.filter((pl.col("day") == first) & (pl.col("arm") == CHAMPION_ARM)))
    plan_path = Path(reports_dir) / AB_FOLDER / f"plan-{STUDENT_MODEL_NAME}-v{version}.json"
    return pooled(kept, version, plan_for(plan_path, version, baseline, knobs))


def daily_point(result: AbResult, day: date) -> dict[str, object]:
    """A row of the over-time table: the pooled differences so far, with their intervals."""
    row: dict[str, object] = {"day": day, "canary_version": result.version,
                              "verdict": result.verdict, "summary": result.summary}  # fmt: skip
    for metric, test in result.tests.items():
        row[f"{metric}_diff"] = test.difference
        row[f"{metric}_low"] = test.low
        row[f"{metric}_high"] = test.high
    if result.auc is not None:
        row.update(auc_diff=result.auc.difference, auc_low=result.auc.low,
                   auc_high=result.auc.high)  # fmt: skip
    return row


def plot_ab(table: pl.DataFrame, path: Path) -> Path:
    """Canary minus champion per day (pooled so far), each with its interval (PNG)."""
    panels = {
        f"{m.replace('_', ' ')}: canary - champion, with interval": [
            f"{m}_diff",
            f"{m}_low",
            f"{m}_high",
        ]
        for m in (*METRICS, "auc")
    }
    columns = [c for cs in panels.values() for c in cs]
    filled = table.sort("day").with_columns(
        [
            pl.col(c).cast(pl.Float64).fill_null(float("nan"))
            if c in table.columns
            else pl.lit(float("nan")).alias(c)
            for c in columns
        ]  # fmt: skip
    )
    return plot_series(filled, panels, path, "A/B: canary against champion over the canary days")


def ab_metadata(result: AbResult) -> dict[str, object]:
    """Flat figures for the asset's metadata (NaN where undefined)."""
    meta: dict[str, object] = {
        "canary_version": result.version,
        "verdict": result.verdict,
        "summary": result.summary,
        "canary_days": list(result.days),
        "planned_frauds_per_arm": result.plan.n_per_arm,
        "plan": {
            k: round(v, 5) if isinstance(v, float) else v for k, v in asdict(result.plan).items()
        },
        "plan_reached": result.reached,
        "champion_counts": asdict(result.champion),
        "canary_counts": asdict(result.canary),
        "slices": result.slices,
    }
    for metric, test in result.tests.items():
        meta[f"{metric}_champion"] = test.rate_a
        meta[f"{metric}_canary"] = test.rate_b
        meta[f"{metric}_diff"] = test.difference
        meta[f"{metric}_interval"] = f"[{test.low:+.4f}, {test.high:+.4f}]"
        meta[f"{metric}_p_value"] = test.p_value
    if result.auc is not None:
        meta.update(
            auc_champion=result.auc.auc_a,
            auc_canary=result.auc.auc_b,
            auc_diff=result.auc.difference,
            auc_interval=f"[{result.auc.low:+.4f}, {result.auc.high:+.4f}]",
        )
    return meta
