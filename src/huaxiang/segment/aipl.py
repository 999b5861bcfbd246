"""AIPL stages (认知 / 兴趣 / 购买 / 忠诚): where a user stands, from their signature actions.

Seed 001 asks to define each stage by its signature actions, count the stages and
measure the flows A→I, I→P, P→L and A→P between two dates. Each user gets the
highest stage whose signature holds (first match):

- ``loyalty`` 忠诚: bought on at least ``loyalty_min_days`` different days within the
  ``purchase_window_days`` before the as-of date (a repeat buyer);
- ``purchase`` 购买: bought within the ``purchase_window_days``;
- ``interest`` 兴趣: within the (shorter) ``window_days``, favorited, carted or
  searched, or viewed at least ``interest_min_views`` times;
- ``awareness`` 认知: any other event within ``window_days`` (visit, view, click, ad
  click, share, ...);
- NULL: no signal at all.

As in Alibaba's data bank, the two buying stages look back a long way (a year)
and the two browsing stages a short one (a month): a purchase is a lasting step
down the funnel, a view is not.

A purchase is a valid order (after-sale records excluded) when the workspace has
orders, else a ``purchase`` event (behaviour-only data such as Taobao's). Buying
is counted in days, so an order split in two, or three items bought in one go,
is one purchase. Everything is a lazy Ibis expression.
"""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir

from huaxiang.errors import ConfigError
from huaxiang.segment.rfm import day_start, valid_orders

AIPL_STAGES = ("awareness", "interest", "purchase", "loyalty")
AIPL_NAMES_ZH = {"awareness": "认知", "interest": "兴趣", "purchase": "购买", "loyalty": "忠诚"}
#: Event types that show interest on their own (views count when repeated).
INTEREST_EVENT_TYPES = ("favorite", "cart", "search")


def _check(
    window_days: int, purchase_window_days: int, loyalty_min_days: int, interest_min_views: int
) -> None:
    for name, value in (
        ("window_days", window_days),
        ("purchase_window_days", purchase_window_days),
        ("interest_min_views", interest_min_views),
    ):
        if value < 1:
            raise ConfigError(f"AIPL {name} must be at least 1, got {value}.")
    if loyalty_min_days < 2:
        raise ConfigError(
            f"AIPL loyalty_min_days must be at least 2 (loyalty means buying again), got {loyalty_min_days}."
        )


def purchase_days(orders: ir.Table | None, events: ir.Table | None) -> ir.Table:
    """``user_id, purchase_date``: the distinct days a user bought something.

    From valid orders when ``orders`` is given, else from ``purchase`` events.
    """
    if orders is not None:
        valid = valid_orders(orders)
        return valid.select("user_id", purchase_date=valid.order_time.date()).distinct()
    if events is None:
        raise ConfigError("AIPL needs orders or events to find purchases.")
    bought = events.filter(events.event_type == "purchase")
    return bought.select("user_id", purchase_date=bought.event_time.date()).distinct()


def aipl_table(
    users: ir.Table,
    events: ir.Table,
    orders: ir.Table | None,
    as_of: dt.date,
    window_days: int = 30,
    purchase_window_days: int = 365,
    loyalty_min_days: int = 2,
    interest_min_views: int = 2,
) -> ir.Table:
    """AIPL stage per user of ``users`` as of ``as_of`` (data strictly before it).

    Parameters
    ----------
    users, events, orders
        Canonical tables; ``orders=None`` for behaviour-only data (purchases then come
        from ``purchase`` events).
    as_of
        Snapshot date.
    window_days
        Look-back of the awareness and interest signatures.
    purchase_window_days, loyalty_min_days
        Look-back of the purchase and loyalty signatures; loyal: bought on at
        least ``loyalty_min_days`` distinct days within it.
    interest_min_views
        Views within ``window_days`` that make a user interested without a
        favorite, cart or search.

    Returns
    -------
    ibis.Table
        ``user_id, events_in_window, views_in_window, interest_events_in_window,
        purchase_days, aipl_stage`` (``purchase_days``: distinct days with a purchase
        in ``purchase_window_days``)
        (``aipl_stage`` one of :data:`AIPL_STAGES` or NULL).
    """
    _check(window_days, purchase_window_days, loyalty_min_days, interest_min_views)
    end = day_start(as_of)
    start = day_start(as_of - dt.timedelta(days=window_days))
    recent = events.filter((events.event_time >= start) & (events.event_time < end))
    activity = recent.group_by("user_id").aggregate(
        events_in_window=recent.count(),
        views_in_window=(recent.event_type == "view").sum(),
        interest_events_in_window=recent.event_type.isin(INTEREST_EVENT_TYPES).sum(),
    )
    since = as_of - dt.timedelta(days=purchase_window_days)
    if orders is not None:  # only orders of the purchase window are read (the days are cut below)
        orders = orders.filter((orders.order_time >= day_start(since)) & (orders.order_time < end))
    days = purchase_days(orders, events if orders is None else None)
    days = days.filter((days.purchase_date < as_of) & (days.purchase_date >= since))
    buying = days.group_by("user_id").aggregate(purchase_days=days.count())
    columns = ("events_in_window", "views_in_window", "interest_events_in_window", "purchase_days")
    t = users.select("user_id").left_join(activity, "user_id").select("user_id", *columns[:3])
    t = t.left_join(buying, "user_id").select("user_id", *columns)
    t = t.mutate(**{column: t[column].fill_null(0).cast("int64") for column in columns})
    stage = ibis.cases(
        (t.purchase_days >= loyalty_min_days, "loyalty"),
        (t.purchase_days >= 1, "purchase"),
        ((t.interest_events_in_window >= 1) | (t.views_in_window >= interest_min_views), "interest"),
        (t.events_in_window >= 1, "awareness"),
        else_=ibis.null("string"),
    )
    return t.mutate(aipl_stage=stage)


__all__ = ["AIPL_NAMES_ZH", "AIPL_STAGES", "INTEREST_EVENT_TYPES", "aipl_table", "purchase_days"]
