"""Purchase-based tags (SPEC item 10): categories bought, promo sensitivity, category preference and TGI.

Every function takes canonical Ibis tables (already cut at the as-of date) and
returns one row per user of ``users``; nothing is executed here. Only valid
orders count (after-sale records excluded, :func:`huaxiang.segment.rfm.valid_orders`)
and only those in the window ``[as_of - window_days, as_of - 1]`` (whole days).
``docs/standard-purchase.md`` gives every definition with examples.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence

import ibis
import ibis.expr.types as ir

from huaxiang.errors import ConfigError, NotFoundError, did_you_mean
from huaxiang.segment.rfm import day_start, valid_orders

#: Default category names of the preference groups, matched at any category level (l1, l2, l3).
PET_CATEGORIES: tuple[str, ...] = ("宠物", "宠物生活", "宠物用品", "宠物食品", "宠物主粮")
BABY_CATEGORIES: tuple[str, ...] = ("母婴", "孕婴", "孕婴童", "母婴用品", "婴童用品", "奶粉", "尿裤湿巾")
LOCAL_LIFE_CATEGORIES: tuple[str, ...] = (
    "本地生活",
    "生活服务",
    "到店服务",
    "餐饮美食",
    "休闲娱乐",
    "周边游",
)
HEALTH_CATEGORIES: tuple[str, ...] = ("医药保健", "保健品", "营养保健", "医疗保健", "营养健康")
PREFERENCE_GROUPS: dict[str, tuple[str, ...]] = {
    "pet": PET_CATEGORIES,
    "baby": BABY_CATEGORIES,
    "local_life": LOCAL_LIFE_CATEGORIES,
    "health": HEALTH_CATEGORIES,
}
CATEGORY_LEVELS = ("category_l1", "category_l2", "category_l3")


# ---------------------------------------------------------------------------- shared pieces


def window_orders(orders: ir.Table, as_of: dt.date, window_days: int) -> ir.Table:
    """Valid orders (after-sale excluded) placed in the ``window_days`` whole days before ``as_of``."""
    if window_days < 1:
        raise ConfigError(f"window_days must be at least 1, got {window_days}.")
    valid = valid_orders(orders)
    start = day_start(as_of - dt.timedelta(days=window_days))
    return valid.filter((valid.order_time >= start) & (valid.order_time < day_start(as_of)))


def line_spend(items: ir.Table) -> ir.NumericValue:
    """What a line cost the buyer: ``quantity × unit_price − discount`` (no discount counts as 0).

    Exact: DECIMAL money times an integer quantity, so sums of it are the same on
    every engine whatever order they add in (a float sum is not).
    """
    spend = items.quantity * items.unit_price
    if "discount" in items.columns:
        spend = spend - items.discount.fill_null(ibis.literal(0).cast(items.discount.type()))
    return spend


def window_lines(
    orders: ir.Table, items: ir.Table, products: ir.Table, as_of: dt.date, window_days: int
) -> ir.Table:
    """Lines of the valid orders in the window with their buyer, time, spend and product categories.

    Columns: ``user_id, order_id, order_time, product_id, spend`` and those of
    ``category_l1..l3`` and ``price`` the products table has (NULL for a product
    missing from it).
    """
    in_window = window_orders(orders, as_of, window_days).select("order_id", "user_id", "order_time")
    lines = items.select("order_id", "product_id", spend=line_spend(items))
    lines = lines.inner_join(in_window, "order_id")
    wanted = [c for c in (*CATEGORY_LEVELS, "price") if c in products.columns]
    catalogue = products.select("product_id", *wanted)
    return lines.left_join(catalogue, "product_id").select(
        "user_id", "order_id", "order_time", "product_id", "spend", *wanted
    )


def in_categories(table: ir.Table, names: Sequence[str]) -> ir.BooleanValue:
    """The row's product is in one of ``names`` at any category level the table has (NULL -> False)."""
    levels = [table[c] for c in CATEGORY_LEVELS if c in table.columns]
    if not levels or not names:
        return ibis.literal(False)
    matched = levels[0].isin(list(names)).fill_null(False)
    for level in levels[1:]:
        matched = matched | level.isin(list(names)).fill_null(False)
    return matched


