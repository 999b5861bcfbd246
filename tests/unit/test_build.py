"""build(workspace, as_of): hand-computed tag values on a tiny workspace, skips, manifest, atomicity."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from huaxiang.engine import MODEL_MAKERS, ModelContext, ModelOutput, build, model_maker, read_manifest
from huaxiang.engine.registry import call_key
from huaxiang.errors import ConfigError
from huaxiang.workspace import Workspace

AS_OF = dt.date(2026, 7, 1)
MONEY = pa.decimal128(18, 2)
TS = pa.timestamp("us")


def ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


USERS = pa.table(
    {
        "user_id": ["u1", "u2", "u3", "u4"],
        "register_time": [ts("2025-01-01 10:00"), ts("2025-06-01 10:00"), None, ts("2026-07-05 10:00")],
        "gender": ["female", "male", "unknown", "female"],
        "city_tier": [1, 2, None, 3],
    },
    schema=pa.schema(
        [("user_id", pa.string()), ("register_time", TS), ("gender", pa.string()), ("city_tier", pa.int64())]
    ),
)
ORDERS = pa.table(
    {
        "order_id": ["o1", "o2", "o3", "o4", "o5", "o6"],
        "user_id": ["u1", "u1", "u1", "u2", "u2", "u3"],
        "order_time": [
            ts("2026-06-20 12:00"),
            ts("2026-05-01 12:00"),
            ts("2026-06-25 12:00"),
            ts("2026-06-30 23:59"),
            ts("2026-07-01 00:00"),  # on the as-of date itself: not used
            ts("2025-01-10 12:00"),  # outside the 365-day window
        ],
        "amount": [Decimal(v) for v in ("100.00", "50.00", "30.00", "200.00", "999.00", "10.00")],
        "is_after_sale": [False, False, True, False, False, False],
    },
    schema=pa.schema(
        [
            ("order_id", pa.string()),
            ("user_id", pa.string()),
            ("order_time", TS),
            ("amount", MONEY),
            ("is_after_sale", pa.bool_()),
        ]
    ),
)
ORDER_ITEMS = pa.table(
    {
        "order_id": ["o1", "o2", "o4", "o5"],
        "line_no": [1, 1, 1, 1],
        "product_id": ["p1", "p2", "p2", "p1"],
        "quantity": [2, 1, 1, 5],
        "unit_price": [Decimal("50.00"), Decimal("50.00"), Decimal("200.00"), Decimal("199.80")],
    },
    schema=pa.schema(
        [
            ("order_id", pa.string()),
            ("line_no", pa.int64()),
            ("product_id", pa.string()),
            ("quantity", pa.int64()),
            ("unit_price", MONEY),
        ]
    ),
)
EVENTS = pa.table(
    {
        "user_id": ["u1", "u2", "u3", "u2", "u1", "u2", "u2"],
        "event_time": [
            ts("2026-06-15 09:00"),
            ts("2026-06-15 09:00"),
            ts("2026-05-01 09:00"),  # outside 30 days
            ts("2026-07-01 08:00"),  # on the as-of date: not used
            ts("2026-06-10 09:00"),
            ts("2026-06-11 09:00"),
            ts("2026-06-12 09:00"),
        ],
        "event_type": ["favorite", "favorite", "favorite", "favorite", "view", "view", "view"],
        "product_id": ["p1", "p2", "p1", "p1", "p1", "p1", "p2"],
    },
    schema=pa.schema(
        [
            ("user_id", pa.string()),
            ("event_time", TS),
            ("event_type", pa.string()),
            ("product_id", pa.string()),
        ]
    ),
)
PRODUCTS = pa.table(
    {
        "product_id": ["p1", "p2"],
        "brand": ["蓝月亮", "立白"],
        "category_l1": ["家清", "家清"],
        "category_l2": ["洗衣", "洗衣"],
        "category_l3": ["洗衣液", "洗衣粉"],
    }
)

CATALOG = """
- id: monetary_365d
  name_zh: 近一年消费金额
  name_en: Spend, 365 days
  category: operable
  type: number
  metric: {from: orders, where: "NOT is_after_sale", window: 365d, agg: sum(amount)}
- id: frequency_365d
  name_zh: 近一年有效订单数
  name_en: Orders, 365 days
  category: operable
  type: integer
  metric: {from: orders, where: "NOT is_after_sale", window: 365d, agg: count}
