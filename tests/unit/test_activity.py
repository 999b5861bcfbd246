"""``huaxiang.activity``: a user's recent orders and events from the canonical tables."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from huaxiang.activity import matching_user_ids, user_activity
from huaxiang.errors import NotFoundError, RequestError

AS_OF = dt.date(2026, 10, 31)
MONEY = pa.decimal128(18, 2)


def _at(day: int, hour: int = 12, month: int = 10) -> dt.datetime:
    return dt.datetime(2026, month, day, hour)


def _write(data: Path, name: str, rows: list[dict[str, object]], schema: pa.Schema) -> None:
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), data / f"{name}.parquet")


@pytest.fixture()
def shop(tmp_path: Path) -> Path:
    """Two users; U1 has orders and events around the window's edges, U2 has nothing."""
    data = tmp_path / "data"
    data.mkdir()
    _write(data, "users", [{"user_id": "U1"}, {"user_id": "U2"}], pa.schema([("user_id", pa.string())]))
    orders = [
        ("O1", "U1", _at(30, 23), "120.50", False, "app"),  # last moment inside the window
        ("O2", "U1", dt.datetime(2026, 10, 31, 0, 0), "99.00", False, "app"),  # the snapshot day: out
        ("O3", "U1", _at(30, 9), "20.00", True, "web"),  # an after-sale record on the same day
        ("O4", "U1", dt.datetime(2026, 10, 1, 0, 0), "5.00", False, "app"),  # first moment inside (30 days)
        ("O5", "U1", _at(30, 23, month=9), "7.00", False, "app"),  # before the window
        ("O6", "U2", _at(5, 12, month=11), "1.00", False, "app"),  # U2 after the snapshot only
    ]
    _write(
        data,
        "orders",
        [
            {
                "order_id": o,
                "user_id": u,
                "order_time": t,
                "amount": Decimal(a),
                "is_after_sale": s,
                "channel": c,
            }
            for o, u, t, a, s, c in orders
        ],
        pa.schema(
            [
                ("order_id", pa.string()),
                ("user_id", pa.string()),
                ("order_time", pa.timestamp("us")),
                ("amount", MONEY),
                ("is_after_sale", pa.bool_()),
                ("channel", pa.string()),
            ]
        ),
    )
    lines = [("O1", 2, "P2", 1), ("O1", 1, "P1", 2), ("O1", 3, "P9", 1), ("O4", 1, "P1", 3)]
    _write(
        data,
        "order_items",
        [{"order_id": o, "line_no": n, "product_id": p, "quantity": q} for o, n, p, q in lines],
        pa.schema(
            [
                ("order_id", pa.string()),
                ("line_no", pa.int64()),
                ("product_id", pa.string()),
                ("quantity", pa.int64()),
            ]
        ),
    )
    _write(
        data,
        "products",
        [{"product_id": "P1", "name": "蓝月亮 洗衣液"}, {"product_id": "P2", "name": "戴森 吹风机"}],
        pa.schema([("product_id", pa.string()), ("name", pa.string())]),
    )
    events = [
        ("U1", _at(30, 8), "view", "P2", None),
        ("U1", _at(29, 8), "search", None, "吹风机"),
        ("U1", _at(30, 7), "view", "P9", None),
        ("U1", dt.datetime(2026, 10, 31, 0, 0), "visit", None, None),  # the snapshot day: out
    ]
    _write(
        data,
        "events",
        [
            {"user_id": u, "event_time": t, "event_type": e, "product_id": p, "keyword": k}
            for u, t, e, p, k in events
        ],
        pa.schema(
            [
                ("user_id", pa.string()),
                ("event_time", pa.timestamp("us")),
                ("event_type", pa.string()),
                ("product_id", pa.string()),
                ("keyword", pa.string()),
            ]
        ),
    )
    return tmp_path