def per_user(users: ir.Table, values: ir.Table) -> ir.Table:
    """``values`` (keyed by ``user_id``) left-joined onto every user."""
    columns = [c for c in values.columns if c != "user_id"]
    return users.select("user_id").left_join(values, "user_id").select("user_id", *columns)


def _ratio(part: ir.NumericValue, whole: ir.NumericValue) -> ir.FloatingValue:
    """``part / whole`` as float64, NULL when ``whole`` is NULL or not positive."""
    return ibis.ifelse(whole > 0, part.cast("float64") / whole.cast("float64"), ibis.null("float64"))


# ---------------------------------------------------------------------------- categories


def category_table(
    users: ir.Table,
    orders: ir.Table,
    items: ir.Table,
    products: ir.Table,
    as_of: dt.date,
    *,
    window_days: int = 365,
    shopaholic_orders: int = 24,
    shopaholic_categories: int = 6,
    lines: ir.Table | None = None,
) -> ir.Table:
    """Category breadth of each user's valid orders in the window (单品类 / 跨品类, 购物狂).

    Returns ``user_id, orders_in_window, cross_category_count, single_category,
    trait_shopaholic``: the number of valid orders; the number of distinct
    ``products.category_l1`` of their lines (lines of products without a top
    category are not counted; 0 without an order); ``single_category`` is true for
    exactly one category (false for 0); ``trait_shopaholic`` (购物狂) is true for at
    least ``shopaholic_orders`` orders or at least ``shopaholic_categories`` categories.
    ``lines``: :func:`window_lines` of the same tables and window, when already computed.
    """
    if shopaholic_orders < 1 or shopaholic_categories < 1:
        raise ConfigError(
            "shopaholic_orders and shopaholic_categories must be at least 1, "
            f"got {shopaholic_orders} and {shopaholic_categories}."
        )
    in_window = window_orders(orders, as_of, window_days)
    counts = in_window.group_by("user_id").aggregate(orders_in_window=in_window.count())
    if lines is None:
        lines = window_lines(orders, items, products, as_of, window_days)
    breadth = lines.group_by("user_id").aggregate(cross_category_count=lines.category_l1.nunique())
    t = per_user(users, counts)
    t = t.left_join(breadth, "user_id").select(*t.columns, "cross_category_count")
    n_orders = t.orders_in_window.fill_null(0).cast("int64")
    n_categories = t.cross_category_count.fill_null(0).cast("int64")
    return t.select(
        "user_id",
        orders_in_window=n_orders,
        cross_category_count=n_categories,
        single_category=n_categories == 1,
        trait_shopaholic=(n_orders >= shopaholic_orders) | (n_categories >= shopaholic_categories),
    )


# ---------------------------------------------------------------------------- promo calendar


def parse_month_day(text: str, where: str) -> int:
    """``"06-18"`` as ``618`` (month × 100 + day); an impossible date is a ConfigError naming ``where``."""
    try:
        day = dt.datetime.strptime(f"2024-{text}", "%Y-%m-%d").date()  # a leap year admits 02-29
    except ValueError:
        raise ConfigError(f"{where}: {text!r} is not a month-day such as 06-01 (MM-DD).") from None
    return day.month * 100 + day.day


def promo_day(moment: ir.TimestampValue, calendar: Sequence[tuple[str, str, str]]) -> ir.BooleanValue:
    """Whether ``moment`` falls in a promo window; ``calendar`` holds ``(id, start MM-DD, end MM-DD)``.

    Bounds are inclusive and recur every year; a window whose end comes before its
    start runs over New Year (``12-20`` .. ``01-05``).
    """
    if not calendar:
        raise ConfigError(
            "the promo calendar is empty; list the big promos under promo_calendar in huaxiang.yaml "
            "(e.g. 618: 06-01 .. 06-18, 双11: 11-01 .. 11-11)."
        )
    month_day = moment.month() * 100 + moment.day()
    matched: ir.BooleanValue = ibis.literal(False)
    for promo_id, start_text, end_text in calendar:
        start = parse_month_day(start_text, f"promo_calendar {promo_id} start")
        end = parse_month_day(end_text, f"promo_calendar {promo_id} end")
        if start <= end:
            inside = (month_day >= start) & (month_day <= end)
        else:
            inside = (month_day >= start) | (month_day <= end)
        matched = matched | inside
    return matched


