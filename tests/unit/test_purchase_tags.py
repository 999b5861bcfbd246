"""Purchase-based standard tags (categories.yaml, promo_style.yaml) on a hand-computed shop.

The tiny shop below is built end to end (Parquet files -> build -> snapshot) with the
standard tag files; every expected value is worked out in the comments. The sample
shop test checks that the planted pet owners, parents and promo hunters are found.
"""

from __future__ import annotations

import datetime as dt
import re
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
from huaxiang.config import Promo, WorkspaceConfig
from huaxiang.engine import build
from huaxiang.errors import ConfigError, NotFoundError
from huaxiang.segment.purchase import browse_not_buy_table, price_tier_table, promo_day, promo_table, tgi
from huaxiang.workspace import Workspace

AS_OF = dt.date(2026, 7, 1)  # the 365-day window is 2025-07-01 .. 2026-06-30
MONEY = pa.decimal128(18, 2)
TS = pa.timestamp("us")
USERS = ["u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8"]


def ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


# Leaf 猫粮 prices 10, 20, 30, 40: quartile cuts 17.5 and 32.5 -> pet1 value, pet4 premium.
# Leaf 婴幼儿奶粉 has one price (100): neither. Leaf 苹果 5, 5, 5, 9: cuts 5 and 6 -> the three
# tied 5s are value, food4 premium. life1 and health1 are alone in their leaf; nocat has no category.
PRODUCTS = pa.table(
    {
        "product_id": ["pet1", "pet2", "pet3", "pet4", "baby1", "baby2", "food1", "food2", "food3", "food4",
                       "life1", "health1", "nocat"],
        "category_l1": ["宠物"] * 4 + ["母婴"] * 2 + ["生鲜"] * 4 + ["本地生活", "医药保健", None],
        "category_l2": ["猫狗主粮"] * 4 + ["奶粉"] * 2 + ["水果"] * 4 + ["餐饮美食", "营养健康", None],
        "category_l3": ["猫粮"] * 4 + ["婴幼儿奶粉"] * 2 + ["苹果"] * 4 + ["餐饮代金券", "维生素", None],
        "price": [Decimal(p) for p in ("10", "20", "30", "40", "100", "100", "5", "5", "5", "9", "50", "60",
                                       "8")],
    },
    schema=pa.schema([("product_id", pa.string()), ("category_l1", pa.string()),
                      ("category_l2", pa.string()), ("category_l3", pa.string()), ("price", MONEY)]),
)

