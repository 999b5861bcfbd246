"""Value grid (SPEC item 8) on hand-made orders, executed on DuckDB through Ibis."""

from __future__ import annotations

import datetime as dt
import functools
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import ibis
import pandas as pd
import pytest

from huaxiang.errors import ConfigError
from huaxiang.segment import VALUE_LAYER_STRATEGIES, value_grid_table, value_layers

AS_OF = dt.date(2026, 7, 1)
ORDER_SCHEMA = {"user_id": "string", "order_time": "timestamp", "amount": "decimal(18,2)",
                "is_after_sale": "boolean"}


def at(days_before: int, hour: int = 12) -> dt.datetime:
    return dt.datetime.combine(AS_OF - dt.timedelta(days=days_before), dt.time(hour))


@functools.cache
def duckdb() -> Any:
    return ibis.duckdb.connect()


def run(rows: list[tuple[str, dt.datetime, str, bool]], users: list[str] | None = None,
        **kwargs: Any) -> dict[str, dict[str, Any]]:
    ids = users if users is not None else sorted({r[0] for r in rows})
    orders = ibis.memtable(
        pd.DataFrame({
            "user_id": [r[0] for r in rows],
            "order_time": [r[1] for r in rows],
            "amount": [Decimal(r[2]) for r in rows],
            "is_after_sale": [r[3] for r in rows],
        }),
        schema=ORDER_SCHEMA,
    )
    table = value_grid_table(ibis.memtable({"user_id": ids}, schema={"user_id": "string"}), orders, AS_OF,
                             **kwargs)
    return {row["user_id"]: row for row in duckdb().to_pyarrow(table).to_pylist()}


def test_layers_are_twenty_one_and_ordered_spend_first() -> None:
    layers = value_layers()
    assert [v.layer for v in layers] == list(range(21))
    assert set(VALUE_LAYER_STRATEGIES) == set(range(21))
    assert layers[0].name == "L0 未购 never bought"
    assert layers[20].name == "L20 消费10000+·近30天 spend 10000+, ≤30d"
    assert layers[1].name == "L1 消费(0,1000]·150天以上 spend (0,1000], >150d"
    # Spend dominates, recency breaks ties within a spend bin.
    keys = [(v.spend_bin, -(v.recency_bin or 0)) for v in layers[1:]]
    assert keys == sorted(keys)
    assert "retention" in VALUE_LAYER_STRATEGIES[20]["en"]
    assert "win-back" in VALUE_LAYER_STRATEGIES[16]["en"]
    assert "activation" in VALUE_LAYER_STRATEGIES[0]["en"]


def test_bins_on_each_edge() -> None:
    rows = [
        ("s1000", at(10), "1000.00", False),      # exactly on 1000: spend bin 1
        ("s1000.01", at(10), "1000.01", False),   # just above: bin 2
        ("s3000", at(10), "3000.00", False),
        ("s10000", at(10), "10000.00", False),
        ("s10000.01", at(10), "10000.01", False),
        ("d30", at(30, 23), "5.00", False),       # exactly 30 days: recency bin 1
        ("d31", at(31, 0), "5.00", False),        # 31 days: bin 2
        ("d150", at(150), "5.00", False),
        ("d151", at(151), "5.00", False),
        ("d1", at(1, 23), "5.00", False),
    ]
    result = run(rows)
    spend = {u: (r["spend_bin"], r["historical_spend"]) for u, r in result.items()}
    assert spend["s1000"] == (1, Decimal("1000.00"))
    assert spend["s1000.01"][0] == 2
    assert spend["s3000"][0] == 2
    assert spend["s10000"][0] == 3
    assert spend["s10000.01"][0] == 4
    recency = {u: (r["days_since_last_order"], r["recency_bin"]) for u, r in result.items()}
    assert recency["d30"] == (30, 1)
    assert recency["d31"] == (31, 2)
    assert recency["d150"] == (150, 4)
    assert recency["d151"] == (151, 5)
    assert recency["d1"] == (1, 1)
    assert result["s10000.01"]["value_layer"] == 20 and result["d151"]["value_layer"] == 1
    assert result["s1000"]["value_layer"] == 5  # spend bin 1, 10 days ago
    assert result["s10000.01"]["value_layer_name"].startswith("L20 ")
    assert result["d151"]["value_layer_strategy"] == VALUE_LAYER_STRATEGIES[1]["zh"] + " " + \
        VALUE_LAYER_STRATEGIES[1]["en"]


def test_non_buyers_and_after_sale_only_are_layer_zero() -> None:
    rows = [
        ("refunds", at(5), "500.00", True),
        ("future", dt.datetime.combine(AS_OF, dt.time(0)), "500.00", False),  # on as_of: not counted
        ("buyer", at(5), "500.00", False),
        ("buyer", at(3), "9999.00", True),  # after-sale record adds nothing, not even recency
    ]
    result = run(rows, users=["nothing", "refunds", "future", "buyer"])
    for user in ("nothing", "refunds", "future"):
        row = result[user]
        assert row["value_layer"] == 0 and row["spend_bin"] == 0, user
        assert row["historical_spend"] == Decimal("0.00")
        assert row["recency_bin"] is None and row["days_since_last_order"] is None
        assert row["value_layer_name"] == "L0 未购 never bought"
    assert result["buyer"]["historical_spend"] == Decimal("500.00")
    assert result["buyer"]["days_since_last_order"] == 5


def test_history_is_not_windowed_and_layer_is_monotone() -> None:
    rows = [("old", at(900), "20000.00", False), ("old", at(400), "1.00", False)]
    spends = ["50.00", "2000.00", "5000.00", "20000.00"]
    days = [10, 45, 75, 120, 400]
    rows += [(f"u{s}_{d}", at(d), s, False) for s in spends for d in days]
    result = run(rows)
    assert result["old"]["historical_spend"] == Decimal("20001.00")
    assert result["old"]["days_since_last_order"] == 400 and result["old"]["value_layer"] == 16
    layers = {(s, d): result[f"u{s}_{d}"]["value_layer"] for s in spends for d in days}
    assert sorted(layers.values()) == list(range(1, 21))
    for (s, d), layer in layers.items():
        for (s2, d2), layer2 in layers.items():
            if Decimal(s2) >= Decimal(s) and d2 <= d:
                assert layer2 >= layer


def test_custom_edges_and_validation() -> None:
    rows = [("a", at(5), "80.00", False), ("b", at(20), "30.00", False)]
    result = run(rows, spend_edges=(50,), recency_edges=(7,))
    # Spend <= 50 is below the first edge: bin 0, layer 0 although the user bought.
    assert result["b"]["value_layer"] == 0 and result["b"]["days_since_last_order"] == 20
    assert result["a"]["value_layer"] == 2
    assert result["a"]["value_layer_name"] == "L2 消费50+·近7天 spend 50+, ≤7d"
    assert len(value_layers((50,), (7,))) == 3
    with pytest.raises(ConfigError, match="spend_edges"):
        value_layers((0, 3000, 1000), (30,))
    with pytest.raises(ConfigError, match="recency_edges"):
        value_layers((0,), (30.5,))  # type: ignore[arg-type]


def test_docs_example_runs() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "segments.md").read_text(encoding="utf-8")
    section = text.split("## Value grid", 1)[1]
    block = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert block is not None
    exec(compile(block.group(1), "docs/segments.md#value-grid", "exec"), {})
