"""AIPL stages (认知/兴趣/购买/忠诚): each stage, precedence, windows, events-only data, the sample."""

from __future__ import annotations

import datetime as dt
import shutil
from collections import Counter
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from huaxiang.engine import build
from huaxiang.errors import ConfigError
from huaxiang.segment.aipl import AIPL_STAGES, aipl_table
from huaxiang.workspace import Workspace

AS_OF = dt.date(2026, 7, 1)
TS = pa.timestamp("us")
MONEY = pa.decimal128(18, 2)
TEMPLATES = Path(str(resources.files("huaxiang.templates").joinpath("tags")))


def ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


# (user, order time, after-sale)
ORDER_ROWS: list[tuple[str, str, bool]] = [
    ("loyal", "2026-01-10 10:00", False),
    ("loyal", "2026-06-20 10:00", False),
    ("same_day", "2026-06-20 10:00", False),  # two orders on one day: one purchase day
    ("same_day", "2026-06-20 18:00", False),
    ("with_refund", "2026-06-10 10:00", False),
    ("with_refund", "2026-05-01 10:00", True),  # after-sale: not a purchase
    ("only_refunds", "2026-05-01 10:00", True),
    ("only_refunds", "2026-06-01 10:00", True),
    ("lapsed", "2025-06-01 10:00", False),  # both before the 365-day window
    ("lapsed", "2025-06-15 10:00", False),
    ("edge", "2025-07-01 00:00", False),  # the first day of the 365-day window: counts
    ("edge", "2026-06-30 23:59", False),
    ("outside", "2025-06-30 23:59", False),  # the day before the window: does not count
    ("outside", "2026-03-01 10:00", False),
    ("today", "2026-07-01 00:00", False),  # on the as-of date: not yet known
]
# (user, time, type)
EVENT_ROWS: list[tuple[str, str, str]] = [
    ("only_refunds", "2026-06-15 10:00", "view"),
    ("lapsed", "2026-06-15 10:00", "favorite"),
    ("two_views", "2026-06-10 10:00", "view"),
    ("two_views", "2026-06-20 10:00", "view"),
    ("one_view", "2026-06-20 10:00", "view"),
    ("searcher", "2026-06-20 10:00", "search"),
    ("carter", "2026-06-20 10:00", "cart"),
    ("ad_clicker", "2026-06-20 10:00", "ad_click"),
    ("window_start", "2026-06-01 00:00", "visit"),  # the first instant of the 30-day window
    ("too_early", "2026-05-31 23:59", "favorite"),  # just before it
    ("today", "2026-07-01 08:00", "cart"),
    ("loyal", "2026-06-25 10:00", "view"),
]
USER_IDS = [
    "loyal", "same_day", "with_refund", "only_refunds", "lapsed", "edge", "outside", "two_views",
    "one_view", "searcher", "carter", "ad_clicker", "window_start", "too_early", "today", "nobody",
]
EXPECTED = {
    "loyal": "loyalty",
    "same_day": "purchase",
    "with_refund": "purchase",
    "only_refunds": "awareness",
    "lapsed": "interest",
    "edge": "loyalty",
    "outside": "purchase",
    "two_views": "interest",
    "one_view": "awareness",
    "searcher": "interest",
    "carter": "interest",
    "ad_clicker": "awareness",
    "window_start": "awareness",
    "too_early": None,
    "today": None,
    "nobody": None,
}

USERS = pa.table({"user_id": USER_IDS})
ORDERS = pa.table(
    {
        "order_id": [f"o{i}" for i in range(len(ORDER_ROWS))],
        "user_id": [r[0] for r in ORDER_ROWS],
        "order_time": [ts(r[1]) for r in ORDER_ROWS],
        "amount": [Decimal("10.00")] * len(ORDER_ROWS),
        "is_after_sale": [r[2] for r in ORDER_ROWS],
    },
    schema=pa.schema([("order_id", pa.string()), ("user_id", pa.string()), ("order_time", TS),
                      ("amount", MONEY), ("is_after_sale", pa.bool_())]),
)
EVENTS = pa.table(
    {
        "user_id": [r[0] for r in EVENT_ROWS],
        "event_time": [ts(r[1]) for r in EVENT_ROWS],
        "event_type": [r[2] for r in EVENT_ROWS],
    },
    schema=pa.schema([("user_id", pa.string()), ("event_time", TS), ("event_type", pa.string())]),
)