# (order_id, user, time, after-sale, coupon, [(product, quantity, unit price, discount)])
ORDERS: list[tuple[str, str, str, bool, bool | None, list[tuple[str, int, str, str | None]]]] = [
    # u1: 4 valid orders, one per quarter; o11 on a promo day. Spend 25 + 40 + 15 + 30 = 110,
    # pet 20 + 40 + 15 + 30 = 105. Lines: pet1, food1 value; pet4 premium; pet2, pet3 neither.
    ("o11", "u1", "2026-06-10 10:00", False, True, [("pet1", 2, "10", None), ("food1", 1, "5", None)]),
    ("o12", "u1", "2026-02-15 10:00", False, False, [("pet4", 1, "40", None)]),
    ("o13", "u1", "2025-11-20 10:00", False, False, [("pet2", 1, "20", "5")]),
    ("o14", "u1", "2025-08-15 10:00", False, None, [("pet3", 1, "30", None)]),
    ("o15", "u1", "2025-11-05 10:00", True, True, [("pet1", 1, "10", None)]),  # after-sale: ignored
    # u2: promo-day edges 06-18 23:59 and 11-01 00:00 are in, 06-19 00:00 is out -> 2 of 3.
    ("o21", "u2", "2026-06-18 23:59", False, True, [("baby1", 1, "100", None)]),
    ("o22", "u2", "2025-11-01 00:00", False, True, [("baby2", 2, "100", None)]),
    ("o23", "u2", "2026-06-19 00:00", False, False, [("baby1", 1, "100", None)]),
    ("o24", "u2", "2025-06-30 12:00", False, True, [("baby1", 1, "100", None)]),  # before the window
    # u3: 2 orders, 1 on a promo day: exactly on the 0.5 threshold. Spend 50 + 8, local life 50.
    ("o31", "u3", "2025-11-11 20:00", False, False, [("life1", 1, "50", None)]),
    ("o32", "u3", "2026-03-01 10:00", False, False, [("nocat", 1, "8", None)]),
    # u4: o41 on the first day of the window counts, o43 the day before does not. ghost is not
    # in products. Lines: food4 premium, food2 and food3 value (ties at the cut), ghost neither.
    ("o41", "u4", "2025-07-01 00:00", False, None, [("food4", 1, "9", None)]),
    ("o42", "u4", "2026-05-01 10:00", False, None,
     [("food2", 3, "5", None), ("food3", 1, "5", None), ("ghost", 1, "1", None)]),
    ("o43", "u4", "2025-06-30 23:59", False, None, [("pet1", 1, "10", None)]),
    # u5: only an after-sale order.
    ("o51", "u5", "2026-06-05 10:00", True, True, [("pet1", 1, "10", None)]),
    # u7: pet and health in every quarter; coupons on 2 of 4 orders. Spend 4 × 70, pet 40, health 240.
    ("o71", "u7", "2026-06-01 09:00", False, True, [("health1", 1, "60", None), ("pet1", 1, "10", None)]),
    ("o72", "u7", "2026-01-10 09:00", False, True, [("health1", 1, "60", None), ("pet1", 1, "10", None)]),
    ("o73", "u7", "2025-10-10 09:00", False, False, [("health1", 1, "60", None), ("pet1", 1, "10", None)]),
    ("o74", "u7", "2025-08-01 09:00", False, False, [("health1", 1, "60", None), ("pet1", 1, "10", None)]),
    # u8: premium only (pet4 twice).
    ("o81", "u8", "2026-04-01 09:00", False, None, [("pet4", 1, "40", None)]),
    ("o82", "u8", "2026-04-02 09:00", False, None, [("pet4", 1, "40", None)]),
]
# Population (valid orders in the window): spend 110 + 400 + 58 + 30 + 280 + 80 = 958; pet 225,
# baby 400, local life 50, health 240. Lines 5 + 3 + 2 + 4 + 8 + 2 = 24: value 8, premium 4.
TOTAL, PET, BABY, LOCAL = 958, 225, 400, 50
VALUE_POP, PREMIUM_POP = 8 / 24, 4 / 24


def views(user: str, product: str, count: int, day: str = "2026-06-0") -> list[tuple[str, str, str]]:
    return [(user, product, f"{day}{i + 1} 10:00") for i in range(count)]


# All views in June 2026 (inside the 30-day window 2026-06-01 .. 2026-06-30) unless said.
EVENTS = [
    *views("u6", "pet1", 3), *views("u6", "pet2", 2),  # 5 宠物 views, never bought -> true
    *views("u6", "baby1", 4),  # 4 母婴: below 5
    *views("u6", "nocat", 6),  # no category
    *views("u1", "pet1", 6),  # bought 宠物: no
    *views("u1", "baby1", 5), *views("u1", "life1", 5),  # tie at 5: 本地生活 sorts before 母婴
    *views("u4", "baby1", 4), ("u4", "baby1", "2026-05-31 23:59"),  # the fifth is outside 30 days
    *views("u5", "pet3", 5),  # an after-sale order is not a purchase -> true
    ("u2", "baby1", "2026-07-01 08:00"),  # on the as-of date: cut
]


def write_shop(root: Path, *, without: tuple[str, ...] = ()) -> Path:
    data = root / "data"
    data.mkdir(parents=True)
    orders = pa.table(
        {
            "order_id": [o[0] for o in ORDERS],
            "user_id": [o[1] for o in ORDERS],
            "order_time": [ts(o[2]) for o in ORDERS],
            "amount": [sum((Decimal(p) * q - Decimal(d or "0") for _, q, p, d in o[5]), Decimal("0"))
                       for o in ORDERS],
            "is_after_sale": [o[3] for o in ORDERS],
            "coupon_used": [o[4] for o in ORDERS],
        },
        schema=pa.schema([("order_id", pa.string()), ("user_id", pa.string()), ("order_time", TS),
                          ("amount", MONEY), ("is_after_sale", pa.bool_()), ("coupon_used", pa.bool_())]),
    )
    lines = [(o[0], n + 1, *line) for o in ORDERS for n, line in enumerate(o[5])]
    items = pa.table(
        {
            "order_id": [x[0] for x in lines],
            "line_no": [x[1] for x in lines],
            "product_id": [x[2] for x in lines],
            "quantity": [x[3] for x in lines],
            "unit_price": [Decimal(x[4]) for x in lines],
            "discount": [None if x[5] is None else Decimal(x[5]) for x in lines],
        },
        schema=pa.schema([("order_id", pa.string()), ("line_no", pa.int64()), ("product_id", pa.string()),
                          ("quantity", pa.int64()), ("unit_price", MONEY), ("discount", MONEY)]),
    )
    events = pa.table(
        {
            "user_id": [e[0] for e in EVENTS],
            "event_time": [ts(e[2]) for e in EVENTS],
            "event_type": ["view"] * len(EVENTS),
            "product_id": [e[1] for e in EVENTS],
        },
        schema=pa.schema([("user_id", pa.string()), ("event_time", TS), ("event_type", pa.string()),
                          ("product_id", pa.string())]),
    )
    users = pa.table({"user_id": USERS})
    for name, table in {"users": users, "orders": orders, "order_items": items, "events": events,
                        "products": PRODUCTS}.items():
        if name not in without:
            pq.write_table(table, data / f"{name}.parquet")
    return root


