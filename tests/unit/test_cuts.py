"""Cut points from data (SPEC item 8): planted distributions, rounding, the trait check, the sample shop."""

from __future__ import annotations

import datetime as dt
import json
import math
from decimal import Decimal
from pathlib import Path

import ibis
import numpy as np
import pyarrow as pa
import pytest

from huaxiang.datasets.sample import generate_sample
from huaxiang.errors import ConfigError
from huaxiang.segment import CutPointSuggester, column_values, value_grid_table
from huaxiang.segment.cuts import NotFittedError, nice_number


def plateaus(levels: list[tuple[float, float, int]], seed: int = 0, log: bool = False) -> np.ndarray:
    """Values spread evenly over each (low, high) span with the given head count (uniform in log10 if log)."""
    rng = np.random.default_rng(seed)
    parts = []
    for low, high, n in levels:
        if log:
            parts.append(10 ** rng.uniform(math.log10(low), math.log10(high), n))
        else:
            parts.append(rng.uniform(low, high, n))
    return np.concatenate(parts)


def test_recovers_the_seed_plateaus_on_a_linear_axis() -> None:
    # Seed 002's picture: head counts at four levels, changing at 1000, 3000 and 10000.
    values = plateaus(
        [(0, 1000, 30_000), (1000, 3000, 20_000), (3000, 10_000, 14_000), (10_000, 50_000, 1_000)]
    )
    suggester = CutPointSuggester(k=4, scale="linear").fit(values)
    assert suggester.edges_ == [1000.0, 3000.0, 10000.0]
    for raw, planted in zip(suggester.raw_edges_, (1000, 3000, 10000), strict=True):
        assert abs(raw - planted) / planted < 0.3
    assert sum(suggester.counts_) == values.size == suggester.n_values_


def test_recovers_planted_levels_on_a_log_axis() -> None:
    values = plateaus([(1, 100, 5_000), (100, 1_000, 20_000), (1_000, 100_000, 2_000)], log=True)
    suggester = CutPointSuggester(k=3).fit(values)
    assert suggester.edges_ == [100.0, 1000.0]
    for raw, planted in zip(suggester.raw_edges_, (100, 1000), strict=True):
        assert abs(math.log10(raw) - math.log10(planted)) < 0.1


def test_three_log_normal_clusters_land_in_different_bins() -> None:
    rng = np.random.default_rng(1)
    medians = [50.0, 1_000.0, 20_000.0]
    values = np.concatenate([rng.lognormal(math.log(m), 0.3, n) for m, n in zip(medians, (3000, 2000, 1000),
                                                                                   strict=True)])
    suggester = CutPointSuggester(k=5).fit(values)
    assert len(suggester.edges_) <= 4
    bins = suggester.transform(medians)
    assert len(set(bins.tolist())) == 3
    # No cut goes through the central 80 % (median × e^±1.28σ) of a cluster: cuts are in the gaps,
    # at the foot of each bump (the sparse gap between two bumps is a level, and a bin, of its own).
    for median in medians:
        assert not any(median * math.exp(-0.385) < e < median * math.exp(0.385) for e in suggester.raw_edges_)
    print("raw edges:", suggester.raw_edges_, "edges:", suggester.edges_, "counts:", suggester.counts_)


def test_natural_breaks_put_cuts_between_clusters() -> None:
    rng = np.random.default_rng(1)
    medians = [50.0, 1_000.0, 20_000.0]
    sizes = (3000, 2000, 1000)
    values = np.concatenate([rng.lognormal(math.log(m), 0.3, n) for m, n in zip(medians, sizes, strict=True)])
    suggester = CutPointSuggester(k=3, method="breaks").fit(values)
    # Each cut lies in the gap, beyond 2.5 sigma of both neighbouring clusters.
    for low, high, edge in zip(medians[:-1], medians[1:], suggester.raw_edges_, strict=True):
        assert low * math.exp(0.75) < edge < high * math.exp(-0.75)
    assert suggester.edges_ == [200.0, 5000.0]
    assert suggester.counts_ == list(sizes)


