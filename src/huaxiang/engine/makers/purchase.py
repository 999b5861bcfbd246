"""Model makers: purchase (registered on import).

Categories bought, promo sensitivity and coupon use, category preference and
TGI, value / premium price tiers, category-behaviour users and consumption
traits. The computations are in :mod:`huaxiang.segment.purchase` and
:mod:`huaxiang.segment.traits`; here parameters are read and checked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import ibis.expr.types as ir

from huaxiang.engine.makers.behaviour import recent_events
from huaxiang.engine.registry import ModelContext, ModelOutput, float_param, int_param, model_maker
from huaxiang.errors import ConfigError
from huaxiang.segment.purchase import (
    PREFERENCE_GROUPS,
    browse_not_buy_table,
    category_table,
    coupon_table,
    preference_table,
    price_tier_table,
    promo_table,
    window_lines,
)
from huaxiang.segment.traits import TraitThresholds, purchases_of_lines, traits_table

_ORDERS = ("users.user_id", "orders.user_id", "orders.order_time")
_LINES = (*_ORDERS, "order_items.order_id", "order_items.product_id", "products.product_id")


def _window_lines(context: ModelContext, window_days: int) -> ir.Table:
    """:func:`window_lines` of the build, computed once per window for the makers that read it."""
    t = context.tables
    if window_days < 1:  # the maker's own check reports it
        return window_lines(t["orders"], t["order_items"], t["products"], context.as_of, window_days)
    return context.shared.get(
        f"window_lines:{context.as_of.isoformat()}:{window_days}",
        lambda: window_lines(t["orders"], t["order_items"], t["products"], context.as_of, window_days),
    )


def _names(
    params: Mapping[str, Any], name: str, default: Sequence[str] | None, maker: str
) -> list[str] | None:
    value = params.get(name, default)
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not value or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(
            f"model {maker}: parameter {name} must be a list of category names, e.g. [宠物, 宠物生活]; "
            f"got {value!r}."
        )
    return list(value)


@model_maker(
    "categories",
    needs=(*_LINES, "products.category_l1"),
    params=("window_days", "shopaholic_orders", "shopaholic_categories"),
)
def categories(context: ModelContext, params: Mapping[str, Any]) -> ModelOutput:
    """Distinct top categories bought, single-category buyers and shopaholics (:func:`category_table`)."""
    t = context.tables
    window_days = int_param(params, "window_days", 365)
    table = category_table(
        t["users"],
        t["orders"],
        t["order_items"],
        t["products"],
        context.as_of,
        window_days=window_days,
        shopaholic_orders=int_param(params, "shopaholic_orders", 24),
        shopaholic_categories=int_param(params, "shopaholic_categories", 6),
        lines=_window_lines(context, window_days),
    )
    return ModelOutput(table)


@model_maker("promo", needs=_ORDERS, params=("window_days", "min_orders", "min_share"))
def promo(context: ModelContext, params: Mapping[str, Any]) -> ModelOutput:
    """Promo-day orders and promo sensitivity on the workspace's promo calendar (:func:`promo_table`)."""
    calendar = [(p.id, p.start, p.end) for p in context.settings.promo_calendar]
    table = promo_table(
        context.tables["users"],
        context.tables["orders"],
        context.as_of,
        calendar,
        window_days=int_param(params, "window_days", 365),
        min_orders=int_param(params, "min_orders", 2),
        min_share=float_param(params, "min_share", 0.5),
    )
    return ModelOutput(table)


@model_maker("coupon_use", needs=(*_ORDERS, "orders.coupon_used"), params=("window_days",))
def coupon_use(context: ModelContext, params: Mapping[str, Any]) -> ModelOutput:
    """Orders with a coupon and their share (:func:`coupon_table`)."""
    table = coupon_table(
        context.tables["users"],
        context.tables["orders"],
        context.as_of,
        window_days=int_param(params, "window_days", 365),
    )
    return ModelOutput(table)


