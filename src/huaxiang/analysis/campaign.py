"""Campaign review by segment × weekday, and churn per week by segment (seed 003, cases 1 and 2).

**Campaign review** (复盘): valid orders of a campaign period against a baseline period,
by segment and weekday. The periods may differ in length, so GMV and orders are compared
per day of each weekday. A segment that grew little is explained by its weekday habits:
``weekday_fit`` is the segment's usual GMV on the campaign's days divided by its usual GMV
on an average day (below 1: the campaign fell on days the segment does not shop, as the
general users of the seed's shop who buy near the office on working days).

**Churn by week** (流失分析): a user churns on the day their inactivity reaches the churn
threshold (last activity + threshold, with no activity in between), counted in the week
(Monday to Sunday) of that day, by segment. The week a segment's churn *rose* is the first
week whose count clearly exceeds the segment's baseline (the median of the first weeks):
at least :data:`RISE_FACTOR` times it and :data:`RISE_SIGMAS` Poisson standard deviations
above it; the week of the steepest week-on-week increase is reported too.

All per-order and per-user work is Ibis; only the segment × weekday (or week) cells come back.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir

from huaxiang.errors import RequestError

WEEKDAYS = ("周一 Mon", "周二 Tue", "周三 Wed", "周四 Thu", "周五 Fri", "周六 Sat", "周日 Sun")
NONE_SEGMENT = "(none)"
WEAK_FIT = 0.9
RISE_FACTOR = 1.5
RISE_SIGMAS = 2.0
BASELINE_WEEKS = 4
DEFAULT_CHURN_DAYS = 90


@dataclass(frozen=True)
class Period:
    """Inclusive calendar days ``start`` .. ``end``."""

    start: dt.date
    end: dt.date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise RequestError(f"a period ends ({self.end}) before it starts ({self.start}); swap the dates.")

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def weekday_days(self) -> list[int]:
        """How many of each weekday (Monday first) the period holds."""
        counts = [0] * 7
        for offset in range(self.days):
            counts[(self.start + dt.timedelta(days=offset)).weekday()] += 1
        return counts

    def __str__(self) -> str:
        return f"{self.start}..{self.end}"


@dataclass(frozen=True)
class ReviewCell:
    """GMV and orders of one segment on one weekday in both periods (per-day averages too)."""

    segment: str
    weekday: int
    campaign_gmv: float
    campaign_orders: int
    campaign_days: int
    baseline_gmv: float
    baseline_orders: int
    baseline_days: int

    @property
    def campaign_gmv_per_day(self) -> float | None:
        return self.campaign_gmv / self.campaign_days if self.campaign_days else None

    @property
    def baseline_gmv_per_day(self) -> float | None:
        return self.baseline_gmv / self.baseline_days if self.baseline_days else None

    @property
    def growth(self) -> float | None:
        before, after = self.baseline_gmv_per_day, self.campaign_gmv_per_day
        if before is None or after is None or before == 0:
            return None
        return after / before - 1


@dataclass(frozen=True)
class SegmentReview:
    """One segment over both periods: per-day GMV and orders, growth, and its weekday fit."""

    segment: str
    campaign_gmv: float
    baseline_gmv: float
    campaign_orders: int
    baseline_orders: int
    gmv_growth: float | None
    orders_growth: float | None
    weekday_fit: float | None
    baseline_weekday_share: list[float]


@dataclass
class CampaignReview:
    """The review: cells per segment × weekday, a summary per segment, and findings."""

    campaign: Period
    baseline: Period
    segment_tag: str
    segment_as_of: str
    cells: list[ReviewCell]
    segments: list[SegmentReview]
    findings: list[str] = field(default_factory=list)

    def cell(self, segment: str, weekday: int) -> ReviewCell:
        for item in self.cells:
            if item.segment == segment and item.weekday == weekday:
                return item
        raise KeyError((segment, weekday))

    def segment(self, name: str) -> SegmentReview:
        for item in self.segments:
            if item.segment == name:
                return item
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "campaign": {"start": self.campaign.start.isoformat(), "end": self.campaign.end.isoformat()},
            "baseline": {"start": self.baseline.start.isoformat(), "end": self.baseline.end.isoformat()},
            "segment_tag": self.segment_tag,
            "segment_as_of": self.segment_as_of,
            "cells": [
                {
                    **asdict(c),
                    "weekday_label": WEEKDAYS[c.weekday],
                    "growth": c.growth,
                    "campaign_gmv_per_day": c.campaign_gmv_per_day,
                    "baseline_gmv_per_day": c.baseline_gmv_per_day,
                }
                for c in self.cells
            ],
            "segments": [asdict(s) for s in self.segments],
            "findings": self.findings,
        }


def valid_orders(orders: ir.Table) -> ir.Table:
    """Orders that count: not after-sale and a positive amount."""
    return orders.filter(~orders.is_after_sale.fill_null(False), orders.amount > 0)


def _segmented(table: ir.Table, segments: ir.Table) -> ir.Table:
    joined = table.left_join(segments, "user_id")
    return joined.select(
        *[joined[c] for c in table.columns], segment=ibis.coalesce(joined.segment, NONE_SEGMENT)
    )


def review_tables(
    orders: ir.Table, segments: ir.Table, campaign: Period, baseline: Period
) -> list[ReviewCell]:
    """The segment × weekday cells from Ibis tables (``segments``: ``user_id``, ``segment``)."""
    valid = valid_orders(orders)
    day = valid.order_time.date()
    in_campaign = (day >= campaign.start) & (day <= campaign.end)
    in_baseline = (day >= baseline.start) & (day <= baseline.end)
    picked = valid.filter(in_campaign | in_baseline).mutate(
        period=ibis.ifelse(in_campaign, "campaign", "baseline"),
        weekday=day.day_of_week.index(),
        amount_value=valid.amount.cast("float64"),
    )
    # An order in both periods (overlapping periods) is counted once, in the campaign.
    picked = _segmented(picked.select("user_id", "period", "weekday", "amount_value"), segments)
    grouped = picked.group_by(["segment", "period", "weekday"]).aggregate(
        gmv=picked.amount_value.sum(), orders=picked.count()
    )
    rows = grouped.to_pyarrow().to_pylist()
    found: dict[tuple[str, str, int], tuple[float, int]] = {
        (r["segment"], r["period"], int(r["weekday"])): (float(r["gmv"]), int(r["orders"])) for r in rows
    }
    segment_names = sorted({key[0] for key in found})
    campaign_days, baseline_days = campaign.weekday_days(), baseline.weekday_days()
    cells = []
    for segment in segment_names:
        for weekday in range(7):
            c_gmv, c_orders = found.get((segment, "campaign", weekday), (0.0, 0))
            b_gmv, b_orders = found.get((segment, "baseline", weekday), (0.0, 0))
            cells.append(
                ReviewCell(
                    segment,
                    weekday,
                    c_gmv,
                    c_orders,
                    campaign_days[weekday],
                    b_gmv,
                    b_orders,
                    baseline_days[weekday],
                )
            )
    return cells


def summarise(cells: list[ReviewCell], campaign: Period, baseline: Period) -> list[SegmentReview]:
    """Per-segment growth of per-day GMV and orders, and how well the campaign's days fit it."""
    summaries = []
    campaign_days = campaign.weekday_days()
    for segment in sorted({c.segment for c in cells}):
        mine = sorted((c for c in cells if c.segment == segment), key=lambda c: c.weekday)
        c_gmv = sum(c.campaign_gmv for c in mine)
        b_gmv = sum(c.baseline_gmv for c in mine)
        c_orders = sum(c.campaign_orders for c in mine)
        b_orders = sum(c.baseline_orders for c in mine)
        b_per_day = b_gmv / baseline.days
        gmv_growth = (c_gmv / campaign.days) / b_per_day - 1 if b_per_day else None
        orders_per_day = b_orders / baseline.days
        orders_growth = (c_orders / campaign.days) / orders_per_day - 1 if orders_per_day else None
        # The segment's usual GMV on the campaign's mix of weekdays, against an average day.
        usual = [c.baseline_gmv_per_day for c in mine]
        fit = None
        if b_per_day and all(u is not None for u in usual):
            expected = sum((usual[w] or 0.0) * campaign_days[w] for w in range(7)) / campaign.days
            fit = expected / b_per_day
        shares = [c.baseline_gmv / b_gmv if b_gmv else 0.0 for c in mine]
        summaries.append(
            SegmentReview(segment, c_gmv, b_gmv, c_orders, b_orders, gmv_growth, orders_growth, fit, shares)
        )
    return summaries


