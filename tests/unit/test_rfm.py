"""RFM on small hand-computed fixtures, executed on DuckDB through Ibis."""

from __future__ import annotations

import datetime as dt
import functools
import random
from decimal import Decimal
from typing import Any

import ibis
import pandas as pd
import pytest

from huaxiang.errors import ConfigError
from huaxiang.segment.rfm import (
    PLAYBOOK_CORE_RECALL,
    PLAYBOOK_DAILY_LOYALTY,
    PLAYBOOK_IGNORE,
    PLAYBOOK_RAISE_FREQUENCY,
    PLAYBOOK_RECALL,
    PLAYBOOK_UPSELL_CATEGORY,
    RFM_CLASSES,
    rfm_table,
)

AS_OF = dt.date(2026, 7, 1)
ORDER_SCHEMA = {"user_id": "string", "order_time": "timestamp", "amount": "decimal(18,2)",
                "is_after_sale": "boolean"}


def at(days_before: int, hour: int = 12, minute: int = 0, second: int = 0) -> dt.datetime:
    """A time on the day ``days_before`` days before AS_OF."""
    return dt.datetime.combine(AS_OF - dt.timedelta(days=days_before), dt.time(hour, minute, second))


def orders_table(rows: list[tuple[str, dt.datetime, str, bool]]) -> ibis.Table:
    return ibis.memtable(
        pd.DataFrame(
            {
                "user_id": [r[0] for r in rows],
                "order_time": [r[1] for r in rows],
                "amount": [Decimal(r[2]) for r in rows],
                "is_after_sale": [r[3] for r in rows],
            }
        ),
        schema=ORDER_SCHEMA,
    )


def users_table(ids: list[str]) -> ibis.Table:
    return ibis.memtable({"user_id": ids}, schema={"user_id": "string"})


@functools.cache
def duckdb() -> Any:
    return ibis.duckdb.connect()


def run(users: list[str], rows: list[tuple[str, dt.datetime, str, bool]], **kwargs: Any) -> dict[str, dict]:
    table = rfm_table(users_table(users), orders_table(rows), AS_OF, **kwargs)
    frame = duckdb().to_pyarrow(table).to_pylist()
    return {row["user_id"]: row for row in frame}


def test_users_without_valid_orders_get_nulls_and_zeros() -> None:
    rows = [
        ("buyer", at(10), "50.00", False),
        ("refunded", at(5), "80.00", True),
        ("refunded", at(3), "20.00", True),
    ]
    result = run(["buyer", "nothing", "refunded"], rows)
    assert set(result) == {"buyer", "nothing", "refunded"}
    for user in ("nothing", "refunded"):
        row = result[user]
        assert row["frequency_365d"] == 0
        assert row["monetary_365d"] == Decimal("0.00")
        for column in ("recency_days", "aov_365d", "rfm_r_score", "rfm_f_score", "rfm_m_score",
                       "rfm_score", "rfm_class", "rfm_cell", "rfm_playbook"):
            assert row[column] is None, (user, column)
    buyer = result["buyer"]
    assert buyer["recency_days"] == 10
    assert (buyer["frequency_365d"], buyer["monetary_365d"]) == (1, Decimal("50.00"))
    assert buyer["rfm_class"] == "重要价值客户"  # alone, it is at the mean of everything


def test_window_edges_start_day_inclusive_as_of_day_excluded() -> None:
    rows = [
        ("edge", at(365, 0, 0, 0), "10.00", False),  # first instant of the window
        ("edge_late", at(365, 23, 59, 59), "10.00", False),
        ("outside", at(366, 23, 59, 59), "10.00", False),  # one day too old
        ("today", dt.datetime.combine(AS_OF, dt.time.min), "10.00", False),  # as-of day: future
        ("yesterday", at(1, 23, 59, 59), "10.00", False),
    ]
    result = run(["edge", "edge_late", "outside", "today", "yesterday"], rows)
    assert result["edge"]["recency_days"] == 365
    assert result["edge"]["frequency_365d"] == 1
    assert result["edge_late"]["recency_days"] == 365
    assert result["outside"]["frequency_365d"] == 0
    assert result["outside"]["recency_days"] is None
    assert result["today"]["frequency_365d"] == 0
    assert result["yesterday"]["recency_days"] == 1


def test_metrics_money_is_decimal_and_excludes_after_sale() -> None:
    rows = [
        ("u", at(100), "10.10", False),
        ("u", at(40), "20.20", False),
        ("u", at(20), "999.99", True),  # after-sale: ignored, also for recency
        ("u", at(400), "50.00", False),  # outside the window
    ]
    row = run(["u"], rows)["u"]
    assert row["recency_days"] == 40
    assert row["frequency_365d"] == 2
    assert row["monetary_365d"] == Decimal("30.30")
    assert row["aov_365d"] == Decimal("15.15")


def test_window_days_changes_window_and_column_names() -> None:
    rows = [("u", at(100), "10.00", False), ("u", at(20), "5.00", False)]
    row = run(["u"], rows, window_days=30)["u"]
    assert row["frequency_30d"] == 1
    assert row["monetary_30d"] == Decimal("5.00")
    assert row["recency_days"] == 20


