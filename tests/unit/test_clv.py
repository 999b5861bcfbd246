"""Churn probability and expected value: closed forms, the two fits, the statistics and the tag.

The closed forms are checked against the worked example of Fader, Hardie and Lee (2005);
the maximum-likelihood fits recover the parameters of data simulated from the models;
pymc-marketing's MAP fit (with ``huaxiang[clv]``) agrees with the independent SciPy fit.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import sys
from decimal import Decimal
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from huaxiang.engine import build
from huaxiang.errors import ConfigError, MissingInputError
from huaxiang.segment.clv import (
    INSTALL_HINT,
    ClvFit,
    clv_summary,
    expected_purchases,
    expected_spend_per_purchase,
    fit_bgnbd_mle,
    fit_clv,
    fit_gamma_gamma_mle,
    probability_alive,
)

HAS_PYMC = importlib.util.find_spec("pymc_marketing") is not None
needs_pymc = pytest.mark.skipif(not HAS_PYMC, reason="install huaxiang[clv] (pymc-marketing) for this test")
AS_OF = dt.date(2026, 7, 1)

# FHL 2005 (CDNOW): r, alpha, a, b; and their worked example, a customer with x = 2,
# t_x = 30.43, T = 38.86 weeks expects 1.226 transactions in the next 39 weeks.
CDNOW = ClvFit(r=0.243, alpha=4.414, a=0.793, b=2.426, p=6.25, q=3.74, v=15.44, fitter="paper",
               buyers=2357, fitted_on=2357, repeat_buyers=946, horizon_days=39)


def test_closed_forms_match_the_published_worked_example() -> None:
    x, tx, t = np.array([2.0, 0.0]), np.array([30.43, 0.0]), np.array([38.86, 38.86])
    assert expected_purchases(CDNOW, 39, x, tx, t)[0] == pytest.approx(1.226, abs=5e-4)
    alive = probability_alive(CDNOW, x, tx, t)
    assert 0 < alive[0] < 1 and alive[1] == 1.0  # no repeat purchase: never seen to drop out
    # Gamma-Gamma: without repeats the expected spend is the population mean p v / (q - 1).
    mean = CDNOW.p * CDNOW.v / (CDNOW.q - 1)
    assert expected_spend_per_purchase(CDNOW, np.array([0.0]), np.array([0.0]))[0] == pytest.approx(mean)
    # With many repeats it moves towards the customer's own mean.
    assert expected_spend_per_purchase(CDNOW, np.array([50.0]), np.array([100.0]))[0] > 90


def simulate_bgnbd(n: int, r: float, alpha: float, a: float, b: float, seed: int) -> pd.DataFrame:
    """Buyers whose first purchase is at 0, observed for T days: x, t_x, T from the BG/NBD story."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(r, 1 / alpha, n)
    drop = rng.beta(a, b, n)
    horizon = rng.uniform(30, 365, n)
    now = np.zeros(n)
    frequency = np.zeros(n)
    recency = np.zeros(n)
    alive = np.ones(n, dtype=bool)
    while alive.any():
        now = np.where(alive, now + rng.exponential(1 / np.maximum(rate, 1e-12)), now)
        alive &= now < horizon
        frequency += alive
        recency = np.where(alive, now, recency)
        alive &= rng.random(n) >= drop  # after each repeat purchase the buyer may drop out
    return pd.DataFrame({"user_id": [f"c{i:05d}" for i in range(n)], "frequency": frequency,
                         "recency": recency, "T": horizon})


def test_maximum_likelihood_recovers_simulated_bgnbd_parameters() -> None:
    truth = np.array([0.8, 20.0, 0.9, 3.0])
    data = simulate_bgnbd(20_000, *truth, seed=1)
    fitted = fit_bgnbd_mle(data.frequency.to_numpy(), data.recency.to_numpy(), data["T"].to_numpy())
    assert fitted == pytest.approx(truth, rel=0.15)


def test_maximum_likelihood_recovers_simulated_gamma_gamma_parameters() -> None:
    rng = np.random.default_rng(2)
    p, q, v = 4.0, 3.0, 30.0
    n = 8_000
    frequency = rng.integers(1, 10, n).astype(float)
    nu = rng.gamma(q, 1 / v, n)
    mean_spend = np.array([rng.gamma(p, 1 / nu[i], int(frequency[i])).mean() for i in range(n)])
    fitted = fit_gamma_gamma_mle(frequency, mean_spend)
    # q and the mean spend p v / (q - 1) are well identified; p and v trade off (the
    # likelihood at this fit is higher than at the truth: sampling noise, not the optimiser).
    assert fitted[1] == pytest.approx(q, rel=0.05)
    assert fitted[0] * fitted[2] / (fitted[1] - 1) == pytest.approx(p * v / (q - 1), rel=0.05)
    assert fitted[0] == pytest.approx(p, rel=0.25)