def standard_tags(target: Path, *files: str) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    source = Path(str(resources.files("huaxiang.templates").joinpath("tags")))
    for name in files:
        shutil.copy(source / name, target / name)
    return target


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_shop(tmp_path_factory.mktemp("purchase"))


@pytest.fixture(scope="module")
def rows(shop: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    tags = standard_tags(tmp_path_factory.mktemp("tags"), "rfm.yaml", "categories.yaml", "promo_style.yaml")
    result = build(shop, AS_OF, catalog=load_catalog(tags))
    assert result.skipped == {}
    table = pq.read_table(result.path / "tags.parquet")
    return {row["user_id"]: row for row in table.to_pylist()}


def column(rows: dict[str, dict[str, Any]], tag: str) -> list[Any]:
    return [rows[user][tag] for user in USERS]


def approx(values: list[float | None]) -> list[Any]:
    return [None if v is None else pytest.approx(v) for v in values]


def test_cross_and_single_category(rows: dict[str, dict[str, Any]]) -> None:
    # u3's nocat line and u4's ghost line have no category; u5 has only an after-sale order.
    assert column(rows, "cross_category_count") == [2, 1, 1, 1, 0, 0, 2, 1]
    assert column(rows, "single_category") == [False, True, True, True, False, False, False, True]


def test_promo_share_and_sensitivity_with_calendar_edges(rows: dict[str, dict[str, Any]]) -> None:
    assert column(rows, "promo_order_share") == approx([0.25, 2 / 3, 0.5, 0.0, None, None, 0.25, 0.0])
    assert column(rows, "promo_sensitive") == [False, True, True, False, False, False, False, False]
    assert column(rows, "coupon_order_share") == approx([0.25, 2 / 3, 0.0, 0.0, None, None, 0.5, 0.0])


def test_category_shares_of_spend_and_tgi(rows: dict[str, dict[str, Any]]) -> None:
    assert column(rows, "pet_share") == approx([105 / 110, 0.0, 0.0, 0.0, None, None, 40 / 280, 1.0])
    assert column(rows, "pet_tgi") == approx(
        [105 / 110 / (PET / TOTAL) * 100, 0.0, 0.0, 0.0, None, None, 40 / 280 / (PET / TOTAL) * 100,
         1 / (PET / TOTAL) * 100]
    )
    assert column(rows, "baby_share") == approx([0.0, 1.0, 0.0, 0.0, None, None, 0.0, 0.0])
    assert rows["u2"]["baby_tgi"] == pytest.approx(TOTAL / BABY * 100)
    assert column(rows, "local_life_share") == approx([0.0, 0.0, 50 / 58, 0.0, None, None, 0.0, 0.0])
    assert rows["u3"]["local_life_tgi"] == pytest.approx(50 / 58 / (LOCAL / TOTAL) * 100)


def test_value_and_premium_shares_of_lines_within_leaf_categories(rows: dict[str, dict[str, Any]]) -> None:
    assert column(rows, "value_share") == approx([0.4, 0.0, 0.0, 0.5, None, None, 0.5, 0.0])
    assert column(rows, "premium_share") == approx([0.2, 0.0, 0.0, 0.25, None, None, 0.0, 1.0])
    assert column(rows, "value_tgi") == approx(
        [0.4 / VALUE_POP * 100, 0.0, 0.0, 150.0, None, None, 150.0, 0.0]
    )
    assert column(rows, "premium_tgi") == approx(
        [0.2 / PREMIUM_POP * 100, 0.0, 0.0, 150.0, None, None, 0.0, 1 / PREMIUM_POP * 100]
    )
    assert rows["u1"]["value_tgi"] == pytest.approx(120.0)
    assert rows["u8"]["premium_tgi"] == pytest.approx(600.0)


def test_every_quarter(rows: dict[str, dict[str, Any]]) -> None:
    assert column(rows, "pet_every_quarter") == [True, False, False, False, False, False, True, False]
    assert column(rows, "health_every_quarter") == [False] * 6 + [True, False]
    assert column(rows, "health_pet_every_quarter") == [False] * 6 + [True, False]


def test_style_tags(rows: dict[str, dict[str, Any]]) -> None:
    # u2 and u3 by promo days (u3 exactly 0.5), u7 by coupons (exactly 0.5).
    assert column(rows, "style_promo_driven") == [False, True, True, False, False, False, True, False]
    assert column(rows, "style_quality_driven") == [False] * 7 + [True]
    # u4 and u7: value share exactly 0.5 with 2+ orders.
    assert column(rows, "style_value_for_money") == [False, False, False, True, False, False, True, False]


def test_browse_not_buy(rows: dict[str, dict[str, Any]]) -> None:
    assert column(rows, "browse_not_buy_category") == [True, False, False, False, True, True, False, False]
    top = ["本地生活", None, None, None, "宠物", "宠物", None, None]
    assert column(rows, "browse_not_buy_top_category") == top


# ---------------------------------------------------------------------------- direct calls


def tables(shop: Path) -> dict[str, ibis.Table]:
    con = ibis.duckdb.connect()
    return {p.stem: con.read_parquet(p, table_name=p.stem) for p in (shop / "data").glob("*.parquet")}


def by_user(table: ibis.Table) -> dict[str, dict[str, Any]]:
    return {row["user_id"]: row for row in table.to_pyarrow().to_pylist()}


def test_browse_not_buy_level_and_key_categories(shop: Path) -> None:
    t = tables(shop)
    args = (t["users"], t["orders"], t["order_items"], t["products"], t["events"], AS_OF)
    leaf = by_user(browse_not_buy_table(*args, level=3))
    assert leaf["u6"]["browse_not_buy_top_category"] == "猫粮"
    assert leaf["u6"]["browse_not_buy_views"] == 5
    key = by_user(browse_not_buy_table(*args, categories=["母婴"]))
    assert {u for u, row in key.items() if row["browse_not_buy_category"]} == {"u1"}
    assert key["u1"]["browse_not_buy_top_category"] == "母婴"
    with pytest.raises(ConfigError, match="level must be 1, 2 or 3"):
        browse_not_buy_table(*args, level=4)


def test_price_tiers_fall_back_to_line_prices_without_list_prices(shop: Path) -> None:
    t = tables(shop)
    products = t["products"].drop("price")
    # Mean unit prices in the window: pet1 10, pet2 20, pet3 30, pet4 40 (as listed); 苹果: food1 5,
    # food2 5, food3 5, food4 9. Same tiers as with list prices, so the same shares.
    shares = by_user(price_tier_table(t["users"], t["orders"], t["order_items"], products, AS_OF))
    assert [shares[u]["value_share"] for u in USERS] == approx([0.4, 0.0, 0.0, 0.5, None, None, 0.5, 0.0])
    assert [shares[u]["premium_share"] for u in USERS] == approx([0.2, 0.0, 0.0, 0.25, None, None, 0.0, 1.0])


def test_promo_calendar_from_the_workspace_config(shop: Path, tmp_path: Path) -> None:
    tags = standard_tags(tmp_path / "tags", "rfm.yaml", "categories.yaml", "promo_style.yaml")
    # A year-end sale that runs over New Year: 12-20 .. 01-15 holds u7's o72 (01-10) only.
    config = WorkspaceConfig(
        name="shop",
        promo_calendar=[
            Promo(id="year_end", name_zh="年货节", name_en="Year-end sale", start="12-20", end="01-15")
        ],
    )
    result = build(shop, AS_OF, catalog=load_catalog(tags), config=config)
    table = pq.read_table(result.path / "tags.parquet")
    shares = dict(zip(table.column("user_id").to_pylist(), table.column("promo_order_share").to_pylist(),
                      strict=True))
    assert [shares[u] for u in USERS] == approx([0.0, 0.0, 0.0, 0.0, None, None, 0.25, 0.0])


def test_bad_promo_calendar_and_params_are_named(shop: Path) -> None:
    t = tables(shop)
    with pytest.raises(ConfigError, match=r"promo_calendar spring end: '02-30' is not a month-day"):
        promo_table(t["users"], t["orders"], AS_OF, [("spring", "02-01", "02-30")])
    with pytest.raises(ConfigError, match="the promo calendar is empty"):
        promo_day(t["orders"].order_time, [])
    with pytest.raises(ConfigError, match="min_share in"):
        promo_table(t["users"], t["orders"], AS_OF, [("a", "06-01", "06-18")], min_share=1.5)


def test_unknown_or_malformed_maker_params_fail_the_build(shop: Path, tmp_path: Path) -> None:
    (tmp_path / "tags").mkdir()
    tag = """
- id: my_pet_share
  name_zh: 宠物占比
  name_en: Pet share
  category: custom
  type: number
  model: {name: category_preference, params: {column: pet_share, PARAMS}}
"""
    (tmp_path / "tags" / "t.yaml").write_text(tag.replace("PARAMS", "pet_categorys: [猫]"), encoding="utf-8")
    with pytest.raises(ConfigError, match="takes no parameter 'pet_categorys'.*pet_categories"):
        build(shop, AS_OF, catalog=load_catalog(tmp_path / "tags"))
    (tmp_path / "tags" / "t.yaml").write_text(tag.replace("PARAMS", "pet_categories: 7"), encoding="utf-8")
    message = r"t\.yaml:2 \(tag my_pet_share\): model category_preference: parameter pet_categories must be"
    with pytest.raises(ConfigError, match=message):
        build(shop, AS_OF, catalog=load_catalog(tmp_path / "tags"))
    # Custom categories: only 猫粮 counts as pet now (u7's pet1 is 猫粮 too: same result for u7).
    custom = tag.replace("PARAMS", "pet_categories: [猫粮]")
    (tmp_path / "tags" / "t.yaml").write_text(custom, encoding="utf-8")
    result = build(shop, AS_OF, catalog=load_catalog(tmp_path / "tags"))
    table = pq.read_table(result.path / "tags.parquet").to_pylist()
    assert {row["user_id"]: row["my_pet_share"] for row in table}["u7"] == pytest.approx(40 / 280)


def test_missing_inputs_skip_tags_with_reasons(tmp_path: Path) -> None:
    shop = write_shop(tmp_path / "shop", without=("products", "events"))
    tags = standard_tags(tmp_path / "tags", "rfm.yaml", "categories.yaml", "promo_style.yaml")
    result = build(shop, AS_OF, catalog=load_catalog(tags))
    assert result.skipped["cross_category_count"] == "missing input: table products"
    assert result.skipped["browse_not_buy_category"] == "missing inputs: table events, table products"
    assert result.skipped["style_quality_driven"] == "depends on skipped tag premium_share"
    assert {"promo_sensitive", "coupon_order_share", "style_promo_driven"} <= set(result.built)


def test_group_tgi_over_a_snapshot(rows: dict[str, dict[str, Any]]) -> None:
    snapshot = ibis.memtable(pa.Table.from_pylist([rows[u] for u in USERS]))
    result = tgi(snapshot, "single_category", "pet_share").to_pyarrow().to_pylist()
    # pet_share of users with a value: u1 105/110, u2 0, u3 0, u4 0, u7 40/280, u8 1 (mean over 6).
    population = (105 / 110 + 40 / 280 + 1) / 6
    single = (0 + 0 + 0 + 1) / 4  # u2, u3, u4, u8
    multi = (105 / 110 + 40 / 280) / 2  # u1, u7 (u5 and u6 have no share)
    assert [(r["group"], r["users"], r["users_with_share"]) for r in result] == [(False, 4, 2), (True, 4, 4)]
    assert result[0]["group_share"] == pytest.approx(multi)
    assert result[1]["population_share"] == pytest.approx(population)
    assert result[1]["tgi"] == pytest.approx(single / population * 100)
    # A boolean share tag: the share of users holding it.
    booleans = tgi(snapshot, "single_category", "promo_sensitive").to_pyarrow().to_pylist()
    assert booleans[1]["group_share"] == pytest.approx(2 / 4)
    assert booleans[1]["tgi"] == pytest.approx(0.5 / (2 / 8) * 100)
    with pytest.raises(NotFoundError, match="no tag 'pet_shar'.*pet_share"):
        tgi(snapshot, "single_category", "pet_shar")
    with pytest.raises(ConfigError, match="must be boolean or numeric"):
        tgi(snapshot, "single_category", "browse_not_buy_top_category")


# ---------------------------------------------------------------------------- the sample shop


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    root = tmp_path_factory.mktemp("sample")
    workspace = Workspace.create_sample(root / "shop", users=2000, seed=7)
    workspace.ingest()
    tags = standard_tags(root / "tags", "rfm.yaml", "categories.yaml", "promo_style.yaml")
    result = build(workspace.path, dt.date(2026, 11, 1), catalog=load_catalog(tags))
    assert result.skipped == {}
    snapshot = {r["user_id"]: r for r in pq.read_table(result.path / "tags.parquet").to_pylist()}
    truth = {r["user_id"]: r for r in pq.read_table(workspace.path / "sources" / "truth.parquet").to_pylist()}
    return snapshot, truth


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def test_sample_shop_promo_sensitive_recovers_the_planted_promo_hunters(
    sample: tuple[dict[str, dict[str, Any]], dict[str, Any]],
) -> None:
    snapshot, truth = sample
    flagged = {u for u, row in snapshot.items() if row["promo_sensitive"]}
    planted = {u for u, row in truth.items() if row["promo_sensitive"] and u in snapshot}
    # Judged only with 2+ valid orders in the window.
    judged = {u for u in planted if snapshot[u]["frequency_365d"] >= 2}
    assert len(flagged) > 100
    assert len(flagged & planted) / len(flagged) >= 0.8  # precision
    assert len(flagged & judged) / len(judged) >= 0.7  # recall among those who can be judged
    others = [snapshot[u]["promo_order_share"] for u in snapshot if u not in planted
              and snapshot[u]["promo_order_share"] is not None]
    hunters = [snapshot[u]["promo_order_share"] for u in judged]
    assert mean(hunters) > 3 * mean(others)


def test_sample_shop_pet_and_baby_shares_follow_the_planted_households(
    sample: tuple[dict[str, dict[str, Any]], dict[str, Any]],
) -> None:
    snapshot, truth = sample

    def shares(tag: str, flag: str, value: bool) -> list[float]:
        return [row[tag] for u, row in snapshot.items() if row[tag] is not None and truth[u][flag] is value]

    assert mean(shares("pet_share", "pet_owner", True)) > 5 * mean(shares("pet_share", "pet_owner", False))
    assert mean(shares("baby_share", "has_child", True)) > 5 * mean(shares("baby_share", "has_child", False))
    owners_tgi = [row["pet_tgi"] for u, row in snapshot.items() if truth[u]["pet_owner"] and row["pet_tgi"]]
    assert sorted(owners_tgi)[len(owners_tgi) // 2] > 100  # the median pet owner over-indexes on pet
    # Planted big spenders pick premium products: quality-driven far more often, never value-for-money.
    big = [row for u, row in snapshot.items() if truth[u]["big_spender"]]
    rest = [row for u, row in snapshot.items() if not truth[u]["big_spender"]]
    def rate(group: list[dict[str, Any]], tag: str) -> float:
        return mean([row[tag] for row in group])

    assert rate(big, "style_quality_driven") > 3 * rate(rest, "style_quality_driven")
    assert rate(big, "style_value_for_money") < rate(rest, "style_value_for_money")


# ---------------------------------------------------------------------------- the documentation


DOC = Path(__file__).resolve().parents[2] / "docs" / "standard-purchase.md"


def doc_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_doc_python_example_runs() -> None:
    (block,) = doc_blocks("python")
    exec(compile(block, str(DOC), "exec"), {})


def test_doc_yaml_example_builds(shop: Path, tmp_path: Path) -> None:
    (block,) = doc_blocks("yaml")
    tags = standard_tags(tmp_path / "tags", "rfm.yaml")
    (tags / "shop.yaml").write_text(block, encoding="utf-8")
    result = build(shop, AS_OF, catalog=load_catalog(tags))
    assert result.skipped == {}
    rows = {r["user_id"]: r for r in pq.read_table(result.path / "tags.parquet").to_pylist()}
    assert rows["u1"]["pet_share"] == pytest.approx(105 / 110)
    assert [rows[u]["pet_lover"] for u in USERS] == [True, False, False, False, False, False, False, True]
    # u2: 3 orders, 2/3 on promo days, below 0.7. u1 first saw pet1 9 days before buying it.
    assert not any(rows[u]["double11_hunter"] or rows[u]["trait_impulsive"] for u in USERS)