def test_quantile_ties_are_broken_by_user_id() -> None:
    ids = [f"u{i}" for i in range(10)]
    rows = [(user, at(7), "10.00", False) for user in ids]  # everyone identical
    expected = {user: i // 2 + 1 for i, user in enumerate(ids)}
    first = run(ids, rows)
    shuffled = rows[:]
    random.Random(3).shuffle(shuffled)
    second = run(list(reversed(ids)), shuffled)
    for result in (first, second):
        for user in ids:
            row = result[user]
            assert row["rfm_r_score"] == row["rfm_f_score"] == row["rfm_m_score"] == expected[user]
            assert row["rfm_score"] == 3 * expected[user]
            s = expected[user]
            assert row["rfm_cell"] == f"R{s}F{s}M{s}"


def test_quintiles_order_high_is_better() -> None:
    ids = [f"u{i}" for i in range(5)]
    # u0: oldest, fewest, smallest ... u4: most recent, most frequent, largest.
    rows = []
    for i, user in enumerate(ids):
        for k in range(i + 1):
            rows.append((user, at(300 - 50 * i + k), f"{10 * (i + 1)}.00", False))
    result = run(ids, rows)
    for i, user in enumerate(ids):
        row = result[user]
        assert (row["rfm_r_score"], row["rfm_f_score"], row["rfm_m_score"]) == (i + 1, i + 1, i + 1)


OrderRow = tuple[str, dt.datetime, str, bool]


def _user_orders(user: str, recency: int, frequency: int, monetary: str) -> list[OrderRow]:
    """``frequency`` orders adding to ``monetary``; the last one ``recency`` days ago."""
    total = Decimal(monetary)
    share = (total / frequency).quantize(Decimal("0.01"))
    amounts = [share] * (frequency - 1) + [total - share * (frequency - 1)]
    return [(user, at(recency + 30 * k), str(amount), False) for k, amount in enumerate(amounts)]


def test_each_of_the_eight_classes_is_reached() -> None:
    # Means: recency (10 and 100) 55, frequency (1 and 3) 2, monetary (10 and 1000) 505.
    rows = []
    expected = {}
    for (m_high, r_high, f_high), label in RFM_CLASSES.items():
        user = f"{'M' if m_high else 'm'}{'R' if r_high else 'r'}{'F' if f_high else 'f'}"
        monetary = "1000.00" if m_high else "10.00"
        rows += _user_orders(user, 10 if r_high else 100, 3 if f_high else 1, monetary)
        expected[user] = label
    result = run(sorted(expected), rows)
    assert {user: result[user]["rfm_class"] for user in expected} == expected
    assert len(set(expected.values())) == 8


def test_class_at_exactly_the_mean_is_high() -> None:
    rows = _user_orders("a", 20, 2, "33.33") + _user_orders("b", 20, 2, "33.33")
    result = run(["a", "b"], rows)
    assert result["a"]["rfm_class"] == result["b"]["rfm_class"] == "重要价值客户"
    # One cent below the mean makes M low for that user only.
    rows = _user_orders("a", 20, 2, "33.33") + _user_orders("b", 20, 2, "33.34")
    result = run(["a", "b"], rows)
    assert result["a"]["rfm_class"] == "一般价值客户"
    assert result["b"]["rfm_class"] == "重要价值客户"


EDGES = {"r": [10, 20, 30, 40], "f": [1, 2, 3, 4], "m": [100, 200, 300, 400]}
RECENCY_FOR_SCORE = {5: 5, 4: 15, 3: 25, 2: 35, 1: 45}
MONETARY_FOR_SCORE = {1: "50.00", 2: "150.00", 3: "250.00", 4: "350.00", 5: "450.00"}


def test_custom_edges_are_right_closed() -> None:
    rows = _user_orders("at_edges", 10, 1, "100.00") + _user_orders("above", 41, 5, "400.01")
    result = run(["at_edges", "above"], rows, edges=EDGES)
    assert result["at_edges"]["rfm_cell"] == "R5F1M1"
    assert result["above"]["rfm_cell"] == "R1F5M5"


@pytest.mark.parametrize(
    ("r", "f", "m", "expected"),
    [
        (5, 5, 5, PLAYBOOK_DAILY_LOYALTY),
        (4, 4, 4, PLAYBOOK_DAILY_LOYALTY),
        (4, 3, 5, PLAYBOOK_RAISE_FREQUENCY),
        (3, 4, 5, PLAYBOOK_CORE_RECALL),
        (1, 5, 4, PLAYBOOK_CORE_RECALL),
        (5, 4, 3, PLAYBOOK_UPSELL_CATEGORY),
        (4, 3, 3, PLAYBOOK_RAISE_FREQUENCY),
        (2, 1, 5, PLAYBOOK_RECALL),  # rest, order value 450 above the shop's average
        (5, 5, 1, PLAYBOOK_IGNORE),  # rest, order value 10 below it
        (3, 3, 5, PLAYBOOK_RECALL),  # high M but mid R and F: the rest, by order value
    ],
)
def test_playbook(r: int, f: int, m: int, expected: str) -> None:
    # A reference user fixes the shop's average order value at about 100.
    rows = _user_orders("user", RECENCY_FOR_SCORE[r], f, MONETARY_FOR_SCORE[m])
    rows += _user_orders("reference", 5, 5, "500.00")
    row = run(["user", "reference"], rows, edges=EDGES)["user"]
    assert (row["rfm_r_score"], row["rfm_f_score"], row["rfm_m_score"]) == (r, f, m)
    assert row["rfm_playbook"] == expected


@pytest.mark.parametrize(
    ("edges", "message"),
    [
        ({"x": [1, 2, 3, 4]}, "unknown key 'x'"),
        ({"f": [1, 2, 3]}, "expected 4 cut points"),
        ({"m": [1, 2, 2, 3]}, "strictly increasing"),
    ],
)
def test_bad_edges_are_rejected(edges: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        rfm_table(users_table(["u"]), orders_table([]), AS_OF, edges=edges)


def test_bad_window_is_rejected() -> None:
    with pytest.raises(ConfigError, match="window_days must be at least 1"):
        rfm_table(users_table(["u"]), orders_table([]), AS_OF, window_days=0)