def stages(table: ibis.Table) -> dict[str, Any]:
    return {row["user_id"]: row["aipl_stage"] for row in table.to_pyarrow().to_pylist()}


def test_each_stage_and_the_precedence_between_them() -> None:
    table = aipl_table(ibis.memtable(USERS), ibis.memtable(EVENTS), ibis.memtable(ORDERS), AS_OF)
    assert stages(table) == EXPECTED
    rows = {row["user_id"]: row for row in table.to_pyarrow().to_pylist()}
    assert rows["same_day"]["purchase_days"] == 1
    assert rows["edge"]["purchase_days"] == 2
    assert rows["two_views"]["views_in_window"] == 2
    assert set(EXPECTED.values()) - {None} == set(AIPL_STAGES)


def test_parameters_move_the_stage_boundaries() -> None:
    table = aipl_table(
        ibis.memtable(USERS), ibis.memtable(EVENTS), ibis.memtable(ORDERS), AS_OF,
        window_days=31, purchase_window_days=366, loyalty_min_days=3, interest_min_views=1,
    )
    got = stages(table)
    assert got["loyal"] == "purchase"  # two purchase days are no longer enough
    assert got["outside"] == "purchase"
    assert got["one_view"] == "interest"  # one view is enough
    assert got["too_early"] == "interest"  # the 31-day window reaches 2026-05-31
    assert got["only_refunds"] == "interest"


def test_without_orders_purchases_come_from_purchase_events() -> None:
    events = pa.table(
        {
            "user_id": ["buyer", "buyer", "buyer", "repeat", "repeat", "viewer"],
            "event_time": [ts("2026-06-20 10:00"), ts("2026-06-20 10:00"), ts("2026-06-20 11:00"),
                           ts("2026-06-02 10:00"), ts("2026-06-03 10:00"), ts("2026-06-03 10:00")],
            "event_type": ["view", "purchase", "purchase", "purchase", "purchase", "view"],
        },
        schema=pa.schema([("user_id", pa.string()), ("event_time", TS), ("event_type", pa.string())]),
    )
    users = pa.table({"user_id": ["buyer", "repeat", "viewer"]})
    table = aipl_table(ibis.memtable(users), ibis.memtable(events), None, AS_OF)
    # Three items bought in one go are one purchase day; two days make a loyal buyer.
    assert stages(table) == {"buyer": "purchase", "repeat": "loyalty", "viewer": "awareness"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"window_days": 0}, "AIPL window_days must be at least 1, got 0."),
        ({"purchase_window_days": 0}, "AIPL purchase_window_days must be at least 1, got 0."),
        (
            {"loyalty_min_days": 1},
            "AIPL loyalty_min_days must be at least 2 (loyalty means buying again), got 1.",
        ),
        ({"interest_min_views": 0}, "AIPL interest_min_views must be at least 1, got 0."),
    ],
)
def test_bad_parameters_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        aipl_table(ibis.memtable(USERS), ibis.memtable(EVENTS), ibis.memtable(ORDERS), AS_OF, **options)
    assert str(caught.value) == message


# ---------------------------------------------------------------------------- the standard tag in a build


def workspace(root: Path, *, orders: bool = True, tags: str | None = None) -> Path:
    (root / "data").mkdir(parents=True)
    (root / "tags").mkdir()
    tables = {"users": USERS, "events": EVENTS} | ({"orders": ORDERS} if orders else {})
    for name, table in tables.items():
        pq.write_table(table, root / "data" / f"{name}.parquet")
    if tags is None:
        shutil.copy(TEMPLATES / "aipl.yaml", root / "tags" / "aipl.yaml")
    else:
        (root / "tags" / "aipl.yaml").write_text(tags, encoding="utf-8")
    return root


def stage_by_user(path: Path) -> dict[str, Any]:
    return {row["user_id"]: row["aipl_stage"] for row in pq.read_table(path / "tags.parquet").to_pylist()}


