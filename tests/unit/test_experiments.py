"""Experiments on the sample shop: the planted campaign is detected, an A/A test is not, and the
numbers agree with an independent per-user computation (pandas + scipy) to 1e-9."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from analysis_shop import AS_OF, CAMPAIGN, planted, sample_shop
from scipy import stats as scipy_stats
from typer.testing import CliRunner

from huaxiang.analysis.experiments import (
    assign,
    assignment_path,
    create_experiment,
    definition_from_data,
    experiment_from_touches,
    get_experiment,
)
from huaxiang.analysis.metrics import experiment_results
from huaxiang.analysis.outcomes import OutcomeFileError, import_outcomes
from huaxiang.audience import AudienceEngine, DefinitionError, EmptyAudienceError
from huaxiang.cli import app
from huaxiang.errors import ConfigError, NotFoundError, RequestError

pytestmark = pytest.mark.slow
TOL = 1e-9


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = sample_shop(tmp_path_factory)
    experiment_from_touches(root, CAMPAIGN, name="double11")
    return root


def _aa_definition(name: str = "aa_active", **changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "name": name,
        "audience": "lifecycle_stage = 'active'",
        "variants": [{"name": "a", "ratio": 0.5}, {"name": "control", "ratio": 0.5}],
        "touch_date": "2026-10-18",
        "window_days": 7,
        "as_of": AS_OF.isoformat(),
    }
    data.update(changes)
    return data


def test_planted_campaign_is_detected(shop: Path) -> None:
    result = experiment_results(shop, "double11", by="lifecycle_stage")
    truth = planted(shop)["campaign"]["observed"]["all"]
    conversion = result.metric("conversion", "treatment")
    control = result.metric("conversion", "control")
    # The engine counts exactly the users and conversions the generator recorded.
    assert (conversion.users, round(conversion.value * conversion.users)) == (
        truth["treatment"]["users"],
        truth["treatment"]["converted"],
    )
    assert (control.users, round(control.value * control.users)) == (
        truth["control"]["users"],
        truth["control"]["converted"],
    )
    assert conversion.comparison is not None
    assert conversion.comparison.significant  # p ~ 0.014 at this seed and size
    assert conversion.comparison.ci_low > 0  # the whole 95 % interval is an improvement
    assert result.metric("order_count", "treatment").comparison.significant  # type: ignore[union-attr]
    # The effect is planted on active users only: significant there.
    active = result.metric("conversion", "treatment", segment="active")
    assert active.comparison is not None and active.comparison.p_value < 0.01
    assert result.segment_tag == "lifecycle_stage" and result.segment_as_of == "2026-09-30"
    assert result.window_complete and result.sizes == {
        "control": truth["control"]["users"],
        "treatment": truth["treatment"]["users"],
    }


def test_open_and_use_rates_come_from_the_touches(shop: Path) -> None:
    result = experiment_results(shop, "double11", save=False)
    touches = pq.read_table(shop / "data" / "touches.parquet").to_pandas()
    treated = touches[touches.variant == "treatment"]
    assert result.metric("open_rate", "treatment").value == pytest.approx(treated.opened.mean(), abs=1e-12)
    assert result.metric("use_rate", "treatment").value == pytest.approx(treated.used.mean(), abs=1e-12)
    # Control is held out (no outcome recorded): a rate with its interval, no comparison.
    assert result.metric("open_rate", "control").value is None
    assert result.metric("open_rate", "treatment").comparison is None


def _per_user(shop: Path, name: str, window_days: int) -> pd.DataFrame:
    """GMV, net and valid orders per assigned user, computed with pandas (independently)."""
    assignment = pq.read_table(assignment_path(shop, name)).to_pandas()
    orders = pq.read_table(shop / "data" / "orders.parquet").to_pandas()
    orders["amount"] = orders["amount"].astype(float)
    joined = orders.merge(assignment, on="user_id")
    window = pd.Timedelta(days=window_days)
    joined = joined[
        (joined.order_time >= joined.touch_time) & (joined.order_time < joined.touch_time + window)
    ]
    valid = (~joined.is_after_sale.fillna(False).astype(bool)) & (joined.amount > 0)
    joined = joined.assign(
        gmv=np.where(joined.amount > 0, joined.amount, 0.0),
        net=np.where(valid, joined.amount, 0.0),
        valid=valid.astype(int),
    )
    per_user = joined.groupby("user_id")[["gmv", "net", "valid"]].sum()
    return assignment.set_index("user_id").join(per_user).fillna({"gmv": 0.0, "net": 0.0, "valid": 0})


def test_results_match_scipy_on_the_per_user_data(shop: Path) -> None:
    result = experiment_results(shop, "double11", save=False)
    users = _per_user(shop, "double11", 7)
    treated, control = users[users.variant == "treatment"], users[users.variant == "control"]
    for metric, column in (("gmv_per_user", "gmv"), ("arpu", "net"), ("order_count", "valid")):
        comparison = result.metric(metric, "treatment").comparison
        expected = scipy_stats.ttest_ind(
            treated[column].astype(float), control[column].astype(float), equal_var=False
        )
        interval = expected.confidence_interval()
        assert comparison is not None
        assert comparison.statistic == pytest.approx(expected.statistic, abs=TOL), metric
        assert comparison.p_value == pytest.approx(expected.pvalue, abs=TOL), metric
        assert (comparison.ci_low, comparison.ci_high) == pytest.approx(
            (interval.low, interval.high), abs=1e-7
        )
    from statsmodels.stats.proportion import proportions_ztest

    converted = [int((treated.valid > 0).sum()), int((control.valid > 0).sum())]
    z, p = proportions_ztest(converted, [len(treated), len(control)])
    comparison = result.metric("conversion", "treatment").comparison
    assert comparison is not None
    assert (comparison.statistic, comparison.p_value) == pytest.approx((z, p), abs=TOL)


def test_an_aa_test_finds_nothing(shop: Path) -> None:
    create_experiment(shop, _aa_definition())
    sizes = assign(shop, "aa_active")
    result = experiment_results(shop, "aa_active", by="rfm_class")
    for metric in ("conversion", "gmv_per_user", "arpu", "order_count"):
        comparison = result.metric(metric, "a").comparison
        assert comparison is not None
        assert comparison.p_value > 0.05, metric
        assert comparison.ci_low < 0 < comparison.ci_high
    # The split is the audience engine's stable salted split (salt = the experiment's name).
    engine = AudienceEngine(shop, AS_OF)
    try:
        split = engine.split("lifecycle_stage = 'active'", [0.5, 0.5], "aa_active", names=["a", "control"])
    finally:
        engine.close()
    assignment = pq.read_table(assignment_path(shop, "aa_active"))
    assert assignment.column("user_id").to_pylist() == split.assignment.column("user_id").to_pylist()
    assert assignment.column("variant").to_pylist() == split.assignment.column("group").to_pylist()
    assert sizes == split.sizes()
    assert assign(shop, "aa_active") == sizes  # stable on reassignment


def test_funnel_is_nested_and_starts_with_the_reached(shop: Path) -> None:
    result = experiment_results(shop, "double11", save=False)
    for row in result.funnel:
        counts = list(row.counts.values())
        assert counts[0] == result.sizes[row.variant]
        assert counts == sorted(counts, reverse=True)
        assert 0 < counts[-1] < counts[1]
    users = _per_user(shop, "double11", 7)
    events = (
        pq.read_table(shop / "data" / "events.parquet", columns=["user_id", "event_time", "event_type"])
        .to_pandas()
        .merge(users.reset_index()[["user_id", "touch_time", "variant"]])
    )
    events = events[
        (events.event_time >= events.touch_time)
        & (events.event_time < events.touch_time + pd.Timedelta(days=7))
    ]
    visited = events[events.event_type.isin(["visit", "view"])].groupby("variant").user_id.nunique()
    for row in result.funnel:
        assert row.counts["return_visit"] == visited[row.variant]


def test_until_before_the_touch_date_is_refused(shop: Path) -> None:
    with pytest.raises(RequestError, match="before the touch date 2026-10-18"):
        experiment_results(shop, "double11", until=dt.date(2026, 10, 1))
    partial = experiment_results(shop, "double11", until=dt.date(2026, 10, 20), save=False)
    assert not partial.window_complete and "later outcomes are missing" in partial.notes[0]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"variants": [{"name": "a", "ratio": 0.5}, {"name": "control", "ratio": 0.4}]},
            r"ratios must sum to 1, got a=0.5, control=0.4 \(sum 0.9\)",
        ),
        ({"control": "holdout"}, "the control group 'holdout' is not one of the variants"),
        ({"metrics": ["conversion", "convertion"]}, r"metrics\.1: .*Did you mean 'conversion'"),
        ({"window_days": 0}, "window_days: Input should be greater than or equal to 1"),
        ({"name": "9lives"}, "experiment name '9lives' is not allowed"),
    ],
)
def test_bad_definitions_name_the_field(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        definition_from_data(_aa_definition(**changes))


def test_bad_requests_are_explained(shop: Path) -> None:
    with pytest.raises(NotFoundError, match="no experiment 'dubble11'. Did you mean 'double11'"):
        experiment_results(shop, "dubble11")
    with pytest.raises(NotFoundError, match="no tag 'lifecycle' in snapshot"):
        experiment_results(shop, "double11", by="lifecycle")
    with pytest.raises(RequestError, match="needs an enum or boolean tag; 'monetary_365d' is"):
        experiment_results(shop, "double11", by="monetary_365d")
    create_experiment(shop, _aa_definition("nobody", audience="lifecycle_stage = 'active' AND age > 200"))
    with pytest.raises(EmptyAudienceError, match="the audience is empty"):
        assign(shop, "nobody")
    create_experiment(shop, _aa_definition("unknown_saved", audience="@no_such_audience"))
    with pytest.raises(DefinitionError, match="no saved audience 'no_such_audience'"):
        assign(shop, "unknown_saved")
    create_experiment(shop, _aa_definition("unknown_tag", audience="lifecycle = 'active'"))
    with pytest.raises(DefinitionError, match="unknown tag 'lifecycle'"):
        assign(shop, "unknown_tag")
    create_experiment(shop, _aa_definition("not_assigned"))
    with pytest.raises(RequestError, match="has no assignment yet; run 'huaxiang experiment assign"):
        experiment_results(shop, "not_assigned")
    with pytest.raises(NotFoundError, match="no campaign 'camp_2026_double11'.*Did you mean"):
        experiment_from_touches(shop, "camp_2026_double11")


def test_imported_outcomes_give_open_and_use_rates(shop: Path, tmp_path: Path) -> None:
    create_experiment(shop, _aa_definition("coupon_ab", audience="lifecycle_stage IN ('active', 'new')"))
    assign(shop, "coupon_ab")
    assignment = pq.read_table(assignment_path(shop, "coupon_ab")).to_pandas()
    rng = np.random.default_rng(0)
    rates = np.where(assignment.variant == "a", 0.4, 0.2)
    opened = rng.random(len(assignment)) < rates
    frame = pd.DataFrame(
        {
            "user_id": assignment.user_id,
            "variant": assignment.variant,
            "opened": np.where(opened, "yes", "no"),
            "used": np.where(opened, "1", "0"),
        }
    )
    frame.loc[0, "used"] = ""  # unknown
    good = tmp_path / "outcomes.csv"
    frame.to_csv(good, index=False)
    summary = import_outcomes(shop, "coupon_ab", good)
    assert summary["a"]["opened"] == int(opened[assignment.variant == "a"].sum())
    result = experiment_results(shop, "coupon_ab", save=False)
    comparison = result.metric("open_rate", "a").comparison
    assert comparison is not None and comparison.p_value < 1e-6
    assert result.metric("use_rate", "a").users + result.metric("use_rate", "control").users == len(frame) - 1

    bad = frame.copy()
    bad.loc[2, "opened"] = "maybe"
    bad.loc[4, "variant"] = "b"
    bad.loc[6, "user_id"] = "U99999999"
    broken = tmp_path / "broken.csv"
    bad.to_csv(broken, index=False)
    with pytest.raises(OutcomeFileError) as error:
        import_outcomes(shop, "coupon_ab", broken)
    text = str(error.value)
    assert "broken.csv: 3 problem(s); nothing was imported" in text
    assert "row 3 (line 4): field 'opened' is 'maybe', not a boolean" in text
    assert "row 5 (line 6): field 'variant' is 'b', but user" in text
    assert "row 7 (line 8): user_id 'U99999999' is not in the experiment's assignment" in text
    frame.drop(columns=["used"]).to_csv(broken, index=False)
    with pytest.raises(OutcomeFileError, match=r"missing column\(s\) used"):
        import_outcomes(shop, "coupon_ab", broken)


def test_cli_create_assign_results(shop: Path) -> None:
    runner = CliRunner()
    created = runner.invoke(
        app,
        [
            "experiment",
            "create",
            "cli_ab",
            "-w",
            str(shop),
            "--audience",
            "lifecycle_stage = 'new'",
            "--variants",
            "coupon=0.8,control=0.2",
            "--touch-date",
            "2026-10-18",
            "--window",
            "5",
        ],
    )
    assert created.exit_code == 0, created.output
    assigned = runner.invoke(app, ["experiment", "assign", "cli_ab", "-w", str(shop), "--json"])
    assert assigned.exit_code == 0, assigned.output
    sizes = json.loads(assigned.output)
    assert set(sizes) == {"coupon", "control"} and sizes["coupon"] > sizes["control"]
    shown = runner.invoke(app, ["experiment", "results", "cli_ab", "-w", str(shop), "--json"])
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.output)
    assert data["window_days"] == 5 and data["sizes"] == sizes
    assert {m["metric"] for m in data["metrics"]} == {"conversion", "gmv_per_user", "arpu", "order_count"}
    definition, saved = get_experiment(shop, "cli_ab")
    assert definition.touch_date == dt.date(2026, 10, 18) and saved.sizes == sizes
    refused = runner.invoke(
        app,
        [
            "experiment",
            "create",
            "cli_bad",
            "-w",
            str(shop),
            "--audience",
            "x",
            "--variants",
            "a=0.5,control=0.6",
            "--touch-date",
            "2026-10-18",
        ],
    )
    assert refused.exit_code == 2 and "ratios must sum to 1" in refused.output
    size = runner.invoke(app, ["experiment", "sample-size", "--baseline", "0.17", "--mde", "0.02", "--json"])
    assert size.exit_code == 0 and json.loads(size.output)["n_treatment"] == 5789
