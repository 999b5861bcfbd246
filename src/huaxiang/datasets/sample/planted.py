"""``planted.json``: a machine-readable description of what the sample shop plants."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow.compute as pc

from huaxiang.datasets.sample import campaign as campaign_module
from huaxiang.datasets.sample.calendar import (
    BASE_PROMO_BOOST,
    OUTING_MONTH_FACTOR,
    PROMO_PROFILE_BOOST,
    ShopCalendar,
)
from huaxiang.datasets.sample.catalog import SCENE_SLUGS, Catalog
from huaxiang.datasets.sample.events import OUTING_SESSION_SHARE, PROMO_SESSION_SHARE
from huaxiang.datasets.sample.personas import (
    LIFECYCLES,
    PERSONAS,
    RECOMMENDED_THRESHOLDS,
    RECOVERY_RULE,
)
from huaxiang.datasets.sample.reference import SCENES, TOP_CATEGORIES

FORMAT_VERSION = 1
_FLAGS = {
    "outing_lover": "Views, favorites and carts outing-tagged products a lot "
    f"({OUTING_SESSION_SHARE:.0%} of sessions are outing sessions), more in spring and autumn.",
    "promo_sensitive": "Orders follow the promo calendar (each promo day weighs "
    f"{PROMO_PROFILE_BOOST:g}x an ordinary day) and use coupons more.",
    "big_spender": "Buys premium products, more lines and orders; high member score.",
    "has_child": "Buys 母婴, toys and children's books (drawn from child_probability).",
    "pet_owner": "Buys pet food and litter regularly.",
}


def _group(counts: dict[str, int], prefix: str) -> dict[str, int]:
    start = f"{prefix}."
    return {k[len(start):]: v for k, v in counts.items() if k.startswith(start)}


def _rate(converted: int, users: int) -> float | None:
    return round(converted / users, 4) if users else None


def planted_description(
    params: dict[str, Any],
    calendar: ShopCalendar,
    catalog: Catalog,
    rows: dict[str, int],
    counts: dict[str, int],
) -> dict[str, Any]:
    """Everything a test or a demo needs to know about the planted structure, with counts."""
    persona_users = _group(counts, "persona")
    lifecycle_users = _group(counts, "lifecycle")
    flags = _group(counts, "flag")
    products = catalog.products
    touch_day = calendar.end - dt.timedelta(days=campaign_module.TOUCH_DAYS_BEFORE_END)
    return {
        "generator": "huaxiang.datasets.sample",
        "format_version": FORMAT_VERSION,
        "params": params,
        "window": {
            "start": calendar.start.isoformat(),
            "end": calendar.end.isoformat(),
            "timezone": "Asia/Shanghai",
            "timestamps_before": (calendar.end + dt.timedelta(days=1)).isoformat(),
        },
        "rows": rows,
        "personas": {
            p.slug: {"name_zh": p.name_zh, "description": p.description, "share": p.share,
                     "users": persona_users.get(p.slug, 0)}
            for p in PERSONAS
        },
        "lifecycle": {
            "as_of": calendar.end.isoformat(),
            "recommended_thresholds": RECOMMENDED_THRESHOLDS,
            "recovery_rule": RECOVERY_RULE,
            "stages": {
                s.slug: {"name_zh": s.name_zh, "description": s.description, "share": s.share,
                         "users": lifecycle_users.get(s.slug, 0)}
                for s in LIFECYCLES
            },
        },
        "flags": {
            name: {"description": text, "users": flags.get(name, 0)}
            for name, text in _FLAGS.items()
        },
        "scenes": dict(SCENES),
        "scene_products": {
            slug: int(catalog.product_scenes[:, i].sum()) for i, slug in enumerate(SCENE_SLUGS)
        },
        "outing_season_month_factor": {
            str(month): float(OUTING_MONTH_FACTOR[month]) for month in range(1, 13)
        },
        "promo_calendar": [
            {"name": w.name, "first_day": w.first_day.isoformat(),
             "last_day": w.last_day.isoformat()}
            for w in calendar.windows
        ],
        "promo_behaviour": {
            "everyone_promo_day_weight": BASE_PROMO_BOOST,
            "promo_sensitive_promo_day_weight": PROMO_PROFILE_BOOST,
            "promo_sensitive_session_share_on_promo_calendar": PROMO_SESSION_SHARE,
            "promo_day_share_of_window": round(calendar.promo_share(), 4),
            "orders_in_promo_windows": counts.get("orders.in_promo_windows", 0),
        },
        "purchase_cycles_days": {top.name: top.cycle_days for top in TOP_CATEGORIES},
        "purchase_cycles_note": "the rhythm of a keen buyer; each buyer stretches it (lognormal) "
        "and brings only part of it to this shop, so observed gaps are longer but keep the "
        "order: 生鲜 shortest, 3C数码 / 家电 longest. A buyer's orders in one category are "
        "spaced regularly over the active period.",
        "orders": {
            "amount_rule": "amount = sum(quantity * unit_price - discount) over the order's "
            "lines; the coupon is included in line 1's discount",
            "after_sale_rule": "after-sale records are full refunds: is_after_sale = true and "
            "refund_amount = amount",
            "after_sale": counts.get("orders.after_sale", 0),
            "coupon_used": counts.get("orders.coupon_used", 0),
        },
        "campaign": _campaign(calendar, counts, touch_day),
        "dirty": {
            "duplicate_events": counts.get("dirty.duplicate_events", 0),
            "null_user_events": counts.get("dirty.null_user_events", 0),
            "nonpositive_orders": counts.get("dirty.nonpositive_orders", 0),
            "description": "duplicate_events: exact copies placed right after the original; "
            "null_user_events: user_id is null; nonpositive_orders: amount 0 or negative "
            "while is_after_sale is false (their lines are kept).",
        },
        "examples": {
            "dyson_hair_dryers": _product_ids(products, "戴森", "吹风机"),
            "bluemoon_laundry_detergent": _product_ids(products, "蓝月亮", "洗衣液"),
        },
    }


def _campaign(
    calendar: ShopCalendar, counts: dict[str, int], touch_day: dt.date
) -> dict[str, Any]:
    observed: dict[str, Any] = {}
    for scope in ("all", "active"):
        observed[scope] = {}
        for variant in campaign_module.VARIANTS:
            users = counts.get(f"campaign.{scope}.{variant}.users", 0)
            converted = counts.get(f"campaign.{scope}.{variant}.converted", 0)
            observed[scope][variant] = {
                "users": users, "converted": converted, "rate": _rate(converted, users),
            }
    return {
        "campaign_id": campaign_module.campaign_id(calendar),
        "touch_day": touch_day.isoformat(),
        "touch_hours": "10:00-12:00",
        "audience": "users with planted lifecycle active, new or high_potential, registered "
        f"at least a day before the touch; {campaign_module.AUDIENCE_SHARE:.0%} of them reached",
        "assignment": f"random, {campaign_module.TREATMENT_SHARE:.0%} treatment / rest control; "
        "control users are held out (opened and used are null)",
        "outcome": "a valid order (not after-sale, amount > 0) within "
        f"{campaign_module.CONVERSION_WINDOW_DAYS} days after touch_time",
        "planted_effect": {
            "who": "treated users with planted lifecycle active",
            "absolute_uplift": campaign_module.UPLIFT_PROBABILITY,
            "mechanism": "one extra coupon order "
            f"({campaign_module.COUPON_CENTS // 100} yuan) within the window",
            "other_segments": 0.0,
            "expected_observed_uplift": "about absolute_uplift x 0.95 x (1 - control rate): "
            "5 % of the extra orders are after-sale, and some responders would have ordered "
            "anyway",
        },
        "uplift_orders": counts.get("campaign.uplift_orders", 0),
        "observed": observed,
    }


def _product_ids(products: Any, brand: str, leaf: str) -> list[str]:
    mask = pc.and_(pc.equal(products["brand"], brand), pc.equal(products["category_l3"], leaf))
    return [str(v) for v in products.filter(mask)["product_id"].to_pylist()]
