"""Consumption traits (traits.yaml): impulsive, price comparer, hesitant, shopaholic.

A hand-made shop with one user per situation; expected values are worked out in the
comments (defaults: 30-day lookback, impulse within 1 hour after at most 2 views, 3
leaf products viewed in 7 days, 5 unconverted intents making 80 %, median of 7 days,
2 purchases and a share of 0.5).
"""

from __future__ import annotations

import datetime as dt
import shutil
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from huaxiang.catalog import load_catalog
from huaxiang.engine import build
from huaxiang.errors import ConfigError
from huaxiang.segment.purchase import category_table
from huaxiang.segment.traits import TraitThresholds, traits_table
from huaxiang.workspace import Workspace

AS_OF = dt.date(2026, 7, 1)
MONEY = pa.decimal128(18, 2)
TS = pa.timestamp("us")
TRAITS = ("trait_impulsive", "trait_price_comparer", "trait_hesitant")
USERS = ["t_imp", "t_cmp", "t_hes", "t_hes2", "t_slow", "t_after", "t_none"]

PRODUCTS = pa.table(
    {
        "product_id": ["a1", "a2", "a3", "a4", "b1", "x1"],
        "category_l1": ["宠物"] * 4 + ["母婴", None],
        "category_l3": ["猫粮"] * 4 + ["纸尿裤", None],
        "price": [Decimal("10")] * 6,
    },
    schema=pa.schema([("product_id", pa.string()), ("category_l1", pa.string()),
                      ("category_l3", pa.string()), ("price", MONEY)]),
)
# (order, user, time, after-sale, product)
ORDERS = [
    ("o1", "t_imp", "2026-06-10 10:30", False, "a1"),
    ("o2", "t_imp", "2026-06-12 10:00", False, "b1"),
    ("o3", "t_imp", "2026-06-20 10:00", False, "a2"),
    ("o4", "t_cmp", "2026-06-10 12:00", False, "a1"),
    ("o5", "t_cmp", "2026-06-20 12:00", False, "a4"),
    ("o6", "t_cmp", "2026-06-25 12:00", False, "x1"),
    ("o9", "t_hes", "2026-03-01 12:00", False, "a1"),
    ("o10", "t_hes2", "2026-06-15 12:00", False, "x1"),
    ("o11", "t_hes2", "2026-06-10 13:00", False, "b1"),
    ("o7", "t_slow", "2026-06-20 12:00", False, "a1"),
    ("o8", "t_slow", "2026-06-25 09:00", False, "b1"),
    ("o12", "t_after", "2026-06-20 12:00", True, "a1"),
]
# (user, type, product, time)
EVENTS = [
    # t_imp: o1 30 minutes after the first view (impulsive), o2 exactly 1 hour after (impulsive),
    # o3 5 days after a click (judged, not impulsive). The purchase event and the view after the
    # order do not count. Judged 3, impulsive 2/3; median time to buy 1 hour = 1/24 day.
    ("t_imp", "view", "a1", "2026-06-10 10:00"),
    ("t_imp", "purchase", "a1", "2026-06-10 10:30"),
    ("t_imp", "view", "b1", "2026-06-12 09:00"),
    ("t_imp", "click", "a2", "2026-06-15 10:00"),
    ("t_imp", "view", "a2", "2026-06-20 11:00"),
    # t_cmp: before o4 three 猫粮 products viewed within 7 days (compared); before o5 only a2 and
    # a3 (a1 at 06-13 11:59 is 1 minute too early): leaf purchases 2, compared 1 -> 0.5 exactly.
    # Only o4's product was seen: judged 1 (5 days).
    ("t_cmp", "view", "a1", "2026-06-05 12:00"),
    ("t_cmp", "view", "a2", "2026-06-05 12:00"),
    ("t_cmp", "view", "a3", "2026-06-05 12:00"),
    ("t_cmp", "view", "a1", "2026-06-13 11:59"),
    ("t_cmp", "view", "a2", "2026-06-19 10:00"),
    ("t_cmp", "view", "a3", "2026-06-19 10:00"),
    # t_hes: 5 products favorited / carted / removed in the last 90 days, none ordered afterwards
    # (o9 came before); the x1 cart is older than 90 days (2026-04-02).
    ("t_hes", "favorite", "a1", "2026-06-01 10:00"),
    ("t_hes", "cart", "a2", "2026-06-01 11:00"),
    ("t_hes", "cart", "a3", "2026-06-02 10:00"),
    ("t_hes", "cart_remove", "a4", "2026-06-03 10:00"),
    ("t_hes", "favorite", "b1", "2026-06-04 10:00"),
    ("t_hes", "cart", "x1", "2026-03-15 10:00"),
    # t_hes2: 6 intent products, b1 and x1 ordered afterwards: 4 unconverted, below 5.
    # o11 1 hour after the b1 cart (impulsive), o10 2 hours after the x1 cart: 1 of 2 impulsive.
    ("t_hes2", "favorite", "a1", "2026-06-01 10:00"),
    ("t_hes2", "cart", "a2", "2026-06-01 10:00"),
    ("t_hes2", "cart", "a3", "2026-06-02 10:00"),
    ("t_hes2", "favorite", "a4", "2026-06-03 10:00"),
    ("t_hes2", "cart", "b1", "2026-06-10 12:00"),
    ("t_hes2", "cart", "x1", "2026-06-15 10:00"),
    # t_slow: a1 first seen 10 days before o7 (the view 31 days before is beyond the lookback),
    # b1 exactly 7 days before o8: median 8.5 days.
    ("t_slow", "view", "a1", "2026-05-20 12:00"),
    ("t_slow", "view", "a1", "2026-06-10 12:00"),
    ("t_slow", "view", "b1", "2026-06-18 09:00"),
    # t_after: its only order is after-sale.
    ("t_after", "view", "a1", "2026-06-20 11:00"),
]