def test_orders_and_events_before_the_snapshot_newest_first(shop: Path) -> None:
    found = user_activity(shop, "U1", as_of=AS_OF, days=30)
    assert found.since == dt.date(2026, 10, 1)
    assert [order.order_id for order in found.orders] == ["O1", "O3", "O4"]
    assert (found.orders_total, found.events_total) == (3, 3)
    first = found.orders[0]
    assert first.amount == Decimal("120.50")
    assert first.units == 4  # 2 + 1 + 1 over its three lines
    assert first.products == ["蓝月亮 洗衣液", "戴森 吹风机", "P9"]  # line order; P9 has no name
    assert found.orders[1].units == 0 and found.orders[1].products == []  # no lines
    assert [(e.event_type, e.product_name, e.keyword) for e in found.events] == [
        ("view", "戴森 吹风机", None),
        ("view", None, None),
        ("search", None, "吹风机"),
    ]
    assert found.missing == []


def test_by_day_counts_orders_and_spend_without_after_sale(shop: Path) -> None:
    days = user_activity(shop, "U1", as_of=AS_OF, days=30).by_day()
    assert [day.day for day in days] == [dt.date(2026, 10, 30), dt.date(2026, 10, 29), dt.date(2026, 10, 1)]
    last = days[0]
    assert (last.orders, last.amount, last.events) == (2, Decimal("120.50"), {"view": 2})
    assert days[1].events == {"search": 1} and days[1].orders == 0


def test_limit_keeps_the_newest_and_totals_count_all(shop: Path) -> None:
    found = user_activity(shop, "U1", as_of=AS_OF, days=30, limit=1)
    assert [order.order_id for order in found.orders] == ["O1"]
    assert [event.event_time for event in found.events] == [_at(30, 8)]
    assert (found.orders_total, found.events_total) == (3, 3)


def test_a_longer_window_and_plain_json(shop: Path) -> None:
    found = user_activity(shop, "U1", as_of=AS_OF, days=60)
    assert "O5" in [order.order_id for order in found.orders]
    data = json.loads(json.dumps(found.to_dict()))
    assert data["orders"][0]["amount"] == 120.5
    assert data["orders"][0]["order_time"] == "2026-10-30T23:00:00"
    assert data["as_of"] == "2026-10-31"


def test_known_user_without_activity_is_empty(shop: Path) -> None:
    found = user_activity(shop, "U2", as_of=AS_OF)
    assert (found.orders, found.events, found.orders_total) == ([], [], 0)


def test_unknown_user_suggests_the_id(shop: Path) -> None:
    with pytest.raises(
        NotFoundError, match=r"no user 'u1' in .*users.parquet \(2 users\)\. Did you mean 'U1'\?"
    ):
        user_activity(shop, "u1", as_of=AS_OF)


def test_missing_events_table_is_named(shop: Path) -> None:
    (shop / "data" / "events.parquet").unlink()
    found = user_activity(shop, "U1", as_of=AS_OF, days=30)
    assert found.missing == ["events"]
    assert found.events == [] and len(found.orders) == 3


@pytest.mark.parametrize(
    ("days", "limit", "message"), [(0, 10, "days must be from 1"), (30, 0, "limit must be")]
)
def test_bad_window_is_refused(shop: Path, days: int, limit: int, message: str) -> None:
    with pytest.raises(RequestError, match=message):
        user_activity(shop, "U1", as_of=AS_OF, days=days, limit=limit)


def test_without_a_snapshot_the_date_is_needed(shop: Path) -> None:
    with pytest.raises(NotFoundError):
        user_activity(shop, "U1")


def test_matching_user_ids_puts_exact_and_prefix_first() -> None:
    assert matching_user_ids(["xb1", "AB12", "b1x", "B1", "C2"], "B1") == ["B1", "b1x", "AB12", "xb1"]
    ids = ["U00000012", "U00000001", "U00000100", "U00000002"]
    assert matching_user_ids(ids, "0001", limit=2) == ["U00000001", "U00000012"]
    assert matching_user_ids(ids, "  ") == []
