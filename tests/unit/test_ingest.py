"""Ingestion on small files written by each test: every row is loaded or rejected with its reason.

Each test writes CSV / Parquet sources and a ``huaxiang.yaml`` into ``tmp_path``,
runs :func:`huaxiang.io.ingest.ingest` with a fixed ``now`` and reads back the
published tables and ``data/rejects/<source>.parquet``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from huaxiang.config import CONFIG_FILE, load_config
from huaxiang.errors import ConfigError, SourceError, SourceNotFoundError, StrictIngestError
from huaxiang.io.ingest import REPORT_FILE, IngestReport, ingest
from huaxiang.storage import VERSIONS
from huaxiang.workspace import Workspace

NOW = datetime(2024, 6, 1, 12, 0)
REJECT_COLUMNS = ["source", "row", "column", "reason", "detail", "raw"]


# --------------------------------------------------------------------------- helpers


def make_workspace(
    root: Path,
    sources: dict[str, Any],
    files: Mapping[str, str | bytes | pa.Table] | None = None,
    timezone: str = "Asia/Shanghai",
) -> Path:
    """Write source files and a huaxiang.yaml declaring ``sources``; return the folder."""
    root.mkdir(parents=True, exist_ok=True)
    for name, content in (files or {}).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, pa.Table):
            pq.write_table(content, path)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content).lstrip("\n"), encoding="utf-8")
    config = {"version": 1, "name": "test_shop", "timezone": timezone, "sources": sources}
    (root / CONFIG_FILE).write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), "utf-8")
    return root


def run(root: Path, **options: Any) -> IngestReport:
    options.setdefault("now", NOW)
    return ingest(root, load_config(root), **options)


def rows(root: Path, table: str, *columns: str) -> list[dict[str, Any]]:
    data = pq.read_table(root / "data" / f"{table}.parquet")
    return data.select(list(columns)).to_pylist() if columns else data.to_pylist()


def rejects(root: Path, source: str) -> list[dict[str, Any]]:
    return pq.read_table(root / "data" / "rejects" / f"{source}.parquet").to_pylist()


def brief(found: list[dict[str, Any]]) -> list[tuple[int, str | None, str, str]]:
    """(row, column, reason, detail) of each reject."""
    return [(r["row"], r["column"], r["reason"], r["detail"]) for r in found]


def assert_balanced(report: IngestReport) -> None:
    for name, source in report.sources.items():
        assert source.rows_read == source.rows_loaded + source.rows_rejected, name
        assert sum(source.rejected_by_reason.values()) == source.rows_rejected, name


def snapshot(root: Path) -> dict[str, pa.Table]:
    """Every Parquet file of the published data, by path relative to data/."""
    data = root / "data"
    return {str(p.relative_to(data)): pq.read_table(p) for p in sorted(data.rglob("*.parquet"))}


# --------------------------------------------------------------------------- reject reasons

USERS_CSV = """
uid,sex,age,tier,reg,channel
u1,0,30,1,2020-01-05 10:00:00,web
u2,9,30,1,2020-01-05 10:00:00,web
u3,1,abc,1,2020-01-05 10:00:00,web
u4,1,300,1,2020-01-05 10:00:00,web
u5,1,30,7,2020-01-05 10:00:00,web
,1,30,1,2020-01-05 10:00:00,web
u7,1,30,1,1999-12-31 23:00:00,web
u8,1,30,1,2030-01-01 00:00:00,web
u9,1,30,1,2020-01-05 10:00:00,test
u1,0,30,1,2020-01-05 10:00:00,web
u10,1,30,1,2020-01-05 10:00:00,web,extra
u11,2,-1,1,2020-01-05 10:00:00,web
,1,abc,7,1999-01-01 00:00:00,web
u13,9,abc,9,2020-01-05 10:00:00,web
u14,,,,2020-01-05 10:00:00,
"""
USERS_SOURCE = {
    "path": "users.csv",
    "into": "users",
    "columns": {
        "user_id": "uid",
        "gender": "sex",
        "age": "age",
        "city_tier": "tier",
        "register_time": "reg",
        "acquisition_channel": "channel",
    },
    "values": {"gender": {"0": "male", "1": "female", "2": "unknown"}},
    "reject_if": [{"column": "channel", "in": ["test"], "reason": "test_account"}],
}


def test_every_row_level_reason_with_row_column_detail_and_raw(tmp_path: Path) -> None:
    root = make_workspace(tmp_path, {"users": USERS_SOURCE}, {"users.csv": USERS_CSV})
    report = run(root)
    found = rejects(root, "users")
    assert brief(found) == [
        (2, "gender", "unknown_value",
         "unknown value '9' for gender (source column 'sex'); allowed: male, female, unknown. "
         "Map it under values.gender."),
        (3, "age", "bad_type", "cannot read 'abc' as int for age (source column 'age')"),
        (4, "age", "out_of_range", "age = 300 is outside 0..120"),
        (5, "city_tier", "out_of_range", "city_tier = 7 is outside 1..6"),
        (6, "user_id", "null_required", "user_id (source column 'uid') is empty"),
        (7, "register_time", "time_before_2000", "register_time 1999-12-31 23:00:00 is before 2000-01-01"),
        (8, "register_time", "time_in_future",
         "register_time 2030-01-01 00:00:00 is after the ingest time 2024-06-01 12:00"),
        (9, "channel", "test_account", "channel matches reject_if rule in ['test']"),
        (10, None, "duplicate_row", "exact copy of an earlier row of this source"),
        (11, None, "malformed_row", "too many columns: Expected Number of Columns: 6 Found: 7"),
        (12, "age", "out_of_range", "age = -1 is outside 0..120"),
        # A row failing several checks gets the first reason in the documented order.
        (13, "user_id", "null_required", "user_id (source column 'uid') is empty"),
        (14, "age", "bad_type", "cannot read 'abc' as int for age (source column 'age')"),
    ]
    assert [r["source"] for r in found] == ["users"] * len(found)
    assert json.loads(found[1]["raw"]) == {
        "uid": "u3", "sex": "1", "age": "abc", "tier": "1", "reg": "2020-01-05 10:00:00", "channel": "web",
    }
    assert json.loads(found[4]["raw"])["uid"] is None
    # A malformed record's fields cannot be matched to column names: its raw is a JSON array.
    assert json.loads(found[9]["raw"]) == ["u10", "1", "30", "1", "2020-01-05 10:00:00", "web", "extra"]
    for reject in found[:9] + found[10:]:
        assert list(json.loads(reject["raw"])) == ["uid", "sex", "age", "tier", "reg", "channel"]

    source = report.sources["users"]
    assert (source.rows_read, source.rows_loaded, source.rows_rejected) == (15, 2, 13)
    assert source.rejected_by_reason == {
        "bad_type": 2, "duplicate_row": 1, "malformed_row": 1, "null_required": 2, "out_of_range": 3,
        "test_account": 1, "time_before_2000": 1, "time_in_future": 1, "unknown_value": 1,
    }
    assert_balanced(report)
    assert rows(root, "users", "user_id", "gender", "age", "city_tier", "acquisition_channel") == [
        {"user_id": "u1", "gender": "male", "age": 30, "city_tier": 1, "acquisition_channel": "web"},
        {"user_id": "u14", "gender": None, "age": None, "city_tier": None, "acquisition_channel": None},
    ]
    schema = pq.read_schema(root / "data" / "rejects" / "users.parquet")
    assert schema.names == REJECT_COLUMNS
    assert [str(t) for t in schema.types] == ["string", "int64", "string", "string", "string", "string"]
    published = json.loads((root / "data" / REPORT_FILE).read_text(encoding="utf-8"))
    assert published["sources"]["users"]["rows_rejected"] == 13
    assert published["published"] is True
    assert published["ingested_at"] == "2024-06-01T12:00:00"


def test_reject_if_tests_prefix_regex_and_is_null(tmp_path: Path) -> None:
    root = make_workspace(
        tmp_path,
        {
            "users": {
                "path": "users.csv",
                "into": "users",
                "columns": {"user_id": "uid"},
                "reject_if": [
                    {"column": "uid", "prefix": "TEST", "reason": "test_account"},
                    {"column": "email", "regex": "@example\\.com$", "reason": "internal"},
                    {"column": "email", "is_null": True, "reason": "no_email"},
                ],
            }
        },
        {"users.csv": "uid,email\nTEST1,a@b.cn\nu2,x@example.com\nu3,\nu4,  \nu5,c@d.cn\n"},
    )
    report = run(root)
    assert brief(rejects(root, "users")) == [
        (1, "uid", "test_account", "uid matches reject_if rule prefix 'TEST'"),
        (2, "email", "internal", "email matches reject_if rule regex '@example\\\\.com$'"),
        (3, "email", "no_email", "email matches reject_if rule is null"),
        (4, "email", "no_email", "email matches reject_if rule is null"),
    ]
    assert rows(root, "users", "user_id") == [{"user_id": "u5"}]
    assert_balanced(report)


def test_non_positive_amount_price_quantity_and_after_sale_signs(tmp_path: Path) -> None:
    orders = """
    oid,uid,t,amt,kind
    o1,u1,2024-01-01 10:00:00,10.50,sale
    o2,u1,2024-01-02 10:00:00,0,sale
    o3,u1,2024-01-03 10:00:00,-4.00,sale
    o4,u1,2024-01-04 10:00:00,-3.25,refund
    o5,u1,2024-01-05 10:00:00,0,refund
    """
    items = """
    oid,sku,qty,price
    o1,p1,1,10.50
    o1,p2,0,1.00
    o1,p3,2,0
    o1,p4,-1,-2.00
    o1,p5,2,1.00
    """
    root = make_workspace(
        tmp_path,
        {
            "orders": {
                "path": "orders.csv",
                "into": "orders",
                "columns": {"order_id": "oid", "user_id": "uid", "order_time": "t", "amount": "amt"},
                "after_sale_if": {"column": "kind", "in": ["refund"]},
            },
            "items": {
                "path": "items.csv",
                "into": "order_items",
                "columns": {"order_id": "oid", "product_id": "sku", "quantity": "qty", "unit_price": "price"},
            },
        },
        {"orders.csv": orders, "items.csv": items},
    )
    report = run(root)
    assert brief(rejects(root, "orders")) == [
        (2, "amount", "non_positive_amount",
         "amount 0.00 is not positive (and the order is not an after-sale record)"),
        (3, "amount", "non_positive_amount",
         "amount -4.00 is not positive (and the order is not an after-sale record)"),
        (5, "amount", "non_positive_amount",
         "amount 0.00 is not positive (and the order is not an after-sale record)"),
    ]
    assert brief(rejects(root, "items")) == [
        (2, "quantity", "non_positive_quantity",
         "quantity 0 is not positive (and the order is not an after-sale record)"),
        (3, "unit_price", "non_positive_price", "unit_price 0.00 is not positive"),
        # Price is checked before quantity.
        (4, "unit_price", "non_positive_price", "unit_price -2.00 is not positive"),
    ]
    # A refund written with a negative sign is stored positive, flagged as after-sale.
    assert rows(root, "orders", "order_id", "amount", "is_after_sale") == [
        {"order_id": "o1", "amount": Decimal("10.50"), "is_after_sale": False},
        {"order_id": "o4", "amount": Decimal("3.25"), "is_after_sale": True},
    ]
    assert_balanced(report)


def test_outside_time_range(tmp_path: Path) -> None:
    events = """
    user_id,type,ts
    1,view,2017-11-24 23:59:59
    1,view,2017-11-25 00:00:00
    1,cart,2017-12-03 23:59:59
    1,cart,2017-12-04 00:00:00
    """
    root = make_workspace(
        tmp_path,
        {
            "events": {
                "path": "events.csv",
                "into": "events",
                "columns": {"event_type": "type", "event_time": "ts"},
                "time_range": {"start": "2017-11-25", "end": "2017-12-04"},
            }
        },
        {"events.csv": events},
    )
    report = run(root)
    assert brief(rejects(root, "events")) == [
        (1, "event_time", "outside_time_range",
         "event_time 2017-11-24 23:59:59 is outside the source's time_range [2017-11-25, 2017-12-04)"),
        (4, "event_time", "outside_time_range",
         "event_time 2017-12-04 00:00:00 is outside the source's time_range [2017-11-25, 2017-12-04)"),
    ]
    assert rows(root, "events", "event_time") == [
        {"event_time": datetime(2017, 11, 25)}, {"event_time": datetime(2017, 12, 3, 23, 59, 59)},
    ]
    assert_balanced(report)


def test_time_in_future_uses_the_given_now(tmp_path: Path) -> None:
    events = "user_id,type,ts\n1,view,2024-06-01 12:00:00\n1,view,2024-06-01 12:00:01\n"
    columns = {"event_type": "type", "event_time": "ts"}
    sources = {"events": {"path": "e.csv", "into": "events", "columns": columns}}
    root = make_workspace(tmp_path, sources, {"e.csv": events})
    run(root)
    assert brief(rejects(root, "events")) == [
        (2, "event_time", "time_in_future",
         "event_time 2024-06-01 12:00:01 is after the ingest time 2024-06-01 12:00"),
    ]
    run(root, now=datetime(2024, 6, 2))
    assert rejects(root, "events") == []


def test_duplicate_key_within_and_across_sources(tmp_path: Path) -> None:
    root = make_workspace(
        tmp_path,
        {
            "crm": {"path": "crm.csv", "into": "users", "columns": {"user_id": "uid"}},
            "shop": {"path": "shop.csv", "into": "users", "columns": {"user_id": "customer"}},
        },
        {"crm.csv": "uid,city\nu1,北京\nu2,上海\n",
         "shop.csv": "customer,city\nu2,广州\nu3,深圳\nu3,杭州\nu4,深圳\n"},
    )
    report = run(root)
    found = rejects(root, "shop")
    assert brief(found) == [
        (1, "user_id", "duplicate_key",
         "user_id 'u2' was already loaded (first from source 'crm'); the first row is kept"),
        (3, "user_id", "duplicate_key",
         "user_id 'u3' was already loaded (first from source 'shop'); the first row is kept"),
    ]
    assert [json.loads(r["raw"]) for r in found] == [
        {"customer": "u2", "city": "广州"}, {"customer": "u3", "city": "杭州"},
    ]
    assert rejects(root, "crm") == []
    assert rows(root, "users", "user_id", "city") == [
        {"user_id": "u1", "city": "北京"}, {"user_id": "u2", "city": "上海"},
        {"user_id": "u3", "city": "深圳"}, {"user_id": "u4", "city": "深圳"},
    ]
    assert (report.sources["shop"].rows_loaded, report.sources["shop"].rows_rejected) == (2, 2)
    assert report.tables["users"].from_sources == ["crm", "shop"]
    assert_balanced(report)


def test_duplicate_order_across_two_order_lines_sources(tmp_path: Path) -> None:
    lines = {"order_id": "inv", "product_id": "sku", "quantity": "q", "unit_price": "p",
             "order_time": "t", "user_id": "c"}
    root = make_workspace(
        tmp_path,
        {
            "lines_2021": {"path": "a.csv", "into": "order_lines", "columns": lines},
            "lines_2022": {"path": "b.csv", "into": "order_lines", "columns": lines},
        },
        {
            "a.csv": "inv,sku,q,p,t,c\nX1,P1,1,2.00,2021-12-31 10:00:00,u1\n"
                     "X1,P2,1,3.00,2021-12-31 10:00:00,u1\n",
            "b.csv": "inv,sku,q,p,t,c\nX1,P3,1,2.00,2022-01-01 10:00:00,u2\n"
                     "X2,P1,1,3.00,2022-01-01 10:00:00,u2\nX1,P4,5,1.00,2022-01-01 10:00:00,u2\n",
        },
    )
    report = run(root)
    found = rejects(root, "lines_2022")
    detail = ("order_id 'X1' was already loaded (first from source 'lines_2021'); "
              "the first source's order is kept")
    assert brief(found) == [
        (1, "order_id", "duplicate_key", detail), (3, "order_id", "duplicate_key", detail),
    ]
    assert json.loads(found[1]["raw"]) == {
        "inv": "X1", "sku": "P4", "q": "5", "p": "1.00", "t": "2022-01-01 10:00:00", "c": "u2",
    }
    assert rows(root, "orders", "order_id", "user_id", "amount") == [
        {"order_id": "X1", "user_id": "u1", "amount": Decimal("5.00")},
        {"order_id": "X2", "user_id": "u2", "amount": Decimal("3.00")},
    ]
    assert rows(root, "order_items", "order_id", "line_no", "product_id") == [
        {"order_id": "X1", "line_no": 1, "product_id": "P1"},
        {"order_id": "X1", "line_no": 2, "product_id": "P2"},
        {"order_id": "X2", "line_no": 1, "product_id": "P1"},
    ]
    assert (report.sources["lines_2022"].rows_loaded, report.sources["lines_2022"].rows_rejected) == (1, 2)
    assert_balanced(report)


# --------------------------------------------------------------------------- malformed inputs


def test_wrong_delimiter_says_the_file_looks_semicolon_delimited(tmp_path: Path) -> None:
    files = {"users.csv": "uid;sex;age\nu1;0;30\nu2;1;40\n"}
    root = make_workspace(tmp_path, {"users": {"path": "users.csv", "into": "users",
                                               "columns": {"user_id": "uid"}}}, files)
    with pytest.raises(SourceError) as caught:
        run(root)
    assert str(caught.value) == (
        f"Source 'users' ({root / 'users.csv'}) has no column 'uid' (mapped to user_id). Columns found: "
        "uid;sex;age. The file looks semicolon-delimited: set 'sources.users.csv.delimiter: \";\"'."
    )
    # Same-named columns (no mapping): the required-column message gives the same hint.
    files = {"users.csv": "user_id\tage\nu1\t30\n"}
    root = make_workspace(tmp_path / "tab", {"users": {"path": "users.csv", "into": "users"}}, files)
    with pytest.raises(SourceError) as caught:
        run(root)
    assert str(caught.value) == (
        f"Source 'users' ({root / 'users.csv'}) has no column for required 'user_id' of users. "
        "Columns found: user_id\tage. Map one under 'sources.users.columns.user_id'. "
        "The file looks tab-delimited: set 'sources.users.csv.delimiter: \"\\t\"'."
    )
    # Following the hint works.
    source = {"path": "users.csv", "into": "users", "csv": {"delimiter": "\t"}}
    make_workspace(root, {"users": source})
    assert run(root).sources["users"].rows_loaded == 1


def test_missing_mapped_column_suggests_the_closest(tmp_path: Path) -> None:
    root = make_workspace(
        tmp_path,
        {"users": {"path": "users.csv", "into": "users", "columns": {"user_id": "customer_ld"}}},
        {"users.csv": "customer_id,country\nc1,UK\n"},
    )
    with pytest.raises(SourceError) as caught:
        run(root)
    assert str(caught.value) == (
        f"Source 'users' ({root / 'users.csv'}) has no column 'customer_ld' (mapped to user_id). "
        "Columns found: customer_id, country. Did you mean 'customer_id'?"
    )


def test_missing_column_of_a_rule_or_a_derivation(tmp_path: Path) -> None:
    root = make_workspace(
        tmp_path,
        {"events": {"path": "e.csv", "into": "events", "columns": {"event_type": "type", "event_time": "ts"},
                    "derive": {"products": {"category_l1": "categroy"}}}},
        {"e.csv": "user_id,type,ts,category\n1,view,2020-01-01 00:00:00,c\n"},
    )
    with pytest.raises(SourceError) as caught:
        run(root)
    assert str(caught.value) == (
        f"Source 'events' ({root / 'e.csv'}) has no column 'categroy' (mapped to products.category_l1). "
        "Columns found: user_id, type, ts, category. Did you mean 'category'?"
    )


def test_required_canonical_column_not_mapped(tmp_path: Path) -> None:
    root = make_workspace(
        tmp_path,
        {"orders": {"path": "orders.csv", "into": "orders",
                    "columns": {"order_id": "oid", "user_id": "uid", "amount": "amt"}}},
        {"orders.csv": "oid,uid,amt,order_tm\no1,u1,3.5,2020-01-01 00:00:00\n"},
    )
    with pytest.raises(SourceError) as caught:
        run(root)
    assert str(caught.value) == (
        f"Source 'orders' ({root / 'orders.csv'}) has no column for required 'order_time' of orders. "
        "Columns found: oid, uid, amt, order_tm. Map one under 'sources.orders.columns.order_time'. "
        "Did you mean 'order_tm'?"
    )


def test_text_in_an_amount_is_a_bad_type_reject(tmp_path: Path) -> None:
    root = make_workspace(
        tmp_path,
        {"orders": {"path": "orders.csv", "into": "orders",
                    "columns": {"order_id": "oid", "user_id": "uid", "order_time": "t", "amount": "amt"}}},
        {"orders.csv": "oid,uid,t,amt\no1,u1,2020-01-01 00:00:00,12.30\no2,u1,2020-01-01 00:00:00,twelve\n"},
    )
    report = run(root)
    found = rejects(root, "orders")
    assert brief(found) == [
        (2, "amount", "bad_type", "cannot read 'twelve' as decimal(18,2) for amount (source column 'amt')"),
    ]
    assert json.loads(found[0]["raw"]) == {
        "oid": "o2", "uid": "u1", "t": "2020-01-01 00:00:00", "amt": "twelve",
    }
    assert report.sources["orders"].rows_loaded == 1
    assert_balanced(report)


def test_gbk_bytes_declared_utf8_name_file_line_byte_and_the_fix(tmp_path: Path) -> None:
    data = "uid,city\nu1,Beijing\nu2,北京\n".encode("gbk")
    root = make_workspace(
        tmp_path,
        {"users": {"path": "users.csv", "into": "users", "columns": {"user_id": "uid"}}},
        {"users.csv": data},
    )
    with pytest.raises(SourceError) as caught:
        run(root)
    assert str(caught.value) == (
        "Source 'users': users.csv line 3 (byte 23) is not valid utf-8: b'\\xb1\\xb1\\xbe\\xa9'. "
        "Chinese exports are often GBK: set 'sources.users.csv.encoding: gbk' (or gb18030)."
    )


def test_gbk_file_declared_gbk_keeps_chinese_text(tmp_path: Path) -> None:
    data = "用户,城市,年龄段\nu1,北京,26-35岁\nu2,上海,56岁以上\n".encode("gbk")
    root = make_workspace(
        tmp_path,
        {"users": {"path": "users.csv", "into": "users", "csv": {"encoding": "gbk"},
                   "columns": {"user_id": "用户", "city": "城市", "age_band": "年龄段"},
                   "values": {"age_band": {"26-35岁": "26-35", "56岁以上": "56+"}}}},
        {"users.csv": data},
    )
    report = run(root)
    assert rows(root, "users", "user_id", "city", "age_band") == [
        {"user_id": "u1", "city": "北京", "age_band": "26-35"},
        {"user_id": "u2", "city": "上海", "age_band": "56+"},
    ]
    assert report.sources["users"].rows_rejected == 0


def test_missing_and_empty_files(tmp_path: Path) -> None:
    root = make_workspace(tmp_path, {"users": {"path": "raw/users.csv", "into": "users"}}, {"empty.csv": ""})
    with pytest.raises(SourceNotFoundError) as caught:
        run(root)
    assert str(caught.value) == (
        f"Source 'users': file raw/users.csv not found (looked at {root / 'raw' / 'users.csv'}). "
        "Fix 'sources.users.path' in huaxiang.yaml."
    )
    assert isinstance(caught.value, FileNotFoundError)
    make_workspace(root, {"users": {"path": "empty.csv", "into": "users"}})
    with pytest.raises(SourceError) as empty:
        run(root)
    assert str(empty.value) == f"Source 'users': {root / 'empty.csv'} is empty (not even a header)."


def test_no_sources(tmp_path: Path) -> None:
    root = make_workspace(tmp_path, {})
    with pytest.raises(SourceError) as caught:
        run(root)
    assert str(caught.value) == (
        "No sources are configured: add them under 'sources:' in huaxiang.yaml (see docs/workspace.md), "
        "or run 'huaxiang sample' for a sample shop."
    )


def test_row_numbers_are_records_even_with_multiline_fields_and_malformed_rows(tmp_path: Path) -> None:
    users = 'uid,age,city\nu1,30,A\nu2,31,"multi\nline"\nu3,32\nu4,abc,B\nu5,33,C,extra\nu6,xyz,D\n'
    root = make_workspace(
        tmp_path,
        {"users": {"path": "u.csv", "into": "users", "columns": {"user_id": "uid"}}},
        {"u.csv": users},
    )
    report = run(root)
    found = rejects(root, "users")
    malformed = [(r["row"], json.loads(r["raw"])) for r in found if r["reason"] == "malformed_row"]
    assert malformed == [(3, ["u3", "32"]), (5, ["u5", "33", "C", "extra"])]
    assert [(r["row"], r["reason"]) for r in found] == [
        (3, "malformed_row"), (4, "bad_type"), (5, "malformed_row"), (6, "bad_type"),
    ]
    assert rows(root, "users", "user_id", "city") == [
        {"user_id": "u1", "city": "A"}, {"user_id": "u2", "city": "multi\nline"},
    ]
    assert_balanced(report)


# --------------------------------------------------------------------------- values and types


def test_value_mapping_jdata_codes_and_null_codes(tmp_path: Path) -> None:
    users = (
        "user_id,age,sex,user_lv_cd\n200001,56岁以上,2,5\n200002,-1,0,1\n200003,26-35岁,1,3\n"
        "200004,99岁,1,3\n"
    )
    root = make_workspace(
        tmp_path,
        {"users": {"path": "users.csv", "into": "users",
                   "columns": {"age_band": "age", "gender": "sex", "member_level": "user_lv_cd"},
                   "values": {"age_band": {"26-35岁": "26-35", "56岁以上": "56+", "-1": None},
                              "gender": {"0": "male", "1": "female", "2": "unknown"}}}},
        {"users.csv": users},
    )
    report = run(root)
    assert rows(root, "users", "user_id", "age_band", "gender", "member_level") == [
        {"user_id": "200001", "age_band": "56+", "gender": "unknown", "member_level": 5},
        {"user_id": "200002", "age_band": None, "gender": "male", "member_level": 1},
        {"user_id": "200003", "age_band": "26-35", "gender": "female", "member_level": 3},
    ]
    assert brief(rejects(root, "users")) == [
        (4, "age_band", "unknown_value",
         "unknown value '99岁' for age_band (source column 'age'); allowed: 0-15, 16-25, 26-35, 36-45, "
         "46-55, 56+. Map it under values.age_band."),
    ]
    assert_balanced(report)


def test_float_ids_become_integers_as_text(tmp_path: Path) -> None:
    root = make_workspace(
        tmp_path,
        {
            "text": {"path": "a.csv", "into": "users", "columns": {"user_id": "Customer ID"}},
            "floats": {"path": "b.parquet", "into": "users", "columns": {"user_id": "cid"}},
        },
        {"a.csv": "Customer ID\n17850.0\n12346\n", "b.parquet": pa.table({"cid": [13085.0, 17850.0, 1.5]})},
    )
    report = run(root)
    assert rows(root, "users", "user_id") == [
        {"user_id": "1.5"}, {"user_id": "12346"}, {"user_id": "13085"}, {"user_id": "17850"},
    ]
    assert brief(rejects(root, "floats")) == [
        (2, "user_id", "duplicate_key",
         "user_id '17850' was already loaded (first from source 'text'); the first row is kept"),
    ]
    assert_balanced(report)


def test_epoch_seconds_are_shifted_from_utc_to_the_workspace_zone(tmp_path: Path) -> None:
    events = "user_id,type,ts\n1,pv,1511539200\n1,buy,1511544070\n2,pv,not-a-time\n2,pv,99999999999999999\n"
    root = make_workspace(
        tmp_path,
        {
            "seconds": {"path": "s.csv", "into": "events", "time_format": "epoch_s",
                        "columns": {"event_type": "type", "event_time": "ts"},
                        "values": {"event_type": {"pv": "view", "buy": "purchase"}}},
            "millis": {"path": "ms.parquet", "into": "events", "time_format": "epoch_ms",
                       "columns": {"event_type": "type", "event_time": "ts"}},
            "tokyo": {"path": "tokyo.csv", "into": "events", "timezone": "Asia/Tokyo",
                      "columns": {"event_type": "type", "event_time": "ts"}},
        },
        {
            "s.csv": events,
            "ms.parquet": pa.table({"user_id": ["3"], "type": ["view"], "ts": [1511539200123]}),
            "tokyo.csv": "user_id,type,ts\n4,view,2017-11-25 09:00:00\n",
        },
    )
    report = run(root)
    assert rows(root, "events", "user_id", "event_time", "event_type") == [
        {"user_id": "1", "event_time": datetime(2017, 11, 25, 0, 0), "event_type": "view"},
        {"user_id": "1", "event_time": datetime(2017, 11, 25, 1, 21, 10), "event_type": "purchase"},
        {"user_id": "3", "event_time": datetime(2017, 11, 25, 0, 0), "event_type": "view"},
        {"user_id": "4", "event_time": datetime(2017, 11, 25, 8, 0), "event_type": "view"},
    ]
    # An unreadable or out-of-range number is a reject, not an engine error.
    assert brief(rejects(root, "seconds")) == [
        (3, "event_time", "bad_type",
         "cannot read 'not-a-time' as timestamp for event_time (source column 'ts')"),
        (4, "event_time", "bad_type",
         "cannot read '99999999999999999' as timestamp for event_time (source column 'ts')"),
    ]
    assert_balanced(report)


def test_epoch_into_a_zone_with_daylight_saving_is_refused(tmp_path: Path) -> None:
    root = make_workspace(
        tmp_path,
        {"events": {"path": "e.csv", "into": "events", "time_format": "epoch_s",
                    "columns": {"event_type": "type", "event_time": "ts"}}},
        {"e.csv": "user_id,type,ts\n1,view,1511539200\n"},
        timezone="Europe/London",
    )
    with pytest.raises(SourceError) as caught:
        run(root)
    assert str(caught.value) == (
        "Time zone Europe/London has daylight saving time; huaxiang converts only between fixed-offset "
        "zones (e.g. Asia/Shanghai, UTC). Convert the times to the workspace zone before ingest."
    )


def test_strptime_time_format_and_an_invalid_date(tmp_path: Path) -> None:
    events = "user_id,type,when\n1,view,05/03/2021 10:30\n1,view,5/3/2021 9:05\n2,view,13/13/2021 10:00\n" \
             "3,view,2021-03-05 10:30\n"
    root = make_workspace(
        tmp_path,
        {"events": {"path": "e.csv", "into": "events", "time_format": "%d/%m/%Y %H:%M",
                    "columns": {"event_type": "type", "event_time": "when"}}},
        {"e.csv": events},
    )
    report = run(root)
    assert rows(root, "events", "event_time") == [
        {"event_time": datetime(2021, 3, 5, 10, 30)}, {"event_time": datetime(2021, 3, 5, 9, 5)},
    ]
    assert brief(rejects(root, "events")) == [
        (3, "event_time", "bad_type",
         "cannot read '13/13/2021 10:00' as timestamp for event_time (source column 'when')"),
        (4, "event_time", "bad_type",
         "cannot read '2021-03-05 10:30' as timestamp for event_time (source column 'when')"),
    ]
    assert_balanced(report)


def test_unsupported_time_format_directive(tmp_path: Path) -> None:
    root = make_workspace(
        tmp_path,
        {"events": {"path": "e.csv", "into": "events", "time_format": "%d/%m/%y",
                    "columns": {"event_type": "type", "event_time": "when"}}},
        {"e.csv": "user_id,type,when\n1,view,05/03/21\n"},
    )
    with pytest.raises(ConfigError) as caught:
        run(root)
    assert str(caught.value) == (
        "time_format '%d/%m/%y': %y is not supported; use %Y %m %d %H %M %S %f, 'epoch_s' or 'epoch_ms'."
    )


def test_decimals_with_currency_signs_and_thousands_separators(tmp_path: Path) -> None:
    products = 'sku,price\np1,"¥1,234,567.80"\np2,"1,299"\np3,￥12.5\np4,"£ 1,000"\np5,"12,34"\np6,1.2.3\n'
    root = make_workspace(
        tmp_path,
        {"products": {"path": "p.csv", "into": "products", "columns": {"product_id": "sku"}}},
        {"p.csv": products},
    )
    report = run(root)
    assert rows(root, "products", "product_id", "price") == [
        {"product_id": "p1", "price": Decimal("1234567.80")},
        {"product_id": "p2", "price": Decimal("1299.00")},
        {"product_id": "p3", "price": Decimal("12.50")},
        {"product_id": "p4", "price": Decimal("1000.00")},
    ]
    assert brief(rejects(root, "products")) == [
        (5, "price", "bad_type", "cannot read '12,34' as decimal(18,2) for price (source column 'price')"),
        (6, "price", "bad_type", "cannot read '1.2.3' as decimal(18,2) for price (source column 'price')"),
    ]
    assert_balanced(report)


def test_booleans_in_chinese_and_digits(tmp_path: Path) -> None:
    touches = """
    campaign,uid,variant,sent,opened,used
    c1,1,A,2021-01-01 10:00:00,是,否
    c1,2,control,2021-01-01 10:00:00,1,0
    c1,3,A,2021-01-01 10:00:00,,TRUE
    c1,4,A,2021-01-01 10:00:00,maybe,0
    """
    root = make_workspace(
        tmp_path,
        {
            "touches": {"path": "t.csv", "into": "touches",
                        "columns": {"campaign_id": "campaign", "user_id": "uid", "touch_time": "sent"}},
            "orders": {"path": "o.parquet", "into": "orders"},
        },
        {
            "t.csv": touches,
            "o.parquet": pa.table({
                "order_id": ["o1", "o2"], "user_id": ["1", "2"],
                "order_time": [datetime(2021, 1, 1), datetime(2021, 1, 2)],
                "amount": [1.5, 2.0], "coupon_used": [True, False], "is_after_sale": [0, 1],
            }),
        },
    )
    report = run(root)
    assert rows(root, "touches", "user_id", "opened", "used") == [
        {"user_id": "1", "opened": True, "used": False},
        {"user_id": "2", "opened": True, "used": False},
        {"user_id": "3", "opened": None, "used": True},
    ]
    assert brief(rejects(root, "touches")) == [
        (4, "opened", "bad_type", "cannot read 'maybe' as bool for opened (source column 'opened')"),
    ]
    assert rows(root, "orders", "order_id", "amount", "coupon_used", "is_after_sale") == [
        {"order_id": "o1", "amount": Decimal("1.50"), "coupon_used": True, "is_after_sale": False},
        {"order_id": "o2", "amount": Decimal("2.00"), "coupon_used": False, "is_after_sale": True},
    ]
    assert_balanced(report)


def test_list_columns_are_split_and_trimmed(tmp_path: Path) -> None:
    products = "sku,tags\np1,郊游| 露营 ||野餐\np2,\np3,single\n"
    content = "cid,kind,items\nc1,video,p1;p2\n"
    root = make_workspace(
        tmp_path,
        {
            "products": {"path": "p.csv", "into": "products",
                         "columns": {"product_id": "sku", "scene_tags": "tags"}},
            "content": {"path": "c.csv", "into": "content", "list_separator": ";",
                        "columns": {"content_id": "cid", "product_ids": "items"}},
        },
        {"p.csv": products, "c.csv": content},
    )
    run(root)
    assert rows(root, "products", "product_id", "scene_tags") == [
        {"product_id": "p1", "scene_tags": ["郊游", "露营", "野餐"]},
        {"product_id": "p2", "scene_tags": None},
        {"product_id": "p3", "scene_tags": ["single"]},
    ]
    assert rows(root, "content", "content_id", "kind", "product_ids") == [
        {"content_id": "c1", "kind": "video", "product_ids": ["p1", "p2"]},
    ]


def test_same_named_columns_map_themselves_and_dates(tmp_path: Path) -> None:
    users = "user_id,birth_date,country,declared_preferences\nu1,1990-05-17,CN,美妆|母婴\nu2,1990-02-30,CN,\n"
    root = make_workspace(tmp_path, {"users": {"path": "u.csv", "into": "users"}}, {"u.csv": users})
    report = run(root)
    assert rows(root, "users", "user_id", "birth_date", "country", "declared_preferences") == [
        {"user_id": "u1", "birth_date": date(1990, 5, 17), "country": "CN",
         "declared_preferences": ["美妆", "母婴"]},
    ]
    assert brief(rejects(root, "users")) == [
        (2, "birth_date", "bad_type",
         "cannot read '1990-02-30' as date for birth_date (source column 'birth_date')"),
    ]
    assert_balanced(report)


# --------------------------------------------------------------------------- order lines, derivation, orphans

LINES_CSV = """
Invoice,StockCode,Qty,Price,Disc,Date,Customer,Country,Description
A1,P1,2,"¥1,000.50",0.50,05/03/2021 10:30,17850.0,UK,Lamp
A1,P2,1,3.00,,05/03/2021 09:15,17850.0,UK,Mug
C9,P1,-2,"¥1,000.50",,06/03/2021 11:00,17850.0,UK,Lamp
B2,P3,3,2.00,,13/13/2021 10:00,12345.0,FR,Vase
B3,P3,1,2.00,,07/03/2021 10:00,12345.0,FR,Vase
B3,POST,1,5.00,,07/03/2021 10:00,12345.0,FR,Postage
B4,P2,1,3.00,,07/03/2021 11:00,,FR,Mug
A1,P4,4,0.25,,05/03/2021 10:45,17850.0,UK,Card
"""
LINES_SOURCE = {
    "path": "lines.csv",
    "into": "order_lines",
    "columns": {"order_id": "Invoice", "product_id": "StockCode", "quantity": "Qty", "unit_price": "Price",
                "discount": "Disc", "order_time": "Date", "user_id": "Customer"},
    "time_format": "%d/%m/%Y %H:%M",
    "after_sale_if": {"column": "Invoice", "prefix": "C"},
    "reject_if": [
        {"column": "StockCode", "in": ["POST"], "reason": "non_product_code"},
        {"column": "Customer", "is_null": True, "reason": "no_customer_id"},
    ],
    "derive": {"users": {"country": "Country"}, "products": {"name": "Description"}},
}


def test_order_lines_build_orders_items_and_derived_entities(tmp_path: Path) -> None:
    root = make_workspace(
        tmp_path, {"lines": LINES_SOURCE}, {"lines.csv": LINES_CSV}, timezone="Europe/London"
    )
    report = run(root)
    assert rows(root, "orders", "order_id", "user_id", "order_time", "amount", "is_after_sale") == [
        # 2 x 1000.50 - 0.50 + 1 x 3.00 + 4 x 0.25; the earliest line's time.
        {"order_id": "A1", "user_id": "17850", "order_time": datetime(2021, 3, 5, 9, 15),
         "amount": Decimal("2004.50"), "is_after_sale": False},
        {"order_id": "B3", "user_id": "12345", "order_time": datetime(2021, 3, 7, 10, 0),
         "amount": Decimal("2.00"), "is_after_sale": False},
        # A cancellation: after-sale, stored with a positive amount.
        {"order_id": "C9", "user_id": "17850", "order_time": datetime(2021, 3, 6, 11, 0),
         "amount": Decimal("2001.00"), "is_after_sale": True},
    ]
    assert rows(root, "order_items") == [
        {"order_id": "A1", "line_no": 1, "product_id": "P1", "quantity": 2, "unit_price": Decimal("1000.50"),
         "discount": Decimal("0.50"), "is_orphan": False},
        {"order_id": "A1", "line_no": 2, "product_id": "P2", "quantity": 1, "unit_price": Decimal("3.00"),
         "discount": None, "is_orphan": False},
        {"order_id": "A1", "line_no": 3, "product_id": "P4", "quantity": 4, "unit_price": Decimal("0.25"),
         "discount": None, "is_orphan": False},
        {"order_id": "B3", "line_no": 1, "product_id": "P3", "quantity": 1, "unit_price": Decimal("2.00"),
         "discount": None, "is_orphan": False},
        {"order_id": "C9", "line_no": 1, "product_id": "P1", "quantity": 2, "unit_price": Decimal("1000.50"),
         "discount": None, "is_orphan": False},
    ]
    assert brief(rejects(root, "lines")) == [
        (4, "order_time", "bad_type",
         "cannot read '13/13/2021 10:00' as timestamp for order_time (source column 'Date')"),
        (6, "StockCode", "non_product_code", "StockCode matches reject_if rule in ['POST']"),
        (7, "Customer", "no_customer_id", "Customer matches reject_if rule is null"),
    ]
    # Derived entities: every parsed row with a key counts (B2's customer too), except
    # keys a reject_if rule on the key's own column excludes (POST is no product).
    assert rows(root, "users", "user_id", "country") == [
        {"user_id": "12345", "country": "FR"}, {"user_id": "17850", "country": "UK"},
    ]
    assert rows(root, "products", "product_id", "name") == [
        {"product_id": "P1", "name": "Lamp"}, {"product_id": "P2", "name": "Mug"},
        {"product_id": "P3", "name": "Vase"}, {"product_id": "P4", "name": "Card"},
    ]
    source = report.sources["lines"]
    assert (source.rows_read, source.rows_loaded, source.rows_rejected) == (8, 5, 3)
    assert report.tables["orders"].rows == 3
    assert report.tables["users"].derived_rows == 2
    assert report.tables["products"].derived_rows == 4
    assert_balanced(report)


def test_order_items_without_line_no_get_numbers_in_source_order(tmp_path: Path) -> None:
    root = make_workspace(
        tmp_path,
        {"items": {"path": "i.csv", "into": "order_items",
                   "columns": {"order_id": "oid", "product_id": "sku", "quantity": "q", "unit_price": "p"}}},
        {"i.csv": "oid,sku,q,p\no1,p1,1,1.00\no2,p1,1,1.00\no1,p2,3,2.00\no1,p3,1,5.00\n"},
    )
    report = run(root)
    assert rows(root, "order_items", "order_id", "line_no", "product_id") == [
        {"order_id": "o1", "line_no": 1, "product_id": "p1"},
        {"order_id": "o1", "line_no": 2, "product_id": "p2"},
        {"order_id": "o1", "line_no": 3, "product_id": "p3"},
        {"order_id": "o2", "line_no": 1, "product_id": "p1"},
    ]
    assert rejects(root, "items") == []
    assert_balanced(report)


def test_orphans_are_kept_and_flagged(tmp_path: Path) -> None:
    root = make_workspace(
        tmp_path,
        {
            "orders": {"path": "o.csv", "into": "orders"},
            "items": {"path": "i.csv", "into": "order_items"},
            "products": {"path": "p.csv", "into": "products"},
            "events": {"path": "e.csv", "into": "events", "derive": {"users": {}}},
        },
        {
            "o.csv": "order_id,user_id,order_time,amount\no1,u1,2021-01-01 00:00:00,5\n",
            "i.csv": "order_id,line_no,product_id,quantity,unit_price\no1,1,p1,1,5\nghost,1,p1,1,5\n",
            "p.csv": "product_id,name\np1,Lamp\n",
            "e.csv": "user_id,event_time,event_type,product_id\nu1,2021-01-01 00:00:00,view,p1\n"
                     "u2,2021-01-01 00:00:00,view,p404\nu2,2021-01-01 00:00:01,visit,\n",
        },
    )
    report = run(root)
    assert rows(root, "order_items", "order_id", "is_orphan") == [
        {"order_id": "ghost", "is_orphan": True}, {"order_id": "o1", "is_orphan": False},
    ]
    assert rows(root, "events", "user_id", "product_id", "is_orphan") == [
        {"user_id": "u1", "product_id": "p1", "is_orphan": False},
        {"user_id": "u2", "product_id": "p404", "is_orphan": True},
        {"user_id": "u2", "product_id": None, "is_orphan": False},
    ]
    assert report.tables["order_items"].orphans == 1
    assert report.tables["events"].orphans == 1
    # Users only seen in events are derived.
    assert rows(root, "users", "user_id") == [{"user_id": "u1"}, {"user_id": "u2"}]
    assert report.tables["users"].derived_rows == 2
    assert_balanced(report)


def test_derived_products_fill_in_missing_catalogue_entries_only(tmp_path: Path) -> None:
    root = make_workspace(
        tmp_path,
        {
            "products": {"path": "p.csv", "into": "products",
                         "columns": {"product_id": "sku", "category_l1": "cate"}},
            "actions": {"path": "a.csv", "into": "events",
                        "columns": {"product_id": "sku", "event_time": "time", "event_type": "type"},
                        "values": {"event_type": {"1": "view", "4": "purchase"}},
                        "derive": {"users": {}, "products": {"category_l1": "cate", "brand": "brand"}}},
        },
        {
            "p.csv": "sku,cate\n10,8\n11,8\n",
            "a.csv": "user_id,sku,time,type,cate,brand\n266079.0,10,2016-02-01 00:00:00,1,9,403\n"
                     "266080.0,12,2016-02-01 00:00:01,4,4,500\n266080.0,12,2016-02-01 00:00:02,1,5,501\n",
        },
    )
    report = run(root)
    assert rows(root, "products", "product_id", "category_l1", "brand") == [
        {"product_id": "10", "category_l1": "8", "brand": None},  # the catalogue wins
        {"product_id": "11", "category_l1": "8", "brand": None},
        {"product_id": "12", "category_l1": "4", "brand": "500"},  # derived from its first action
    ]
    assert rows(root, "users", "user_id") == [{"user_id": "266079"}, {"user_id": "266080"}]
    products = report.tables["products"]
    assert (products.derived_rows, products.from_sources) == (1, ["products"])
    assert report.tables["events"].orphans == 0


def test_derived_attributes_come_from_the_first_source_that_sees_the_entity(tmp_path: Path) -> None:
    header = "user_id,event_type,event_time,product_id,cate\n"
    root = make_workspace(
        tmp_path,
        {
            "app": {"path": "app.csv", "into": "events", "derive": {"products": {"category_l1": "cate"}}},
            "web": {"path": "web.csv", "into": "events", "derive": {"products": {"brand": "cate"}}},
        },
        {
            "app.csv": header + "u1,view,2024-01-01 00:00:00,p0,X\n" * 3
                       + "u1,view,2024-01-02 00:00:00,p1,A\n",
            "web.csv": header + "u2,view,2024-01-01 00:00:00,p1,B\nu2,view,2024-01-01 00:00:00,p2,C\n",
        },
    )
    run(root)
    # p1 is in row 4 of app and row 1 of web: app comes first in huaxiang.yaml, so app describes it.
    assert rows(root, "products", "product_id", "category_l1", "brand") == [
        {"product_id": "p0", "category_l1": "X", "brand": None},
        {"product_id": "p1", "category_l1": "A", "brand": None},
        {"product_id": "p2", "category_l1": None, "brand": "C"},
    ]


# --------------------------------------------------------------------------- idempotency and atomicity


def mixed_workspace(root: Path) -> Path:
    return make_workspace(
        root,
        {
            "users": USERS_SOURCE,
            "lines": LINES_SOURCE,
            "events": {"path": "e.parquet", "into": "events", "time_format": "epoch_s",
                       "derive": {"users": {}, "products": {}}},
        },
        {
            "users.csv": USERS_CSV,
            "lines.csv": LINES_CSV,
            "e.parquet": pa.table({
                "user_id": ["u1", "u2", "u1", "u1"], "event_type": ["view", "cart", "view", "bogus"],
                "event_time": [1511539200, 1511539300, 1511539200, 1511539400],
                "product_id": ["P1", "P9", "P1", "P1"],
            }),
        },
    )


def test_ingesting_twice_gives_identical_tables(tmp_path: Path) -> None:
    root = mixed_workspace(tmp_path)
    first_report = run(root)
    first = snapshot(root)
    second_report = run(root)
    second = snapshot(root)
    assert sorted(first) == [
        "events.parquet", "order_items.parquet", "orders.parquet", "products.parquet",
        "rejects/events.parquet", "rejects/lines.parquet", "rejects/users.parquet", "users.parquet",
    ]
    assert first.keys() == second.keys()
    for name, table in first.items():
        assert table.equals(second[name], check_metadata=True), name
    assert first_report.sources == second_report.sources
    assert first_report.tables == second_report.tables
    # Users from the user file, then derived from the lines (with a country) and the events (without).
    assert rows(root, "users", "user_id", "country") == [
        {"user_id": "12345", "country": "FR"}, {"user_id": "17850", "country": "UK"},
        {"user_id": "u1", "country": None}, {"user_id": "u14", "country": None},
        {"user_id": "u2", "country": None},
    ]
    # The previous version is removed once the new one is published.
    assert len(list((root / VERSIONS).iterdir())) == 1


def small_workspace(root: Path) -> Path:
    """Two small sources, each with one rejected row."""
    return make_workspace(
        root,
        {
            "users": {"path": "users.csv", "into": "users", "columns": {"user_id": "uid"}},
            "events": {"path": "events.csv", "into": "events"},
        },
        {
            "users.csv": "uid,age\nu1,30\nu2,thirty\n",
            "events.csv": "user_id,event_type,event_time\nu1,view,2024-01-01 10:00:00\n"
                          "u1,view,2024-01-01 10:00:00\n",
        },
    )


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    root = small_workspace(tmp_path)
    report = Workspace(root).validate()
    assert report.published is False
    assert report.sources["users"].rows_rejected == 1
    assert not (root / "data").exists()
    assert not (root / VERSIONS).exists() or not any((root / VERSIONS).iterdir())


def _published(root: Path) -> tuple[Path, str, dict[str, pa.Table]]:
    data = root / "data"
    return data.resolve(), (data / REPORT_FILE).read_text(encoding="utf-8"), snapshot(root)


def assert_unchanged(root: Path, before: tuple[Path, str, dict[str, pa.Table]]) -> None:
    target, report, tables = before
    assert (root / "data").is_symlink()
    assert (root / "data").resolve() == target
    assert (root / "data" / REPORT_FILE).read_text(encoding="utf-8") == report
    after = snapshot(root)
    assert after.keys() == tables.keys()
    for name, table in tables.items():
        assert after[name].equals(table), name
    # No partial version is left behind by a failure that Python saw.
    assert list((root / VERSIONS).iterdir()) == [target]


def test_failing_second_source_leaves_previous_data(tmp_path: Path) -> None:
    root = small_workspace(tmp_path)
    run(root)
    before = _published(root)
    (root / "events.csv").unlink()
    with pytest.raises(SourceNotFoundError):
        run(root)
    assert_unchanged(root, before)


def test_bad_config_leaves_previous_data(tmp_path: Path) -> None:
    root = small_workspace(tmp_path)
    Workspace(root).ingest()
    before = _published(root)
    config = root / CONFIG_FILE
    config.write_text(config.read_text(encoding="utf-8").replace("into: users", "into: userz", 1), "utf-8")
    with pytest.raises(ConfigError):
        Workspace(root).ingest()
    assert_unchanged(root, before)


def test_error_while_writing_removes_the_partial_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huaxiang.io.ingest as ingest_module

    root = small_workspace(tmp_path)
    run(root)
    before = _published(root)
    original = ingest_module._write_table
    written: list[str] = []

    def write_one_then_fail(con: Any, expr: Any, table_name: str, path: Path) -> None:
        if written:
            raise OSError("No space left on device")
        original(con, expr, table_name, path)
        written.append(table_name)

    monkeypatch.setattr(ingest_module, "_write_table", write_one_then_fail)
    with pytest.raises(OSError, match="No space left on device"):
        run(root)
    assert written == ["users"]
    assert_unchanged(root, before)


def test_strict_raises_lists_first_reasons_and_publishes_nothing(tmp_path: Path) -> None:
    root = small_workspace(tmp_path)
    (root / "users.csv").write_text("uid,age\nu1,30\nu2,thirty\nu3,-4\nu4,200\nu5,x\n", encoding="utf-8")
    run(root)
    before = _published(root)
    with pytest.raises(StrictIngestError) as caught:
        run(root, strict=True)
    assert str(caught.value).splitlines() == [
        "--strict: 5 rows were rejected; nothing was published.",
        "  users row 2: bad_type (age): cannot read 'thirty' as int for age (source column 'age')",
        "  users row 3: out_of_range (age): age = -4 is outside 0..120",
        "  users row 4: out_of_range (age): age = 200 is outside 0..120",
        "  events row 2: duplicate_row (None): exact copy of an earlier row of this source",
        "See every reason with 'huaxiang validate' (it writes nothing).",
    ]
    assert_unchanged(root, before)


def test_strict_without_rejects_publishes(tmp_path: Path) -> None:
    root = make_workspace(tmp_path, {"users": {"path": "u.csv", "into": "users"}}, {"u.csv": "user_id\nu1\n"})
    report = run(root, strict=True)
    assert report.published is True
    assert rows(root, "users", "user_id") == [{"user_id": "u1"}]


def test_a_plain_data_folder_is_not_overwritten(tmp_path: Path) -> None:
    root = make_workspace(tmp_path, {"users": {"path": "u.csv", "into": "users"}}, {"u.csv": "user_id\nu1\n"})
    (root / "data").mkdir()
    (root / "data" / "mine.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(Exception) as caught:
        run(root)
    assert str(caught.value) == (
        f"{root / 'data'} is a plain folder; huaxiang publishes it as a link to a version. "
        "Move it away (e.g. to data.bak) and run again."
    )
    assert (root / "data" / "mine.txt").read_text(encoding="utf-8") == "keep me"


KILL_SCRIPT = """
import os, signal, sys, time
from datetime import datetime
from pathlib import Path