# judged, impulsive share, compared share, intent products, unconverted, median days, traits
EXPECTED: dict[str, tuple[Any, ...]] = {
    "t_imp": (3, 2 / 3, 0.0, 0, 0, 1 / 24, True, False, False),
    "t_cmp": (1, 0.0, 0.5, 0, 0, 5.0, False, True, False),
    "t_hes": (0, None, 0.0, 5, 5, None, False, False, True),
    "t_hes2": (2, 0.5, 0.0, 6, 4, 1.5 / 24, True, False, False),
    "t_slow": (2, 0.0, 0.0, 0, 0, 8.5, False, False, True),
    "t_after": (0, None, None, 0, 0, None, False, False, False),
    "t_none": (0, None, None, 0, 0, None, False, False, False),
}
COLUMNS = ("judged_purchases", "impulsive_purchase_share", "compared_purchase_share", "intent_products",
           "unconverted_intent_products", "median_days_to_buy", "trait_impulsive", "trait_price_comparer",
           "trait_hesitant")


def ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def arrow_tables() -> dict[str, pa.Table]:
    orders = pa.table(
        {
            "order_id": [o[0] for o in ORDERS],
            "user_id": [o[1] for o in ORDERS],
            "order_time": [ts(o[2]) for o in ORDERS],
            "amount": [Decimal("10")] * len(ORDERS),
            "is_after_sale": [o[3] for o in ORDERS],
        },
        schema=pa.schema([("order_id", pa.string()), ("user_id", pa.string()), ("order_time", TS),
                          ("amount", MONEY), ("is_after_sale", pa.bool_())]),
    )
    items = pa.table(
        {
            "order_id": [o[0] for o in ORDERS],
            "line_no": [1] * len(ORDERS),
            "product_id": [o[4] for o in ORDERS],
            "quantity": [1] * len(ORDERS),
            "unit_price": [Decimal("10")] * len(ORDERS),
        },
        schema=pa.schema([("order_id", pa.string()), ("line_no", pa.int64()), ("product_id", pa.string()),
                          ("quantity", pa.int64()), ("unit_price", MONEY)]),
    )
    events = pa.table(
        {
            "user_id": [e[0] for e in EVENTS],
            "event_time": [ts(e[3]) for e in EVENTS],
            "event_type": [e[1] for e in EVENTS],
            "product_id": [e[2] for e in EVENTS],
        },
        schema=pa.schema([("user_id", pa.string()), ("event_time", TS), ("event_type", pa.string()),
                          ("product_id", pa.string())]),
    )
    return {"users": pa.table({"user_id": USERS}), "orders": orders, "order_items": items,
            "events": events, "products": PRODUCTS}


