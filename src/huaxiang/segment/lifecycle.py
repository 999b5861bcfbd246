"""Lifecycle stages (生命周期): potential, high-potential, new, active, silent, churned.

The churn threshold is derived from the shop's typical purchase interval unless
configured, and the silent threshold is a fraction of it. Everything is a lazy
Ibis expression; the thresholds used come back as a one-row table
(:func:`lifecycle_thresholds`) so a snapshot manifest can record them.
``docs/segments.md`` explains each choice.
"""

from __future__ import annotations

import datetime as dt
import math

import ibis
import ibis.expr.types as ir

from huaxiang.errors import ConfigError
from huaxiang.segment.rfm import day_start, valid_orders

LIFECYCLE_STAGES = ("potential", "high_potential", "new", "active", "silent", "churned")

#: The churn threshold is this many typical purchase intervals (monthly -> 360 days, weekly -> 84).
CHURN_INTERVAL_MULTIPLE = 12
#: Bounds of the derived churn threshold in days.
MIN_CHURN_DAYS, MAX_CHURN_DAYS = 60, 730
#: Churn threshold when no user has bought on two different days (no interval to learn from).
FALLBACK_CHURN_DAYS = 365
#: Event types that make a user without an order high-potential (besides signing up).
INTENT_EVENT_TYPES = ("search", "view", "favorite", "cart")


def churn_threshold_days(interval: float | None) -> int:
    """Churn threshold in days for a typical purchase interval in days.

    ``clamp(round(12 × interval), 60, 730)``: a customer is lost after missing about
    twelve usual purchases, so monthly buyers (30 days) get 360 days and weekly
    buyers (7 days) 84 days. ``None`` (no repeat buyer) gives 365 days. Monotone
    non-decreasing in ``interval``; rounding is half-up.
    """
    if interval is None or math.isnan(interval):
        return FALLBACK_CHURN_DAYS
    if interval < 0:
        raise ConfigError(f"A purchase interval cannot be negative, got {interval}.")
    days = math.floor(interval * CHURN_INTERVAL_MULTIPLE + 0.5)
    return min(max(days, MIN_CHURN_DAYS), MAX_CHURN_DAYS)


def _churn_threshold_expr(interval: ir.FloatingValue) -> ir.IntegerValue:
    """:func:`churn_threshold_days` as an Ibis expression (kept identical; a test compares them)."""
    days = (interval * CHURN_INTERVAL_MULTIPLE + 0.5).floor().clip(MIN_CHURN_DAYS, MAX_CHURN_DAYS)
    return days.fill_null(FALLBACK_CHURN_DAYS).cast("int64")


def _silent_threshold(churn_days: ir.IntegerValue, silent_fraction: float) -> ir.IntegerValue:
    return (churn_days * silent_fraction + 0.5).floor().cast("int64")


def purchase_interval_days(orders: ir.Table, as_of: dt.date, window_days: int | None = None) -> ir.Table:
    """The shop's typical purchase interval: a one-row table.

    The gaps are the days between consecutive distinct days on which a user placed
    a valid order (two orders on one day are one purchase occasion); the typical
    interval is the median of all such gaps, pooled over repeat buyers (users with
    two or more purchase days). Only orders before ``as_of`` (and within
    ``window_days`` before it, if given) count. Columns: ``purchase_interval_days``
    (float64, NULL without repeat buyers) and ``repeat_buyers``.
    """
    valid = valid_orders(orders)
    valid = valid.filter(valid.order_time < day_start(as_of))
    if window_days is not None:
        valid = valid.filter(valid.order_time >= day_start(as_of - dt.timedelta(days=window_days)))
    days = valid.select("user_id", order_date=valid.order_time.date()).distinct()
    previous = days.order_date.lag().over(ibis.window(group_by=days.user_id, order_by=days.order_date))
    gaps = days.mutate(previous_date=previous)
    gaps = gaps.filter(gaps.previous_date.notnull())
    gaps = gaps.mutate(gap_days=gaps.order_date.delta(gaps.previous_date, unit="day").cast("int64"))
    summary = gaps.aggregate(repeat_buyers=gaps.user_id.nunique().cast("int64"))
    return summary.cross_join(_exact_median(gaps.gap_days)).select("purchase_interval_days", "repeat_buyers")