def _findings(segments: list[SegmentReview], campaign: Period) -> list[str]:
    growing = [s for s in segments if s.gmv_growth is not None and s.segment != NONE_SEGMENT]
    if not growing:
        return []
    findings = []
    best = max(growing, key=lambda s: s.gmv_growth or 0.0)
    worst = min(growing, key=lambda s: s.gmv_growth or 0.0)
    findings.append(
        f"日均GMV增长最高: {best.segment} {best.gmv_growth:+.1%}; "
        f"最低: {worst.segment} {worst.gmv_growth:+.1%} · "
        f"per-day GMV grew most for {best.segment} ({best.gmv_growth:+.1%}), least for {worst.segment} "
        f"({worst.gmv_growth:+.1%})."
    )
    days = sorted({(campaign.start + dt.timedelta(days=i)).weekday() for i in range(campaign.days)})
    label = ", ".join(WEEKDAYS[d] for d in days)
    for segment in growing:
        if segment.weekday_fit is not None and segment.weekday_fit < WEAK_FIT:
            top = sorted(range(7), key=lambda w: -segment.baseline_weekday_share[w])[:3]
            habits = ", ".join(f"{WEEKDAYS[w]} {segment.baseline_weekday_share[w]:.0%}" for w in top)
            findings.append(
                f"{segment.segment}: 活动日({label})只覆盖其平常日均GMV的{segment.weekday_fit:.0%}, "
                f"其消费集中在 {habits} · the campaign's days ({label}) hold only "
                f"{segment.weekday_fit:.0%} of {segment.segment}'s usual per-day GMV; it buys mostly on "
                f"{habits}: schedule its offers on those days."
            )
    return findings


