"""The statistics of an A/B comparison of two models on live traffic (champion `a`, candidate
`b`): the sample size stated before the test, the test once it is reached, and AUC intervals.

Fixed-horizon design. `plan_sample_size` fixes, before any data is seen, how many labelled
decisions each arm needs to detect an absolute difference `mde` with probability `power`.
The caller looks at the outcome daily but acts on `two_proportion_test` only once
`SamplePlan.reached` is true, and then exactly once. That is what keeps the false-positive
rate at `alpha`: a test run every day and acted on at the first p < alpha gives noise a fresh
chance each day, and the chance that some day crosses the line grows with every look (in
the tests, 14 daily looks at null data reject 19 % of the time, not 5 %). Looking without
acting (a dashboard of the interval) is harmless; deciding early is not. The simulations in
the tests check both promises: the planned n rejects at the planned power, and the null
rejects at about alpha.

The tests come from statsmodels, not hand-rolled: Cohen's h and `NormalIndPower` for the
plan; the Agresti-Caffo test and interval for the difference (a Wald statistic after adding
one success and one failure to each arm). Both come from one statistic, so the interval
excludes 0 exactly when the test rejects; its size stays at alpha at fraud-like rates of
1-2 % (the tests simulate it). The score interval would be the textbook pair of the score
test, but statsmodels 0.15's inversion fails to bracket its root on inputs as plain as
20/100 vs 10/100. scipy and statsmodels are imported inside the functions (the code location
stays light).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from ml_assets.training.uncertainty import BootstrapSettings, _auc, _bootstrap

Direction = Literal["better", "worse", "none"]
# One method for the test and the interval keeps them in agreement (see the module docstring).
_METHOD = "agresti-caffo"


@dataclass(frozen=True)
class SamplePlan:
    """How many decisions per arm the A/B test needs, fixed before it starts."""

    p_control: float  # the champion's rate, e.g. last month's false-decline rate
    mde: float  # the smallest absolute difference worth detecting, in either direction
    alpha: float
    power: float
    effect_size: float  # Cohen's h of the harder of p_control +/- mde
    n_per_arm: int

    def reached(self, n_a: int, n_b: int) -> bool:
        """True once both arms have the planned sample: the only time to decide."""
        return min(n_a, n_b) >= self.n_per_arm

    def to_metadata(self) -> dict[str, Any]:
        return {f"plan_{k}": v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class ProportionTest:
    """The difference b - a of two rates, its confidence interval and the verdict."""

    rate_a: float
    rate_b: float
    difference: float  # rate_b - rate_a
    low: float
    high: float
    p_value: float
    alpha: float
    n_a: int
    n_b: int
    higher_is_better: bool

    @property
    def significant(self) -> bool:
        return self.p_value < self.alpha

    @property
    def direction(self) -> Direction:
        """`better`/`worse` for b against a when significant, else `none`."""
        if not self.significant or self.difference == 0:
            return "none"
        return "better" if (self.difference > 0) == self.higher_is_better else "worse"

    def to_metadata(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in asdict(self).items() if k != "higher_is_better"},
            "confidence": 1 - self.alpha,
            "significant": self.significant,
            "direction": self.direction,
            "method": "Agresti-Caffo test and interval (statsmodels)",
        }


@dataclass(frozen=True)
class IntervalEstimate:
    """AUC of each arm and the difference b - a with a bootstrap confidence interval."""

    auc_a: float
    auc_b: float
    difference: float  # auc_b - auc_a
    low: float
    high: float
    confidence: float  # two-sided
    n_resamples: int

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def to_metadata(self) -> dict[str, Any]:
        return {
            "auc_a": self.auc_a,
            "auc_b": self.auc_b,
            "auc_difference": self.difference,
            "auc_difference_low": self.low,
            "auc_difference_high": self.high,
            "auc_confidence": self.confidence,
            "auc_resamples": self.n_resamples,
            "auc_method": "stratified bootstrap per arm, basic interval (scipy.stats.bootstrap)",
        }


def _check_probability(name: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name}={value!r} must be strictly between 0 and 1")


def plan_sample_size(
    p_control: float, mde: float, alpha: float = 0.05, power: float = 0.8
) -> SamplePlan:
    """The sample size per arm that detects an absolute difference `mde` from `p_control`
    (either direction, two-sided at `alpha`) with probability `power`."""
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    for name, value in (("p_control", p_control), ("alpha", alpha), ("power", power)):
        _check_probability(name, value)
    if power <= alpha:
        raise ValueError(f"power={power} must exceed alpha={alpha}")
    alternatives = [p for p in (p_control + mde, p_control - mde) if 0.0 < p < 1.0]
    if mde <= 0 or not alternatives:
        raise ValueError(
            f"mde={mde!r} must be > 0 with p_control +/- mde inside (0, 1) (p_control={p_control})"
        )
    # The arcsine scale makes a difference near 0.5 harder to see than one near 0: plan for
    # the harder side, so the power holds whichever way the candidate moves the rate.
    h = min(abs(float(proportion_effectsize(p, p_control))) for p in alternatives)
    n = NormalIndPower().solve_power(
        effect_size=h, nobs1=None, alpha=alpha, power=power, ratio=1.0, alternative="two-sided"
    )
    return SamplePlan(p_control, mde, alpha, power, h, math.ceil(float(np.squeeze(n))))


def two_proportion_test(
    successes_a: int,
    n_a: int,
    successes_b: int,
    n_b: int,
    alpha: float = 0.05,
    *,
    higher_is_better: bool = True,
) -> ProportionTest:
    """Whether arm b's rate differs from arm a's (two-sided at `alpha`), with the interval
    of b - a. Call it once, when `SamplePlan.reached` (see the module docstring).
    `higher_is_better` says which way is good (fraud caught: True; false declines: False)."""
    from statsmodels.stats.proportion import confint_proportions_2indep, test_proportions_2indep

    _check_probability("alpha", alpha)
    for name, k, n in (("a", successes_a, n_a), ("b", successes_b, n_b)):
        if n <= 0 or not 0 <= k <= n:
            raise ValueError(f"arm {name}: successes={k} of n={n}; need n > 0, 0 <= successes <= n")
    with np.errstate(divide="ignore", invalid="ignore"):  # its unused ratio when a rate is 0
        test = test_proportions_2indep(
            successes_b, n_b, successes_a, n_a, method=_METHOD, compare="diff"
        )
    low, high = confint_proportions_2indep(
        successes_b, n_b, successes_a, n_a, method=_METHOD, compare="diff", alpha=alpha
    )
    rate_a, rate_b = successes_a / n_a, successes_b / n_b
    return ProportionTest(
        rate_a=rate_a,
        rate_b=rate_b,
        difference=rate_b - rate_a,
        low=float(low),
        high=float(high),
        p_value=float(test.pvalue),
        alpha=alpha,
        n_a=int(n_a),
        n_b=int(n_b),
        higher_is_better=higher_is_better,
    )


def auc_difference_ci(
    y_a: np.ndarray,
    score_a: np.ndarray,
    y_b: np.ndarray,
    score_b: np.ndarray,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 7,
) -> IntervalEstimate:
    """AUC of each arm on its own traffic and the two-sided interval of auc_b - auc_a.

    The arms saw different customers, so they are resampled independently; within an arm
    frauds and non-frauds are resampled separately (stratified), as `uncertainty.auc_bounds`
    does, so every resample has both classes."""
    _check_probability("confidence", confidence)
    arms = []
    for name, y, s in (("a", y_a, score_a), ("b", y_b, score_b)):
        y, s = np.asarray(y) > 0.5, np.asarray(s, dtype=np.float64)
        if y.shape != s.shape or y.all() or not y.any():
            raise ValueError(f"arm {name}: need labels and scores of one length with both classes")
        arms += [s[y], s[~y]]

    def difference(pos_a, neg_a, pos_b, neg_b, axis: int = -1) -> np.ndarray:
        return _auc(pos_b, neg_b, axis) - _auc(pos_a, neg_a, axis)

    # `_bootstrap` makes each end a one-sided bound at its confidence: a two-sided interval
    # at `confidence` is two one-sided bounds at (1 + confidence) / 2.
    settings = BootstrapSettings((1 + confidence) / 2, n_resamples, seed)
    result = _bootstrap(tuple(arms), difference, settings, axis=-1, vectorized=True, batch=50)
    auc_a, auc_b = float(_auc(arms[0], arms[1])), float(_auc(arms[2], arms[3]))
    low, high = result.confidence_interval
    return IntervalEstimate(
        auc_a=auc_a,
        auc_b=auc_b,
        difference=auc_b - auc_a,
        low=float(low),
        high=float(high),
        confidence=confidence,
        n_resamples=n_resamples,
    )
