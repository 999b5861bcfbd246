"""Brand tags (core, intent, competitor, potential) and the standard action tags: by hand, on the sample."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import ibis
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from huaxiang.engine import build
from huaxiang.errors import ConfigError, MissingInputError
from huaxiang.segment.brand import brand_categories, brand_table
from huaxiang.workspace import Workspace

AS_OF = dt.date(2026, 7, 1)
TS = pa.timestamp("us")
MONEY = pa.decimal128(18, 2)
TEMPLATES = Path(str(resources.files("huaxiang.templates").joinpath("tags")))


def ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


PRODUCTS = pa.table(
    {
        "product_id": ["bm1", "bm2", "lb1", "cn1", "tz1", "mop", "dy1", "dy2"],
        "brand": ["蓝月亮", "蓝月亮", "立白", "超能", "汰渍", "美丽雅", "戴森", "飞科"],
        "category_l1": ["家庭清洁"] * 6 + ["个护电器"] * 2,
        "category_l2": ["衣物清洁"] * 5 + ["清洁工具"] + ["个护"] * 2,
        "category_l3": ["洗衣液", "洗衣凝珠", "洗衣液", "洗衣液", "洗衣凝珠", "拖把", "吹风机", "吹风机"],
    }
)
# (order, user, time, after-sale, [(product, quantity, unit price, discount)])
ORDER_ROWS: list[tuple[str, str, str, bool, list[tuple[str, int, str, str | None]]]] = [
    ("o1", "core_repeat", "2026-02-01 10:00", False, [("bm1", 1, "30.00", None), ("lb1", 5, "40.00", None)]),
    ("o2", "core_repeat", "2026-05-01 10:00", False, [("bm1", 1, "30.00", None)]),
    ("o3", "core_share", "2026-06-01 10:00", False,
     [("bm1", 1, "70.00", "10.00"), ("lb1", 1, "40.00", None)]),
    ("o4", "share_edge", "2026-06-01 10:00", False, [("bm2", 1, "50.00", None), ("cn1", 1, "50.00", None)]),
    ("o5", "buyer_minor", "2026-06-01 10:00", False, [("bm1", 1, "10.00", None), ("lb1", 3, "30.00", None)]),
    ("o6", "competitor", "2026-06-01 10:00", False, [("lb1", 1, "40.00", None), ("dy1", 1, "2999.00", None)]),
    ("o7", "refund_rival", "2026-06-01 10:00", True, [("tz1", 1, "60.00", None)]),
    ("o8", "refund_rival", "2026-06-02 10:00", False, [("mop", 1, "25.00", None)]),
    ("o9", "potential", "2025-07-01 00:00", False, [("mop", 1, "25.00", None)]),  # first day of the window
    ("o10", "intent_buyer", "2026-06-20 10:00", False, [("bm1", 1, "30.00", None)]),
    ("o11", "old_buyer", "2025-06-30 23:59", False, [("bm1", 2, "30.00", None)]),  # the day before the window
    ("o12", "dyson", "2026-06-01 10:00", False, [("dy1", 1, "2999.00", None)]),
    ("o13", "today", "2026-07-01 00:00", False, [("bm1", 2, "30.00", None)]),  # on the as-of date
]
USER_IDS = [
    "core_repeat", "core_share", "share_edge", "buyer_minor", "competitor", "refund_rival", "potential",
    "intent", "intent_old", "intent_buyer", "old_buyer", "dyson", "today", "nobody",
]
# (user, time, type, product)
EVENT_ROWS: list[tuple[str, str, str, str]] = [
    ("competitor", "2026-06-15 10:00", "view", "bm1"),
    ("intent", "2026-06-01 00:00", "view", "bm2"),  # the first instant of the 30-day window
    ("intent_old", "2026-05-31 23:59", "favorite", "bm1"),
    ("intent_buyer", "2026-06-25 10:00", "cart", "bm1"),
    ("nobody", "2026-06-25 10:00", "click", "bm1"),  # a click is not intent
    ("dyson", "2026-06-25 10:00", "search", "bm1"),  # neither is a search
]

USERS = pa.table({"user_id": USER_IDS})
ORDERS = pa.table(
    {
        "order_id": [r[0] for r in ORDER_ROWS],
        "user_id": [r[1] for r in ORDER_ROWS],
        "order_time": [ts(r[2]) for r in ORDER_ROWS],
        "amount": [sum((Decimal(p) * q - Decimal(d or "0") for _, q, p, d in r[4]), Decimal("0"))
                   for r in ORDER_ROWS],
        "is_after_sale": [r[3] for r in ORDER_ROWS],
    },
    schema=pa.schema([("order_id", pa.string()), ("user_id", pa.string()), ("order_time", TS),
                      ("amount", MONEY), ("is_after_sale", pa.bool_())]),
)
LINES = [(r[0], n, *line) for r in ORDER_ROWS for n, line in enumerate(r[4], 1)]
ORDER_ITEMS = pa.table(
    {
        "order_id": [line[0] for line in LINES],
        "line_no": [line[1] for line in LINES],
        "product_id": [line[2] for line in LINES],
        "quantity": [line[3] for line in LINES],
        "unit_price": [Decimal(line[4]) for line in LINES],
        "discount": [None if line[5] is None else Decimal(line[5]) for line in LINES],
    },
    schema=pa.schema([("order_id", pa.string()), ("line_no", pa.int64()), ("product_id", pa.string()),
                      ("quantity", pa.int64()), ("unit_price", MONEY), ("discount", MONEY)]),
)
EVENTS = pa.table(
    {
        "user_id": [r[0] for r in EVENT_ROWS],
        "event_time": [ts(r[1]) for r in EVENT_ROWS],
        "event_type": [r[2] for r in EVENT_ROWS],
        "product_id": [r[3] for r in EVENT_ROWS],
    },
    schema=pa.schema([("user_id", pa.string()), ("event_time", TS), ("event_type", pa.string()),
                      ("product_id", pa.string())]),
)

#: user -> (core, intent, competitor, potential)
EXPECTED = {
    "core_repeat": (True, False, False, False),  # two orders with the brand (share 60 / 260 < 0.5)
    "core_share": (True, False, False, False),  # one order, 60 of 100 yuan: share 0.6
    "share_edge": (True, False, False, False),  # share exactly 0.5
    "buyer_minor": (False, False, False, False),  # bought it, but 10 of 100 yuan
    "competitor": (False, True, True, False),  # bought 立白 洗衣液, viewed 蓝月亮
    "refund_rival": (False, False, False, True),  # the 汰渍 order is after-sale; the mop counts
    "potential": (False, False, False, True),
    "intent": (False, True, False, False),
    "intent_old": (False, False, False, False),
    "intent_buyer": (True, False, False, False),  # carted but bought: core, not intent
    "old_buyer": (False, False, False, False),
    "dyson": (False, False, False, False),
    "today": (False, False, False, False),
    "nobody": (False, False, False, False),
}
FLAGS = ("brand_core", "brand_intent", "brand_competitor", "brand_potential")


def run(events: pa.Table | None = EVENTS, **options: Any) -> dict[str, dict[str, Any]]:
    options.setdefault("brand", "蓝月亮")
    table = brand_table(
        ibis.memtable(USERS), ibis.memtable(ORDERS), ibis.memtable(ORDER_ITEMS), ibis.memtable(PRODUCTS),
        None if events is None else ibis.memtable(events), AS_OF, **options,
    )
    return {row["user_id"]: row for row in table.to_pyarrow().to_pylist()}


def test_each_brand_tag_per_user() -> None:
    rows = run()
    assert {user: tuple(row[flag] for flag in FLAGS) for user, row in rows.items()} == EXPECTED
    assert rows["core_share"]["brand_spend_share"] == pytest.approx(0.6)
    assert rows["core_repeat"]["brand_orders"] == 2
    assert rows["core_repeat"]["brand_spend_share"] == pytest.approx(60 / 260)
    assert rows["dyson"]["brand_spend_share"] is None  # nothing bought in the brand's categories
    assert brand_categories(ibis.memtable(PRODUCTS), "蓝月亮") == ["洗衣凝珠", "洗衣液"]


def test_parameters_change_the_groups() -> None:
    # Only 汰渍 is a competitor: the 立白 buyer becomes a potential buyer (bought in 家庭清洁).
    rows = run(competitors=["汰渍"])
    assert rows["competitor"]["brand_competitor"] is False
    assert rows["competitor"]["brand_potential"] is True
    stricter = run(core_share=0.61, core_min_orders=3)
    assert [stricter[u]["brand_core"] for u in ("core_repeat", "core_share", "share_edge")] == [False] * 3
    narrow = run(window_days=30, intent_window_days=31)
    assert narrow["core_repeat"]["brand_core"] is False  # its orders are older than 30 days
    assert narrow["intent_old"]["brand_intent"] is True  # the 31-day window reaches 2026-05-31
    assert narrow["potential"]["brand_potential"] is False
    # Related categories at level 2 (衣物清洁): the mop (清洁工具) no longer makes a potential buyer.
    assert run(related_level="category_l2")["potential"]["brand_potential"] is False


def test_without_events_intent_is_unknown() -> None:
    for events in (None, EVENTS.drop_columns(["product_id"])):
        rows = run(events=events)
        assert {row["brand_intent"] for row in rows.values()} == {None}
        assert rows["core_share"]["brand_core"] is True


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"category_level": "category_l4"}, "brand tags: category_level must be one of category_l1, "
                                            "category_l2, category_l3, got 'category_l4'."),
        ({"core_share": 0.0}, "brand tags: core_share must be in (0, 1], got 0.0."),
        ({"window_days": 0}, "brand tags: window_days must be at least 1, got 0."),
    ],
)
def test_bad_parameters_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        run(**options)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"brand": "蓝月"},
            "brand '蓝月' in products.brand. Did you mean '蓝月亮'? Brands: "
            "戴森, 汰渍, 立白, 美丽雅, 蓝月亮, 超能, 飞科. Set the brand tags' params: {brand: ...} "
            "to a brand of this shop.",
        ),
        ({"competitors": ["力白"]}, "brand '力白' in products.brand. Brands: 戴森,"),
    ],
)
def test_a_brand_the_shop_does_not_sell_is_a_missing_input(options: dict[str, Any], message: str) -> None:
    # Not an error: a shop without the brand builds the rest of its catalog (see the build test below).
    with pytest.raises(MissingInputError) as caught:
        run(**options)
    assert str(caught.value).startswith(message)


# ---------------------------------------------------------------------------- the standard files in a build


def workspace(root: Path, files: tuple[str, ...], events: pa.Table = EVENTS) -> Path:
    (root / "data").mkdir(parents=True)
    (root / "tags").mkdir()
    tables = {"users": USERS, "orders": ORDERS, "order_items": ORDER_ITEMS, "products": PRODUCTS,
              "events": events}
    for name, table in tables.items():
        pq.write_table(table, root / "data" / f"{name}.parquet")
    for name in files:
        shutil.copy(TEMPLATES / name, root / "tags" / name)
    return root


def snapshot(result: Any) -> dict[str, dict[str, Any]]:
    return {row["user_id"]: row for row in pq.read_table(result.path / "tags.parquet").to_pylist()}


def test_standard_brand_tags_for_bluemoon(tmp_path: Path) -> None:
    result = build(workspace(tmp_path, ("brand.yaml",)), AS_OF)
    ids = [f"brand_bluemoon_{flag}" for flag in ("core", "intent", "competitor", "potential")]
    assert result.built == ids
    rows = snapshot(result)
    assert {user: tuple(rows[user][tag] for tag in ids) for user in USER_IDS} == EXPECTED


def test_brand_categories_default_to_the_deepest_level_present(tmp_path: Path) -> None:
    root = workspace(tmp_path, ("brand.yaml",))
    pq.write_table(PRODUCTS.drop_columns(["category_l2", "category_l3"]), root / "data" / "products.parquet")
    rows = snapshot(build(root, AS_OF))
    # The brand's category is now 家庭清洁 as a whole: the mop's brand is a competitor.
    assert rows["potential"]["brand_bluemoon_competitor"] is True
    assert rows["potential"]["brand_bluemoon_potential"] is False
    # core_repeat: 60 of 260 yuan still; refund_rival: the mop is a competitor's product.
    assert rows["core_repeat"]["brand_bluemoon_core"] is True
    assert rows["refund_rival"]["brand_bluemoon_competitor"] is True


def test_a_misspelt_brand_is_skipped_with_a_did_you_mean(tmp_path: Path) -> None:
    root = workspace(tmp_path, ("brand.yaml",))
    path = root / "tags" / "brand.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("brand: 蓝月亮}", "brand: 蓝月}"), encoding="utf-8")

    result = build(root, AS_OF)

    assert result.skipped["brand_bluemoon_core"].startswith(
        "missing input: brand '蓝月' in products.brand. Did you mean '蓝月亮'?"
    )

def test_brand_tags_are_skipped_without_brands(tmp_path: Path) -> None:
    root = workspace(tmp_path, ("brand.yaml",))
    pq.write_table(PRODUCTS.drop_columns(["brand"]), root / "data" / "products.parquet")
    result = build(root, AS_OF)
    assert set(result.skipped.values()) == {"missing input: column products.brand"}


# (user, time, type, product)
ACTION_ROWS: list[tuple[str, str, str, str | None]] = [
    ("fav_edge", "2026-06-01 00:00", "favorite", "bm1"),  # first instant of the 30-day window
    ("fav_early", "2026-05-31 23:59", "favorite", "bm1"),
    ("fav_pods", "2026-06-20 10:00", "favorite", "bm2"),  # 蓝月亮, but 洗衣凝珠
    ("fav_rival", "2026-06-20 10:00", "favorite", "lb1"),  # 洗衣液, but 立白
    ("view_bm", "2026-06-20 10:00", "view", "bm1"),
    ("dyson_fan", "2026-06-20 10:00", "view", "dy1"),
    ("dyson_fan", "2026-06-21 10:00", "favorite", "dy1"),
    ("dyson_look", "2026-06-20 10:00", "view", "dy1"),
    ("dyson_look", "2026-06-21 10:00", "favorite", "dy2"),  # a 飞科 dryer
    ("abandoner", "2026-06-25 10:00", "cart", "bm1"),
    ("abandoner", "2026-06-23 10:00", "purchase", "bm1"),  # before the 7-day window
    ("buyer", "2026-06-25 10:00", "cart", "bm1"),
    ("buyer", "2026-06-25 10:05", "purchase", "bm1"),
    ("cart_today", "2026-07-01 09:00", "cart", "bm1"),  # on the as-of date: not yet
    *[("viewer10", f"2026-06-24 {h:02d}:00", "view", "mop") for h in range(10)],  # exactly 10, window edge
    *[("viewer9", f"2026-06-28 {h:02d}:00", "view", "mop") for h in range(9)],
    ("viewer_late", "2026-06-23 23:59", "view", "mop"),  # outside the 7 days: 9 count
    *[("viewer_late", f"2026-06-28 {h:02d}:00", "view", "mop") for h in range(9)],
]
ACTION_EVENTS = pa.table(
    {
        "user_id": [r[0] for r in ACTION_ROWS],
        "event_time": [ts(r[1]) for r in ACTION_ROWS],
        "event_type": [r[2] for r in ACTION_ROWS],
        "product_id": [r[3] for r in ACTION_ROWS],
    },
    schema=EVENTS.schema,
)
ACTION_EXPECTED = {
    # user: tags that hold (all others are false)
    "fav_edge": {"fav_bluemoon_detergent_30d"},
    "fav_early": set(),
    "fav_pods": set(),
    "fav_rival": set(),
    "view_bm": set(),
    "dyson_fan": {
        "viewed_dyson_hair_dryer_30d", "fav_dyson_hair_dryer_30d", "viewed_and_faved_dyson_hair_dryer_30d"
    },
    "dyson_look": {"viewed_dyson_hair_dryer_30d"},
    "abandoner": {"carted_7d", "cart_abandoner_7d"},
    "buyer": {"carted_7d", "purchased_7d"},
    "cart_today": set(),
    "viewer10": {"frequent_viewer_7d"},
    "viewer9": set(),
    "viewer_late": set(),
}


def test_standard_action_tags_windows_filters_and_min_count(tmp_path: Path) -> None:
    users = pa.table({"user_id": list(ACTION_EXPECTED)})
    root = workspace(tmp_path, ("actions.yaml",), ACTION_EVENTS)
    pq.write_table(users, root / "data" / "users.parquet")
    result = build(root, AS_OF)
    assert result.skipped == {}
    rows = snapshot(result)
    for user, holding in ACTION_EXPECTED.items():
        got = {tag for tag in result.built if rows[user][tag]}
        assert got == holding, user


# ---------------------------------------------------------------------------- the sample shop


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, dict[str, dict[str, Any]]]:
    root = tmp_path_factory.mktemp("brand_sample")
    shop = Workspace.create_sample(root, users=2000, seed=7)
    shop.ingest()
    for path in (shop.path / "tags").glob("*.yaml"):
        path.unlink()
    for name in ("brand.yaml", "actions.yaml"):
        shutil.copy(TEMPLATES / name, shop.path / "tags" / name)
    result = shop.build(dt.date(2026, 11, 1))
    assert result.skipped == {}
    return shop, snapshot(result)


def test_sample_shop_brand_and_action_tags_match_independent_sql(
    sample: tuple[Workspace, dict[str, dict[str, Any]]],
) -> None:
    shop, rows = sample
    data = {name: f"read_parquet('{shop.table_path(name)}')" for name in ("orders", "order_items", "products",
                                                                         "events")}
    con = duckdb.connect()
    con.execute(f"""
        CREATE TEMP TABLE bought AS
        SELECT o.user_id, o.order_id, p.brand, p.category_l1, p.category_l3,
               i.quantity * i.unit_price - coalesce(i.discount, 0) AS spend
        FROM {data['orders']} o JOIN {data['order_items']} i USING (order_id)
        JOIN {data['products']} p USING (product_id)
        WHERE NOT coalesce(o.is_after_sale, false)
          AND o.order_time >= TIMESTAMP '2025-11-01' AND o.order_time < TIMESTAMP '2026-11-01'
    """)
    leaves = "('洗衣液', '洗衣凝珠')"
    products = data["products"]
    sold = con.execute(f"SELECT DISTINCT category_l3 FROM {products} WHERE brand = '蓝月亮'").fetchall()
    assert {r[0] for r in sold} == {"洗衣液", "洗衣凝珠"}
    core = {u for (u,) in con.execute(f"""
        SELECT user_id FROM bought WHERE category_l3 IN {leaves} GROUP BY user_id
        HAVING count(DISTINCT order_id) FILTER (WHERE brand = '蓝月亮') >= 2
            OR (count(*) FILTER (WHERE brand = '蓝月亮') > 0
                AND sum(spend) FILTER (WHERE brand = '蓝月亮') >= 0.5 * sum(spend))
    """).fetchall()}
    brand_buyers = {u for (u,) in con.execute(
        f"SELECT DISTINCT user_id FROM bought WHERE brand = '蓝月亮' AND category_l3 IN {leaves}").fetchall()}
    rivals = {u for (u,) in con.execute(
        f"SELECT DISTINCT user_id FROM bought WHERE brand <> '蓝月亮' AND category_l3 IN {leaves}"
    ).fetchall()}
    related = {u for (u,) in con.execute(
        "SELECT DISTINCT user_id FROM bought WHERE category_l1 = '家庭清洁'").fetchall()}
    lookers = {u for (u,) in con.execute(f"""
        SELECT DISTINCT e.user_id FROM {data['events']} e JOIN {data['products']} p USING (product_id)
        WHERE p.brand = '蓝月亮' AND e.event_type IN ('view', 'favorite', 'cart')
          AND e.event_time >= TIMESTAMP '2026-10-02' AND e.event_time < TIMESTAMP '2026-11-01'
    """).fetchall()}

    def holding(tag: str) -> set[str]:
        return {user for user, row in rows.items() if row[tag]}

    assert core and holding("brand_bluemoon_core") == core
    assert holding("brand_bluemoon_competitor") == rivals - brand_buyers
    assert holding("brand_bluemoon_intent") == lookers - brand_buyers
    assert holding("brand_bluemoon_potential") == related - brand_buyers - rivals
    for tag in ("brand_bluemoon_competitor", "brand_bluemoon_intent", "brand_bluemoon_potential"):
        assert holding(tag), tag

    # planted.json names the Blue Moon detergents: the action tag finds exactly their favoriters.
    planted = json.loads((shop.path / "sources" / "planted.json").read_text(encoding="utf-8"))
    detergents = planted["examples"]["bluemoon_laundry_detergent"]
    assert detergents
    favoriters = {u for (u,) in con.execute(
        f"SELECT DISTINCT user_id FROM {data['events']} WHERE event_type = 'favorite' "
        f"AND product_id IN ({', '.join(repr(p) for p in detergents)}) "
        "AND event_time >= TIMESTAMP '2026-10-02' AND event_time < TIMESTAMP '2026-11-01'").fetchall()}
    assert holding("fav_bluemoon_detergent_30d") == favoriters
    dryers = planted["examples"]["dyson_hair_dryers"]
    viewers = {u for (u,) in con.execute(
        f"SELECT DISTINCT user_id FROM {data['events']} WHERE event_type = 'view' "
        f"AND product_id IN ({', '.join(repr(p) for p in dryers)}) "
        "AND event_time >= TIMESTAMP '2026-10-02' AND event_time < TIMESTAMP '2026-11-01'").fetchall()}
    assert viewers and holding("viewed_dyson_hair_dryer_30d") == viewers
    assert holding("cart_abandoner_7d") == holding("carted_7d") - holding("purchased_7d")


def test_brand_tags_of_a_brand_the_shop_does_not_sell_are_skipped(tmp_path: Path) -> None:
    root = workspace(tmp_path, ("brand.yaml",))
    text = (root / "tags" / "brand.yaml").read_text(encoding="utf-8")
    (root / "tags" / "brand.yaml").write_text(text.replace("brand: 蓝月亮", "brand: 奥妙"), encoding="utf-8")

    result = build(root, AS_OF)

    assert result.built == []
    reason = (
        "missing input: brand '奥妙' in products.brand. "
        "Brands: 戴森, 汰渍, 立白, 美丽雅, 蓝月亮, 超能, 飞科. "
        "Set the brand tags' params: {brand: ...} to a brand of this shop."
    )
    assert result.skipped == {f"brand_bluemoon_{flag}": reason
                              for flag in ("core", "intent", "competitor", "potential")}