# ---------------------------------------------------------------------------- workspace wrappers


def _segments_table(
    con: Any, root: Path, tag: str, as_of: dt.date | None, before: dt.date
) -> tuple[ir.Table, str]:
    from huaxiang.analysis.metrics import segment_snapshot

    snapshot = segment_snapshot(root, tag, as_of, before)
    table = con.read_parquet(snapshot.tags_path)
    return table.select("user_id", segment=table[tag].cast("string")), snapshot.as_of.isoformat()


def campaign_review(
    workspace_dir: str | Path,
    campaign: Period,
    baseline: Period,
    *,
    segment_tag: str = "lifecycle_stage",
    segment_as_of: dt.date | None = None,
) -> CampaignReview:
    """GMV and orders by segment × weekday for a campaign period against a baseline period.

    Parameters
    ----------
    workspace_dir
        The workspace (canonical ``orders`` and at least one snapshot).
    campaign, baseline
        The two periods (inclusive days); they may differ in length.
    segment_tag
        An enum or boolean tag of the snapshot (e.g. ``rfm_class``, ``lifecycle_stage``).
    segment_as_of
        The snapshot to read segments from (default: the latest on or before the campaign start).
    """
    from huaxiang.workspace import Workspace

    root = Path(workspace_dir)
    con = ibis.duckdb.connect()
    try:
        orders = con.read_parquet(Workspace(root).table_path("orders"))
        segments, as_of = _segments_table(con, root, segment_tag, segment_as_of, campaign.start)
        cells = review_tables(orders, segments, campaign, baseline)
    finally:
        con.disconnect()
    if not cells:
        raise RequestError(
            f"no valid order falls in the campaign ({campaign}) or the baseline ({baseline}); "
            "check the dates against the data."
        )
    segments_summary = summarise(cells, campaign, baseline)
    return CampaignReview(
        campaign, baseline, segment_tag, as_of, cells, segments_summary, _findings(segments_summary, campaign)
    )