def promo_table(
    users: ir.Table,
    orders: ir.Table,
    as_of: dt.date,
    calendar: Sequence[tuple[str, str, str]],
    *,
    window_days: int = 365,
    min_orders: int = 2,
    min_share: float = 0.5,
) -> ir.Table:
    """Promo sensitivity (大促敏感): how much of a user's buying falls on big-promo days.

    Returns ``user_id, promo_orders, promo_order_share, promo_sensitive``: valid
    orders in the window placed on a promo day (0 without any), their share of the
    user's valid orders in the window (NULL without one), and ``promo_sensitive``:
    at least ``min_orders`` valid orders and a share of at least ``min_share``.
    """
    if min_orders < 1 or not 0 < min_share <= 1:
        raise ConfigError(
            f"promo: min_orders must be at least 1 and min_share in (0, 1], got {min_orders} and {min_share}."
        )
    in_window = window_orders(orders, as_of, window_days)
    on_promo = promo_day(in_window.order_time, calendar)
    counts = in_window.group_by("user_id").aggregate(
        n_orders=in_window.count(), n_promo=on_promo.cast("int64").sum()
    )
    t = per_user(users, counts)
    share = _ratio(t.n_promo, t.n_orders)
    return t.select(
        "user_id",
        promo_orders=t.n_promo.fill_null(0).cast("int64"),
        promo_order_share=share,
        promo_sensitive=((t.n_orders >= min_orders) & (share >= min_share)).fill_null(False),
    )


def coupon_table(users: ir.Table, orders: ir.Table, as_of: dt.date, *, window_days: int = 365) -> ir.Table:
    """Coupon use: ``user_id, coupon_orders, coupon_order_share`` over valid orders in the window.

    An order counts as a coupon order when ``coupon_used`` is true (NULL counts as
    no coupon); the share is NULL without a valid order in the window.
    """
    in_window = window_orders(orders, as_of, window_days)
    counts = in_window.group_by("user_id").aggregate(
        n_orders=in_window.count(), n_coupon=in_window.coupon_used.fill_null(False).cast("int64").sum()
    )
    t = per_user(users, counts)
    return t.select(
        "user_id",
        coupon_orders=t.n_coupon.fill_null(0).cast("int64"),
        coupon_order_share=_ratio(t.n_coupon, t.n_orders),
    )


# ---------------------------------------------------------------------------- preference and TGI


def _shares_and_tgi(
    users: ir.Table,
    lines: ir.Table,
    flags: Mapping[str, ir.BooleanValue],
    weight: ir.NumericValue,
    extra: Callable[[ir.Table], Mapping[str, ir.Value]] | None = None,
) -> ir.Table:
    """Per user: ``<name>_share`` (weight of flagged lines ÷ weight of all lines) and ``<name>_tgi``.

    The population is every user whose lines weigh more than 0 (all buyers); its
    share is the flagged weight ÷ all weight summed over them. ``extra(lines)`` gives
    more per-user aggregates of ``lines``, computed in the same pass and returned as
    they are (NULL for a user without lines).

    ``weight`` must be exact (an integer or a DECIMAL): the weights are summed exactly
    and only the ratios are floats, so every engine gives the same shares to the bit.
    """
    zero = ibis.literal(0).cast(weight.type())
    parts = {f"weight_{name}": ibis.ifelse(flag, weight, zero) for name, flag in flags.items()}
    lines = lines.mutate(line_weight=weight, **parts)
    more = dict(extra(lines)) if extra is not None else {}
    sums = lines.group_by("user_id").aggregate(
        weight_all=lines.line_weight.sum(), **{name: lines[name].sum() for name in parts}, **more
    )
    t = per_user(users, sums)
    buyer = t.weight_all > 0
    population_total = ibis.ifelse(buyer, t.weight_all, zero).sum().over()
    columns: dict[str, ir.Value] = {}
    for name in flags:
        part = t[f"weight_{name}"]
        share = _ratio(part, t.weight_all)
        population_share = _ratio(ibis.ifelse(buyer, part, zero).sum().over(), population_total)
        columns[f"{name}_share"] = share
        columns[f"{name}_tgi"] = ibis.ifelse(
            population_share > 0, share / population_share * 100, ibis.null("float64")
        )
    return t.select("user_id", **columns, **{name: t[name] for name in more})


