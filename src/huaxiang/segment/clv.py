"""Churn probability and expected value: BG/NBD with Gamma-Gamma (buy-till-you-die), per buyer.

The engine computes each buyer's sufficient statistics over the valid orders before
the as-of date, on **purchase days** (several orders on one day are one transaction,
as in ``lifetimes`` and pymc-marketing's ``rfm_summary``):

- ``frequency`` x: purchase days after the first;
- ``recency`` t_x: days from the first to the last purchase day;
- ``T``: days from the first purchase day to the last day observed (as-of − 1);
- ``monetary_value`` m: mean spend of the repeat purchase days (0 without one).

Only these four numbers per buyer leave the engine. BG/NBD (Fader, Hardie and Lee
2005: r, alpha, a, b) and Gamma-Gamma (Fader and Hardie 2013: p, q, v) are fitted by
pymc-marketing's MAP with flat priors (the optional extra ``huaxiang[clv]``), on a
deterministic sample of at most ``sample_size`` buyers; :func:`fit_bgnbd_mle` and
:func:`fit_gamma_gamma_mle` are independent maximum-likelihood fits on the closed-form
log-likelihoods with SciPy (used by the tests, and by ``fitter="scipy"``). Per buyer:

- probability alive: ``1 / (1 + [x > 0] a / (b + x - 1) ((alpha + T) / (alpha + t_x))^(r + x))``;
- expected purchases in the next ``t`` days (FHL 2005, eq. 10, with the Gauss
  hypergeometric function ``scipy.special.hyp2f1``);
- expected spend: expected purchases × the Gamma-Gamma conditional mean spend
  ``p (v + x m) / (p x + q - 1)``.

Users who never bought get no value (NULL): the model describes buyers.
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa
from scipy import optimize, special

from huaxiang.errors import ConfigError, MissingInputError
from huaxiang.segment.rfm import day_start, valid_orders

CLV_NEEDS = ("users.user_id", "orders.user_id", "orders.order_time", "orders.amount")
#: Fewest buyers, and fewest repeat buyers, a fit is attempted on.
MIN_BUYERS = 20
INSTALL_HINT = "install huaxiang[clv] (pymc-marketing) to fit the BG/NBD and Gamma-Gamma models"


@dataclass(frozen=True)
class ClvFit:
    """Fitted BG/NBD (r, alpha, a, b) and Gamma-Gamma (p, q, v) parameters and what they were fitted on."""

    r: float
    alpha: float
    a: float
    b: float
    p: float
    q: float
    v: float
    fitter: str
    buyers: int
    fitted_on: int
    repeat_buyers: int
    horizon_days: int

    def to_dict(self) -> dict[str, Any]:
        """The parameters as JSON data, rounded to 6 decimals as the manifest rounds them."""
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in asdict(self).items()}


def clv_summary(orders: ir.Table, as_of: dt.date) -> ir.Table:
    """Per buyer: ``user_id``, ``frequency``, ``recency``, ``T`` (days) and ``monetary_value``.

    Valid orders (after-sale excluded) with a positive amount, strictly before ``as_of``;
    orders of one calendar day form one purchase day.
    """
    valid = valid_orders(orders)
    valid = valid.filter((valid.order_time < day_start(as_of)) & (valid.amount > 0))
    days = valid.group_by("user_id", day=valid.order_time.date()).aggregate(spend=valid.amount.sum())
    stats = days.group_by("user_id").aggregate(
        first_day=days.day.min(),
        last_day=days.day.max(),
        purchase_days=days.count(),
        total=days.spend.sum(),
        first_spend=days.spend.argmin(days.day),  # one row per day: no tie
    )
    last_seen = ibis.date(as_of - dt.timedelta(days=1))
    frequency = (stats.purchase_days - 1).cast("int64")
    repeat_spend = (stats.total - stats.first_spend).cast("float64")
    return stats.select(
        "user_id",
        frequency=frequency,
        recency=stats.last_day.delta(stats.first_day, unit="day").cast("int64"),
        T=last_seen.delta(stats.first_day, unit="day").cast("int64"),
        monetary_value=ibis.ifelse(frequency > 0, repeat_spend / frequency.cast("float64"), 0.0),
    )


# ---------------------------------------------------------------------------- closed forms


def bgnbd_log_likelihood(
    params: np.ndarray, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """Per-buyer BG/NBD log-likelihood (Fader, Hardie and Lee 2005, eq. 6) at ``(r, alpha, a, b)``."""
    r, alpha, a, b = params
    x, tx = frequency, recency
    ln_a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    ln_a2 = special.gammaln(a + b) + special.gammaln(b + x) - special.gammaln(b) - special.gammaln(a + b + x)
    ln_a3 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        ln_a4 = np.where(
            x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + tx), -np.inf
        )
    return np.asarray(ln_a1 + ln_a2 + np.logaddexp(ln_a3, ln_a4))


def gamma_gamma_log_likelihood(params: np.ndarray, frequency: np.ndarray, monetary: np.ndarray) -> np.ndarray:
    """Per-buyer Gamma-Gamma log-likelihood of the mean repeat spend (buyers with ``frequency > 0``)."""
    p, q, v = params
    x, m = frequency, monetary
    return np.asarray(
        special.gammaln(p * x + q)
        - special.gammaln(p * x)
        - special.gammaln(q)
        + q * np.log(v)
        + (p * x - 1) * np.log(m)
        + p * x * np.log(x)
        - (p * x + q) * np.log(x * m + v)
    )


def _minimise(objective: Any, start: np.ndarray) -> np.ndarray:
    """Minimise over log-parameters (keeps them positive); Nelder-Mead polish after L-BFGS."""
    first = optimize.minimize(objective, np.log(start), method="L-BFGS-B")
    polished = optimize.minimize(
        objective, first.x, method="Nelder-Mead", options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 20_000}
    )
    best = polished if polished.fun <= first.fun else first
    return np.asarray(np.exp(best.x))


def fit_bgnbd_mle(frequency: np.ndarray, recency: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Maximum-likelihood ``(r, alpha, a, b)`` from the closed-form log-likelihood (SciPy)."""
    x, tx, t = (np.asarray(v, dtype="float64") for v in (frequency, recency, T))
    scale = max(float(t.max()), 1.0)

    def negative(log_params: np.ndarray) -> float:
        r, alpha, a, b = np.exp(log_params)
        # The likelihood is fitted on T scaled to [0, 1]: alpha scales back with it.
        total = bgnbd_log_likelihood(np.array([r, alpha, a, b]), x, tx / scale, t / scale).sum()
        return float(-total) if np.isfinite(total) else 1e300

    r, alpha, a, b = _minimise(negative, np.array([0.5, 0.5, 1.0, 1.0]))
    return np.array([r, alpha * scale, a, b])


