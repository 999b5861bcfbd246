"""Sources that are tables behind an Ibis connection (a DuckDB file by default)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from huaxiang import Workspace
from huaxiang.errors import SourceError


def _workspace(tmp_path: Path, table: str = "shop_orders") -> Workspace:
    con = duckdb.connect(str(tmp_path / "shop.db"))
    con.execute(
        "CREATE TABLE shop_orders AS SELECT * FROM (VALUES "
        "('o1', 1001, TIMESTAMP '2024-05-01 10:00:00', 120.5::DOUBLE), "
        "('o2', 1002, TIMESTAMP '2024-05-02 11:00:00', -3::DOUBLE), "
        "('o3', 1001, TIMESTAMP '2024-06-18 20:00:00', 80::DOUBLE)) t(order_no, uid, paid_at, pay)"
    )
    con.close()
    (tmp_path / "huaxiang.yaml").write_text(
        f"""
name: db_shop
sources:
  orders:
    format: table
    connection: duckdb://shop.db
    table: {table}
    into: orders
    columns: {{order_id: order_no, user_id: uid, order_time: paid_at, amount: pay}}
    derive: {{users: {{}}}}
""",
        encoding="utf-8",
    )
    return Workspace(tmp_path)


def test_duckdb_table_source_is_ingested_with_row_numbers(tmp_path: Path) -> None:
    report = _workspace(tmp_path).ingest()

    source = report.sources["orders"]
    assert (source.rows_read, source.rows_loaded, source.rows_rejected) == (3, 2, 1)
    orders = pq.read_table(tmp_path / "data" / "orders.parquet").to_pylist()
    assert [o["order_id"] for o in orders] == ["o1", "o3"]
    assert orders[0]["user_id"] == "1001"
    assert str(orders[0]["amount"]) == "120.50"
    rejects = pq.read_table(tmp_path / "data" / "rejects" / "orders.parquet").to_pylist()
    assert [(r["row"], r["reason"], r["column"]) for r in rejects] == [
        (2, "non_positive_amount", "amount")
    ]
    users = pq.read_table(tmp_path / "data" / "users.parquet").column("user_id").to_pylist()
    assert users == ["1001", "1002"]


def test_missing_table_names_the_table_and_connection(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path, table="no_such_table")

    with pytest.raises(SourceError) as caught:
        workspace.ingest()

    message = str(caught.value)
    assert message.startswith("Source 'orders': cannot read table 'no_such_table' from duckdb://")
    assert str(tmp_path / "shop.db") in message
    assert not (tmp_path / "data").exists()
