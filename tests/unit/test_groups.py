"""groups.yaml: 十大靶群, finance groups, circles and benefits, by hand and on the sample shop."""

from __future__ import annotations

import datetime as dt
import shutil
from collections import Counter
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from huaxiang.catalog import load_catalog
from huaxiang.workspace import Workspace

AS_OF = dt.date(2026, 11, 1)
TAG_FILES = ("demographics.yaml", "rfm.yaml", "purchasing_power.yaml", "groups.yaml")
TARGET_GROUPS = ["学生一族", "银发一族", "都市家庭", "小镇家庭", "都市Z世代", "都市中产", "都市蓝领",
                 "小镇中年", "小镇青年", "小镇中产", "未识别"]
FINANCE_GROUPS = [
    "千禧一代/精英青年", "千禧一代/普通蓝领青年", "千禧一代/有为青年", "工薪/服务工薪", "工薪/蓝领工薪",
    "家庭/无孩小资", "家庭/中产家庭", "家庭/成熟期家庭", "小镇/小镇青年", "小镇/安逸中年",
    "银发/old money", "银发/普通银发", "其他人群",
]
CIRCLES = ["时尚辣妈妈", "精致打工人", "养系中青年", "小镇中青年", "其他"]
BENEFIT = {
    "时尚辣妈妈": "母婴美妆券 baby & beauty coupons",
    "精致打工人": "品质好货券与本地生活券 premium goods & local-life coupons",
    "养系中青年": "健康宠物券 health & pet coupons",
    "小镇中青年": "性价比好货券 value-for-money coupons",
}
SUPER_COUPON = "神券三选一(已满足) pick-one super coupon (LV.3+, already covered)"
FOOD_COUPON = "食品饮料粮油调味券 food, drinks & grocery coupons"

USER_SCHEMA = pa.schema([
    ("user_id", pa.string()),
    ("real_name_age", pa.int64()),
    ("profile_age", pa.int64()),
    ("city_tier", pa.int64()),
    ("gender", pa.string()),
    ("child_probability", pa.float64()),
    ("grade_stage", pa.string()),
    ("education", pa.string()),
    ("marital_status", pa.string()),
    ("member_level", pa.int64()),
])
ORDER_SCHEMA = pa.schema([
    ("order_id", pa.string()),
    ("user_id", pa.string()),
    ("order_time", pa.timestamp("us")),
    ("amount", pa.decimal128(18, 2)),
    ("is_after_sale", pa.bool_()),
])


def packaged(name: str) -> Path:
    return Path(str(resources.files("huaxiang.templates").joinpath("tags", name)))


def users_table(users: dict[str, dict[str, Any]]) -> pa.Table:
    rows = [{"user_id": user, **fields} for user, fields in users.items()]
    return pa.Table.from_pylist(rows, schema=USER_SCHEMA)


def orders_table(orders: dict[str, list[str]], after_sale: dict[str, list[str]] | None = None) -> pa.Table:
    rows: list[dict[str, Any]] = []
    for flag, by_user in ((False, orders), (True, after_sale or {})):
        for user, amounts in by_user.items():
            for amount in amounts:
                rows.append({
                    "order_id": f"o{len(rows)}", "user_id": user,
                    "order_time": dt.datetime(2026, 3, 1, 10) + dt.timedelta(days=len(rows)),
                    "amount": Decimal(amount), "is_after_sale": flag,
                })
    return pa.Table.from_pylist(rows, schema=ORDER_SCHEMA)


def build(root: Path, users: pa.Table, orders: pa.Table) -> tuple[Any, dict[str, dict[str, Any]]]:
    (root / "data").mkdir(parents=True)
    pq.write_table(users, root / "data" / "users.parquet")
    pq.write_table(orders, root / "data" / "orders.parquet")
    (root / "tags").mkdir()
    for name in TAG_FILES:
        shutil.copy(packaged(name), root / "tags" / name)
    result = Workspace(root).build(AS_OF)
    rows = {row["user_id"]: row for row in pq.read_table(result.path / "tags.parquet").to_pylist()}
    return result, rows


# ---------------------------------------------------------------------------- 十大靶群
# Buyers' means: frequency 20 / 10 = 2 orders, spend 1000 / 10 = 100 yuan (amounts exact in binary).