- id: avg_order_amount
  name_zh: 平均订单金额
  name_en: Average order amount
  category: operable
  type: number
  metric: {from: orders, where: "NOT is_after_sale", window: 365d, agg: avg(amount)}
- id: days_since_last_order
  name_zh: 距最近一次下单天数
  name_en: Days since last order
  category: operable
  type: integer
  metric: {from: orders, where: "NOT is_after_sale", agg: days_since_max(order_time)}
- id: units_bought
  name_zh: 购买件数
  name_en: Units bought
  category: operable
  type: integer
  metric: {from: order_items, agg: sum(quantity)}
- id: big_spender
  name_zh: 高消费
  name_en: Big spender
  category: style
  type: boolean
  rule: "monetary_365d >= mean(monetary_365d, frequency_365d > 0)"
- id: spend_level
  name_zh: 消费层级
  name_en: Spend level
  category: operable
  type: enum
  when:
    - 高: "monetary_365d >= 200"
    - 中: "monetary_365d > 0"
  default: 无
- id: spend_band
  name_zh: 消费分档
  name_en: Spend band
  category: operable
  type: enum
  bins: {of: monetary_365d, edges: [0, 160], labels: [无, 低, 高]}
- id: spend_hundreds
  name_zh: 消费百元档
  name_en: Spend, 100-yuan bands
  category: operable
  type: enum
  bins: {of: monetary_365d, width: 100}
- id: spend_half
  name_zh: 消费二分位
  name_en: Spend halves
  category: operable
  type: enum
  bins: {of: monetary_365d, quantiles: 2}
- id: fav_bluemoon_30d
  name_zh: 30天内收藏蓝月亮
  name_en: Favorited Blue Moon in 30 days
  category: action
  type: boolean
  action: {events: [favorite], brand: 蓝月亮, window: 30d}
- id: viewed_twice_30d
  name_zh: 30天内浏览两次
  name_en: Viewed twice in 30 days
  category: action
  type: boolean
  action: {events: [view], window: 30d, min_count: 2}
- id: engaged
  name_zh: 活跃
  name_en: Engaged
  category: custom
  type: boolean
  rule: "fav_bluemoon_30d OR viewed_twice_30d"
- id: city_tier
  name_zh: 城市等级
  name_en: City tier
  category: extended
  type: integer
  declared: {column: city_tier}
- id: gender
  name_zh: 性别
  name_en: Gender
  category: basic
  type: enum
  declared: {column: gender}
- id: age
  name_zh: 年龄
  name_en: Age
  category: basic
  type: integer
  declared: {column: age}
- id: rfm_class
  name_zh: RFM分类
  name_en: RFM class
  category: operable
  type: enum
  model: {name: rfm, params: {column: rfm_class}}
- id: recency_days
  name_zh: 最近购买天数
  name_en: Recency
  category: operable
  type: integer
  model: {name: rfm}
- id: lifecycle_stage
  name_zh: 生命周期
  name_en: Lifecycle
  category: operable
  type: enum
  model: {name: lifecycle, params: {column: lifecycle_stage, churn_days: 60}}
- id: coupon_orders
  name_zh: 用券订单数
  name_en: Orders with a coupon
  category: style
  type: integer
  metric: {from: orders, where: "coupon_used", agg: count}
- id: scene_outing
  name_zh: 郊游
  name_en: Outing
  category: category_scene
  type: probability
  scene: {name: outing, weights: {view: 1.0}}
