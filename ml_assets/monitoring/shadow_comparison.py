"""Does the shadow model answer like the champion, and as fast? One day of the prediction log.

In shadow a version scores every champion-answered request off the response path; the log
holds both scores (`score`, `shadow_score`) and both timings (`latency_ms`: the champion's
whole answer; `shadow_latency_ms`: the shadow model's own scoring). A day is compared on
the model's answers only (fallbacks carry rule scores, by design unlike any model's), and
the shadow's decisions come from the endpoint's thresholds, so a flip is a customer who
would have been treated differently. The per-day verdicts of one version add up to whether
it may move on to canary (`rollout_evidence.readiness`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date

import numpy as np
import polars as pl

from ml_assets.serving.decisions import decide_many
from ml_assets.settings import DecisionThresholds
from ml_assets.training.rollout_evidence import ShadowLimits
from ml_assets.training.rollout_stages import CHAMPION_ARM

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


@dataclass(frozen=True)
class ShadowComparison:
    """The champion's answers and the shadow's scores of the same requests, for one day."""

    day: date
    shadow_version: str | None  # the version that shadowed most requests that day
    champion_version: str | None
    requests: int  # every logged answer of the day
    compared: int  # model answers of the champion arm scored by that shadow version
    agreement_rate: float | None  # same decision
    flip_rate: float | None
    flips: dict[str, int]  # "champion->shadow" decision pairs that differ, with counts
    score_diff: dict[str, float]  # quantiles of shadow - champion score, "q50" etc.
    mean_abs_diff: float | None
    champion_p50_ms: float | None
    champion_p95_ms: float | None
    shadow_p50_ms: float | None
    shadow_p95_ms: float | None
    other_shadow_versions: tuple[str, ...] = ()

    def to_row(self) -> dict[str, object]:
        """One row of the daily table (nested figures flattened)."""
        row = {k: v for k, v in asdict(self).items() if k not in ("flips", "score_diff")}
        row["other_shadow_versions"] = ",".join(self.other_shadow_versions)
        row["flips"] = sum(self.flips.values())
        row.update({f"diff_{k}": v for k, v in self.score_diff.items()})
        return row


def _pct(values: np.ndarray, q: float) -> float | None:
    return float(np.quantile(values, q)) if len(values) else None


def compare_shadow(
    log: pl.DataFrame, day: date, thresholds: DecisionThresholds
) -> ShadowComparison:
    """The day's shadow comparison from the prediction log (`read_prediction_log`)."""
    model = log.filter(
        pl.col("reason").is_null()
        & pl.col("score").is_not_null()
        & pl.col("shadow_score").is_not_null()
        & (pl.col("arm").is_null() | (pl.col("arm") == CHAMPION_ARM))
    )
    counts = model["shadow_version"].drop_nulls().value_counts(sort=True)
    versions = [str(v) for v in counts["shadow_version"].to_list()]
    version = versions[0] if versions else None
    rows = model.filter(pl.col("shadow_version") == version) if version else model.clear()
    champion = rows["score"].to_numpy().astype(np.float64)
    shadow = rows["shadow_score"].to_numpy().astype(np.float64)
    ours = decide_many(champion, thresholds)
    theirs = decide_many(shadow, thresholds)
    differ = ours != theirs
    pairs = pl.DataFrame(
        {"from": ours[differ], "to": theirs[differ]}, schema={"from": pl.String, "to": pl.String}
    )
    counted = pairs.group_by("from", "to").len().sort("len", descending=True)
    flips = {f"{a}->{b}": n for a, b, n in counted.iter_rows()}
    diff = shadow - champion
    n = len(diff)
    champion_ms = rows["latency_ms"].drop_nulls().to_numpy()
    shadow_ms = rows["shadow_latency_ms"].drop_nulls().to_numpy()
    champion_versions = rows["model_version"].drop_nulls().mode().to_list()
    return ShadowComparison(
        day=day,
        shadow_version=version,
        champion_version=str(champion_versions[0]) if champion_versions else None,
        requests=log.height,
        compared=n,
        agreement_rate=float(1 - differ.mean()) if n else None,
        flip_rate=float(differ.mean()) if n else None,
        flips=flips,
        score_diff={f"q{round(q * 100):02d}": float(np.quantile(diff, q)) for q in QUANTILES}
        if n
        else {},
        mean_abs_diff=float(np.abs(diff).mean()) if n else None,
        champion_p50_ms=_pct(champion_ms, 0.5),
        champion_p95_ms=_pct(champion_ms, 0.95),
        shadow_p50_ms=_pct(shadow_ms, 0.5),
        shadow_p95_ms=_pct(shadow_ms, 0.95),
        other_shadow_versions=tuple(versions[1:]),
    )


def shadow_verdict(c: ShadowComparison, limits: ShadowLimits) -> tuple[bool, str]:
    """Whether the day allows moving its shadow version to canary, and why (not)."""
    if c.compared == 0:
        return True, "no request was scored in shadow that day: nothing to block"
    problems = []
    if c.flip_rate is not None and c.flip_rate > limits.max_flip_rate:
        problems.append(
            f"{c.flip_rate:.2%} of {c.compared} decisions flip (limit {limits.max_flip_rate:.2%})"
        )
    if c.shadow_p95_ms is not None and c.shadow_p95_ms > limits.latency_budget_ms:
        problems.append(
            f"shadow p95 {c.shadow_p95_ms:.2f} ms over the budget {limits.latency_budget_ms} ms"
        )
    head = f"v{c.shadow_version} vs champion v{c.champion_version} on {c.compared} requests: "
    if problems:
        return False, head + "; ".join(problems)
    return True, head + (
        f"{c.flip_rate:.2%} flips, shadow p95 {c.shadow_p95_ms or float('nan'):.2f} ms "
        f"(champion answer p95 {c.champion_p95_ms or float('nan'):.2f} ms)"
    )
