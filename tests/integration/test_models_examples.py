"""Model tags on the real data sets: churn / CLV on Online Retail II, value groups on JData.

Each example is ingested once per session (conftest.py); here a workspace pointing at
the ingested data is built with the model tag files alone, so the standard-catalog
snapshots of ``test_example_builds.py`` are not touched.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import shutil
from importlib import resources
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from realdata import SHARED_DATA, Ingested

from huaxiang.config import CONFIG_FILE
from huaxiang.engine import BuildResult, build
from huaxiang.segment.clv import INSTALL_HINT

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"the real data sets are not here: {SHARED_DATA}"),
]

HAS_PYMC = importlib.util.find_spec("pymc_marketing") is not None
RETAIL_AS_OF = dt.date(2011, 12, 10)  # the data ends on 2011-12-09
RETAIL_HOLDOUT = dt.date(2011, 6, 10)  # fit here, compare with the 180 days that followed
JDATA_AS_OF = dt.date(2016, 3, 1)
PACKAGED = Path(str(resources.files("huaxiang.templates").joinpath("tags")))


def model_workspace(ingested: Ingested, root: Path, files: dict[str, str]) -> Path:
    """A workspace over the ingested data (a link, no copy) whose catalog is ``files`` only."""
    root.mkdir(parents=True)
    shutil.copy(ingested.root / CONFIG_FILE, root / CONFIG_FILE)
    (root / "data").symlink_to((ingested.root / "data").resolve(), target_is_directory=True)
    (root / "tags").mkdir()
    for name, text in files.items():
        (root / "tags" / name).write_text(text, encoding="utf-8")
    return root


def scipy_clv() -> str:
    """The standard clv.yaml with the SciPy maximum-likelihood fitter (runs without huaxiang[clv])."""
    text = (PACKAGED / "clv.yaml").read_text(encoding="utf-8")
    return text.replace("params: {column: clv_", "params: {fitter: scipy, column: clv_")


def clv_fit(result: BuildResult) -> dict[str, float]:
    [rows] = [rows for name, rows in result.manifest["models"].items() if name.startswith("clv")]
    fit: dict[str, float] = rows[0]
    return fit


# --------------------------------------------------------------------------- Online Retail II


@pytest.fixture(scope="module")
def retail_clv(retail: Ingested, tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    groups = (PACKAGED / "value_groups.yaml").read_text("utf-8")
    files = {"clv.yaml": scipy_clv(), "value_groups.yaml": groups}
    root = model_workspace(retail, tmp_path_factory.mktemp("retail_models") / "ws", files)
    return build(root, RETAIL_AS_OF)


def test_retail_clv_tags_cover_every_buyer_and_record_the_parameters(
    retail: Ingested, retail_clv: BuildResult
) -> None:
    assert {"clv_p_alive", "clv_purchases_180d", "clv_spend_180d"} <= set(retail_clv.built)
    fit = clv_fit(retail_clv)
    for name in ("r", "alpha", "a", "b", "p", "q", "v"):
        assert fit[name] > 0, name
    assert fit["fitter"] == "scipy" and fit["horizon_days"] == 180
    # Buyers: customers with a valid (not cancelled) invoice of positive amount before the as-of date.
    buyers = retail.one(
        "SELECT count(*) FROM (SELECT \"Customer ID\" FROM loaded WHERE NOT starts_with(Invoice, 'C') "
        "GROUP BY ALL HAVING sum(Quantity * Price) > 0)"
    )
    assert fit["buyers"] == buyers
    rows = pq.read_table(retail_clv.path / "tags.parquet").to_pylist()
    scored = [row for row in rows if row["clv_p_alive"] is not None]
    assert len(scored) == buyers
    # (A long-gone frequent buyer's probability rounds to 0 at six decimals.)
    assert all(0 <= row["clv_p_alive"] <= 1 and row["clv_spend_180d"] >= 0 for row in scored)
    assert sum(row["clv_p_alive"] < 0.5 for row in scored) > 0.02 * buyers  # some have left
    saved = json.loads(next((retail_clv.path / "models").glob("clv*.model.json")).read_text(encoding="utf-8"))
    assert saved == fit


def test_retail_value_groups_are_skipped_naming_the_missing_features(retail_clv: BuildResult) -> None:
    reason = retail_clv.skipped["value_group_15"]
    assert reason.startswith("missing input: value groups need at least 3 of the features")
    assert "gender (column users.gender)" in reason and "browse_band (table events" in reason


def test_retail_clv_predicts_the_next_180_days_of_purchases(retail: Ingested, tmp_path: Path) -> None:
    """Fit on the data before 2011-06-10; the predicted purchase days of the next 180 days add up
    to within 15 % of what the customers then did (Online Retail II, 2011-06-10 .. 2011-12-06)."""
    result = build(model_workspace(retail, tmp_path / "ws", {"clv.yaml": scipy_clv()}), RETAIL_HOLDOUT)
    rows = pq.read_table(result.path / "tags.parquet", columns=["user_id", "clv_purchases_180d"]).to_pylist()
    predicted = {row["user_id"]: row["clv_purchases_180d"] for row in rows
                 if row["clv_purchases_180d"] is not None}
    actual = dict(
        retail.sql(
            """
            SELECT CAST(CAST("Customer ID" AS BIGINT) AS VARCHAR), count(DISTINCT CAST(InvoiceDate AS DATE))
            FROM loaded
            WHERE NOT starts_with(Invoice, 'C') AND Quantity * Price > 0
              AND InvoiceDate >= TIMESTAMP '2011-06-10' AND InvoiceDate < TIMESTAMP '2011-12-07'
            GROUP BY ALL
            """
        )
    )
    expected_total = sum(predicted.values())
    actual_total = sum(actual.get(user, 0) for user in predicted)
    assert expected_total == pytest.approx(actual_total, rel=0.15)
    # And per customer the prediction ranks them: the top decile by prediction buys far more.
    ranked = sorted(predicted, key=lambda user: (-predicted[user], user))
    top = ranked[: len(ranked) // 10]
    assert sum(actual.get(u, 0) for u in top) / len(top) > 3 * actual_total / len(predicted)


@pytest.mark.skipif(not HAS_PYMC, reason=INSTALL_HINT)
def test_retail_standard_clv_tags_fit_with_pymc_marketing_agree_with_the_scipy_fit(
    retail: Ingested, retail_clv: BuildResult, tmp_path: Path
) -> None:
    files = {"clv.yaml": (PACKAGED / "clv.yaml").read_text(encoding="utf-8")}
    result = build(model_workspace(retail, tmp_path / "ws", files), RETAIL_AS_OF)
    assert result.skipped == {}
    pymc, scipy = clv_fit(result), clv_fit(retail_clv)
    assert pymc["fitter"] == "pymc"
    assert result.manifest["models"]["clv.fit"][0] == pymc
    for name in ("r", "alpha", "a", "b", "p", "q", "v"):
        assert pymc[name] == pytest.approx(scipy[name], rel=0.02), name


# --------------------------------------------------------------------------- JData


@pytest.fixture(scope="module")
def jdata_groups(jdata: Ingested, tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    files = {"value_groups.yaml": (PACKAGED / "value_groups.yaml").read_text("utf-8")}
    return build(model_workspace(jdata, tmp_path_factory.mktemp("jdata_models") / "ws", files), JDATA_AS_OF)


def test_jdata_value_groups_run_on_the_features_present_and_say_which_are_missing(
    jdata: Ingested, jdata_groups: BuildResult
) -> None:
    assert jdata_groups.skipped == {}
    fit = jdata_groups.manifest["models"]["value_groups.fit"][0]
    assert fit["features"] == "gender,age_band,member_score_band,browse_band,purchase_band"
    assert fit["missing_features"].startswith("city_tier: none of users.real_name_city")
    assert "purchasing_power: column orders.amount" in fit["missing_features"]
    # No amounts: value is purchases (purchase events) per user, still monotone over L0..
    assert fit["measure"] == "purchases" and fit["monotone"] is True
    groups = jdata_groups.manifest["models"]["value_groups.groups"]
    assert len(groups) == 15
    values = [g["value_per_user"] for g in groups]
    assert values == sorted(values, reverse=True)
    saved = json.loads((jdata_groups.path / "models" / "value_groups.model.json").read_text(encoding="utf-8"))
    assert saved["sources"]["member_score_band"] == "users.member_level"
    assert set(saved["missing_features"]) == {"city_tier", "purchasing_power"}
    rows = pq.read_table(jdata_groups.path / "tags.parquet", columns=["value_group_15"]).to_pylist()
    assert all(row["value_group_15"] is not None for row in rows)
    # The purchases per user of the groups add up to the purchase events in the window.
    purchases = jdata.one(
        f"SELECT count(*) FROM read_parquet('{jdata.path('events')}') WHERE event_type = 'purchase' "
        "AND event_time < TIMESTAMP '2016-03-01'"
    )
    total = sum(g["users"] * g["value_per_user"] for g in groups)
    assert total == pytest.approx(purchases, abs=0.01)  # value per user is rounded to 6 places