def memtables() -> dict[str, ibis.Table]:
    return {name: ibis.memtable(table) for name, table in arrow_tables().items()}


def by_user(table: ibis.Table) -> dict[str, dict[str, Any]]:
    return {row["user_id"]: row for row in table.to_pyarrow().to_pylist()}


def expected_row(values: tuple[Any, ...]) -> dict[str, Any]:
    pairs = zip(COLUMNS, values, strict=True)
    return {name: pytest.approx(v) if isinstance(v, float) else v for name, v in pairs}


def test_traits_per_user() -> None:
    t = memtables()
    rows = by_user(traits_table(t["users"], t["orders"], t["order_items"], t["products"], t["events"], AS_OF))
    assert set(rows) == set(USERS)
    for user, values in EXPECTED.items():
        got = {name: rows[user][name] for name in COLUMNS}
        assert got == expected_row(values), user


def test_thresholds_move_the_edges() -> None:
    t = memtables()
    args = (t["users"], t["orders"], t["order_items"], t["products"], t["events"], AS_OF)
    # Impulse within 59 minutes: t_imp keeps only o1 (1/3), t_hes2 none.
    strict = by_user(traits_table(*args, TraitThresholds(impulse_hours=59 / 60)))
    assert strict["t_imp"]["impulsive_purchase_share"] == pytest.approx(1 / 3)
    assert not strict["t_imp"]["trait_impulsive"] and not strict["t_hes2"]["trait_impulsive"]
    # Slow buying from 8.5 days: t_slow is exactly on it; above it, no longer hesitant.
    assert by_user(traits_table(*args, TraitThresholds(hesitant_days=8.5)))["t_slow"]["trait_hesitant"]
    assert not by_user(traits_table(*args, TraitThresholds(hesitant_days=8.6)))["t_slow"]["trait_hesitant"]
    # Four unconverted intents are enough at hesitant_min_intents 4 (4 of 6 = 0.67 >= 0.6).
    loose = by_user(traits_table(*args, TraitThresholds(hesitant_min_intents=4, hesitant_share=0.6)))
    assert loose["t_hes2"]["trait_hesitant"]
    # Comparing from 2 products: t_cmp's o5 counts too; t_imp still compares nothing.
    two = by_user(traits_table(*args, TraitThresholds(compare_products=2)))
    assert two["t_cmp"]["compared_purchase_share"] == pytest.approx(1.0)
    assert two["t_imp"]["compared_purchase_share"] == pytest.approx(0.0)


def test_bad_thresholds_are_named() -> None:
    with pytest.raises(ConfigError, match="min_share is a share in"):
        TraitThresholds(min_share=1.5)
    with pytest.raises(ConfigError, match="lookback_days must be positive, got 0"):
        TraitThresholds(lookback_days=0)
    with pytest.raises(ConfigError, match="impulse_hours must be a number, got 'soon'"):
        TraitThresholds(impulse_hours="soon")  # type: ignore[arg-type]


