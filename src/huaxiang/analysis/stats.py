"""Statistics of experiments: tests of a variant against control, confidence intervals, sample sizes.

Everything here works on small summaries (counts, means, variances per group), which is
all an experiment pulls out of the engine. The formulas are the textbook ones and are
checked against scipy and statsmodels to 1e-9 (``tests/unit/test_stats.py``):

- rates (conversion, open, use): the two-proportion z test with the pooled standard error
  (``statsmodels.stats.proportion.proportions_ztest``), a Wald interval of the difference
  with the unpooled standard error (``confint_proportions_2indep(method="wald")``);
- means (GMV per user, ARPU, order count): Welch's t test and its interval with the
  Welch-Satterthwaite degrees of freedom (``scipy.stats.ttest_ind(equal_var=False)``);
- relative lift (treatment / control - 1): a delta-method interval of the ratio of two
  independent means (for rates, the same formula with the binomial variance);
- sample size: the normal-approximation power of a two-sided test of two independent
  groups, solved exactly for the size, as ``statsmodels``' ``NormalIndPower`` computes the
  power (Cohen's h for rates, standardised difference for means).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from scipy import optimize, stats

from huaxiang.errors import RequestError

DEFAULT_ALPHA = 0.05
DEFAULT_POWER = 0.8


@dataclass(frozen=True)
class Comparison:
    """A variant against control on one metric.

    ``difference`` is treatment - control with its ``ci_low`` .. ``ci_high`` interval at
    ``1 - alpha``; ``lift`` is the relative difference (treatment / control - 1) with its
    interval, ``None`` when the control value is 0. ``statistic`` is z (rates) or t (means),
    ``df`` the Welch degrees of freedom (``None`` for rates).
    """

    test: str
    treatment: float
    control: float
    n_treatment: int
    n_control: int
    difference: float
    ci_low: float
    ci_high: float
    lift: float | None
    lift_ci_low: float | None
    lift_ci_high: float | None
    statistic: float
    df: float | None
    p_value: float
    alpha: float

    @property
    def significant(self) -> bool:
        return self.p_value < self.alpha

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["significant"] = self.significant
        return data


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise RequestError(f"alpha must be between 0 and 1 (e.g. 0.05 for 95% intervals), got {alpha}.")


def _check_groups(n_treatment: int, n_control: int, minimum: int, what: str) -> None:
    for label, n in (("treatment", n_treatment), ("control", n_control)):
        if n < minimum:
            raise RequestError(
                f"{what} needs at least {minimum} users in each group; the {label} group has {n}. "
                "Widen the audience or wait for more users."
            )


def _ratio_interval(
    mean_t: float, var_mean_t: float, mean_c: float, var_mean_c: float, z: float
) -> tuple[float | None, float | None, float | None]:
    """Relative lift ``mean_t / mean_c - 1`` and its delta-method interval.

    ``var_mean_*`` are the variances of the two means (variance / n).
    """
    if mean_c == 0:
        return None, None, None
    ratio = mean_t / mean_c
    se = math.sqrt(var_mean_t / mean_c**2 + mean_t**2 * var_mean_c / mean_c**4)
    return ratio - 1, ratio - 1 - z * se, ratio - 1 + z * se


def two_proportion_ztest(
    successes_treatment: int,
    n_treatment: int,
    successes_control: int,
    n_control: int,
    *,
    alpha: float = DEFAULT_ALPHA,
) -> Comparison:
    """Two-sided z test of two rates, with intervals of the difference and of the lift.

    Parameters
    ----------
    successes_treatment, n_treatment
        Users who converted (opened, used ...) and users in the treatment group.
    successes_control, n_control
        The same for control.
    alpha
        1 - confidence level of the intervals (0.05: 95 %).

    Returns
    -------
    Comparison
        ``statistic`` is z with the pooled standard error; the interval of the difference
        uses the unpooled (Wald) standard error.

    Raises
    ------
    huaxiang.errors.RequestError
        A group is empty, a count exceeds its group, or alpha is not in (0, 1).
    """
    _check_alpha(alpha)
    _check_groups(n_treatment, n_control, 1, "a two-proportion z test")
    for label, k, n in (
        ("treatment", successes_treatment, n_treatment),
        ("control", successes_control, n_control),
    ):
        if not 0 <= k <= n:
            raise RequestError(
                f"the {label} group has {k} successes out of {n} users; 0 <= successes <= users."
            )
    p_t = successes_treatment / n_treatment
    p_c = successes_control / n_control
    difference = p_t - p_c
    pooled = (successes_treatment + successes_control) / (n_treatment + n_control)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / n_treatment + 1 / n_control))
    if se_pooled == 0:
        statistic, p_value = 0.0, 1.0  # both groups all 0 or all 1: no evidence of a difference
    else:
        statistic = difference / se_pooled
        p_value = float(2 * stats.norm.sf(abs(statistic)))
    z = float(stats.norm.isf(alpha / 2))
    var_t, var_c = p_t * (1 - p_t) / n_treatment, p_c * (1 - p_c) / n_control
    se = math.sqrt(var_t + var_c)
    lift, lift_low, lift_high = _ratio_interval(p_t, var_t, p_c, var_c, z)
    return Comparison(
        test="two-proportion z",
        treatment=p_t,
        control=p_c,
        n_treatment=n_treatment,
        n_control=n_control,
        difference=difference,
        ci_low=difference - z * se,
        ci_high=difference + z * se,
        lift=lift,
        lift_ci_low=lift_low,
        lift_ci_high=lift_high,
        statistic=statistic,
        df=None,
        p_value=p_value,
        alpha=alpha,
    )


def welch_ttest(
    mean_treatment: float,
    var_treatment: float,
    n_treatment: int,
    mean_control: float,
    var_control: float,
    n_control: int,
    *,
    alpha: float = DEFAULT_ALPHA,
) -> Comparison:
    """Welch's two-sided t test of two means from their summaries, with intervals.

    Parameters
    ----------
    mean_treatment, var_treatment, n_treatment
        Mean, sample variance (ddof = 1) and size of the treatment group.
    mean_control, var_control, n_control
        The same for control.
    alpha
        1 - confidence level of the intervals.

    Returns
    -------
    Comparison
        ``statistic`` is t, ``df`` the Welch-Satterthwaite degrees of freedom; the interval
        of the difference uses the t quantile at those degrees of freedom.

    Raises
    ------
    huaxiang.errors.RequestError
        A group has fewer than two users, a variance is negative, or alpha is not in (0, 1).
    """
    _check_alpha(alpha)
    _check_groups(n_treatment, n_control, 2, "Welch's t test")
    if var_treatment < 0 or var_control < 0:
        raise RequestError("a variance cannot be negative.")
    var_mean_t, var_mean_c = var_treatment / n_treatment, var_control / n_control
    difference = mean_treatment - mean_control
    se = math.sqrt(var_mean_t + var_mean_c)
    if se == 0:
        # Both groups constant: equal means carry no evidence; different ones are certain.
        statistic = 0.0 if difference == 0 else math.copysign(math.inf, difference)
        df = float(n_treatment + n_control - 2)
        p_value = 1.0 if difference == 0 else 0.0
        t_crit = float(stats.t.isf(alpha / 2, df))
    else:
        df = (var_mean_t + var_mean_c) ** 2 / (
            var_mean_t**2 / (n_treatment - 1) + var_mean_c**2 / (n_control - 1)
        )
        statistic = difference / se
        p_value = float(2 * stats.t.sf(abs(statistic), df))
        t_crit = float(stats.t.isf(alpha / 2, df))
    lift, lift_low, lift_high = _ratio_interval(
        mean_treatment, var_mean_t, mean_control, var_mean_c, float(stats.norm.isf(alpha / 2))
    )
    return Comparison(
        test="Welch t",
        treatment=mean_treatment,
        control=mean_control,
        n_treatment=n_treatment,
        n_control=n_control,
        difference=difference,
        ci_low=difference - t_crit * se,
        ci_high=difference + t_crit * se,
        lift=lift,
        lift_ci_low=lift_low,
        lift_ci_high=lift_high,
        statistic=statistic,
        df=df,
        p_value=p_value,
        alpha=alpha,
    )


def proportion_interval(successes: int, n: int, *, alpha: float = DEFAULT_ALPHA) -> tuple[float, float]:
    """Wilson score interval of one rate (used when a variant has no control to compare with)."""
    _check_alpha(alpha)
    if n < 1:
        raise RequestError("a rate needs at least one user.")
    z = float(stats.norm.isf(alpha / 2))
    p = successes / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return centre - half, centre + half


# ---------------------------------------------------------------------------- sample size


@dataclass(frozen=True)
class SampleSize:
    """Users needed per group to detect ``effect`` with ``power`` at ``alpha`` (two-sided).

    ``n_treatment_exact`` is the real-valued solution; the counts are rounded up.
    """

    metric_kind: str
    baseline: float | None
    minimum_effect: float
    effect_size: float
    alpha: float
    power: float
    ratio: float
    n_treatment_exact: float
    n_treatment: int
    n_control: int

    @property
    def total(self) -> int:
        return self.n_treatment + self.n_control

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total": self.total}


def normal_power(effect_size: float, n_treatment: float, alpha: float, ratio: float = 1.0) -> float:
    """Power of a two-sided z test of two independent groups (as ``NormalIndPower.power``).

    ``ratio`` is n_control / n_treatment; ``effect_size`` is standardised (Cohen's d or h).
    """
    n_effective = n_treatment * ratio / (1 + ratio)
    shift = abs(effect_size) * math.sqrt(n_effective)
    crit = float(stats.norm.isf(alpha / 2))
    return float(stats.norm.sf(crit - shift) + stats.norm.cdf(-crit - shift))


def _solve(effect_size: float, alpha: float, power: float, ratio: float) -> float:
    if effect_size == 0:
        raise RequestError("the minimum detectable effect must not be 0.")
    if not 0 < power < 1:
        raise RequestError(f"power must be between 0 and 1 (e.g. 0.8), got {power}.")
    if power <= alpha:
        raise RequestError(f"power ({power}) must exceed alpha ({alpha}).")
    if ratio <= 0:
        raise RequestError(f"the control / treatment ratio must be positive, got {ratio}.")
    # Start from the one-tail closed form; the other tail only lowers the size a little.
    z_sum = float(stats.norm.isf(alpha / 2) + stats.norm.ppf(power))
    guess = (z_sum / abs(effect_size)) ** 2 * (1 + ratio) / ratio
    upper = guess * 2 + 10
    root = optimize.brentq(
        lambda n: normal_power(effect_size, n, alpha, ratio) - power,
        1e-9,
        upper,
        xtol=1e-12,
        rtol=1e-15,
        maxiter=500,
    )
    return float(root)


def _result(
    kind: str, baseline: float | None, effect: float, es: float, alpha: float, power: float, ratio: float
) -> SampleSize:
    n_exact = _solve(es, alpha, power, ratio)
    n_treatment = math.ceil(n_exact - 1e-9)
    return SampleSize(
        metric_kind=kind,
        baseline=baseline,
        minimum_effect=effect,
        effect_size=es,
        alpha=alpha,
        power=power,
        ratio=ratio,
        n_treatment_exact=n_exact,
        n_treatment=n_treatment,
        n_control=math.ceil(n_treatment * ratio - 1e-9),
    )


def sample_size_proportions(
    baseline_rate: float,
    minimum_effect: float,
    *,
    alpha: float = DEFAULT_ALPHA,
    power: float = DEFAULT_POWER,
    ratio: float = 1.0,
) -> SampleSize:
    """Users per group to detect an absolute change of a rate.

    Parameters
    ----------
    baseline_rate
        The control's expected rate (e.g. 0.17 conversion).
    minimum_effect
        The smallest absolute change worth detecting (0.02: from 17 % to 19 %).
    alpha, power
        Two-sided significance level and the wanted power.
    ratio
        Control users per treatment user (0.1 for a 10 % hold-out against 100 %: 1/9).

    Raises
    ------
    huaxiang.errors.RequestError
        A rate outside (0, 1), a zero effect, or power / alpha / ratio out of range.
    """
    _check_alpha(alpha)
    target = baseline_rate + minimum_effect
    if not 0 < baseline_rate < 1 or not 0 < target < 1:
        raise RequestError(
            f"rates must be between 0 and 1: baseline {baseline_rate}, baseline + effect {target}. "
            "Give the effect as an absolute change of the rate (0.02 for two points)."
        )
    h = 2 * math.asin(math.sqrt(target)) - 2 * math.asin(math.sqrt(baseline_rate))
    return _result("rate", baseline_rate, minimum_effect, h, alpha, power, ratio)


def sample_size_means(
    standard_deviation: float,
    minimum_effect: float,
    *,
    baseline_mean: float | None = None,
    alpha: float = DEFAULT_ALPHA,
    power: float = DEFAULT_POWER,
    ratio: float = 1.0,
) -> SampleSize:
    """Users per group to detect an absolute change of a mean (GMV per user, order count).

    Parameters
    ----------
    standard_deviation
        Per-user standard deviation of the metric (from a past period or a pilot).
    minimum_effect
        The smallest absolute change of the mean worth detecting (in the metric's unit).
    baseline_mean
        The control's mean, kept for the record only.
    alpha, power, ratio
        As in :func:`sample_size_proportions`.
    """
    _check_alpha(alpha)
    if standard_deviation <= 0:
        raise RequestError(f"the standard deviation must be positive, got {standard_deviation}.")
    return _result(
        "mean", baseline_mean, minimum_effect, minimum_effect / standard_deviation, alpha, power, ratio
    )