@model_maker(
    "category_preference",
    needs=(*_LINES, "order_items.quantity", "order_items.unit_price", "products.category_l1"),
    params=("window_days", *(f"{name}_categories" for name in PREFERENCE_GROUPS)),
)
def category_preference(context: ModelContext, params: Mapping[str, Any]) -> ModelOutput:
    """Spend shares, TGI and every-quarter buying of pet, baby, local life, health (``preference_table``)."""
    groups = {
        name: _names(params, f"{name}_categories", default, "category_preference") or list(default)
        for name, default in PREFERENCE_GROUPS.items()
    }
    t = context.tables
    window_days = int_param(params, "window_days", 365)
    table = preference_table(
        t["users"],
        t["orders"],
        t["order_items"],
        t["products"],
        context.as_of,
        window_days=window_days,
        groups=groups,
        lines=_window_lines(context, window_days),
    )
    return ModelOutput(table)


@model_maker(
    "price_tier",
    needs=(*_LINES, "order_items.quantity", "order_items.unit_price", "products.category_l3"),
    params=("window_days", "value_quantile", "premium_quantile"),
)
def price_tier(context: ModelContext, params: Mapping[str, Any]) -> ModelOutput:
    """Value-for-money and premium spend shares and TGI within leaf categories (:func:`price_tier_table`)."""
    t = context.tables
    window_days = int_param(params, "window_days", 365)
    table = price_tier_table(
        t["users"],
        t["orders"],
        t["order_items"],
        t["products"],
        context.as_of,
        window_days=window_days,
        value_quantile=float_param(params, "value_quantile", 0.25),
        premium_quantile=float_param(params, "premium_quantile", 0.75),
        lines=_window_lines(context, window_days),
    )
    return ModelOutput(table)


@model_maker(
    "browse_not_buy",
    needs=(
        *_LINES,
        "events.user_id",
        "events.event_time",
        "events.event_type",
        "events.product_id",
    ),
    params=("window_days", "min_views", "level", "categories"),
)
def browse_not_buy(context: ModelContext, params: Mapping[str, Any]) -> ModelOutput:
    """Users who browse a category a lot and never bought it here (:func:`browse_not_buy_table`)."""
    level = int_param(params, "level", 1)
    column = f"category_l{level}"
    products = context.tables["products"]
    if level in (1, 2, 3) and column not in products.columns:
        raise ConfigError(
            f"model browse_not_buy: level {level} reads products.{column}, which the workspace data lacks."
        )
    t = context.tables
    window_days = int_param(params, "window_days", 30)
    table = browse_not_buy_table(
        t["users"],
        t["orders"],
        t["order_items"],
        products,
        recent_events(context, window_days),  # it reads only the views of its window
        context.as_of,
        window_days=window_days,
        min_views=int_param(params, "min_views", 5),
        level=level,
        categories=_names(params, "categories", None, "browse_not_buy"),
    )
    return ModelOutput(table)


_TRAIT_PARAMS = tuple(TraitThresholds.__dataclass_fields__)


@model_maker(
    "consumption_traits",
    needs=(
        *_LINES,
        "products.category_l3",
        "events.user_id",
        "events.event_time",
        "events.event_type",
        "events.product_id",
    ),
    params=_TRAIT_PARAMS,
)
def consumption_traits(context: ModelContext, params: Mapping[str, Any]) -> ModelOutput:
    """Impulsive, price comparer and hesitant buyers (:func:`huaxiang.segment.traits.traits_table`)."""
    thresholds = TraitThresholds(**dict(params))
    t = context.tables
    # The purchases come from the window's lines shared with other makers when lines have prices,
    # and are run into a table once (the traits read them twice).
    purchases = None
    if {"quantity", "unit_price"} <= set(t["order_items"].columns) and thresholds.window_days >= 1:
        lines = _window_lines(context, thresholds.window_days)
        purchases = context.shared.get(
            f"trait_purchases:{context.as_of.isoformat()}:{thresholds.window_days}",
            lambda: purchases_of_lines(lines),
        )
    table = traits_table(
        t["users"],
        t["orders"],
        t["order_items"],
        t["products"],
        t["events"],
        context.as_of,
        thresholds,
        purchases=purchases,
    )
    return ModelOutput(table)