def tiny_orders() -> ibis.Table:
    rows = [  # user, time, amount, after-sale
        ("u1", "2026-01-10 09:00", "10.00", False),
        ("u1", "2026-01-10 18:00", "30.00", False),  # same day: one purchase day of 40
        ("u1", "2026-03-01 12:00", "20.00", False),
        ("u1", "2026-04-11 12:00", "60.00", False),
        ("u1", "2026-05-01 12:00", "99.00", True),  # after-sale: not counted
        ("u2", "2026-06-01 12:00", "15.00", False),
        ("u2", "2026-07-01 00:00", "15.00", False),  # on the as-of date: not used
        ("u3", "2026-02-01 12:00", "0.00", False),  # nothing paid: not a purchase
    ]
    return ibis.memtable(
        pa.table(
            {
                "user_id": [r[0] for r in rows],
                "order_time": pa.array([dt.datetime.fromisoformat(r[1]) for r in rows], pa.timestamp("us")),
                "amount": pa.array([Decimal(r[2]) for r in rows], pa.decimal128(18, 2)),
                "is_after_sale": [r[3] for r in rows],
            }
        )
    )


def test_summary_counts_purchase_days_before_the_as_of_date() -> None:
    rows = {r["user_id"]: r for r in clv_summary(tiny_orders(), AS_OF).to_pyarrow().to_pylist()}
    assert set(rows) == {"u1", "u2"}
    # u1: days 01-10, 03-01, 04-11 -> 2 repeats, last 91 days after the first, T to 06-30 = 171.
    assert (rows["u1"]["frequency"], rows["u1"]["recency"], rows["u1"]["T"]) == (2, 91, 171)
    assert rows["u1"]["monetary_value"] == pytest.approx(40.0)  # (20 + 60) / 2 repeat days
    assert (rows["u2"]["frequency"], rows["u2"]["recency"], rows["u2"]["T"]) == (0, 0, 29)
    assert rows["u2"]["monetary_value"] == 0.0


@needs_pymc
def test_summary_matches_pymc_marketing_rfm_summary() -> None:
    from pymc_marketing.clv import rfm_summary

    table = tiny_orders().to_pyarrow().to_pandas()
    table = table[(~table.is_after_sale) & (table.amount > 0) & (table.order_time < pd.Timestamp(AS_OF))]
    table = table.assign(amount=table.amount.astype(float))
    expected = rfm_summary(
        table, "user_id", "order_time", monetary_value_col="amount",
        observation_period_end=pd.Timestamp(AS_OF - dt.timedelta(days=1)),
    ).set_index("customer_id")
    got = clv_summary(tiny_orders(), AS_OF).to_pyarrow().to_pandas().set_index("user_id")
    for column in ("frequency", "recency", "T", "monetary_value"):
        assert got[column].astype(float).to_dict() == pytest.approx(expected[column].astype(float).to_dict())


def test_fit_needs_enough_buyers_and_checks_its_parameters() -> None:
    small = simulate_bgnbd(10, 0.8, 20.0, 0.9, 3.0, seed=3).assign(monetary_value=10.0)
    with pytest.raises(MissingInputError, match="clv needs at least 20 buyers and 20 repeat buyers"):
        fit_clv(small, fitter="scipy")
    with pytest.raises(ConfigError, match="horizon_days must be at least 1"):
        fit_clv(small, horizon_days=0, fitter="scipy")


def simulated_buyers(n: int = 3_000) -> pd.DataFrame:
    data = simulate_bgnbd(n, 0.8, 20.0, 0.9, 3.0, seed=4)
    spend = np.random.default_rng(5).gamma(4.0, 10.0, n)
    return data.assign(monetary_value=np.where(data.frequency > 0, spend, 0.0))


def test_fit_on_a_deterministic_sample_when_large() -> None:
    data = simulated_buyers()
    first = fit_clv(data, sample_size=1_000, seed=3, fitter="scipy")
    again = fit_clv(data.sample(frac=1.0, random_state=1), sample_size=1_000, seed=3, fitter="scipy")
    assert first == again and first.fitted_on == 1_000 and first.buyers == 3_000


