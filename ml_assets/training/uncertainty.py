"""Confidence bounds of the evaluation figures that the promotion gates judge.

An ECE or an AUC measured on a few tens of thousands of rows moves by about the margins the
gates care about (the demo's student missed `max_ece` by 0.0004, its noise). So the gates
compare a bound with the threshold, not the point. The bounds come from
`scipy.stats.bootstrap`, seeded:
- AUCs resample frauds and non-frauds separately (a stratified bootstrap, as pROC does),
  so every resample has both classes; the AUC is the Mann-Whitney U over the pairs. The
  models scored on the same rows are resampled together (paired), so a ratio or a
  difference of their AUCs is bounded from one joint distribution.
- ECE resamples rows.
The interval is the "basic" bootstrap: it reflects the resamples around the estimate, which
corrects the upward bias of ECE that the percentile interval would double. Two-sided at
1 - 2(1 - confidence), so each end is a one-sided bound at `confidence`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from ml_assets.training.calibration import expected_calibration_error


@dataclass(frozen=True)
class BootstrapSettings:
    """How the bounds are computed; `confidence` applies to each one-sided bound."""

    confidence: float = 0.95
    resamples: int = 300
    seed: int = 7


@dataclass(frozen=True)
class Bounds:
    """A point estimate with its one-sided lower and upper bounds at `confidence`."""

    estimate: float
    low: float
    high: float
    confidence: float
    resamples: int

    @property
    def percent(self) -> str:
        return f"{self.confidence:.0%}"


def _bootstrap(
    data: tuple[np.ndarray, ...],
    statistic: Callable[..., np.ndarray | float],
    settings: BootstrapSettings,
    **options: object,
):
    from scipy.stats import bootstrap

    return bootstrap(
        data,
        statistic,
        n_resamples=settings.resamples,
        confidence_level=2 * settings.confidence - 1,
        method="basic",
        rng=np.random.default_rng(settings.seed),
        **options,
    )


def _auc(positives: np.ndarray, negatives: np.ndarray, axis: int = -1) -> np.ndarray:
    """AUC = P(score of a fraud > score of a non-fraud), ties half: Mann-Whitney U / pairs."""
    from scipy.stats import mannwhitneyu

    u = mannwhitneyu(positives, negatives, axis=axis, method="asymptotic").statistic
    return u / (positives.shape[axis] * negatives.shape[axis])


def auc_bounds(
    y: np.ndarray,
    scores: Mapping[str, np.ndarray],
    settings: BootstrapSettings,
    derived: Mapping[str, Callable[[Mapping[str, np.ndarray]], np.ndarray]] | None = None,
) -> dict[str, Bounds]:
    """Bounds of each model's AUC on the same rows (`scores` by model name), and of each
    `derived` figure of those AUCs (e.g. a ratio), all from one paired resampling."""
    names, derived = list(scores), dict(derived or {})
    stacked = np.stack([np.asarray(scores[n], dtype=np.float64) for n in names])
    is_fraud = np.asarray(y) > 0.5

    def figures(positives: np.ndarray, negatives: np.ndarray, axis: int = -1) -> np.ndarray:
        aucs = dict(zip(names, _auc(positives, negatives, axis), strict=True))
        return np.stack([*aucs.values(), *(f(aucs) for f in derived.values())])

    data = (stacked[:, is_fraud], stacked[:, ~is_fraud])
    estimate = figures(*data)
    result = _bootstrap(data, figures, settings, axis=-1, vectorized=True, batch=20)
    low, high = result.confidence_interval
    out = {}
    for i, name in enumerate([*names, *derived]):
        clip = (0.0, 1.0) if name in scores else (-np.inf, np.inf)
        out[name] = Bounds(
            estimate=float(estimate[i]),
            low=float(np.clip(low[i], *clip)),
            high=float(np.clip(high[i], *clip)),
            confidence=settings.confidence,
            resamples=settings.resamples,
        )
    return out


def ece_bounds(y: np.ndarray, p: np.ndarray, settings: BootstrapSettings) -> Bounds:
    """Bounds of the expected calibration error of scores `p` for labels `y`."""
    y, p = np.asarray(y, dtype=np.float64), np.asarray(p, dtype=np.float64)
    result = _bootstrap((y, p), expected_calibration_error, settings, paired=True)
    low, high = result.confidence_interval
    return Bounds(
        estimate=expected_calibration_error(y, p),
        low=max(0.0, float(low)),
        high=float(high),
        confidence=settings.confidence,
        resamples=settings.resamples,
    )