def test_respects_k_and_min_share() -> None:
    rng = np.random.default_rng(2)
    values = rng.lognormal(6, 1.5, 5000)
    for k in (2, 3, 6):
        for method in ("levels", "breaks"):
            fitted = CutPointSuggester(k=k, min_share=0.05, nice=False, method=method).fit(values)
            assert len(fitted.edges_) == k - 1
            assert min(fitted.counts_) >= 0.05 * values.size
            assert fitted.edges_ == sorted(fitted.edges_)
    # A share no k bins can all reach gives fewer bins, never a smaller one.
    skewed = np.concatenate([np.full(950, 10.0), rng.uniform(11, 1000, 50)])
    fitted = CutPointSuggester(k=4, min_share=0.25, nice=False).fit(skewed)
    assert len(fitted.edges_) < 3
    assert min(fitted.counts_) >= 0.25 * skewed.size


def test_deterministic_and_order_free() -> None:
    rng = np.random.default_rng(3)
    values = rng.lognormal(7, 1.2, 3000)
    first = CutPointSuggester().fit(values)
    again = CutPointSuggester().fit(values[::-1].copy())
    assert first.edges_ == again.edges_ and first.counts_ == again.counts_
    assert first.raw_edges_ == again.raw_edges_


@pytest.mark.parametrize(
    ("value", "nice"),
    [(2900, 3000), (1400, 1000), (4100, 5000), (0.07, 0.05), (1, 1), (160, 200), (24, 20), (0, 0),
     (-2900, -3000)],
)
def test_nice_rounding(value: float, nice: float) -> None:
    assert nice_number(value) == nice


def test_nice_edges_are_1_2_3_5_times_a_power_of_ten() -> None:
    rng = np.random.default_rng(4)
    fitted = CutPointSuggester(k=6).fit(rng.lognormal(5, 2, 4000))
    for edge in fitted.edges_:
        mantissa = edge / 10 ** math.floor(math.log10(edge))
        assert round(mantissa, 9) in (1, 2, 3, 5)


def test_separation_matches_a_hand_computation() -> None:
    values = [1, 2, 3, 4, 5, 6]
    trait = [False, False, True, False, True, True]
    report = CutPointSuggester().separation(values, trait, edges=[3])
    # below: 1 of 3, above: 2 of 3, pooled 1/2: z = (2/3 - 1/3) / sqrt(1/4 * (1/3 + 1/3)).
    (row,) = report
    assert (row["edge"], row["n_below"], row["n_above"]) == (3.0, 3, 3)
    assert row["trait_rate_below"] == pytest.approx(1 / 3) and row["trait_rate_above"] == pytest.approx(2 / 3)
    assert row["z"] == pytest.approx((1 / 3) / math.sqrt(1 / 6))
    constant = CutPointSuggester().separation(values, [True] * 6, edges=[3, 10])
    assert math.isnan(constant[0]["z"]) and math.isnan(constant[1]["z"])
    assert constant[1]["n_above"] == 0 and math.isnan(constant[1]["trait_rate_above"])


def test_unfitted_use_says_so_by_name() -> None:
    message = r"CutPointSuggester is not fitted yet; call fit\(values\) first"
    with pytest.raises(NotFittedError, match=message):
        CutPointSuggester().separation([1, 2], [True, False])
    with pytest.raises(NotFittedError, match=message):
        CutPointSuggester().transform([1, 2])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"k": 1}, "k must be between 2 and 100, got 1"),
        ({"k": 2.5}, "k must be int"),
        ({"min_share": 0.3}, "min_share × k must be at most 1"),
        ({"scale": "log"}, "scale must be one of log1p, linear, got 'log'"),
        ({"method": "jenks"}, "method must be one of levels, breaks, got 'jenks'"),
        ({"resolution": 6}, "resolution must be at least 2 × k = 10"),
    ],
)
def test_bad_parameters_fail_in_fit(params: dict[str, object], message: str) -> None:
    suggester = CutPointSuggester(**params)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=message):
        suggester.fit([1.0, 2.0, 3.0])