# ---------------------------------------------------------------------------- churn


@dataclass(frozen=True)
class SegmentChurn:
    """Churned users per week of one segment, and the week its churn rose."""

    segment: str
    users: int
    weekly: list[int]
    baseline: float
    rise_week: str | None
    fastest_week: str | None


@dataclass
class ChurnAnalysis:
    """Weeks (Mondays) and, per segment, churned users per week."""

    start: dt.date
    end: dt.date
    churn_days: int
    activity: str
    segment_tag: str
    segment_as_of: str
    weeks: list[str]
    segments: list[SegmentChurn]
    findings: list[str] = field(default_factory=list)

    def segment(self, name: str) -> SegmentChurn:
        for item in self.segments:
            if item.segment == name:
                return item
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "churn_days": self.churn_days,
            "activity": self.activity,
            "segment_tag": self.segment_tag,
            "segment_as_of": self.segment_as_of,
            "weeks": self.weeks,
            "segments": [asdict(s) for s in self.segments],
            "findings": self.findings,
        }


def churn_events(activity: ir.Table, churn_days: int) -> ir.Table:
    """``user_id`` and ``churn_day`` for every time a user's inactivity reached ``churn_days``.

    ``activity`` has ``user_id`` and ``day`` (one row per active day or more).
    """
    days = activity.select("user_id", "day").distinct()
    window = ibis.window(group_by="user_id", order_by="day")
    following = days.mutate(next_day=days.day.lead().over(window))
    churned = following.mutate(churn_day=(following.day + ibis.interval(days=churn_days)).cast("date"))
    return churned.filter(churned.next_day.isnull() | (churned.next_day > churned.churn_day)).select(
        "user_id", "churn_day"
    )


def rise_weeks(
    weekly: list[int], weeks: list[str], baseline_weeks: int = BASELINE_WEEKS
) -> tuple[float, str | None, str | None]:
    """The baseline (median of the first weeks), the first week churn clearly rose, the steepest week."""
    head = weekly[:baseline_weeks]
    baseline = float(statistics.median(head)) if head else 0.0
    rise = None
    for index in range(baseline_weeks, len(weekly)):
        count = weekly[index]
        if count >= RISE_FACTOR * baseline and count - baseline >= RISE_SIGMAS * math.sqrt(
            max(baseline, 1.0)
        ):
            rise = index
            break
    fastest = None
    if rise is not None:
        increases = [(weekly[i] - weekly[i - 1], i) for i in range(max(rise, 1), len(weekly))]
        best = max(increases, key=lambda item: (item[0], -item[1]))
        fastest = weeks[best[1]] if best[0] > 0 else weeks[rise]
    return baseline, (weeks[rise] if rise is not None else None), fastest


def churn_tables(
    activity: ir.Table, segments: ir.Table, start: dt.date, end: dt.date, churn_days: int
) -> tuple[list[str], dict[str, list[int]], dict[str, int]]:
    """Weeks, churned users per week per segment, and users per segment, from Ibis tables.

    Parameters
    ----------
    activity
        ``user_id`` and ``day``: the days each user was active.
    segments
        ``user_id`` and ``segment`` (users absent from it count under ``(none)``).
    start, end
        The days whose churn is counted; weeks start on the Monday on or before ``start``.
    churn_days
        Days of inactivity that make a user churned.
    """
    events = churn_events(activity, churn_days)
    events = events.filter(events.churn_day >= start, events.churn_day <= end)
    events = _segmented(events, segments)
    events = events.mutate(week=events.churn_day.truncate("W"))
    weekly = events.group_by(["segment", "week"]).aggregate(users=events.user_id.nunique())
    rows = weekly.to_pyarrow().to_pylist()
    sizes = {
        r["segment"]: int(r["users"])
        for r in segments.group_by("segment").aggregate(users=segments.count()).to_pyarrow().to_pylist()
    }
    first = start - dt.timedelta(days=start.weekday())
    weeks = []
    monday = first
    while monday <= end:
        weeks.append(monday.isoformat())
        monday += dt.timedelta(days=7)
    series: dict[str, list[int]] = {name or NONE_SEGMENT: [0] * len(weeks) for name in sizes}
    for row in rows:
        week = row["week"]
        key = (week.date() if isinstance(week, dt.datetime) else week).isoformat()
        series.setdefault(row["segment"], [0] * len(weeks))[weeks.index(key)] += int(row["users"])
    return weeks, series, {k or NONE_SEGMENT: v for k, v in sizes.items()}