def fit_gamma_gamma_mle(frequency: np.ndarray, monetary: np.ndarray) -> np.ndarray:
    """Maximum-likelihood ``(p, q, v)`` of the Gamma-Gamma spend model (SciPy)."""
    x, m = np.asarray(frequency, dtype="float64"), np.asarray(monetary, dtype="float64")
    scale = float(np.median(m)) or 1.0

    def negative(log_params: np.ndarray) -> float:
        total = gamma_gamma_log_likelihood(np.exp(log_params), x, m / scale).sum()
        return float(-total) if np.isfinite(total) else 1e300

    p, q, v = _minimise(negative, np.array([1.0, 2.0, 1.0]))
    return np.array([p, q, v * scale])


def probability_alive(fit: ClvFit, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray) -> np.ndarray:
    """P(alive | x, t_x, T) of BG/NBD; 1 for a buyer with no repeat purchase."""
    x, tx, t = (np.asarray(v, dtype="float64") for v in (frequency, recency, T))
    with np.errstate(divide="ignore", over="ignore"):
        log_ratio = (
            np.log(fit.a)
            - np.log(np.maximum(fit.b + x - 1, 1e-300))
            + (fit.r + x) * (np.log(fit.alpha + t) - np.log(fit.alpha + tx))
        )
    return np.where(x > 0, 1.0 / (1.0 + np.exp(log_ratio)), 1.0)


