"""Consumption traits (消费特征, seed 001): impulsive, price comparer, hesitant, from events and orders.

A *purchase* is a product on a valid order (after-sale excluded) placed in the
window before ``as_of``. What the user did with that product before the order
(first seen, views) and with other products of the same leaf category says how
they buy. The shopaholic trait (购物狂) needs no events and is made with the
category breadth in :func:`huaxiang.segment.purchase.category_table`.
``docs/standard-purchase.md`` states every definition; nothing is executed here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields

import ibis
import ibis.expr.types as ir

from huaxiang.errors import ConfigError
from huaxiang.segment.purchase import per_user, window_orders
from huaxiang.segment.rfm import day_start, valid_orders

#: Events that show a user has seen a product (purchase, review and cart_remove do not).
SEEN_EVENTS: tuple[str, ...] = ("view", "click", "favorite", "cart", "ad_click", "share")
#: Events that show an intent to buy a product.
INTENT_EVENTS: tuple[str, ...] = ("favorite", "cart", "cart_remove")


@dataclass(frozen=True)
class TraitThresholds:
    """Thresholds of the consumption traits (the ``consumption_traits`` maker's parameters).

    Parameters
    ----------
    window_days
        Purchases are the valid orders' products in this many days before ``as_of``.
    lookback_days
        How far before an order its product's events are looked for.
    min_purchases
        Purchases a user needs (with the events the trait reads) to be judged.
    min_share
        Share of the judged purchases that must show the behaviour.
    impulse_hours, impulse_max_views
        An impulsive purchase: ordered within ``impulse_hours`` of first seeing the
        product, after at most ``impulse_max_views`` views of it.
    compare_days, compare_products
        A compared purchase: at least ``compare_products`` distinct products of the
        same leaf category viewed in the ``compare_days`` days before the order.
    intent_days, hesitant_min_intents, hesitant_share
        Hesitation, first signal: of the products favorited, carted or removed from
        the cart in ``intent_days`` days, at least ``hesitant_min_intents`` and a
        share of at least ``hesitant_share`` were not ordered afterwards.
    hesitant_days
        Hesitation, second signal: the median time from first seeing a product to
        ordering it is at least this many days.
    """

    window_days: int = 365
    lookback_days: int = 30
    min_purchases: int = 2
    min_share: float = 0.5
    impulse_hours: float = 1.0
    impulse_max_views: int = 2
    compare_days: int = 7
    compare_products: int = 3
    intent_days: int = 90
    hesitant_min_intents: int = 5
    hesitant_share: float = 0.8
    hesitant_days: float = 7.0

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"consumption traits: {item.name} must be a number, got {value!r}.")
            if value < 0 or (value == 0 and item.name != "impulse_max_views"):
                raise ConfigError(f"consumption traits: {item.name} must be positive, got {value!r}.")
        for name in ("min_share", "hesitant_share"):
            if getattr(self, name) > 1:
                raise ConfigError(
                    f"consumption traits: {name} is a share in (0, 1], got {getattr(self, name)}."
                )


def _purchases(orders: ir.Table, items: ir.Table, products: ir.Table, as_of: dt.date, days: int) -> ir.Table:
    """One row per (order, product) of the valid orders in the window, with buyer, time and leaf."""
    in_window = window_orders(orders, as_of, days).select("order_id", "user_id", "order_time")
    # Lines of the window's orders only are de-duplicated (not every line of the data).
    lines = items.filter(items.product_id.notnull()).select("order_id", "product_id")
    lines = lines.semi_join(in_window, "order_id").distinct()
    bought = lines.inner_join(in_window, "order_id")
    leaves = products.select("product_id", leaf="category_l3")
    joined = bought.left_join(leaves, "product_id")
    return joined.select("user_id", "order_id", "order_time", "product_id", "leaf")


def purchases_of_lines(lines: ir.Table) -> ir.Table:
    """The purchases of :func:`traits_table` from :func:`~huaxiang.segment.purchase.window_lines`.

    The same rows when ``order_id`` is the key of orders and ``product_id`` that of products
    (as ingestion makes them): a line carries its order's buyer and time and its product's leaf.
    """
    lines = lines.filter(lines.product_id.notnull())
    leaf = lines.category_l3 if "category_l3" in lines.columns else ibis.null("string")
    return lines.select("user_id", "order_id", "order_time", "product_id", leaf=leaf).distinct()


def traits_table(
    users: ir.Table,
    orders: ir.Table,
    items: ir.Table,
    products: ir.Table,
    events: ir.Table,
    as_of: dt.date,
    thresholds: TraitThresholds | None = None,
    purchases: ir.Table | None = None,
) -> ir.Table:
    """Impulsive (冲动型), price comparer (比价型) and hesitant (犹豫型) per user.

    Returns ``user_id, judged_purchases, impulsive_purchase_share,
    compared_purchase_share, intent_products, unconverted_intent_products,
    median_days_to_buy, trait_impulsive, trait_price_comparer, trait_hesitant``.

    - A purchase is *judged* when the user had a seen event (:data:`SEEN_EVENTS`) on
      its product in the ``lookback_days`` before the order; ``judged_purchases``
      counts them and ``median_days_to_buy`` is the median of the days from the
      first such event to the order (NULL without).
    - ``trait_impulsive``: at least ``min_purchases`` judged purchases, and a share
      of at least ``min_share`` of them impulsive (see :class:`TraitThresholds`).
    - ``trait_price_comparer``: at least ``min_purchases`` purchases of products
      with a leaf category, and a share of at least ``min_share`` of them compared.
    - ``trait_hesitant``: the intent signal or the slow-purchase signal.

    Shares are NULL for a user without the purchases they are taken over; every
    trait is false for a user without the needed activity. ``purchases``: the
    purchases of the window when already computed (:func:`purchases_of_lines` of
    :func:`~huaxiang.segment.purchase.window_lines` over ``window_days``).
    """
    th = thresholds or TraitThresholds()
    end = day_start(as_of)
    if purchases is None:
        purchases = _purchases(orders, items, products, as_of, th.window_days)
    # Only events a judged purchase, a comparison or an intent can reach: the purchase window
    # plus the longest look-back before an order, or the intent window (two years of events
    # would otherwise go through the joins).
    reach = max(th.window_days + max(th.lookback_days, th.compare_days), th.intent_days)
    start = day_start(as_of - dt.timedelta(days=reach))
    product_events = events.filter(
        events.product_id.notnull()
        & (events.event_time < end)
        & (events.event_time >= start)
        & events.event_type.isin(list(dict.fromkeys((*SEEN_EVENTS, *INTENT_EVENTS))))
    ).select("user_id", "product_id", "event_type", "event_time")

    # Impulse and time to buy: events on the purchased product before the order.
    seen = product_events.filter(product_events.event_type.isin(SEEN_EVENTS))
    seen = seen.rename(seen_user="user_id", seen_product="product_id")
    joined = purchases.inner_join(
        seen,
        [
            purchases.user_id == seen.seen_user,
            purchases.product_id == seen.seen_product,
            seen.event_time < purchases.order_time,
            seen.event_time >= purchases.order_time - ibis.interval(days=th.lookback_days),
        ],
    )
    per_purchase = joined.group_by(["user_id", "order_id", "product_id"]).aggregate(
        order_time=joined.order_time.max(),
        first_seen=joined.event_time.min(),
        views=(joined.event_type == "view").cast("int64").sum(),
    )
    hours = (per_purchase.order_time.epoch_seconds() - per_purchase.first_seen.epoch_seconds()).cast(
        "float64"
    ) / 3600.0
    per_purchase = per_purchase.mutate(
        hours=hours, impulsive=(hours <= th.impulse_hours) & (per_purchase.views <= th.impulse_max_views)
    )
    impulse = per_purchase.group_by("user_id").aggregate(
        judged_purchases=per_purchase.count(),
        impulsive_purchases=per_purchase.impulsive.cast("int64").sum(),
        median_days_to_buy=(per_purchase.hours / 24.0).median(),
    )

    # Comparison: distinct products of the same leaf viewed shortly before the order.
    leaves = products.filter(products.category_l3.notnull()).select("product_id", view_leaf="category_l3")
    views = product_events.filter(product_events.event_type == "view")
    views = views.inner_join(leaves, "product_id").rename(view_user="user_id", view_product="product_id")
    with_leaf = purchases.filter(purchases.leaf.notnull())
    compared = with_leaf.left_join(
        views,
        [
            with_leaf.user_id == views.view_user,
            with_leaf.leaf == views.view_leaf,
            views.event_time < with_leaf.order_time,
            views.event_time >= with_leaf.order_time - ibis.interval(days=th.compare_days),
        ],
    )
    per_leaf_purchase = compared.group_by(["user_id", "order_id", "product_id"]).aggregate(
        products_viewed=compared.view_product.nunique()
    )
    comparison = per_leaf_purchase.group_by("user_id").aggregate(
        leaf_purchases=per_leaf_purchase.count(),
        compared_purchases=(per_leaf_purchase.products_viewed >= th.compare_products).cast("int64").sum(),
    )

    # Intent that did not turn into an order.
    intent_start = day_start(as_of - dt.timedelta(days=th.intent_days))
    intents = product_events.filter(
        product_events.event_type.isin(INTENT_EVENTS) & (product_events.event_time >= intent_start)
    )
    intents = intents.group_by(["user_id", "product_id"]).aggregate(first_intent=intents.event_time.min())
    valid = valid_orders(orders)
    # An intent starts in the intent window, so only orders from its start can convert it.
    valid = valid.filter((valid.order_time < end) & (valid.order_time >= intent_start))
    valid = valid.select("order_id", "user_id", "order_time")
    bought = items.select("order_id", "product_id").inner_join(valid, "order_id")
    bought = bought.rename(buyer="user_id", bought_product="product_id")
    converted = intents.semi_join(
        bought,
        [
            intents.user_id == bought.buyer,
            intents.product_id == bought.bought_product,
            bought.order_time >= intents.first_intent,
        ],
    ).mutate(converted=ibis.literal(1))
    converted = converted.select("user_id", "product_id", "converted")
    intents = intents.left_join(converted, ["user_id", "product_id"])
    intent = intents.group_by("user_id").aggregate(
        intent_products=intents.count(),
        unconverted_intent_products=intents.converted.isnull().cast("int64").sum(),
    )

    t = per_user(users, impulse)
    t = t.left_join(comparison, "user_id").select(*t.columns, "leaf_purchases", "compared_purchases")
    t = t.left_join(intent, "user_id").select(*t.columns, "intent_products", "unconverted_intent_products")
    judged = t.judged_purchases.fill_null(0).cast("int64")
    leaf_purchases = t.leaf_purchases.fill_null(0).cast("int64")
    intent_products = t.intent_products.fill_null(0).cast("int64")
    unconverted = t.unconverted_intent_products.fill_null(0).cast("int64")
    impulsive_share = ibis.ifelse(
        judged > 0, t.impulsive_purchases.cast("float64") / judged.cast("float64"), ibis.null("float64")
    )
    compared_share = ibis.ifelse(
        leaf_purchases > 0,
        t.compared_purchases.cast("float64") / leaf_purchases.cast("float64"),
        ibis.null("float64"),
    )
    intent_signal = (unconverted >= th.hesitant_min_intents) & (
        unconverted.cast("float64") >= intent_products.cast("float64") * th.hesitant_share
    )
    slow_signal = (judged >= th.min_purchases) & (t.median_days_to_buy >= th.hesitant_days).fill_null(False)
    return t.select(
        "user_id",
        judged_purchases=judged,
        impulsive_purchase_share=impulsive_share,
        compared_purchase_share=compared_share,
        intent_products=intent_products,
        unconverted_intent_products=unconverted,
        median_days_to_buy=t.median_days_to_buy.cast("float64"),
        trait_impulsive=((judged >= th.min_purchases) & (impulsive_share >= th.min_share)).fill_null(False),
        trait_price_comparer=(
            (leaf_purchases >= th.min_purchases) & (compared_share >= th.min_share)
        ).fill_null(False),
        trait_hesitant=intent_signal | slow_signal,
    )


__all__ = ["INTENT_EVENTS", "SEEN_EVENTS", "TraitThresholds", "purchases_of_lines", "traits_table"]