def test_standard_aipl_stage_builds_with_the_exact_stage_strings(tmp_path: Path) -> None:
    result = build(workspace(tmp_path), AS_OF)
    assert result.built == ["aipl_stage"]
    rows = stage_by_user(result.path)
    assert rows == EXPECTED
    top = {entry["value"]: entry["count"] for entry in result.manifest["tags"]["aipl_stage"]["top"]}
    assert top == dict(Counter(v for v in EXPECTED.values() if v is not None))


def test_standard_aipl_stage_without_orders_and_without_events(tmp_path: Path) -> None:
    result = build(workspace(tmp_path / "no_orders", orders=False), AS_OF)
    rows = stage_by_user(result.path)
    # No orders and no purchase events: nobody reaches purchase.
    assert rows["loyal"] == "awareness" and rows["lapsed"] == "interest" and rows["same_day"] is None
    root = workspace(tmp_path / "no_events")
    (root / "data" / "events.parquet").unlink()
    assert build(root, AS_OF).skipped == {"aipl_stage": "missing input: table events"}


def test_a_bad_parameter_names_the_tag_and_its_file(tmp_path: Path) -> None:
    text = (TEMPLATES / "aipl.yaml").read_text(encoding="utf-8")
    bad = text.replace("params: {column: aipl_stage}", "params: {column: aipl_stage, loyalty_min_days: 1}")
    assert bad != text
    with pytest.raises(ConfigError) as caught:
        build(workspace(tmp_path / "one", tags=bad), AS_OF)
    line = next(i for i, row in enumerate(text.splitlines(), 1) if row.startswith("- id: aipl_stage"))
    assert str(caught.value) == (
        f"tags/aipl.yaml:{line} (tag aipl_stage): AIPL loyalty_min_days must be at least 2 "
        "(loyalty means buying again), got 1."
    )
    typed = text.replace("params: {column: aipl_stage}", "params: {column: aipl_stage, window_days: '30'}")
    with pytest.raises(ConfigError, match=r"\(tag aipl_stage\): parameter window_days takes a whole number"):
        build(workspace(tmp_path / "two", tags=typed), AS_OF)


# ---------------------------------------------------------------------------- sample data
# (The Taobao example is built in tests/integration/test_example_builds.py.)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    root = tmp_path_factory.mktemp("aipl_sample")
    shop = Workspace.create_sample(root, users=2000, seed=7)
    shop.ingest()
    for path in (shop.path / "tags").glob("*.yaml"):
        path.unlink()
    shutil.copy(TEMPLATES / "aipl.yaml", shop.path / "tags" / "aipl.yaml")
    result = shop.build(dt.date(2026, 11, 1))
    rows = {r["user_id"]: r["aipl_stage"] for r in pq.read_table(result.path / "tags.parquet").to_pylist()}
    truth = {r["user_id"]: r for r in pq.read_table(shop.path / "sources" / "truth.parquet").to_pylist()}
    return rows, truth


def test_sample_shop_stages_follow_the_planted_lifecycles(
    sample: tuple[dict[str, Any], dict[str, dict[str, Any]]],
) -> None:
    rows, truth = sample
    by_lifecycle: dict[str, Counter[Any]] = {}
    for user, stage in rows.items():
        by_lifecycle.setdefault(truth[user]["planted_lifecycle"], Counter())[stage] += 1
    # Users who never ordered never reach purchase or loyalty; potential users were last seen
    # 35+ days ago, so they have no signal at all.
    for lifecycle in ("potential", "high_potential"):
        assert not {"purchase", "loyalty"} & set(by_lifecycle[lifecycle])
    assert set(by_lifecycle["potential"]) == {None}
    assert by_lifecycle["high_potential"][None] < sum(by_lifecycle["high_potential"].values())
    # New users placed exactly one order (a few of them an after-sale one): purchase.
    new = by_lifecycle["new"]
    assert set(new) <= {"purchase", "interest", "awareness"}
    assert new["purchase"] >= 0.9 * sum(new.values())
    # Active users (two or more orders, one in the last 60 days) are loyal, or buyers when
    # their other orders are older than a year or after-sale.
    active = by_lifecycle["active"]
    assert active["loyalty"] >= 0.9 * sum(active.values())
    assert active["loyalty"] + active["purchase"] >= 0.99 * sum(active.values())