def _exact_median(values: ir.IntegerColumn) -> ir.Table:
    """The median of an integer column (mean of the two middle values), as a one-row table.

    Written with counts and a running sum instead of ``median()``, which some Ibis
    backends (BigQuery, Trino) do not compile and others approximate: the result is
    exact and identical on every engine. NULL for no values.
    """
    table = values.name("value").as_table()
    counts = table.group_by("value").aggregate(value_count=table.count())
    running = ibis.window(order_by=counts.value, preceding=None, following=0)
    counts = counts.mutate(
        up_to=counts.value_count.sum().over(running), total=counts.value_count.sum().over()
    )
    # 1-based positions of the two middle values (the same one when the count is odd).
    lower = counts.filter(counts.up_to >= (counts.total + 1) // 2)
    upper = counts.filter(counts.up_to >= counts.total // 2 + 1)
    both = lower.aggregate(lower_value=lower.value.min()).cross_join(
        upper.aggregate(upper_value=upper.value.min())
    )
    return both.select(
        purchase_interval_days=(both.lower_value.cast("float64") + both.upper_value.cast("float64")) / 2
    )


def lifecycle_thresholds(
    orders: ir.Table,
    as_of: dt.date,
    churn_days: int | None = None,
    silent_fraction: float = 0.5,
    recent_days: int = 30,
) -> ir.Table:
    """The thresholds :func:`lifecycle_table` uses, as a one-row table for the manifest.

    Columns: ``purchase_interval_days``, ``repeat_buyers``, ``churn_threshold_days``,
    ``silent_threshold_days``, ``recent_days``, ``churn_source`` (``configured``,
    ``derived`` from the purchase interval, or ``fallback`` without repeat buyers).
    """
    if churn_days is not None and churn_days < 1:
        raise ConfigError(f"churn_days must be at least 1, got {churn_days}.")
    if not 0 < silent_fraction < 1:
        raise ConfigError(f"silent_fraction must be between 0 and 1 (exclusive), got {silent_fraction}.")
    if recent_days < 1:
        raise ConfigError(f"recent_days must be at least 1, got {recent_days}.")
    interval = purchase_interval_days(orders, as_of)
    if churn_days is None:
        churn = _churn_threshold_expr(interval.purchase_interval_days)
        source = ibis.ifelse(interval.purchase_interval_days.isnull(), "fallback", "derived")
    else:
        churn = ibis.literal(churn_days, type="int64")
        source = ibis.literal("configured")
    with_churn = interval.mutate(churn_threshold_days=churn, churn_source=source)
    return with_churn.select(
        "purchase_interval_days",
        "repeat_buyers",
        "churn_threshold_days",
        silent_threshold_days=_silent_threshold(with_churn.churn_threshold_days, silent_fraction),
        recent_days=ibis.literal(recent_days, type="int64"),
        churn_source="churn_source",
    )


def lifecycle_table(
    users: ir.Table,
    orders: ir.Table,
    events: ir.Table | None,
    as_of: dt.date,
    churn_days: int | None = None,
    silent_fraction: float = 0.5,
    recent_days: int = 30,
) -> ir.Table:
    """Lifecycle stage per user of ``users`` as of ``as_of`` (data strictly before it).

    Parameters
    ----------
    users, orders, events
        Canonical tables. ``users.register_time`` and ``events`` are optional
        (``events=None`` when the source has none): without them activity is read
        from orders alone.
    as_of
        Snapshot date; ``days_since_last_activity`` is ``as_of - date of last activity``.
    churn_days
        Churn threshold; ``None`` derives it from the purchase interval
        (:func:`churn_threshold_days`).
    silent_fraction
        Silent threshold = ``round(silent_fraction × churn threshold)``.
    recent_days
        High-potential look-back: sign-up or an intent event (search, view,
        favorite, cart) on one of the ``recent_days`` days before ``as_of``.

    Returns
    -------
    ibis.Table
        ``user_id, valid_orders, last_order_date, last_activity_date,
        days_since_last_activity, lifecycle_stage``. Stages, first match wins:
        no valid order -> ``high_potential`` if recent intent else ``potential``;
        days since last activity > churn threshold -> ``churned``; one valid order
        -> ``new``; > silent threshold -> ``silent``; otherwise ``active``.
    """
    thresholds = lifecycle_thresholds(orders, as_of, churn_days, silent_fraction, recent_days)
    end = day_start(as_of)
    recent_start = day_start(as_of - dt.timedelta(days=recent_days))

    before = orders.filter(orders.order_time < end)
    valid = valid_orders(before)
    order_counts = valid.group_by("user_id").aggregate(
        valid_orders=valid.count().cast("int64"), last_order_time=valid.order_time.max()
    )
    # Any order record (after-sale ones included) is contact with the shop.
    activity: list[ir.Table] = [before.select("user_id", activity_time=before.order_time.cast("timestamp"))]
    intent: list[ir.Table] = []
    if events is not None:
        seen = events.filter(events.event_time < end)
        activity.append(seen.select("user_id", activity_time=seen.event_time.cast("timestamp")))
        wanted = seen.filter(seen.event_type.isin(INTENT_EVENT_TYPES) & (seen.event_time >= recent_start))
        intent.append(wanted.select("user_id", intent_time=wanted.event_time.cast("timestamp")))
    if "register_time" in users.columns:
        registered = users.filter(users.register_time.notnull() & (users.register_time < end))
        register_time = registered.register_time.cast("timestamp")
        activity.append(registered.select("user_id", activity_time=register_time))
        signed_up = registered.filter(registered.register_time >= recent_start)
        intent.append(signed_up.select("user_id", intent_time=signed_up.register_time.cast("timestamp")))
    all_activity = ibis.union(*activity)
    last_activity = all_activity.group_by("user_id").aggregate(
        last_activity_time=all_activity.activity_time.max()
    )

    t = (
        users.select("user_id")
        .left_join(order_counts, "user_id")
        .select("user_id", "valid_orders", "last_order_time")
    )
    t = t.left_join(last_activity, "user_id").select(
        "user_id", "valid_orders", "last_order_time", "last_activity_time"
    )
    if intent:
        all_intent = ibis.union(*intent)
        recent_users = all_intent.select("user_id").distinct().mutate(recent_intent=ibis.literal(True))
        t = t.left_join(recent_users, "user_id").select(
            "user_id", "valid_orders", "last_order_time", "last_activity_time", "recent_intent"
        )
    else:
        t = t.mutate(recent_intent=ibis.literal(False))
    t = t.cross_join(thresholds.select("churn_threshold_days", "silent_threshold_days"))
    t = t.mutate(
        valid_orders=t.valid_orders.fill_null(0),
        last_order_date=t.last_order_time.date(),
        last_activity_date=t.last_activity_time.date(),
        recent_intent=t.recent_intent.fill_null(False),
    )
    t = t.mutate(days_since_last_activity=ibis.literal(as_of).delta(t.last_activity_date, unit="day"))
    stage = ibis.cases(
        ((t.valid_orders == 0) & t.recent_intent, "high_potential"),
        (t.valid_orders == 0, "potential"),
        (t.days_since_last_activity > t.churn_threshold_days, "churned"),
        (t.valid_orders == 1, "new"),
        (t.days_since_last_activity > t.silent_threshold_days, "silent"),
        else_="active",
    )
    return t.select(
        "user_id",
        "valid_orders",
        "last_order_date",
        "last_activity_date",
        days_since_last_activity=t.days_since_last_activity.cast("int64"),
        lifecycle_stage=stage,
    )