"""


def make_workspace(root: Path, *, events: bool = True) -> Path:
    data = root / "data"
    data.mkdir(parents=True)
    tables = {"users": USERS, "orders": ORDERS, "order_items": ORDER_ITEMS, "products": PRODUCTS}
    if events:
        tables["events"] = EVENTS
    for name, table in tables.items():
        pq.write_table(table, data / f"{name}.parquet")
    (root / "tags").mkdir()
    (root / "tags" / "tags.yaml").write_text(CATALOG, encoding="utf-8")
    return root


def tags_by_user(path: Path) -> dict[str, dict[str, Any]]:
    rows = pq.read_table(path / "tags.parquet").to_pylist()
    return {row["user_id"]: row for row in rows}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    root = make_workspace(tmp_path_factory.mktemp("shop"))
    return root, build(root, AS_OF)


def test_values_per_user(built: tuple[Path, Any]) -> None:
    root, result = built
    assert result.path == root / "snapshots" / "2026-07-01"
    table = pq.read_table(result.path / "tags.parquet")
    assert table.column("user_id").to_pylist() == ["u1", "u2", "u3"]  # u4 signed up after as_of
    assert table.column_names == ["user_id", *result.built]
    rows = tags_by_user(result.path)

    def column(name: str) -> list[Any]:
        return [rows[user][name] for user in ("u1", "u2", "u3")]

    # o5 (on the as-of date) and the after-sale o3 are not counted; o6 is outside 365 days.
    assert column("monetary_365d") == [Decimal("150.00"), Decimal("200.00"), Decimal("0.00")]
    assert column("frequency_365d") == [2, 1, 0]
    assert table.schema.field("monetary_365d").type == MONEY
    assert column("avg_order_amount") == [75.0, 200.0, None]
    assert column("days_since_last_order") == [11, 1, (AS_OF - dt.date(2025, 1, 10)).days]
    assert column("units_bought") == [3, 1, 0]
    # mean over buyers: (150 + 200) / 2 = 175.
    assert column("big_spender") == [False, True, False]
    assert column("spend_level") == ["中", "高", "无"]
    assert column("spend_band") == ["低", "高", "无"]
    assert column("spend_hundreds") == ["100-200", "200-300", "0-100"]
    assert column("spend_half") == ["Q1", "Q2", "Q1"]
    assert column("fav_bluemoon_30d") == [True, False, False]
    assert column("viewed_twice_30d") == [False, True, False]
    assert column("engaged") == [True, True, False]
    assert column("city_tier") == [1, 2, None]
    assert column("gender") == ["female", "male", "unknown"]
    # u1: M below mean, R worse than mean, F above -> 一般保持; u2: M and R high, F low -> 重要发展.
    assert column("rfm_class") == ["一般保持客户", "重要发展客户", None]
    assert column("recency_days") == [11, 1, None]
    # u3's last activity (2026-05-01) is 61 days back, beyond churn_days 60.
    assert column("lifecycle_stage") == ["active", "new", "churned"]


def test_skipped_tags_have_reasons(built: tuple[Path, Any]) -> None:
    _, result = built
    assert result.skipped == {
        "age": "missing input: column users.age",
        "coupon_orders": "missing input: column orders.coupon_used",
        "scene_outing": "missing input: column products.scene_tags",
    }


def test_manifest(built: tuple[Path, Any]) -> None:
    root, result = built
    manifest = read_manifest(result.path)
    assert manifest == json.loads(json.dumps(result.manifest))
    assert manifest["as_of"] == "2026-07-01"
    assert manifest["engine"] == "duckdb"
    assert len(manifest["catalog_hash"]) == 64
    assert manifest["rows"]["users"] == 3
    assert manifest["rows"]["tables"]["orders"] == 5  # o5 is cut
    assert manifest["rows"]["tables"]["events"] == 6
    assert manifest["rows"]["tables"]["order_items"] == 3
    assert manifest["tags"]["city_tier"]["coverage"] == pytest.approx(2 / 3, abs=1e-6)
    money = manifest["tags"]["monetary_365d"]
    assert (money["min"], money["max"], money["mean"]) == (0.0, 200.0, pytest.approx(350 / 3, abs=1e-6))
    assert manifest["tags"]["big_spender"]["top"] == [
        {"value": False, "count": 2},
        {"value": True, "count": 1},
    ]
    assert manifest["tags"]["rfm_class"]["coverage"] == pytest.approx(2 / 3, abs=1e-6)
    assert {s["tag"] for s in manifest["skipped"]} == {"age", "coupon_orders", "scene_outing"}
    thresholds = manifest["lifecycle_thresholds"]
    assert thresholds["churn_threshold_days"] == 60
    assert thresholds["churn_source"] == "configured"
    assert thresholds["purchase_interval_days"] == 50.0  # u1: 2026-05-01 -> 2026-06-20
    assert "timings" not in manifest and "built_at" not in manifest  # they are in build.json
    run = json.loads((result.path / "build.json").read_text(encoding="utf-8"))
    assert set(run["timings"]) >= {"compute_s", "collect_s", "total_s"} and run == result.run


def test_absent_events_skip_action_tags_and_dependents(tmp_path: Path) -> None:
    root = make_workspace(tmp_path, events=False)
    result = build(root, AS_OF)
    assert result.skipped["fav_bluemoon_30d"] == "missing input: table events"
    assert result.skipped["viewed_twice_30d"] == "missing input: table events"
    assert result.skipped["engaged"] == "depends on skipped tag fav_bluemoon_30d, viewed_twice_30d"
    rows = tags_by_user(result.path)
    assert "engaged" not in rows["u1"]
    # Without events lifecycle reads orders alone: u3's last activity is its 2025 order.
    assert [rows[u]["lifecycle_stage"] for u in ("u1", "u2", "u3")] == ["active", "new", "churned"]


def test_rebuild_is_idempotent_and_replaces(tmp_path: Path) -> None:
    root = make_workspace(tmp_path)
    first = build(root, AS_OF)
    before = pq.read_table(first.path / "tags.parquet")
    second = Workspace(root).build(AS_OF)
    after = pq.read_table(second.path / "tags.parquet")
    assert after.equals(before)
    assert (first.path / "tags.parquet").read_bytes() == (second.path / "tags.parquet").read_bytes()
    assert second.path.is_symlink()
    versions = list((root / "snapshots" / ".huaxiang" / "versions").iterdir())
    assert len(versions) == 1  # the previous version was removed


def test_failed_build_keeps_previous_snapshot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_workspace(tmp_path)
    first = build(root, AS_OF)
    before = (first.path / "tags.parquet").read_bytes()
    manifest = (first.path / "manifest.json").read_text(encoding="utf-8")

    def boom(context: ModelContext, params: Mapping[str, Any]) -> ModelOutput:
        raise RuntimeError("model failed")

    monkeypatch.setitem(MODEL_MAKERS, "rfm", dataclasses.replace(MODEL_MAKERS["rfm"], function=boom))
    with pytest.raises(RuntimeError, match="model failed"):
        build(root, AS_OF)
    assert (first.path / "tags.parquet").read_bytes() == before
    assert (first.path / "manifest.json").read_text(encoding="utf-8") == manifest
    assert len(list((root / "snapshots" / ".huaxiang" / "versions").iterdir())) == 1


def test_model_maker_called_once_per_params(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_workspace(tmp_path)
    calls: list[Mapping[str, Any]] = []
    original = MODEL_MAKERS["rfm"]

    def counting(context: ModelContext, params: Mapping[str, Any]) -> ModelOutput:
        calls.append(params)
        return original.function(context, params)

    monkeypatch.setitem(MODEL_MAKERS, "rfm", dataclasses.replace(original, function=counting))
    build(root, AS_OF)
    assert calls == [{}]  # rfm_class and recency_days share one call


def test_registry_rejects_duplicates_and_unknown_params(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="registered twice"):
        model_maker("rfm", needs=())(MODEL_MAKERS["rfm"].function)
    assert call_key("rfm", {"column": "rfm_class", "window_days": 90}) == call_key("rfm", {"window_days": 90})
    root = make_workspace(tmp_path)
    text = CATALOG.replace("{column: rfm_class}", "{column: rfm_class, windw_days: 90}")
    (root / "tags" / "tags.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="no parameter 'windw_days'.*window_days"):
        build(root, AS_OF)


def test_model_column_must_fit_the_tag_type(tmp_path: Path) -> None:
    root = make_workspace(tmp_path)
    text = CATALOG.replace("type: enum\n  model: {name: rfm, params: {column: rfm_class}}",
                           "type: integer\n  model: {name: rfm, params: {column: rfm_class}}")
    assert text != CATALOG
    (root / "tags" / "tags.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="column 'rfm_class' as string, which does not fit .* integer"):
        build(root, AS_OF)
    assert not (root / "snapshots" / "2026-07-01").exists()


def test_each_date_has_its_snapshot_and_cut(tmp_path: Path) -> None:
    root = make_workspace(tmp_path)
    build(root, AS_OF)
    earlier = build(root, AS_OF - dt.timedelta(days=1))
    assert earlier.path == root / "snapshots" / "2026-06-30"
    assert (root / "snapshots" / "2026-07-01" / "tags.parquet").is_file()
    rows = tags_by_user(earlier.path)
    # u2's order at 2026-06-30 23:59 is on the as-of date of this snapshot: not counted.
    assert rows["u2"]["frequency_365d"] == 0
    assert rows["u1"]["days_since_last_order"] == 10


def test_a_build_needs_users(tmp_path: Path) -> None:
    root = make_workspace(tmp_path)
    (root / "data" / "users.parquet").unlink()
    with pytest.raises(ConfigError, match="no users table"):
        build(root, AS_OF)


def test_empty_columns_from_parquet_statistics_agree_with_a_scan(tmp_path: Path) -> None:
    import ibis

    from huaxiang.engine.build import drop_empty_columns, read_tables

    data = tmp_path / "data"
    data.mkdir()
    users = pa.table({"user_id": ["a", "b"], "age": pa.array([None, None], pa.int64()),
                      "city": ["北京", None], "tags": pa.array([None, ["x"]], pa.list_(pa.string()))})
    pq.write_table(users, data / "users.parquet", row_group_size=1)
    con = ibis.duckdb.connect()
    tables = read_tables(con, data)
    from_statistics = drop_empty_columns(con, tables, data)[1]
    from_scan = drop_empty_columns(con, tables)[1]
    assert from_statistics == from_scan == {"users": ["age"]}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            "{column: rfm_class, window_days: 'a year'}",
            "parameter window_days takes a whole number, got 'a year'.",
        ),
        (
            "{column: lifecycle_stage, silent_fraction: half}",
            "parameter silent_fraction takes a number, got 'half'.",
        ),
    ],
)
def test_a_maker_parameter_of_the_wrong_type_names_the_tag(tmp_path: Path, params: str, message: str) -> None:
    root = make_workspace(tmp_path)
    maker = params.split("column: ")[1].split(",")[0]
    model = "rfm" if maker == "rfm_class" else "lifecycle"
    (root / "tags" / "bad.yaml").write_text(
        f"- id: bad_{maker}\n  name_zh: 坏\n  name_en: Bad\n  category: custom\n  type: enum\n"
        f"  model: {{name: {model}, params: {params}}}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        build(root, AS_OF)
    assert str(caught.value) == f"tags/bad.yaml:1 (tag bad_{maker}): {message}"
    assert not (root / "snapshots" / AS_OF.isoformat()).exists()


def test_a_long_catalog_builds_in_few_layers_and_keeps_the_catalog_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """150 chained rules, 40 actions and 40 metrics: values right, columns in the catalog's order.

    The chain is far deeper than one SQL statement can take, so checkpoints must cut it; the
    independent tags are joined in batches rather than one join per tag.
    """
    from huaxiang.engine import compile as engine_compile

    root = make_workspace(tmp_path)
    entries = []
    for index in range(40):
        entries.append(
            f"- {{id: views_{index + 1}d, name_zh: 浏览{index}, name_en: Views {index}, category: action, "
            f"type: boolean, action: {{events: [view], window: {index + 1}d, min_count: 1}}}}"
        )
        entries.append(
            f"- {{id: orders_{index + 1}d, name_zh: 订单{index}, name_en: Orders {index}, category: operable,"
            " "
            f"type: integer, metric: {{from: orders, window: {index + 1}d, agg: count}}}}"
        )
    entries.append("- {id: step_0, name_zh: 步0, name_en: Step 0, category: custom, type: integer, "
                   "rule: 'frequency_365d + 0'}")
    for index in range(1, 150):
        entries.append(
            f"- {{id: step_{index}, name_zh: 步{index}, name_en: Step {index}, category: custom, "
            f"type: integer, rule: 'step_{index - 1} + 1'}}"
        )
    (root / "tags" / "many.yaml").write_text("\n".join(entries) + "\n", encoding="utf-8")
    layers: list[int] = []
    original = engine_compile._Compiler.layer

    def counting(self: Any) -> None:
        layers.append(self.layers)
        original(self)

    monkeypatch.setattr(engine_compile._Compiler, "layer", counting)
    result = build(root, AS_OF)

    from huaxiang.catalog import load_catalog

    order = [tag_id for tag_id in load_catalog(root / "tags").order if tag_id in result.built]
    assert result.built == order
    assert pq.read_table(result.path / "tags.parquet").column_names == ["user_id", *order]
    rows = tags_by_user(result.path)
    assert rows["u1"]["step_149"] == 2 + 149  # two valid orders in the window
    assert rows["u3"]["step_149"] == 149
    assert rows["u2"]["views_5d"] is False and rows["u2"]["views_31d"] is True  # views 19-20 days back
    assert rows["u1"]["orders_40d"] == 2 and rows["u2"]["orders_1d"] == 1  # all orders, after-sale too
    # 1 join layer per batch of per-user tables, then one projection per level of the chain.
    joins = -(-(80 + 6) // engine_compile.JOINS_PER_LAYER)
    assert len(layers) <= joins + 150 + 2
