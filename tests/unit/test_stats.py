"""huaxiang.analysis.stats against scipy and statsmodels, to 1e-9, on fixed fixtures."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from huaxiang.analysis import stats
from huaxiang.errors import RequestError

statsmodels_proportion = pytest.importorskip("statsmodels.stats.proportion")
statsmodels_power = pytest.importorskip("statsmodels.stats.power")

TOL = 1e-9
# (treatment successes, treatment users, control successes, control users)
RATE_FIXTURES = [
    (238, 1015, 174, 1009),  # the sample shop's planted campaign at 5,000 users
    (30, 200, 30, 200),  # no difference at all
    (5, 40, 12, 60),  # small groups, treatment lower
    (12_345, 100_000, 11_900, 100_000),  # large groups, small lift
    (0, 50, 3, 50),  # a group with no conversion
]


@pytest.mark.parametrize(("k_t", "n_t", "k_c", "n_c"), RATE_FIXTURES)
def test_z_test_matches_statsmodels(k_t: int, n_t: int, k_c: int, n_c: int) -> None:
    result = stats.two_proportion_ztest(k_t, n_t, k_c, n_c)
    z, p = statsmodels_proportion.proportions_ztest([k_t, k_c], [n_t, n_c])
    assert result.statistic == pytest.approx(z, abs=TOL)
    assert result.p_value == pytest.approx(p, abs=TOL)
    low, high = statsmodels_proportion.confint_proportions_2indep(
        k_t, n_t, k_c, n_c, method="wald", compare="diff"
    )
    assert result.ci_low == pytest.approx(low, abs=TOL)
    assert result.ci_high == pytest.approx(high, abs=TOL)
    assert result.difference == pytest.approx(k_t / n_t - k_c / n_c, abs=1e-15)


def test_z_test_at_other_alpha_and_significance() -> None:
    result = stats.two_proportion_ztest(238, 1015, 174, 1009, alpha=0.01)
    low, high = statsmodels_proportion.confint_proportions_2indep(
        238, 1015, 174, 1009, method="wald", compare="diff", alpha=0.01
    )
    assert (result.ci_low, result.ci_high) == pytest.approx((low, high), abs=TOL)
    assert result.significant  # p ~ 5e-4
    assert not stats.two_proportion_ztest(30, 200, 30, 200).significant


def _samples(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    treatment = np.where(rng.random(800) < 0.25, rng.lognormal(4.0, 1.0, 800), 0.0)
    control = np.where(rng.random(650) < 0.2, rng.lognormal(3.9, 1.1, 650), 0.0)
    return treatment, control


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("alpha", [0.05, 0.1])
def test_welch_matches_scipy(seed: int, alpha: float) -> None:
    treatment, control = _samples(seed)
    result = stats.welch_ttest(
        treatment.mean(),
        treatment.var(ddof=1),
        len(treatment),
        control.mean(),
        control.var(ddof=1),
        len(control),
        alpha=alpha,
    )
    expected = scipy_stats.ttest_ind(treatment, control, equal_var=False)
    assert result.statistic == pytest.approx(expected.statistic, abs=TOL)
    assert result.p_value == pytest.approx(expected.pvalue, abs=TOL)
    assert result.df == pytest.approx(expected.df, abs=TOL)
    interval = expected.confidence_interval(confidence_level=1 - alpha)
    assert result.ci_low == pytest.approx(interval.low, abs=TOL)
    assert result.ci_high == pytest.approx(interval.high, abs=TOL)


def test_welch_matches_statsmodels_ttest_ind() -> None:
    from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

    treatment, control = _samples(5)
    result = stats.welch_ttest(
        treatment.mean(),
        treatment.var(ddof=1),
        len(treatment),
        control.mean(),
        control.var(ddof=1),
        len(control),
    )
    compare = CompareMeans(DescrStatsW(treatment), DescrStatsW(control))
    t, p, df = compare.ttest_ind(usevar="unequal")
    low, high = compare.tconfint_diff(usevar="unequal")
    assert (result.statistic, result.p_value, result.df) == pytest.approx((t, p, df), abs=TOL)
    assert (result.ci_low, result.ci_high) == pytest.approx((low, high), abs=TOL)


def test_relative_lift_interval_is_the_delta_method() -> None:
    treatment, control = _samples(3)
    result = stats.welch_ttest(
        treatment.mean(),
        treatment.var(ddof=1),
        len(treatment),
        control.mean(),
        control.var(ddof=1),
        len(control),
    )
    m_t, m_c = treatment.mean(), control.mean()
    v_t, v_c = treatment.var(ddof=1) / len(treatment), control.var(ddof=1) / len(control)
    # Gradient of m_t / m_c is (1 / m_c, -m_t / m_c^2).
    se = math.sqrt(v_t / m_c**2 + v_c * m_t**2 / m_c**4)
    z = scipy_stats.norm.ppf(0.975)
    assert result.lift == pytest.approx(m_t / m_c - 1, abs=TOL)
    assert (result.lift_ci_low, result.lift_ci_high) == pytest.approx(
        (m_t / m_c - 1 - z * se, m_t / m_c - 1 + z * se), abs=TOL
    )
    # A control rate of 0 has no relative lift.
    assert stats.two_proportion_ztest(3, 50, 0, 50).lift is None


def test_wilson_interval_matches_statsmodels() -> None:
    low, high = stats.proportion_interval(322, 1015)
    expected = statsmodels_proportion.proportion_confint(322, 1015, method="wilson")
    assert (low, high) == pytest.approx(expected, abs=TOL)


@pytest.mark.parametrize(
    ("baseline", "effect", "alpha", "power", "ratio"),
    [(0.17, 0.02, 0.05, 0.8, 1.0), (0.05, 0.01, 0.01, 0.9, 1.0), (0.3, -0.05, 0.05, 0.8, 1 / 9)],
)
def test_sample_size_for_rates_matches_statsmodels_power(
    baseline: float, effect: float, alpha: float, power: float, ratio: float
) -> None:
    result = stats.sample_size_proportions(baseline, effect, alpha=alpha, power=power, ratio=ratio)
    h = statsmodels_proportion.proportion_effectsize(baseline + effect, baseline)
    assert result.effect_size == pytest.approx(h, abs=TOL)
    achieved = statsmodels_power.NormalIndPower().power(
        effect_size=h, nobs1=result.n_treatment_exact, alpha=alpha, ratio=ratio
    )
    assert achieved == pytest.approx(power, abs=TOL)
    solved = statsmodels_power.NormalIndPower().solve_power(
        effect_size=h, alpha=alpha, power=power, ratio=ratio
    )
    assert result.n_treatment == math.ceil(solved - 1e-6)
    assert result.n_control == math.ceil(result.n_treatment * ratio - 1e-9)


def test_sample_size_for_means_matches_statsmodels_power() -> None:
    result = stats.sample_size_means(180.0, 12.0, baseline_mean=55.0)
    achieved = statsmodels_power.NormalIndPower().power(
        effect_size=12.0 / 180.0, nobs1=result.n_treatment_exact, alpha=0.05, ratio=1.0
    )
    assert achieved == pytest.approx(0.8, abs=TOL)
    # Textbook closed form (one tail) is a close upper bound.
    closed = 2 * ((scipy_stats.norm.ppf(0.975) + scipy_stats.norm.ppf(0.8)) * 180 / 12) ** 2
    assert result.n_treatment == math.ceil(closed) or abs(result.n_treatment_exact - closed) < 1


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: stats.two_proportion_ztest(5, 0, 1, 10), "the treatment group has 0"),
        (lambda: stats.two_proportion_ztest(11, 10, 1, 10), "11 successes out of 10"),
        (lambda: stats.welch_ttest(1.0, 1.0, 1, 1.0, 1.0, 5), "at least 2 users"),
        (lambda: stats.two_proportion_ztest(1, 10, 1, 10, alpha=1.5), "alpha must be between 0 and 1"),
        (lambda: stats.sample_size_proportions(0.95, 0.1), "rates must be between 0 and 1"),
        (lambda: stats.sample_size_proportions(0.2, 0.0), "must not be 0"),
        (lambda: stats.sample_size_proportions(0.2, 0.02, power=1.2), "power must be between"),
        (lambda: stats.sample_size_means(0.0, 1.0), "standard deviation must be positive"),
    ],
)
def test_bad_input_is_refused_with_a_reason(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RequestError, match=message):
        call()
