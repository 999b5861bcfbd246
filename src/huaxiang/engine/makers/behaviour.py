"""Model makers: behaviour (registered on import): AIPL stages and brand tags.

The computations live in :mod:`huaxiang.segment.aipl` and :mod:`huaxiang.segment.brand`;
scene strength is a maker of its own (``scene:``), compiled by :mod:`huaxiang.engine.compile`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import ibis.expr.types as ir

from huaxiang.engine.registry import ModelContext, ModelOutput, int_param, model_maker
from huaxiang.errors import ConfigError
from huaxiang.segment.aipl import aipl_table
from huaxiang.segment.brand import brand_table
from huaxiang.segment.rfm import day_start

#: Columns of the shared recent events (those the events table has).
_RECENT_EVENT_COLUMNS = ("user_id", "event_time", "event_type", "product_id")


def recent_events(context: ModelContext, days: int) -> ir.Table:
    """The events of the ``days`` whole days before the as-of date, shared by the makers of a build.

    Computed once per build and window (and materialised in a build), so the makers that
    read only recent events (AIPL, brand intent, browse-not-buy) scan the full events
    table once between them. A maker filtering its events to that window itself gets
    the same rows either way. ``days`` below 1 gives the events table unchanged (the
    maker's own check then reports the parameter).
    """
    events = context.tables["events"]
    if days < 1 or "event_time" not in events.columns:
        return events

    def cut() -> ir.Table:
        start = day_start(context.as_of - dt.timedelta(days=days))
        kept = events.filter((events.event_time >= start) & (events.event_time < day_start(context.as_of)))
        return kept.select(*(c for c in _RECENT_EVENT_COLUMNS if c in events.columns))

    return context.shared.get(f"recent_events:{context.as_of.isoformat()}:{days}", cut)


@model_maker(
    "aipl",
    needs=("users.user_id", "events.user_id", "events.event_type", "events.event_time"),
    params=("window_days", "purchase_window_days", "loyalty_min_days", "interest_min_views"),
)
def aipl(context: ModelContext, params: Mapping[str, Any]) -> ModelOutput:
    """AIPL stage per user (:func:`huaxiang.segment.aipl.aipl_table`); purchases from orders when present.

    The windows default to the workspace's ``windows``: ``recent_days`` (30) for
    awareness and interest, ``long_days`` (365) for purchase and loyalty.
    """
    windows = context.settings.windows
    orders = context.tables.get("orders")
    if orders is not None and not {"user_id", "order_time"} <= set(orders.columns):
        orders = None
    window_days = int_param(params, "window_days", windows.recent_days)
    # With orders, events are read only in the window; without, purchase events go further back.
    events = recent_events(context, window_days) if orders is not None else context.tables["events"]
    table = aipl_table(
        context.tables["users"],
        events,
        orders,
        context.as_of,
        window_days=window_days,
        purchase_window_days=int_param(params, "purchase_window_days", windows.long_days),
        loyalty_min_days=int_param(params, "loyalty_min_days", 2),
        interest_min_views=int_param(params, "interest_min_views", 2),
    )
    return ModelOutput(table)


@model_maker(
    "brand",
    needs=(
        "users.user_id",
        "orders.user_id",
        "orders.order_time",
        "order_items.product_id",
        "order_items.quantity",
        "order_items.unit_price",
        "products.brand",
        "products.category_l1",
    ),
    params=(
        "brand",
        "competitors",
        "window_days",
        "intent_window_days",
        "core_min_orders",
        "core_share",
        "category_level",
        "related_level",
    ),
)
def brand(context: ModelContext, params: Mapping[str, Any]) -> ModelOutput:
    """Brand core, intent, competitor and potential flags (:func:`huaxiang.segment.brand.brand_table`)."""
    name = params.get("brand")
    if not isinstance(name, str) or not name:
        raise ConfigError(
            "model brand needs params.brand, the brand as written in products.brand (e.g. 蓝月亮)."
        )
    competitors = params.get("competitors")
    if isinstance(competitors, str):
        competitors = [competitors]
    if competitors is not None and (
        not isinstance(competitors, list) or not all(isinstance(c, str) and c for c in competitors)
    ):
        raise ConfigError(f"parameter competitors takes a list of brands, got {competitors!r}.")
    share = params.get("core_share", 0.5)
    if isinstance(share, bool) or not isinstance(share, int | float):
        raise ConfigError(f"parameter core_share takes a number between 0 and 1, got {share!r}.")
    windows = context.settings.windows
    intent_window_days = int_param(params, "intent_window_days", windows.recent_days)
    events = context.tables.get("events")
    if events is not None:  # brand intent reads only the events of its window
        events = recent_events(context, intent_window_days)
    products = context.tables["products"]
    # The brand's categories default to the deepest category level the data has.
    levels = [level for level in ("category_l3", "category_l2", "category_l1") if level in products.columns]
    table = brand_table(
        context.tables["users"],
        context.tables["orders"],
        context.tables["order_items"],
        products,
        events,
        context.as_of,
        brand=name,
        competitors=competitors,
        window_days=int_param(params, "window_days", windows.long_days),
        intent_window_days=intent_window_days,
        core_min_orders=int_param(params, "core_min_orders", 2),
        core_share=float(share),
        category_level=str(params.get("category_level", levels[0])),
        related_level=str(params.get("related_level", "category_l1")),
    )
    return ModelOutput(table)