TARGET_USERS: dict[str, dict[str, Any]] = {
    "s1": {"real_name_age": 25, "city_tier": 1, "grade_stage": "大学"},
    "s2": {"real_name_age": 26, "city_tier": 1, "grade_stage": "高中"},
    "st3": {"profile_age": 20, "grade_stage": "大学"},
    "g1": {"real_name_age": 56, "city_tier": 3},
    "g2": {"real_name_age": 55, "city_tier": 1},
    "f1": {"real_name_age": 30, "city_tier": 2, "child_probability": 0.5},
    "f2": {"real_name_age": 40, "city_tier": 4, "child_probability": 0.9},
    "f3": {"real_name_age": 40, "city_tier": 4, "child_probability": 0.49},
    "z1": {"real_name_age": 15, "city_tier": 2},
    "z2": {"real_name_age": 25, "city_tier": 1},
    "b1": {"real_name_age": 35, "city_tier": 2},
    "t1": {"real_name_age": 16, "city_tier": 5},
    "t2": {"real_name_age": 35, "city_tier": 6},
    "t3": {"real_name_age": 45, "city_tier": 3},
    "m1": {"real_name_age": 30, "city_tier": 3},
    "m2": {"real_name_age": 30, "city_tier": 3},
    "u1": {},
    "u2": {"real_name_age": 12, "city_tier": 3},
}
TARGET_ORDERS = {
    "g2": ["100.00"],
    "b1": ["99.75"],
    "t1": ["30.00", "30.00", "40.00"],
    "t2": ["50.00"],
    "m1": ["75.00", "75.00"],
    "m2": ["300.00"],
    "g1": ["10.00"] * 5,
    "f1": ["10.00", "20.00", "20.00"],
    "f2": ["25.00", "25.25"],
    "s1": ["50.00"],
}
EXPECTED_TARGET = {
    "s1": "学生一族",  # grade stage and 25
    "s2": "都市蓝领",  # grade stage but 26; no order: spend 0 below the mean
    "st3": "学生一族",  # imputed (profile) ages count; no city needed
    "g1": "银发一族",  # 56, whatever the tier and spend
    "g2": "都市中产",  # 55, spend exactly the mean
    "f1": "都市家庭",  # child probability exactly 0.5
    "f2": "小镇家庭",
    "f3": "小镇中年",  # 0.49 is not high; no order: both below the mean
    "z1": "都市Z世代",  # 15, no grade stage
    "z2": "都市Z世代",  # 25
    "b1": "都市蓝领",  # 99.75 < 100
    "t1": "小镇青年",  # 16; 3 orders > 2 and spend exactly the mean: low spend
    "t2": "小镇青年",  # 35; both below the mean
    "t3": "小镇中年",  # only after-sale orders: 0 orders, 0 spend
    "m1": "小镇中产",  # orders exactly the mean, spend above
    "m2": "未识别",  # fewer orders, more spend: neither low spend nor middle class
    "u1": "未识别",  # mode band imputed (26-35), no city
    "u2": "未识别",  # 12 in a tier-3 town
}


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict[str, dict[str, Any]]]:
    orders = orders_table(TARGET_ORDERS, {"t3": ["500.00", "500.00"]})
    return build(tmp_path_factory.mktemp("target"), users_table(TARGET_USERS), orders)


def test_fixture_means_are_what_the_expectations_assume(target: Any) -> None:
    _, rows = target
    buyers = [row for row in rows.values() if row["frequency_365d"] > 0]
    assert len(buyers) == 10
    assert sum(row["frequency_365d"] for row in buyers) == 20
    assert sum(row["monetary_365d"] for row in buyers) == Decimal("1000.00")
    assert rows["t3"]["frequency_365d"] == 0 and rows["u1"]["age_band"] == "26-35"


@pytest.mark.parametrize("user", sorted(EXPECTED_TARGET))
def test_target_group_10_per_user(target: Any, user: str) -> None:
    _, rows = target
    assert rows[user]["target_group_10"] == EXPECTED_TARGET[user]


def test_every_target_group_is_reached(target: Any) -> None:
    result, rows = target
    # The fixture holds only what the ten groups read; the profile columns it lacks are skipped.
    absent = {"gender": "gender", "education": "education", "marital_status": "marital_status",
              "member_level": "member_level"}
    assert result.skipped == {tag: f"missing input: column users.{column}" for tag, column in absent.items()}
    assert {row["target_group_10"] for row in rows.values()} == set(TARGET_GROUPS)


# ---------------------------------------------------------------------------- finance groups and circles
# Buyers' spend 8680 / 7 = 1240 (mean); 80th percentile 1848; frequency mean 19 / 7 ≈ 2.71;
# order value terciles ≈ 299.96 and 620.08: 低 100, 中 300 / 413.33 / 620, 高 1000 / 2000.