def churn_by_week(
    workspace_dir: str | Path,
    start: dt.date,
    end: dt.date,
    *,
    segment_tag: str = "lifecycle_stage",
    segment_as_of: dt.date | None = None,
    churn_days: int | None = None,
    activity: str = "orders",
    baseline_weeks: int = BASELINE_WEEKS,
) -> ChurnAnalysis:
    """Churned users per week by segment between ``start`` and ``end``, and when churn rose.

    Parameters
    ----------
    workspace_dir
        The workspace (canonical ``orders``; ``events`` too with ``activity="all"``).
    start, end
        The days whose churn is counted (churn can only be seen ``churn_days`` after the last activity).
    segment_tag, segment_as_of
        The enum tag whose values are the segments, and its snapshot (default: the latest on or
        before ``start``, so users are placed where they were before leaving).
    churn_days
        Inactivity that makes a user churned; default: the snapshot's lifecycle churn threshold.
    activity
        ``orders`` (valid orders) or ``all`` (valid orders and every event).
    baseline_weeks
        Weeks at the start that make the baseline of each segment.
    """
    from huaxiang.analysis.metrics import segment_snapshot
    from huaxiang.workspace import Workspace

    if end < start:
        raise RequestError(f"the churn period ends ({end}) before it starts ({start}); swap the dates.")
    if activity not in ("orders", "all"):
        raise RequestError(f"activity is 'orders' or 'all', not {activity!r}.")
    root = Path(workspace_dir)
    workspace = Workspace(root)
    snapshot = segment_snapshot(root, segment_tag, segment_as_of, start)
    if churn_days is None:
        churn_days = int(
            snapshot.manifest.get("lifecycle_thresholds", {}).get("churn_threshold_days")
            or DEFAULT_CHURN_DAYS
        )
    if churn_days < 1:
        raise RequestError(f"churn_days must be at least 1, got {churn_days}.")
    con = ibis.duckdb.connect()
    try:
        orders = valid_orders(con.read_parquet(workspace.table_path("orders")))
        active = orders.select("user_id", day=orders.order_time.date())
        if activity == "all":
            events = con.read_parquet(workspace.table_path("events"))
            active = active.union(events.select("user_id", day=events.event_time.date()))
        # Churn is seen only once the threshold has passed: stop at the end of the data.
        last = active.day.max().to_pyarrow().as_py()
        if last is not None and end > last:
            end = last
        if end < start:
            raise RequestError(f"the data ends on {last}, before the churn period starts ({start}).")
        tags = con.read_parquet(snapshot.tags_path)
        segments = tags.select("user_id", segment=tags[segment_tag].cast("string"))
        weeks, series, sizes = churn_tables(active, segments, start, end, churn_days)
    finally:
        con.disconnect()
    results = []
    for name in sorted(series):
        baseline, rise, fastest = rise_weeks(series[name], weeks, baseline_weeks)
        results.append(SegmentChurn(name, sizes.get(name, 0), series[name], baseline, rise, fastest))
    findings = [
        f"{s.segment}: 流失自 {s.rise_week} 这周起上升(基线每周{s.baseline:g}人), "
        f"{s.fastest_week} 这周升得最快 · "
        f"churn rose from the week of {s.rise_week} (baseline {s.baseline:g} a week), fastest in the week of "
        f"{s.fastest_week}."
        for s in results
        if s.rise_week
    ]
    return ChurnAnalysis(
        start, end, churn_days, activity, segment_tag, snapshot.as_of.isoformat(), weeks, results, findings
    )
