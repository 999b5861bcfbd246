"""Model makers: behaviour (registered on import): AIPL stages and brand tags.

The computations live in :mod:`huaxiang.segment.aipl` and :mod:`huaxiang.segment.brand`;
scene strength is a maker of its own (``scene:``), compiled by :mod:`huaxiang.engine.compile`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from huaxiang.engine.registry import ModelContext, ModelOutput, int_param, model_maker
from huaxiang.errors import ConfigError
from huaxiang.segment.aipl import aipl_table
from huaxiang.segment.brand import brand_table


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
    table = aipl_table(
        context.tables["users"],
        context.tables["events"],
        orders,
        context.as_of,
        window_days=int_param(params, "window_days", windows.recent_days),
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
    products = context.tables["products"]
    # The brand's categories default to the deepest category level the data has.
    levels = [level for level in ("category_l3", "category_l2", "category_l1") if level in products.columns]
    table = brand_table(
        context.tables["users"],
        context.tables["orders"],
        context.tables["order_items"],
        products,
        context.tables.get("events"),
        context.as_of,
        brand=name,
        competitors=competitors,
        window_days=int_param(params, "window_days", windows.long_days),
        intent_window_days=int_param(params, "intent_window_days", windows.recent_days),
        core_min_orders=int_param(params, "core_min_orders", 2),
        core_share=float(share),
        category_level=str(params.get("category_level", levels[0])),
        related_level=str(params.get("related_level", "category_l1")),
    )
    return ModelOutput(table)