FINANCE_USERS: dict[str, dict[str, Any]] = {
    "o1": {"real_name_age": 60, "city_tier": 1, "gender": "male"},
    "o2": {"real_name_age": 56, "city_tier": 3, "member_level": 4},
    "o3": {"real_name_age": 70, "city_tier": 2, "member_level": 3},
    "x": {"real_name_age": 40, "city_tier": 3, "gender": "male", "education": "secondary",
          "marital_status": "married"},
    "e2": {"real_name_age": 28, "city_tier": 1, "gender": "male", "education": "bachelor",
           "marital_status": "single", "child_probability": 0.1},
    "e3": {"real_name_age": 25, "city_tier": 2, "education": "master"},
    "y": {"real_name_age": 22, "city_tier": 2, "gender": "female", "education": "college",
          "child_probability": 0.7},
    "fm1": {"real_name_age": 40, "city_tier": 2, "gender": "female", "child_probability": 0.8},
    "fm2": {"real_name_age": 30, "city_tier": 1, "gender": "female", "child_probability": 0.6},
    "fm3": {"real_name_age": 30, "city_tier": 1, "gender": "female", "child_probability": 0.6,
            "education": "secondary"},
    "dk": {"real_name_age": 45, "city_tier": 2, "gender": "male", "marital_status": "married",
           "child_probability": 0.1},
    "dk2": {"real_name_age": 46, "city_tier": 1, "marital_status": "married", "child_probability": 0.1,
            "education": "master"},
    "t1": {"real_name_age": 35, "city_tier": 4},
    "t2": {"real_name_age": 46, "city_tier": 5},
    "w1": {"real_name_age": 50, "city_tier": 1, "education": "primary"},
    "w2": {"real_name_age": 55},
    "k1": {"real_name_age": 15, "city_tier": 1},
    "n1": {},
}
FINANCE_ORDERS = {
    "o1": ["2000.00"],
    "x": ["300.00"] * 10,
    "e2": ["1000.00"],
    "fm2": ["620.00", "620.00"],
    "dk": ["400.00", "400.00", "440.00"],
    "o3": ["100.00"],
    "y": ["100.00"],
}
# user: (finance_group_14, circle_group, circle_benefit)
EXPECTED_FINANCE: dict[str, tuple[str, str, str]] = {
    "o1": ("银发/old money", "其他", FOOD_COUPON),  # 56+, spend above the 80th percentile
    "o2": ("银发/old money", "其他", SUPER_COUPON),  # 56 exactly, member level 4, no order
    "o3": ("银发/普通银发", "其他", SUPER_COUPON),  # member level 3: covered by the pick-one coupon
    "x": ("小镇/安逸中年", "小镇中青年", BENEFIT["小镇中青年"]),
    "e2": ("千禧一代/精英青年", "精致打工人", BENEFIT["精致打工人"]),  # purchasing power 高, spend < P80
    "e3": ("千禧一代/有为青年", "其他", FOOD_COUPON),  # master, but no purchase: not elite
    "y": ("千禧一代/有为青年", "其他", FOOD_COUPON),  # 22 with a child: too young for the family groups
    "fm1": ("家庭/成熟期家庭", "其他", FOOD_COUPON),  # no order: no purchasing power, so no 辣妈
    "fm2": ("家庭/中产家庭", "时尚辣妈妈", BENEFIT["时尚辣妈妈"]),  # spend exactly the mean; power 中
    "fm3": ("千禧一代/普通蓝领青年", "其他", FOOD_COUPON),  # a parent, but spend below the mean
    "dk": ("家庭/无孩小资", "养系中青年", BENEFIT["养系中青年"]),  # 45, married, spend = mean; 3 orders
    "dk2": ("工薪/服务工薪", "其他", FOOD_COUPON),  # 46 is too old for 无孩小资
    "t1": ("小镇/小镇青年", "小镇中青年", BENEFIT["小镇中青年"]),  # 35
    "t2": ("小镇/安逸中年", "其他", FOOD_COUPON),  # 46: too old for the small-town circle
    "w1": ("工薪/蓝领工薪", "其他", FOOD_COUPON),
    "w2": ("工薪/蓝领工薪", "其他", FOOD_COUPON),  # unknown tier and education
    "k1": ("其他人群", "其他", FOOD_COUPON),  # 15
    "n1": ("千禧一代/普通蓝领青年", "其他", FOOD_COUPON),  # mode band 26-35 imputed
}


@pytest.fixture(scope="module")
def finance(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict[str, dict[str, Any]]]:
    return build(tmp_path_factory.mktemp("finance"), users_table(FINANCE_USERS), orders_table(FINANCE_ORDERS))


def test_finance_fixture_statistics(finance: Any) -> None:
    _, rows = finance
    buyers = [row for row in rows.values() if row["frequency_365d"] > 0]
    assert sum(row["monetary_365d"] for row in buyers) / len(buyers) == Decimal("1240")
    levels = {user: rows[user]["purchasing_power_level"] for user in FINANCE_ORDERS}
    assert levels == {"o1": "高", "x": "中", "e2": "高", "fm2": "中", "dk": "中", "o3": "低", "y": "低"}
    assert rows["n1"]["age_band"] == "26-35" and rows["n1"]["age_imputed"] is True


