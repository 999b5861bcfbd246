"""Campaign review by segment × weekday and churn per week by segment (seed 003 cases 1 and 2).

The seed's stories are planted in small synthetic tables with known answers; the sample shop
then runs both analyses end to end through the CLI.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import ibis
import pandas as pd
import pytest
from analysis_shop import sample_shop
from typer.testing import CliRunner

from huaxiang.analysis.campaign import (
    Period,
    campaign_review,
    churn_by_week,
    churn_events,
    churn_tables,
    review_tables,
    rise_weeks,
    summarise,
)
from huaxiang.cli import app
from huaxiang.errors import NotFoundError, RequestError

# 2016's 双11 fell on a Friday; the shop's campaign ran Friday to Tuesday.
CAMPAIGN = Period(dt.date(2016, 11, 11), dt.date(2016, 11, 15))
BASELINE = Period(dt.date(2016, 10, 3), dt.date(2016, 10, 30))  # four whole weeks


def _seed_shop() -> tuple[ibis.Table, ibis.Table]:
    """Core and high-potential users buy every day, twice as much in the campaign; general users
    (office workers near the shop) buy on working days only and the campaign lifts them too."""
    orders = []
    number = 0

    def order(user: str, day: dt.date, amount: float, after_sale: bool = False) -> None:
        nonlocal number
        number += 1
        orders.append(
            {
                "order_id": f"O{number}",
                "user_id": user,
                "order_time": dt.datetime.combine(day, dt.time(12)),
                "amount": Decimal(f"{amount:.2f}"),
                "is_after_sale": after_sale,
            }
        )

    for period, factor in ((BASELINE, 1.0), (CAMPAIGN, 2.0)):
        for offset in range(period.days):
            day = period.start + dt.timedelta(days=offset)
            order("core", day, 100 * factor)
            order("potential", day, 40 * factor)
            if day.weekday() < 5:
                order("general", day, 30 * factor)
            order("core", day, 999, after_sale=True)  # after-sale records never count
    segments = pd.DataFrame(
        {
            "user_id": ["core", "potential", "general"],
            "segment": ["核心 core", "高潜 high potential", "一般 general"],
        }
    )
    return ibis.memtable(pd.DataFrame(orders)), ibis.memtable(segments)


def test_review_finds_the_segment_the_weekdays_left_out() -> None:
    orders, segments = _seed_shop()
    cells = review_tables(orders, segments, CAMPAIGN, BASELINE)
    summary = {s.segment: s for s in summarise(cells, CAMPAIGN, BASELINE)}
    core, general = summary["核心 core"], summary["一般 general"]
    assert core.gmv_growth == pytest.approx(1.0)  # twice the per-day GMV
    assert core.baseline_gmv == 28 * 100 and core.campaign_orders == 5
    # General users doubled their spend too, but the campaign had 2 weekend days of 5:
    # per day it grew only 2 * (3 / 5) / (5 / 7) - 1 = 68 %.
    assert general.gmv_growth == pytest.approx(2 * (3 / 5) / (5 / 7) - 1)
    assert general.weekday_fit == pytest.approx((3 / 5) / (5 / 7))
    assert core.weekday_fit == pytest.approx(1.0)
    saturday = next(c for c in cells if c.segment == "一般 general" and c.weekday == 5)
    assert (saturday.campaign_gmv, saturday.baseline_gmv, saturday.campaign_days) == (0.0, 0.0, 1)
    friday = next(c for c in cells if c.segment == "一般 general" and c.weekday == 4)
    assert friday.growth == pytest.approx(1.0) and friday.baseline_days == 4


def test_churn_counts_the_day_inactivity_reaches_the_threshold() -> None:
    activity = ibis.memtable(
        pd.DataFrame(
            {
                "user_id": ["a", "a", "a", "b", "b"],
                "day": [
                    dt.date(2026, 1, 1),
                    dt.date(2026, 1, 20),
                    dt.date(2026, 3, 1),
                    dt.date(2026, 1, 5),
                    dt.date(2026, 1, 6),
                ],
            }
        )
    )
    events = churn_events(activity, 30).order_by(["user_id", "churn_day"]).to_pyarrow().to_pylist()
    # a: the 1-20 -> 3-1 gap (40 days) churned on 2-19, and again 30 days after 3-1; b once.
    assert [(r["user_id"], r["churn_day"]) for r in events] == [
        ("a", dt.date(2026, 2, 19)),
        ("a", dt.date(2026, 3, 31)),
        ("b", dt.date(2026, 2, 5)),
    ]


def _churn_shop() -> tuple[ibis.Table, ibis.Table, list[str]]:
    """80 core and 80 general users buying weekly; from 2026-04-13 (a Monday), core users stop
    at a rising pace: 2 a week, then 6, then 14 (the seed's 'second to third week fastest');
    general users stop 2 a week throughout."""
    start = dt.date(2026, 1, 5)
    rows, segments = [], []
    stops: dict[str, dt.date] = {}
    for segment, plan in (("core", [2] * 14 + [6, 14, 14]), ("general", [2] * 17)):
        user = 0
        for week, count in enumerate(plan):
            for _ in range(count):
                stops[f"{segment}{user}"] = start + dt.timedelta(weeks=week, days=2)
                user += 1
        for extra in range(user, 80):
            stops[f"{segment}{extra}"] = dt.date(2026, 12, 31)
    for user, stop in stops.items():
        segments.append({"user_id": user, "segment": user.rstrip("0123456789")})
        day = start - dt.timedelta(weeks=8)
        while day <= min(stop, dt.date(2026, 8, 31)):
            rows.append({"user_id": user, "day": day})
            day += dt.timedelta(days=7)
    weeks = []
    return ibis.memtable(pd.DataFrame(rows)), ibis.memtable(pd.DataFrame(segments)), weeks


def test_churn_rise_week_is_found() -> None:
    activity, segments, _ = _churn_shop()
    # Users stop 28 days of inactivity after their last order: churn shows 4 weeks later.
    weeks, series, sizes = churn_tables(activity, segments, dt.date(2026, 2, 2), dt.date(2026, 6, 28), 28)
    assert sizes == {"core": 80, "general": 80}
    assert weeks[0] == "2026-02-02" and len(weeks) == 21
    core = series["core"]
    baseline, rise, fastest = rise_weeks(core, weeks)
    assert baseline == 2
    # The core users' rising stops began in the week of 2026-04-13 (+ 28 days: 2026-05-11).
    assert rise == "2026-05-11"
    assert fastest == "2026-05-18"
    assert rise_weeks(series["general"], weeks)[1] is None


def test_periods_and_tags_are_checked(tmp_path_factory: pytest.TempPathFactory) -> None:
    with pytest.raises(RequestError, match="ends \\(2026-01-01\\) before it starts"):
        Period(dt.date(2026, 2, 1), dt.date(2026, 1, 1))


@pytest.mark.slow
def test_review_and_churn_on_the_sample_shop(tmp_path_factory: pytest.TempPathFactory) -> None:
    shop: Path = sample_shop(tmp_path_factory)
    review = campaign_review(
        shop,
        Period(dt.date(2026, 10, 16), dt.date(2026, 10, 20)),
        Period(dt.date(2026, 9, 1), dt.date(2026, 9, 28)),
        segment_tag="rfm_class",
    )
    assert review.segment_as_of == "2026-09-30"
    # Cross-check one cell against pandas.
    orders = pd.read_parquet(shop / "data" / "orders.parquet")
    tags = pd.read_parquet(
        shop / "snapshots" / "2026-09-30" / "tags.parquet", columns=["user_id", "rfm_class"]
    )
    valid = orders[(~orders.is_after_sale.fillna(False).astype(bool)) & (orders.amount.astype(float) > 0)]
    valid = valid.merge(tags, on="user_id")
    mondays = valid[(valid.rfm_class == "重要价值客户") & (valid.order_time.dt.day_of_week == 0)]
    in_baseline = mondays[(mondays.order_time >= "2026-09-01") & (mondays.order_time < "2026-09-29")]
    cell = review.cell("重要价值客户", 0)
    assert cell.baseline_gmv == pytest.approx(float(in_baseline.amount.astype(float).sum()))
    assert cell.baseline_orders == len(in_baseline) and cell.baseline_days == 4
    assert review.findings and "重要价值客户" in json.dumps(review.to_dict(), ensure_ascii=False)

    churn = churn_by_week(
        shop, dt.date(2026, 6, 1), dt.date(2026, 10, 31), segment_tag="rfm_class", churn_days=60
    )
    assert churn.weeks[0] == "2026-06-01" and churn.segment_as_of == "2026-09-30"
    assert sum(sum(s.weekly) for s in churn.segments) > 0
    default = churn_by_week(shop, dt.date(2026, 9, 1), dt.date(2026, 10, 31))
    assert (
        default.churn_days
        == json.loads((shop / "snapshots" / "2026-09-30" / "manifest.json").read_text())[
            "lifecycle_thresholds"
        ]["churn_threshold_days"]
    )
    with pytest.raises(NotFoundError, match="no tag 'rfm_clas'.*Did you mean 'rfm_class'"):
        churn_by_week(shop, dt.date(2026, 9, 1), dt.date(2026, 10, 31), segment_tag="rfm_clas")

    runner = CliRunner()
    shown = runner.invoke(
        app,
        [
            "review",
            "campaign",
            "-w",
            str(shop),
            "--campaign",
            "2026-10-16..2026-10-20",
            "--baseline",
            "2026-09-01..2026-09-28",
            "--by",
            "rfm_class",
            "--json",
        ],
    )
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["segment_tag"] == "rfm_class"
    bad = runner.invoke(
        app,
        [
            "review",
            "campaign",
            "-w",
            str(shop),
            "--campaign",
            "2026-10-16",
            "--baseline",
            "2026-09-01..2026-09-28",
        ],
    )
    assert bad.exit_code != 0 and "write START..END" in bad.output
    churned = runner.invoke(
        app,
        [
            "review",
            "churn",
            "-w",
            str(shop),
            "--start",
            "2026-06-01",
            "--end",
            "2026-10-31",
            "--by",
            "rfm_class",
            "--churn-days",
            "60",
        ],
    )
    assert churned.exit_code == 0, churned.output
    assert "churned users per week" in churned.output