import huaxiang.io.ingest as ingest_module
from huaxiang.config import load_config

root, marker = Path(sys.argv[1]), Path(sys.argv[2])
original = ingest_module._write_table

def write_then_wait(*args, **kwargs):
    original(*args, **kwargs)  # one table of the new version is on disk ...
    marker.write_text("writing", encoding="utf-8")
    time.sleep(120)  # ... and the parent kills us here, mid-publication

ingest_module._write_table = write_then_wait
ingest_module.ingest(root, load_config(root), now=datetime(2024, 6, 1))
"""


def test_sigkill_during_publication_leaves_the_previous_version(tmp_path: Path) -> None:
    n = 100_000
    start = int(datetime(2023, 1, 1).timestamp()) * 1_000_000
    events = pa.table({
        "user_id": pa.array([f"u{i % 5000}" for i in range(n)]),
        "event_type": pa.array(["view", "cart", "purchase", "favorite"] * (n // 4)),
        "event_time": pa.array(range(start, start + n * 1_000_000, 1_000_000), pa.timestamp("us")),
    })
    root = make_workspace(tmp_path / "ws", {"events": {"path": "events.csv", "into": "events"}},
                          {"events.csv": "user_id,event_type,event_time\nu1,view,2023-01-01 00:00:00\n"})
    run(root)
    before = _published(root)
    assert before[2]["events.parquet"].num_rows == 1
    # The next ingest reads a large generated CSV.
    import pyarrow.csv as pacsv

    pacsv.write_csv(events, root / "events.csv")
    marker = tmp_path / "marker"
    script = tmp_path / "kill_me.py"
    script.write_text(KILL_SCRIPT, encoding="utf-8")
    child = subprocess.Popen([sys.executable, str(script), str(root), str(marker)])
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert child.poll() is None, "the ingest ended before it could be killed"
            assert time.monotonic() < deadline, "the ingest never reached the writing step"
            time.sleep(0.02)
        versions = sorted((root / VERSIONS).iterdir())
        assert len(versions) == 2  # the published one and the one being written
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    target, report, tables = before
    assert (root / "data").resolve() == target
    assert (root / "data" / REPORT_FILE).read_text(encoding="utf-8") == report
    assert snapshot(root)["events.parquet"].equals(tables["events.parquet"])
    # The next ingest recovers and publishes the large file.
    assert run(root).sources["events"].rows_loaded == n
    assert pq.read_metadata(root / "data" / "events.parquet").num_rows == n