def preference_table(
    users: ir.Table,
    orders: ir.Table,
    items: ir.Table,
    products: ir.Table,
    as_of: dt.date,
    *,
    window_days: int = 365,
    groups: Mapping[str, Sequence[str]] | None = None,
    lines: ir.Table | None = None,
) -> ir.Table:
    """Category preference (品类偏好) and TGI of each group of categories, plus every-quarter buying.

    ``groups`` maps a name to category names matched at any level (default
    :data:`PREFERENCE_GROUPS`: pet, baby, local_life, health). For each name the
    result has ``<name>_share`` (the user's spend on the group's lines ÷ the
    user's spend, valid orders in the window; NULL without a positive spend),
    ``<name>_tgi`` (share ÷ population share × 100, the population share being the
    group's spend ÷ all spend over all buyers in the window) and
    ``<name>_every_quarter`` (spent on the group in each of the window's four
    quarters, counted back from ``as_of``: quarter ``floor((d - 1) × 4 / window_days)``
    of an order ``d`` days back, i.e. days 1-92, 93-183, 184-274, 275-365 for 365 days;
    false without). ``lines``: :func:`window_lines` of the same tables and window, when
    already computed.
    """
    groups = dict(PREFERENCE_GROUPS if groups is None else groups)
    for name, names in groups.items():
        if not names:
            raise ConfigError(f"category preference {name!r}: give at least one category name.")
    if lines is None:
        lines = window_lines(orders, items, products, as_of, window_days)
    # Quarter 0 holds the most recent days: days_back 1..window_days -> 0..3 (lines are in the window).
    days_back = ibis.literal(as_of).delta(lines.order_time.date(), unit="day")
    quarter = ((days_back - 1) * 4 / window_days).floor().cast("int64")
    lines = lines.mutate(quarter=quarter)
    flags = {name: in_categories(lines, names) for name, names in groups.items()}
    lines = lines.mutate(**{f"in_{name}": flag for name, flag in flags.items()})
    flags = {name: lines[f"in_{name}"] for name in groups}

    def every_quarter(rows: ir.Table) -> dict[str, ir.Value]:
        # Spent on the group in each of the four quarters: one "any" per quarter (the same as
        # four distinct quarters, without a distinct count), all in the pass of the shares.
        columns: dict[str, ir.Value] = {}
        for name in groups:
            spent = rows[f"in_{name}"] & (rows.spend > 0)
            each = [(spent & (rows.quarter == q)).fill_null(False).any() for q in range(4)]
            columns[f"{name}_every_quarter"] = each[0] & each[1] & each[2] & each[3]
        return columns

    t = _shares_and_tgi(users, lines, flags, lines.spend, every_quarter)
    every = [f"{name}_every_quarter" for name in groups]
    return t.mutate(**{column: t[column].fill_null(False) for column in every})


