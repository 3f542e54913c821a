"""The A/B statistics on data with a known effect: the planned sample size rejects at the
planned power, the null rejects at about alpha, and small cases agree with the formulas
worked by hand. Experiments are simulated as whole arrays of binomial counts (the
statsmodels test is vectorized), so thousands of them take milliseconds."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from ml_assets.training.ab_testing import (
    auc_difference_ci,
    plan_sample_size,
    two_proportion_test,
)

# Fraud-like rates: the champion's 2 % against a candidate 1 point away.
P_CONTROL, MDE, ALPHA, POWER = 0.02, 0.01, 0.05, 0.8


def _rejection_rate(n: int, p_a: float, p_b: float, experiments: int, seed: int) -> float:
    from statsmodels.stats.proportion import test_proportions_2indep

    rng = np.random.default_rng(seed)
    a, b = rng.binomial(n, p_a, experiments), rng.binomial(n, p_b, experiments)
    # The same call `two_proportion_test` makes, on all experiments at once.
    p = test_proportions_2indep(b, n, a, n, method="agresti-caffo", compare="diff").pvalue
    return float(np.mean(p < ALPHA))


def _tolerance(rate: float, experiments: int, sds: float = 3.0) -> float:
    """`sds` binomial standard deviations of a rejection rate over `experiments` runs: a
    correct test misses by more with probability about 0.3 %."""
    return sds * math.sqrt(rate * (1 - rate) / experiments)


def test_the_plan_matches_the_arcsine_formula_worked_by_hand() -> None:
    plan = plan_sample_size(P_CONTROL, MDE, ALPHA, POWER)
    h = 2 * math.asin(math.sqrt(P_CONTROL + MDE)) - 2 * math.asin(math.sqrt(P_CONTROL))
    z = NormalDist().inv_cdf(1 - ALPHA / 2) + NormalDist().inv_cdf(POWER)
    # Each arm's arcsine has variance 1/(4n), so h's estimate has 2/n: n = 2 (z / h)^2.
    # The far tail of the two-sided test adds a negligible bit, hence +1 at most.
    by_hand = math.ceil(2 * (z / h) ** 2)
    assert by_hand <= plan.n_per_arm <= by_hand + 1
    assert plan.effect_size == pytest.approx(h)
    assert plan.to_metadata()["plan_n_per_arm"] == plan.n_per_arm
    assert not plan.reached(plan.n_per_arm, plan.n_per_arm - 1)
    assert plan.reached(plan.n_per_arm, plan.n_per_arm + 5)


def test_the_plan_rejects_at_its_power_when_the_effect_is_the_mde() -> None:
    plan = plan_sample_size(P_CONTROL, MDE, ALPHA, POWER)
    # 400 experiments: sd of the rate 0.02, so +/- 0.06. The Agresti-Caffo test's power at
    # this n measured 0.794 over 40,000 experiments (the plan's normal approximation is
    # that close); a plan with half the n would reject about 52 % of the time.
    up = _rejection_rate(plan.n_per_arm, P_CONTROL, P_CONTROL + MDE, 400, seed=1)
    assert abs(up - POWER) <= _tolerance(POWER, 400), up
    # The plan is for the harder side (p + mde on the arcsine scale); the other is easier.
    down = _rejection_rate(plan.n_per_arm, P_CONTROL, P_CONTROL - MDE, 400, seed=2)
    assert down >= POWER - _tolerance(POWER, 400), down


def test_the_false_positive_rate_stays_near_alpha_under_the_null() -> None:
    plan = plan_sample_size(P_CONTROL, MDE, ALPHA, POWER)
    rate = _rejection_rate(plan.n_per_arm, P_CONTROL, P_CONTROL, 2000, seed=3)
    # 2000 null experiments: sd 0.0049, so +/- 0.015 around 0.05.
    assert abs(rate - ALPHA) <= _tolerance(ALPHA, 2000), rate


def test_deciding_at_the_first_significant_day_would_inflate_false_positives() -> None:
    """Why the design is fixed-horizon: the same null experiments, tested every day for 14
    days and stopped at the first p < alpha, reject far more often than alpha."""
    from statsmodels.stats.proportion import test_proportions_2indep

    plan = plan_sample_size(P_CONTROL, MDE, ALPHA, POWER)
    days, experiments = 14, 2000
    daily = math.ceil(plan.n_per_arm / days)
    rng = np.random.default_rng(4)
    a = rng.binomial(daily, P_CONTROL, (experiments, days)).cumsum(axis=1)
    b = rng.binomial(daily, P_CONTROL, (experiments, days)).cumsum(axis=1)
    n = daily * np.arange(1, days + 1)
    with np.errstate(divide="ignore", invalid="ignore"):  # its unused ratio of a zero count
        p = test_proportions_2indep(b, n, a, n, method="agresti-caffo", compare="diff").pvalue
    peeking = float(np.mean((p < ALPHA).any(axis=1)))
    at_horizon = float(np.mean(p[:, -1] < ALPHA))
    assert abs(at_horizon - ALPHA) <= _tolerance(ALPHA, experiments)
    assert peeking > 2 * ALPHA, peeking


def test_a_small_case_agrees_with_the_agresti_caffo_formula_worked_by_hand() -> None:
    # 10/100 against 20/100: add one success and one failure to each arm.
    pa, pb = 11 / 102, 21 / 102
    se = math.sqrt(pa * (1 - pa) / 102 + pb * (1 - pb) / 102)
    z = (pb - pa) / se
    z_crit = NormalDist().inv_cdf(0.975)

    result = two_proportion_test(10, 100, 20, 100)
    assert result.difference == pytest.approx(0.10)
    assert result.p_value == pytest.approx(math.erfc(z / math.sqrt(2)), rel=1e-6)
    assert (result.low, result.high) == pytest.approx(
        (pb - pa - z_crit * se, pb - pa + z_crit * se)
    )
    # p = 0.052: not significant at 0.05, and the interval just reaches below 0.
    assert not result.significant and result.direction == "none" and result.low < 0
    assert two_proportion_test(10, 100, 20, 100, alpha=0.06).significant


def test_the_direction_is_judged_by_which_way_is_good() -> None:
    more = two_proportion_test(100, 1000, 200, 1000)
    assert more.significant and more.low > 0
    assert more.direction == "better"
    # The same data for false declines, where more is worse.
    assert two_proportion_test(100, 1000, 200, 1000, higher_is_better=False).direction == "worse"
    assert two_proportion_test(200, 1000, 100, 1000).direction == "worse"
    meta = more.to_metadata()
    assert meta["direction"] == "better" and meta["significant"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0.0, 0.01), "p_control"),
        ((0.02, 0.0), "mde"),
        ((0.5, 0.6), "mde"),
        ((0.02, 0.01, 0.05, 0.01), "power"),
    ],
)
def test_a_plan_that_cannot_be_made_says_which_input_is_wrong(args, message) -> None:
    with pytest.raises(ValueError, match=message):
        plan_sample_size(*args)


def test_counts_that_cannot_be_are_refused() -> None:
    with pytest.raises(ValueError, match="arm b"):
        two_proportion_test(1, 10, 11, 10)
    with pytest.raises(ValueError, match="arm a"):
        two_proportion_test(0, 0, 1, 10)


def _normal_scores(rng, n: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    y = rng.random(n) < 0.1
    return y, rng.normal(size=n) + shift * y


def test_the_auc_difference_interval_covers_a_known_effect() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(5)
    y_a, s_a = _normal_scores(rng, 4000, 1.0)
    y_b, s_b = _normal_scores(rng, 4000, 1.5)
    result = auc_difference_ci(y_a, s_a, y_b, s_b, n_resamples=400, seed=1)

    assert result.auc_a == pytest.approx(roc_auc_score(y_a, s_a))
    assert result.auc_b == pytest.approx(roc_auc_score(y_b, s_b))
    # Scores N(shift, 1) vs N(0, 1) have AUC Phi(shift / sqrt 2).
    true_difference = NormalDist().cdf(1.5 / math.sqrt(2)) - NormalDist().cdf(1 / math.sqrt(2))
    assert result.low < true_difference < result.high
    assert result.excludes_zero and result.low > 0
    assert result.to_metadata()["auc_difference"] == pytest.approx(result.auc_b - result.auc_a)


def test_the_auc_difference_interval_covers_zero_when_the_models_are_alike() -> None:
    rng = np.random.default_rng(6)
    y_a, s_a = _normal_scores(rng, 4000, 1.0)
    y_b, s_b = _normal_scores(rng, 4000, 1.0)
    result = auc_difference_ci(y_a, s_a, y_b, s_b, n_resamples=400, seed=1)
    assert result.low < 0 < result.high and not result.excludes_zero
    # A narrower confidence gives a narrower interval around the same estimate.
    narrow = auc_difference_ci(y_a, s_a, y_b, s_b, confidence=0.5, n_resamples=400, seed=1)
    assert result.low < narrow.low < narrow.high < result.high


def test_an_arm_with_one_class_is_refused() -> None:
    with pytest.raises(ValueError, match="arm b"):
        auc_difference_ci([0, 1], [0.1, 0.9], [0, 0], [0.1, 0.2])