@pytest.mark.parametrize("user", sorted(EXPECTED_FINANCE))
def test_finance_group_circle_and_benefit_per_user(finance: Any, user: str) -> None:
    _, rows = finance
    row = rows[user]
    assert (row["finance_group_14"], row["circle_group"], row["circle_benefit"]) == EXPECTED_FINANCE[user]


def test_finance_groups_cover_both_levels(finance: Any) -> None:
    result, rows = finance
    assert result.skipped == {"has_grade_stage": "missing input: column users.grade_stage"}
    partial = {entry["tag"]: entry["without"] for entry in result.manifest["partial"]}
    assert partial == {"target_group_10": ["has_grade_stage"]}  # finance and circles had all they read
    seen = {row["finance_group_14"] for row in rows.values()}
    assert seen <= set(FINANCE_GROUPS)
    assert {value.split("/")[0] for value in seen} == {"千禧一代", "工薪", "家庭", "小镇", "银发", "其他人群"}
    assert set(CIRCLES) <= {row["circle_group"] for row in rows.values()}


def test_packaged_group_values() -> None:
    catalog = load_catalog(packaged("groups.yaml").parent)
    assert [v.value for v in catalog["target_group_10"].values or []] == TARGET_GROUPS
    assert [v.value for v in catalog["finance_group_14"].values or []] == FINANCE_GROUPS
    assert catalog["finance_group_14"].type == "hierarchical_enum"
    assert [v.value for v in catalog["circle_group"].values or []] == CIRCLES
    benefits = [v.value for v in catalog["circle_benefit"].values or []]
    assert set(BENEFIT.values()) | {SUPER_COUPON, FOOD_COUPON} == set(benefits)
    assert "code -1" in catalog["target_group_10"].name_en
    # Only tags that are always built when orders exist: no declared tag that an absent column would skip.
    assert catalog.dependencies["target_group_10"] == {
        "has_grade_stage", "age_band", "city_tier", "child_probability", "monetary_365d", "frequency_365d",
    }
    assert catalog.dependencies["circle_benefit"] == {"circle_group", "member_level"}


# ---------------------------------------------------------------------------- the sample shop


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict[str, dict[str, Any]], dict[str, Any]]:
    root = tmp_path_factory.mktemp("sample")
    workspace = Workspace.create_sample(root / "shop", users=2000, seed=7)
    workspace.ingest()
    tags = workspace.path / "tags"
    for old in tags.glob("*.yaml"):
        old.unlink()
    for name in TAG_FILES:
        shutil.copy(packaged(name), tags / name)
    result = workspace.build(AS_OF)
    rows = {row["user_id"]: row for row in pq.read_table(result.path / "tags.parquet").to_pylist()}
    truth_path = next(workspace.path.rglob("truth.parquet"))
    truth = {row["user_id"]: row for row in pq.read_table(truth_path).to_pylist()}
    return result, rows, truth


def test_sample_shop_planted_personas_land_in_their_groups(sample: Any) -> None:
    result, rows, truth = sample
    assert result.skipped == {}

    def share(persona: str, column: str, value: str) -> float:
        users = [user for user in rows if truth[user]["persona"] == persona]
        assert len(users) > 100, persona
        return sum(1 for user in users if rows[user][column] == value) / len(users)

    assert share("silver", "target_group_10", "银发一族") >= 0.9  # planted ages 56-78
    assert share("student", "target_group_10", "学生一族") >= 0.9  # 15-24 with a grade stage
    assert share("small_town_family", "target_group_10", "小镇家庭") >= 0.85
    assert share("urban_family", "target_group_10", "都市家庭") >= 0.7
    assert share("small_town_youth", "circle_group", "小镇中青年") >= 0.85
    assert share("silver", "finance_group_14", "银发/普通银发") + share(
        "silver", "finance_group_14", "银发/old money") >= 0.9
    groups = Counter(row["target_group_10"] for row in rows.values())
    assert set(groups) == set(TARGET_GROUPS)
    assert groups["未识别"] < 0.05 * len(rows)


def test_sample_shop_spend_groups_follow_the_buyers_mean(sample: Any) -> None:
    _, rows, _ = sample
    buyers = [row for row in rows.values() if row["frequency_365d"] > 0]
    mean = sum(row["monetary_365d"] for row in buyers) / len(buyers)
    middle = [row for row in rows.values() if row["target_group_10"] == "都市中产"]
    blue = [row for row in rows.values() if row["target_group_10"] == "都市蓝领"]
    assert middle and blue
    assert all(row["monetary_365d"] >= mean for row in middle)
    assert all(row["monetary_365d"] < mean for row in blue)
    assert all(row["city_tier"] in (1, 2) for row in middle + blue)