def price_tier_table(
    users: ir.Table,
    orders: ir.Table,
    items: ir.Table,
    products: ir.Table,
    as_of: dt.date,
    *,
    window_days: int = 365,
    value_quantile: float = 0.25,
    premium_quantile: float = 0.75,
    lines: ir.Table | None = None,
) -> ir.Table:
    """Value-for-money (性价比) and premium (精致) shares and TGI, by price within the leaf category.

    A product's reference price is ``products.price`` when the products table has
    prices, else the mean ``unit_price`` of its valid lines in the window. Within
    each leaf ``category_l3``, over its products with a reference price, the cut
    points are the ``value_quantile`` and ``premium_quantile`` quantiles (linear
    interpolation). A line is *value* when its product's price is at or below the
    low cut, *premium* at or above the high cut (ties at a cut count in the
    quarter); a leaf whose two cuts are equal (one price only) has neither, nor do
    products without a leaf or a price. Returns ``user_id, value_share, value_tgi,
    premium_share, premium_tgi``: the share of the user's valid lines in the window
    that are value (premium) lines (each line counts once, whatever its quantity:
    spend would weigh premium lines by their own price), NULL without a line, and
    the TGI against the same share over all buyers' lines. ``lines``: :func:`window_lines`
    of the same tables and window, when already computed.
    """
    if not 0 < value_quantile < premium_quantile < 1:
        raise ConfigError(
            "price tiers: need 0 < value_quantile < premium_quantile < 1, "
            f"got {value_quantile} and {premium_quantile}."
        )
    if lines is None:
        lines = window_lines(orders, items, products, as_of, window_days)
    if "price" in products.columns:
        priced = products.select("product_id", "category_l3", ref_price=products.price.cast("float64"))
    else:
        line_prices = items.inner_join(
            window_orders(orders, as_of, window_days).select("order_id"), "order_id"
        )
        priced = (
            line_prices.group_by("product_id")
            .aggregate(ref_price=line_prices.unit_price.cast("float64").mean())
            .inner_join(products.select("product_id", "category_l3"), "product_id")
        )
    priced = priced.filter(priced.ref_price.notnull() & priced.category_l3.notnull())
    cuts = priced.group_by("category_l3").aggregate(
        low_cut=priced.ref_price.quantile(value_quantile),
        high_cut=priced.ref_price.quantile(premium_quantile),
    )
    tiers = priced.inner_join(cuts, "category_l3")
    spread = tiers.low_cut < tiers.high_cut
    tiers = tiers.select(
        "product_id",
        is_value=spread & (tiers.ref_price <= tiers.low_cut),
        is_premium=spread & (tiers.ref_price >= tiers.high_cut),
    )
    lines = lines.left_join(tiers, "product_id").select(*lines.columns, "is_value", "is_premium")
    flags = {"value": lines.is_value.fill_null(False), "premium": lines.is_premium.fill_null(False)}
    # Shares of lines, not of spend: weighting by spend would weigh premium lines by their price.
    return _shares_and_tgi(users, lines, flags, ibis.literal(1, type="int64"))


def tgi(snapshot: ir.Table, group_tag: str, share_tag: str) -> ir.Table:
    """Group TGI of ``share_tag`` for each value of ``group_tag`` in a built snapshot.

    The share of a group is the mean of ``share_tag`` over its users with a value
    (a boolean tag counts true as 1: the share of users holding it); the
    population share is the same mean over all users with a value; TGI = group
    share ÷ population share × 100 (NULL when the population share is 0). Returns
    ``group, users, users_with_share, group_share, population_share, tgi``, one
    row per group value (NULL is a group too), ordered by group.
    """
    for tag in (group_tag, share_tag):
        if tag not in snapshot.columns:
            names = [c for c in snapshot.columns if c != "user_id"]
            raise NotFoundError(f"the snapshot has no tag {tag!r}.{did_you_mean(tag, names)}")
    share = snapshot[share_tag]
    dtype = share.type()
    if not (dtype.is_boolean() or dtype.is_numeric()):
        raise ConfigError(f"tgi: share tag {share_tag!r} must be boolean or numeric, not {dtype}.")
    t = snapshot.select(group=snapshot[group_tag], share=share.cast("float64"))
    population = t.aggregate(population_share=t.share.mean())
    groups = t.group_by("group").aggregate(
        users=t.count(), users_with_share=t.share.count(), group_share=t.share.mean()
    )
    joined = groups.cross_join(population)
    return joined.select(
        "group",
        "users",
        "users_with_share",
        "group_share",
        "population_share",
        tgi=ibis.ifelse(
            joined.population_share != 0,
            joined.group_share / joined.population_share * 100,
            ibis.null("float64"),
        ),
    ).order_by(ibis.asc("group", nulls_first=False))