def test_shopaholic_by_orders_or_categories() -> None:
    t = memtables()
    args = (t["users"], t["orders"], t["order_items"], t["products"], AS_OF)
    default = by_user(category_table(*args))
    assert not any(row["trait_shopaholic"] for row in default.values())
    # 3 orders or 2 top categories: t_imp (3 orders, 宠物 + 母婴), t_cmp (3 orders, x1 has no
    # category), t_slow (2 orders, 宠物 + 母婴); t_hes2 has 2 orders and 1 category.
    rows = by_user(category_table(*args, shopaholic_orders=3, shopaholic_categories=2))
    assert [rows[u]["trait_shopaholic"] for u in USERS] == [True, True, False, False, True, False, False]
    assert [rows[u]["orders_in_window"] for u in USERS] == [3, 3, 1, 2, 2, 0, 0]
    with pytest.raises(ConfigError, match="shopaholic_orders and shopaholic_categories must be at least 1"):
        category_table(*args, shopaholic_orders=0)


def standard_tags(target: Path) -> Path:
    target.mkdir(parents=True)
    source = Path(str(resources.files("huaxiang.templates").joinpath("tags")))
    shutil.copy(source / "traits.yaml", target / "traits.yaml")
    return target


def write_workspace(root: Path, *, events: bool = True) -> Path:
    (root / "data").mkdir(parents=True)
    for name, table in arrow_tables().items():
        if events or name != "events":
            pq.write_table(table, root / "data" / f"{name}.parquet")
    return root


def test_traits_yaml_builds_the_four_traits(tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "shop")
    result = build(root, AS_OF, catalog=load_catalog(standard_tags(tmp_path / "tags")))
    assert result.skipped == {}
    assert set(result.built) == {*TRAITS, "trait_shopaholic"}
    rows = {r["user_id"]: r for r in pq.read_table(result.path / "tags.parquet").to_pylist()}
    for user, values in EXPECTED.items():
        assert (rows[user]["trait_impulsive"], rows[user]["trait_price_comparer"],
                rows[user]["trait_hesitant"]) == values[6:], user
        assert rows[user]["trait_shopaholic"] is False


def test_traits_without_events_are_skipped_and_shopaholic_is_built(tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "shop", events=False)
    result = build(root, AS_OF, catalog=load_catalog(standard_tags(tmp_path / "tags")))
    assert result.built == ["trait_shopaholic"]
    assert result.skipped == dict.fromkeys(TRAITS, "missing input: table events")


def test_unknown_trait_parameter_is_refused(tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "shop")
    (tmp_path / "tags").mkdir()
    (tmp_path / "tags" / "t.yaml").write_text(
        """
- id: quick_buyer
  name_zh: 快速下单
  name_en: Quick buyer
  category: consumption_trait
  type: boolean
  model: {name: consumption_traits, params: {column: trait_impulsive, impulse_minutes: 30}}
""",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="takes no parameter 'impulse_minutes'"):
        build(root, AS_OF, catalog=load_catalog(tmp_path / "tags"))


def test_sample_shop_traits_build_and_shopaholics_are_big_spenders(tmp_path: Path) -> None:
    workspace = Workspace.create_sample(tmp_path / "sample", users=2000, seed=7)
    workspace.ingest()
    catalog = load_catalog(standard_tags(tmp_path / "tags"))
    result = build(workspace.path, dt.date(2026, 11, 1), catalog=catalog)
    assert result.skipped == {}
    rows = {r["user_id"]: r for r in pq.read_table(result.path / "tags.parquet").to_pylist()}
    truth = {r["user_id"]: r for r in pq.read_table(workspace.path / "sources" / "truth.parquet").to_pylist()}

    def rate(tag: str, big: bool) -> float:
        group = [row[tag] for user, row in rows.items() if truth[user]["big_spender"] is big]
        return sum(group) / len(group)

    # Planted big spenders order more and buy more lines.
    assert rate("trait_shopaholic", True) > 2 * rate("trait_shopaholic", False)
    # Orders follow a view of their product by up to 2 days: some impulsive buyers, few of them.
    impulsive = sum(row["trait_impulsive"] for row in rows.values())
    assert 0 < impulsive < len(rows) * 0.2