def expected_purchases(
    fit: ClvFit, horizon: float, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """Expected purchase days in the next ``horizon`` days (FHL 2005, eq. 10)."""
    x, tx, t = (np.asarray(v, dtype="float64") for v in (frequency, recency, T))
    r, alpha, a, b = fit.r, fit.alpha, fit.a, fit.b
    z = horizon / (alpha + t + horizon)
    hyper = special.hyp2f1(r + x, b + x, a + b + x - 1, z)
    first = (a + b + x - 1) / (a - 1) * (1 - ((alpha + t) / (alpha + t + horizon)) ** (r + x) * hyper)
    alive = probability_alive(fit, x, tx, t)
    return np.asarray(first * alive)


def expected_spend_per_purchase(fit: ClvFit, frequency: np.ndarray, monetary: np.ndarray) -> np.ndarray:
    """Gamma-Gamma conditional mean spend per purchase day; the population mean without repeats."""
    x, m = np.asarray(frequency, dtype="float64"), np.asarray(monetary, dtype="float64")
    return np.asarray(fit.p * (fit.v + x * m) / (fit.p * x + fit.q - 1))


# ---------------------------------------------------------------------------- fitting


def _fit_pymc(stats: pd.DataFrame, repeat: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """MAP fits of pymc-marketing's BetaGeoModel and GammaGammaModel with flat priors (= MLE)."""
    try:
        from pymc_extras.prior import Prior
        from pymc_marketing.clv import BetaGeoModel, GammaGammaModel
    except ImportError:
        raise MissingInputError(INSTALL_HINT) from None
    flat = {name: Prior("HalfFlat") for name in ("r", "alpha", "a", "b")}
    data = stats.rename(columns={"user_id": "customer_id"})[["customer_id", "frequency", "recency", "T"]]
    spend = repeat.rename(columns={"user_id": "customer_id"})[["customer_id", "frequency", "monetary_value"]]
    with warnings.catch_warnings():
        # PyMC and ArviZ warn about their own internals (deprecations, sampler notes) on every fit.
        warnings.simplefilter("ignore")
        fitted: Any = BetaGeoModel(data=data, model_config=flat).fit(method="map", progressbar=False)
        bg = np.array([float(fitted.posterior[name].values.ravel()[0]) for name in ("r", "alpha", "a", "b")])
        fitted = GammaGammaModel(data=spend).fit(method="map", progressbar=False)
        gg = np.array([float(fitted.posterior[name].values.ravel()[0]) for name in ("p", "q", "v")])
    return bg, gg


def fit_clv(
    stats: pd.DataFrame,
    *,
    horizon_days: int = 180,
    sample_size: int = 200_000,
    seed: int = 0,
    fitter: str = "pymc",
) -> ClvFit:
    """Fit BG/NBD and Gamma-Gamma on the buyers' statistics (a deterministic sample when large).

    Parameters
    ----------
    stats
        :func:`clv_summary` rows: ``user_id``, ``frequency``, ``recency``, ``T``, ``monetary_value``.
    horizon_days
        The horizon the expected purchases and spend are for (recorded with the fit).
    sample_size
        Most buyers fitted on; a larger population is sampled (``seed``, rows in ``user_id`` order).
    seed
        Seed of the sample.
    fitter
        ``pymc`` (pymc-marketing MAP with flat priors) or ``scipy`` (:func:`fit_bgnbd_mle`).

    Raises
    ------
    MissingInputError
        Fewer than :data:`MIN_BUYERS` buyers or repeat buyers, or pymc-marketing absent.
    """
    if horizon_days < 1 or sample_size < MIN_BUYERS:
        raise ConfigError(
            f"clv: horizon_days must be at least 1 and sample_size at least {MIN_BUYERS}; "
            f"got {horizon_days} and {sample_size}."
        )
    stats = stats.sort_values("user_id", kind="stable").reset_index(drop=True)
    sample = stats
    if len(stats) > sample_size:
        picked = np.sort(np.random.default_rng(seed).choice(len(stats), sample_size, replace=False))
        sample = stats.iloc[picked].reset_index(drop=True)
    repeat = sample[(sample.frequency > 0) & (sample.monetary_value > 0)]
    if len(sample) < MIN_BUYERS or len(repeat) < MIN_BUYERS:
        raise MissingInputError(
            f"clv needs at least {MIN_BUYERS} buyers and {MIN_BUYERS} repeat buyers; the data has "
            f"{len(sample)} buyers, {len(repeat)} of them with a repeat purchase day."
        )
    if fitter == "pymc":
        bg, gg = _fit_pymc(sample, repeat)
    else:
        bg = fit_bgnbd_mle(sample.frequency.to_numpy(), sample.recency.to_numpy(), sample["T"].to_numpy())
        gg = fit_gamma_gamma_mle(repeat.frequency.to_numpy(), repeat.monetary_value.to_numpy())
    r, alpha, a, b = (float(value) for value in bg)
    p, q, v = (float(value) for value in gg)
    return ClvFit(
        r=r,
        alpha=alpha,
        a=a,
        b=b,
        p=p,
        q=q,
        v=v,
        fitter=fitter,
        buyers=len(stats),
        fitted_on=len(sample),
        repeat_buyers=len(repeat),
        horizon_days=horizon_days,
    )


@dataclass(frozen=True)
class ClvResult:
    """The per-user table (Ibis) and the fit."""

    table: ir.Table
    fit: ClvFit


def clv_table(
    users: ir.Table,
    orders: ir.Table,
    as_of: dt.date,
    *,
    horizon_days: int = 180,
    sample_size: int = 200_000,
    seed: int = 0,
    fitter: str = "pymc",
) -> ClvResult:
    """``clv_p_alive``, ``clv_purchases_<h>d`` and ``clv_spend_<h>d`` per user (NULL for non-buyers).

    Parameters are those of :func:`fit_clv`; ``users`` gives the rows, ``orders`` the history.
    """
    # In user order: the fit's sample is drawn by row, so the same data gives the same fit on any engine.
    stats = clv_summary(orders, as_of).order_by("user_id").to_pyarrow().to_pandas()
    fit = fit_clv(stats, horizon_days=horizon_days, sample_size=sample_size, seed=seed, fitter=fitter)
    x, tx, t = stats.frequency.to_numpy(), stats.recency.to_numpy(), stats["T"].to_numpy()
    purchases = expected_purchases(fit, horizon_days, x, tx, t)
    spend = purchases * expected_spend_per_purchase(fit, x, stats.monetary_value.to_numpy())
    suffix = f"_{horizon_days}d"
    values = pa.table(
        {
            "user_id": pa.array(stats.user_id.astype(str).tolist(), pa.string()),
            "clv_p_alive": np.round(probability_alive(fit, x, tx, t), 6),
            f"clv_purchases{suffix}": np.round(purchases, 6),
            f"clv_spend{suffix}": np.round(spend, 2),
        }
    )
    joined = users.select("user_id").left_join(ibis.memtable(values), "user_id")
    table = joined.select("user_id", "clv_p_alive", f"clv_purchases{suffix}", f"clv_spend{suffix}")
    return ClvResult(table, fit)


__all__ = [
    "CLV_NEEDS",
    "INSTALL_HINT",
    "ClvFit",
    "ClvResult",
    "bgnbd_log_likelihood",
    "clv_summary",
    "clv_table",
    "expected_purchases",
    "expected_spend_per_purchase",
    "fit_bgnbd_mle",
    "fit_clv",
    "fit_gamma_gamma_mle",
    "gamma_gamma_log_likelihood",
    "probability_alive",
]