@needs_pymc
def test_pymc_marketing_map_fit_agrees_with_the_independent_maximum_likelihood_fit() -> None:
    data = simulated_buyers()
    pymc = fit_clv(data, fitter="pymc")
    scipy = fit_clv(data, fitter="scipy")
    for name in ("r", "alpha", "a", "b", "p", "q", "v"):
        assert getattr(pymc, name) == pytest.approx(getattr(scipy, name), rel=0.01), name
    x, tx, t = data.frequency.to_numpy(), data.recency.to_numpy(), data["T"].to_numpy()
    assert np.abs(probability_alive(pymc, x, tx, t) - probability_alive(scipy, x, tx, t)).max() < 0.005
    assert expected_purchases(pymc, 180, x, tx, t) == pytest.approx(expected_purchases(scipy, 180, x, tx, t),
                                                                     rel=0.01, abs=1e-3)


# ---------------------------------------------------------------------------- the tag in a build


CLV_TAGS = """
- id: clv_p_alive
  name_zh: 存活概率
  name_en: Probability alive
  category: operable
  type: probability
  model: {name: clv, params: {column: clv_p_alive, fitter: FITTER}}
- id: clv_spend_180d
  name_zh: 未来180天预期消费
  name_en: Expected spend, 180 days
  category: operable
  type: number
  model: {name: clv, params: {column: clv_spend_180d, fitter: FITTER}}
"""


def simulated_workspace(root: Path, fitter: str) -> Path:
    """A workspace whose orders are the simulated buyers' purchase days (amount 10-60)."""
    data = simulated_buyers(600)
    rng = np.random.default_rng(6)
    start = dt.datetime(2026, 7, 1) - dt.timedelta(days=365)
    users, times, amounts = [], [], []
    for row in data.itertuples(index=False):
        first = start + dt.timedelta(days=365 - float(row.T))
        repeats = int(row.frequency)
        middle = sorted(rng.uniform(1, max(row.recency - 1, 1), max(repeats - 1, 0)))
        days = [0.0, *middle, *([float(row.recency)] if repeats else [])]
        for day in days:
            users.append(row.user_id)
            times.append(first + dt.timedelta(days=day))
            amounts.append(Decimal(int(rng.integers(10, 61))))
    (root / "data").mkdir(parents=True)
    (root / "tags").mkdir()
    pq.write_table(pa.table({"user_id": sorted(set(data.user_id) | {"never"})}),
                           root / "data" / "users.parquet")
    pq.write_table(
        pa.table({"order_id": [f"o{i}" for i in range(len(users))], "user_id": users,
                  "order_time": pa.array(times, pa.timestamp("us")),
                  "amount": pa.array(amounts, pa.decimal128(18, 2))}),
        root / "data" / "orders.parquet",
    )
    (root / "tags" / "clv.yaml").write_text(CLV_TAGS.replace("FITTER", fitter), encoding="utf-8")
    return root


def test_clv_tags_are_built_with_their_parameters_in_the_manifest_and_snapshot(tmp_path: Path) -> None:
    result = build(simulated_workspace(tmp_path / "ws", "scipy"), AS_OF)
    assert result.skipped == {}
    # The detail is keyed by the maker call (the fitter is a parameter): one clv fit.
    [fits] = [rows for name, rows in result.manifest["models"].items() if name.startswith("clv")]
    [fit] = fits
    assert set(fit) >= {"r", "alpha", "a", "b", "p", "q", "v"} and fit["fitter"] == "scipy"
    saved = json.loads(next((result.path / "models").glob("clv*.model.json")).read_text(encoding="utf-8"))
    assert saved == fit
    rows = {r["user_id"]: r for r in pq.read_table(result.path / "tags.parquet").to_pylist()}
    assert rows["never"]["clv_p_alive"] is None and rows["never"]["clv_spend_180d"] is None
    buyers = [r for user, r in rows.items() if user != "never"]
    assert all(0 < r["clv_p_alive"] <= 1 and r["clv_spend_180d"] >= 0 for r in buyers)


def test_without_pymc_marketing_the_tags_are_skipped_with_the_install_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pymc_marketing", None)  # import fails as if not installed
    monkeypatch.setitem(sys.modules, "pymc_marketing.clv", None)
    result = build(simulated_workspace(tmp_path / "ws", "pymc"), AS_OF)
    reason = f"missing input: {INSTALL_HINT}"
    assert result.skipped == dict.fromkeys(("clv_p_alive", "clv_spend_180d"), reason)
    assert "install huaxiang[clv]" in INSTALL_HINT


def test_unknown_fitter_is_a_config_error_naming_the_tag(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"tag clv_p_alive\).*fitter takes pymc .* or scipy, got 'mcmc'"):
        build(simulated_workspace(tmp_path / "ws", "mcmc"), AS_OF)
