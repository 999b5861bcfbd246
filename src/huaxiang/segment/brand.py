"""Brand tags (品牌/店铺, seed 001): core, intent, competitor and potential users of one brand.

The brand's *categories* are the leaf categories (``category_l3`` by default) in
which it sells; its *related categories* their top categories (``category_l1``).
Competitors are the other brands selling in the brand's categories, or a list
given. Over the ``window_days`` before the as-of date, with valid orders only
(after-sale excluded) and a line's spend ``quantity × unit_price − discount``:

- ``brand_core`` 品牌核心: bought the brand in at least ``core_min_orders`` orders, or
  the brand holds at least ``core_share`` of the user's spend in its categories;
- ``brand_intent`` 品牌意向: viewed, favorited or carted the brand's products in the
  ``intent_window_days`` before the as-of date and did not buy it in the window
  (NULL when the workspace has no events, or events without products);
- ``brand_competitor`` 竞品人群: bought a competitor's product in the brand's
  categories and not the brand;
- ``brand_potential`` 品牌潜客: bought in the related categories, neither the brand
  nor a competitor in its categories (the wider pool the seed calls 关联品类).

Everything is a lazy Ibis expression, apart from the check that the brand and
its competitors exist, which reads ``products``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

import ibis
import ibis.expr.types as ir

from huaxiang.errors import ConfigError, MissingInputError, did_you_mean
from huaxiang.segment.rfm import day_start, valid_orders

CATEGORY_LEVELS = ("category_l1", "category_l2", "category_l3")
#: Event types that show intent for a brand.
INTENT_EVENT_TYPES = ("view", "favorite", "cart")
BRAND_COLUMNS = ("brand_core", "brand_intent", "brand_competitor", "brand_potential")


def _level(name: str, value: str, products: ir.Table) -> None:
    if value not in CATEGORY_LEVELS:
        raise ConfigError(
            f"brand tags: {name} must be one of {', '.join(CATEGORY_LEVELS)}, got {value!r}."
            f"{did_you_mean(value, CATEGORY_LEVELS)}"
        )
    if value not in products.columns:
        raise MissingInputError(f"column products.{value} ({name} of the brand tags)")


def brand_categories(products: ir.Table, brand: str, category_level: str = "category_l3") -> list[str]:
    """The categories (at ``category_level``) in which ``brand`` sells; reads ``products``."""
    rows = products.filter((products.brand == brand) & products[category_level].notnull())
    values = rows.select(category=rows[category_level]).distinct().category.to_pyarrow().to_pylist()
    return sorted(str(value) for value in values)


def check_brands(products: ir.Table, brand: str, competitors: Sequence[str] | None) -> None:
    """A MissingInputError when ``brand`` or a competitor is not a brand of ``products``."""
    brands = products.filter(products.brand.notnull()).select("brand").distinct()
    known = sorted(str(value) for value in brands.brand.to_pyarrow().to_pylist())
    for name in [brand, *(competitors or [])]:
        if name not in known:
            shown = ", ".join(known[:20]) + (" ..." if len(known) > 20 else "")
            raise MissingInputError(
                f"brand {name!r} in products.brand.{did_you_mean(name, known)} Brands: {shown}. "
                "Set the brand tags' params: {brand: ...} to a brand of this shop."
            )


def brand_table(
    users: ir.Table,
    orders: ir.Table,
    order_items: ir.Table,
    products: ir.Table,
    events: ir.Table | None,
    as_of: dt.date,
    *,
    brand: str,
    competitors: Sequence[str] | None = None,
    window_days: int = 365,
    intent_window_days: int = 30,
    core_min_orders: int = 2,
    core_share: float = 0.5,
    category_level: str = "category_l3",
    related_level: str = "category_l1",
) -> ir.Table:
    """Brand core / intent / competitor / potential flags per user of ``users``.

    Parameters
    ----------
    users, orders, order_items, products, events
        Canonical tables (``events`` optional: without them ``brand_intent`` is NULL).
    as_of
        Snapshot date; only data strictly before it is used.
    brand, competitors
        The brand (a value of ``products.brand``) and its competitors (default: every
        other brand selling in the brand's categories).
    window_days
        Purchase look-back for all four tags.
    intent_window_days
        Look-back of the views, favorites and carts of ``brand_intent``.
    core_min_orders, core_share
        Core: at least this many orders with the brand, or at least this share of
        the spend in the brand's categories.
    category_level, related_level
        Category columns of the brand's categories and of the related categories.

    Returns
    -------
    ibis.Table
        ``user_id, brand_orders, brand_spend, category_spend, brand_spend_share,
        brand_core, brand_intent, brand_competitor, brand_potential``.
    """
    for name, value in (
        ("window_days", window_days),
        ("intent_window_days", intent_window_days),
        ("core_min_orders", core_min_orders),
    ):
        if value < 1:
            raise ConfigError(f"brand tags: {name} must be at least 1, got {value}.")
    if not 0 < core_share <= 1:
        raise ConfigError(f"brand tags: core_share must be in (0, 1], got {core_share}.")
    _level("category_level", category_level, products)
    _level("related_level", related_level, products)
    check_brands(products, brand, competitors)
    categories = brand_categories(products, brand, category_level)
    if not categories:
        raise MissingInputError(f"a {category_level} for any product of brand {brand!r}")

    # One row per product with what it is for these tags (a few hundred rows): the brand's,
    # in the brand's categories, a rival's (a competitor's, in those categories), in a related
    # category. Lines then take these flags in one join and one pass per user.
    related = products.filter(products[category_level].isin(categories)).select(group=products[related_level])
    related_products = products.semi_join(related, products[related_level] == related.group)
    in_scope_product = products[category_level].isin(categories).fill_null(False)
    rival_product = in_scope_product & (products.brand != brand).fill_null(False)
    if competitors is not None:
        rival_product = rival_product & products.brand.isin(list(competitors)).fill_null(False)
    flags = products.select(
        "product_id",
        line_brand="brand",
        line_in_scope=in_scope_product,
        line_rival=rival_product,
    )
    flags = flags.left_join(
        related_products.select("product_id").distinct().mutate(line_related=ibis.literal(True)),
        "product_id",
    ).select("product_id", "line_brand", "line_in_scope", "line_rival", "line_related")

    end = day_start(as_of)
    valid = valid_orders(orders)
    valid = valid.filter(
        (valid.order_time < end) & (valid.order_time >= day_start(as_of - dt.timedelta(days=window_days)))
    )
    lines = order_items.inner_join(valid.select("order_id", "user_id"), "order_id")
    discount = lines.discount.fill_null(0) if "discount" in lines.columns else 0
    # Spend stays DECIMAL so that the share test (brand >= share x category) is exact.
    lines = lines.mutate(line_spend=lines.quantity * lines.unit_price - discount)
    lines = lines.left_join(flags, "product_id").select(
        "order_id", "user_id", "line_spend", "line_brand", "line_in_scope", "line_rival", "line_related"
    )
    in_scope = lines.line_in_scope.fill_null(False)
    is_brand = in_scope & (lines.line_brand == brand).fill_null(False)
    per_user = lines.group_by("user_id").aggregate(
        brand_orders=lines.order_id.nunique(where=is_brand),
        brand_spend=lines.line_spend.sum(where=is_brand),
        category_spend=lines.line_spend.sum(where=in_scope),
        bought_rival=lines.line_rival.fill_null(False).any(),
        bought_related=lines.line_related.fill_null(False).any(),
    )

    t = users.select("user_id")
    t = t.left_join(per_user, "user_id").select(
        "user_id", "brand_orders", "brand_spend", "category_spend", "bought_rival", "bought_related"
    )
    if events is not None and "product_id" not in events.columns:
        events = None  # events that name no product cannot show interest in a brand
    if events is not None:
        start = day_start(as_of - dt.timedelta(days=intent_window_days))
        recent = (events.event_time >= start) & (events.event_time < end)
        looked = events.filter(events.event_type.isin(INTENT_EVENT_TYPES) & recent)
        brand_products = products.filter(products.brand == brand).select("product_id")
        lookers = looked.semi_join(brand_products, "product_id").select("user_id").distinct()
        t = t.left_join(lookers.mutate(looked=ibis.literal(True)), "user_id").select(*t.columns, "looked")
        looked_flag = t.looked.fill_null(False)
    else:
        looked_flag = ibis.null("boolean")
    t = t.mutate(
        brand_orders=t.brand_orders.fill_null(0).cast("int64"),
        brand_spend=t.brand_spend.fill_null(0),
        category_spend=t.category_spend.fill_null(0),
        bought_rival=t.bought_rival.fill_null(False),
        bought_related=t.bought_related.fill_null(False),
        looked=looked_flag,
    )
    share = t.brand_spend.cast("float64") / t.category_spend.cast("float64")
    t = t.mutate(brand_spend_share=ibis.ifelse(t.category_spend > 0, share, ibis.null("float64")))
    bought_brand = t.brand_orders >= 1
    large_share = t.brand_spend >= t.category_spend * ibis.literal(Decimal(str(core_share)))
    core = bought_brand & ((t.brand_orders >= core_min_orders) | ((t.category_spend > 0) & large_share))
    competitor = t.bought_rival & ~bought_brand
    return t.select(
        "user_id",
        "brand_orders",
        "brand_spend",
        "category_spend",
        "brand_spend_share",
        brand_core=core,
        # Without events intent is unknown, not false (NULL AND FALSE would be FALSE).
        brand_intent=t.looked & ~bought_brand if events is not None else ibis.null("boolean"),
        brand_competitor=competitor,
        brand_potential=t.bought_related & ~bought_brand & ~competitor,
    )


__all__ = ["BRAND_COLUMNS", "CATEGORY_LEVELS", "brand_categories", "brand_table", "check_brands"]