# ---------------------------------------------------------------------------- category behaviour


def browse_not_buy_table(
    users: ir.Table,
    orders: ir.Table,
    items: ir.Table,
    products: ir.Table,
    events: ir.Table,
    as_of: dt.date,
    *,
    window_days: int = 30,
    min_views: int = 5,
    level: int = 1,
    categories: Sequence[str] | None = None,
) -> ir.Table:
    """Category-behaviour users (类目行为顾客): browse a category a lot, never bought it here.

    A user browses category C (``category_l<level>``) a lot with at least
    ``min_views`` ``view`` events on C's products in the ``window_days`` days before
    ``as_of``; they never bought it with no valid order line of a C product at any
    time before ``as_of``. ``categories`` limits C to the shop's key categories.
    Returns ``user_id, browse_not_buy_category`` (such a C exists; false otherwise),
    ``browse_not_buy_top_category`` (the C with the most views; ties: the first
    name in sort order; NULL without) and ``browse_not_buy_views`` (its views; 0).
    """
    if level not in (1, 2, 3):
        raise ConfigError(f"browse_not_buy: level must be 1, 2 or 3 (category_l1..l3), got {level}.")
    if min_views < 1 or window_days < 1:
        raise ConfigError(
            "browse_not_buy: min_views and window_days must be at least 1, "
            f"got {min_views} and {window_days}."
        )
    column = f"category_l{level}"
    catalogue = products.filter(products[column].notnull()).select("product_id", category=column)
    if categories is not None:
        catalogue = catalogue.filter(catalogue.category.isin(list(categories)))
    start = day_start(as_of - dt.timedelta(days=window_days))
    views = events.filter(
        (events.event_type == "view") & (events.event_time >= start) & (events.event_time < day_start(as_of))
    )
    views = views.select("user_id", "product_id").inner_join(catalogue, "product_id")
    browsed = views.group_by(["user_id", "category"]).aggregate(views=views.count())
    browsed = browsed.filter(browsed.views >= min_views)
    # Only the orders of users who browsed a category a lot can rule one out: the orders are
    # cut to those users before their lines are read (two years of lines otherwise).
    valid = valid_orders(orders).select("order_id", "user_id")
    valid = valid.semi_join(browsed.select("user_id"), "user_id")
    bought = items.select("order_id", "product_id").inner_join(valid, "order_id")
    bought = bought.inner_join(catalogue, "product_id").select("user_id", "category")
    never = browsed.anti_join(bought, ["user_id", "category"])
    ranked = never.mutate(
        rank=ibis.row_number().over(
            ibis.window(group_by=never.user_id, order_by=[ibis.desc(never.views), never.category])
        )
    )
    top = ranked.filter(ranked.rank == 0).select(
        "user_id", browse_not_buy_top_category="category", browse_not_buy_views="views"
    )
    t = per_user(users, top)
    return t.select(
        "user_id",
        browse_not_buy_category=t.browse_not_buy_top_category.notnull(),
        browse_not_buy_top_category=t.browse_not_buy_top_category,
        browse_not_buy_views=t.browse_not_buy_views.fill_null(0).cast("int64"),
    )


__all__ = [
    "BABY_CATEGORIES",
    "HEALTH_CATEGORIES",
    "LOCAL_LIFE_CATEGORIES",
    "PET_CATEGORIES",
    "PREFERENCE_GROUPS",
    "browse_not_buy_table",
    "category_table",
    "coupon_table",
    "in_categories",
    "preference_table",
    "price_tier_table",
    "promo_day",
    "promo_table",
    "tgi",
    "window_lines",
    "window_orders",
]