def test_bad_values() -> None:
    with pytest.raises(ConfigError, match="cannot fit on no values"):
        CutPointSuggester().fit([])
    with pytest.raises(ConfigError, match="needs values > -1"):
        CutPointSuggester().fit([-5.0, 1.0])
    with pytest.raises(ConfigError, match="finite"):
        CutPointSuggester().fit([1.0, float("nan")])
    assert CutPointSuggester().fit([7.0, 7.0]).edges_ == []


def test_arrow_and_ibis_inputs() -> None:
    money = pa.array([Decimal("10.50"), None, Decimal("2000.00")], type=pa.decimal128(18, 2))
    fitted = CutPointSuggester(k=2, min_share=0.0).fit(money)
    assert fitted.n_values_ == 2
    table = ibis.memtable({"spend": [1.0, None, 3.0]}, schema={"spend": "float64"})
    assert column_values(table, "spend").tolist() == [1.0, 3.0]
    with pytest.raises(ConfigError, match="column 'spnd' is not in the table"):
        column_values(table, "spnd")


@pytest.fixture(scope="module")
def sample_shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sample")
    generate_sample(out, users=2000, seed=7)
    return out


def test_sample_shop_edges_grid_and_cross_category_separation(sample_shop: Path) -> None:
    con = ibis.duckdb.connect()
    users = con.read_parquet(sample_shop / "users.parquet")
    orders = con.read_parquet(sample_shop / "orders.parquet")
    items = con.read_parquet(sample_shop / "order_items.parquet")
    products = con.read_parquet(sample_shop / "products.parquet")
    planted = json.loads((sample_shop / "planted.json").read_text())["lifecycle"]
    as_of = dt.date.fromisoformat(planted["as_of"]) + dt.timedelta(days=1)

    grid = value_grid_table(users, orders, as_of)
    frame = con.execute(grid)
    distribution = frame.value_layer.value_counts().sort_index()
    print("value layers on the sample shop:\n", distribution.to_string())
    assert len(frame) == 2000 and frame.user_id.is_unique
    assert set(distribution.index) <= set(range(21)) and len(distribution) >= 15
    assert (frame.value_layer == 0).sum() == (frame.historical_spend == 0).sum()
    assert frame.value_layer_name.notna().all() and frame.value_layer_strategy.notna().all()

    buyers = grid.filter(grid.spend_bin > 0)
    spend = column_values(buyers, "historical_spend")
    suggester = CutPointSuggester().fit(spend)
    print("suggested spend edges:", suggester.edges_, "counts:", suggester.counts_)
    assert 2 <= len(suggester.edges_) <= 4
    assert all(a < b for a, b in zip(suggester.edges_, suggester.edges_[1:], strict=False))
    assert spend.min() < suggester.edges_[0] and suggester.edges_[-1] < spend.max()
    # Suggested edges feed the grid directly.
    suggested = con.execute(value_grid_table(users, orders, as_of, spend_edges=(0, *suggester.edges_)))
    assert suggested.value_layer.max() <= (len(suggester.edges_) + 1) * 5  # 0 is an edge too
    assert (suggested.value_layer == 0).sum() == (frame.value_layer == 0).sum()

    # Cross-category buyers (two or more top-level categories): seed 002's trait check.
    valid = orders.filter(~orders.is_after_sale.fill_null(False))
    lines = items.join(products, "product_id").join(valid, "order_id")
    categories = lines.group_by("user_id").aggregate(categories=lines.category_l1.nunique())
    joined = con.execute(
        buyers.left_join(categories, "user_id").select("historical_spend", "categories")
    )
    cross = (joined.categories.fillna(0) >= 2).to_numpy()
    amounts = joined.historical_spend.astype(float).to_numpy()
    report = suggester.separation(amounts, cross, edges=[1000, 3000, 10000])
    print("seed edges vs cross-category buying:", report)
    for row in report:
        assert row["trait_rate_above"] > row["trait_rate_below"] and row["z"] > 1.96
