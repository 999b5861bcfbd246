"""The three example workspaces on the real data in ../shared/data, with figures checked by DuckDB.

Each example's ``huaxiang.yaml`` is copied alone into a temporary folder, its
``path:`` entries made absolute, and ingested there: nothing is written into
the repository. The known figures are asserted literally and, where they come
from the data rather than from huaxiang, recomputed independently with DuckDB
SQL over the source files.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from realdata import (
    JDATA,
    NON_PRODUCT,
    SHARED_DATA,
    TAOBAO,
    Ingested,
    q,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not SHARED_DATA.is_dir(),
        reason=f"the real data sets are not here: {SHARED_DATA.resolve()} is missing "
        "(see the README of ../shared/data)",
    ),
]


# --------------------------------------------------------------------------- Online Retail II

def test_retail_rows_and_reject_reasons(retail: Ingested) -> None:
    source = retail.report.sources["invoice_lines"]
    expected = {
        "bad_debt_adjustment": 6,
        "no_customer_id": 235_281,
        "non_product_code": 3_670,
        "non_positive_price": 60,
        "duplicate_row": 11_665,
    }
    assert source.rows_read == 1_044_847
    assert source.rejected_by_reason == expected
    assert source.rows_rejected == sum(expected.values())
    assert source.rows_loaded == 1_044_847 - sum(expected.values())
    assert source.rows_read == source.rows_loaded + source.rows_rejected

    # The same figures, straight from the Parquet file.
    assert retail.one("SELECT count(*) FROM lines") == 1_044_847
    by_rule = dict(retail.sql("SELECT reason, count(*) FROM lines WHERE reason IS NOT NULL GROUP BY reason"))
    # Exact copies among the rows no rule rejects: all but the first of each are duplicates.
    by_rule["duplicate_row"] = retail.one(
        "SELECT count(*) - (SELECT count(*) FROM loaded) FROM lines WHERE reason IS NULL"
    )
    assert by_rule == expected

    # Every rejected line is in the rejects file, with its original values as JSON.
    rejects = f"read_parquet({q(Path(retail.rejects('invoice_lines')))})"
    assert dict(retail.sql(f"SELECT reason, count(*) FROM {rejects} GROUP BY reason")) == expected
    first = retail.sql(f"SELECT row, \"column\", reason, raw FROM {rejects} ORDER BY row LIMIT 1")[0]
    assert first[:3] == (90, "StockCode", "non_product_code")
    raw = json.loads(first[3])
    assert list(raw) == ["Invoice", "StockCode", "Description", "Quantity", "InvoiceDate", "Price",
                         "Customer ID", "Country"]
    original = retail.sql("SELECT StockCode, Invoice FROM lines LIMIT 1 OFFSET 89")[0]
    assert (raw["StockCode"], raw["Invoice"]) == original


def test_retail_users_are_customers_with_at_least_one_line(retail: Ingested) -> None:
    users = f"read_parquet({q(Path(retail.path('users')))})"
    assert retail.one(f"SELECT count(*) FROM {users}") == 5_942
    assert retail.one('SELECT count(DISTINCT "Customer ID") FROM lines') == 5_942
    # Float-looking ids are stored as integer text; every user has a country.
    assert retail.one(f"SELECT count(*) FROM {users} WHERE user_id LIKE '%.%' OR country IS NULL") == 0
    assert retail.report.tables["users"].derived_rows == 5_942


def test_retail_orders_and_after_sale(retail: Ingested) -> None:
    orders = f"read_parquet({q(Path(retail.path('orders')))})"
    assert retail.report.tables["orders"].rows == 43_876
    assert retail.one(f"SELECT count(*) FROM {orders}") == 43_876
    assert retail.one("SELECT count(DISTINCT Invoice) FROM loaded") == 43_876
    assert retail.report.tables["order_items"].rows == retail.report.sources["invoice_lines"].rows_loaded

    # Every C-invoice (cancellation) is an after-sale record with a positive amount; no other is.
    c_invoices = retail.one("SELECT count(DISTINCT Invoice) FROM loaded WHERE starts_with(Invoice, 'C')")
    assert c_invoices == 7_282
    assert retail.sql(
        f"SELECT starts_with(order_id, 'C') AS c, bool_and(is_after_sale), bool_or(is_after_sale), "
        f"count(*), min(amount) > 0 FROM {orders} GROUP BY c ORDER BY c"
    ) == [(False, False, False, 43_876 - 7_282, True), (True, True, True, 7_282, True)]

    # Amount = sum of |quantity| x price over the order's loaded lines; time = its earliest line.
    mismatches = retail.one(
        f"""
        WITH lines AS (
          SELECT Invoice, sum(abs(Quantity)::DECIMAL(18,2) * Price::DECIMAL(18,2)) AS amount,
                 min(InvoiceDate) AS order_time, any_value("Customer ID") AS customer
          FROM loaded GROUP BY Invoice
        )
        SELECT count(*) FROM lines FULL JOIN {orders} o ON o.order_id = lines.Invoice
        WHERE o.amount IS DISTINCT FROM lines.amount OR o.order_time IS DISTINCT FROM lines.order_time
           OR o.user_id IS DISTINCT FROM CAST(lines.customer AS VARCHAR)
        """
    )
    assert mismatches == 0
    items = f"read_parquet({q(Path(retail.path('order_items')))})"
    assert retail.one(f"SELECT min(quantity) FROM {items}") > 0
    assert retail.one(f"SELECT count(*) FROM {items} WHERE is_orphan") == 0


def test_retail_products_exclude_non_product_codes(retail: Ingested) -> None:
    products = f"read_parquet({q(Path(retail.path('products')))})"
    listed = ", ".join(f"'{c}'" for c in NON_PRODUCT)
    assert retail.one(f"SELECT count(*) FROM {products} WHERE product_id IN ({listed})") == 0
    # Every stock code (trimmed: '47503J ' is '47503J') but the non-product ones, whatever the line's fate.
    assert retail.one(f"SELECT count(*) FROM {products}") == retail.one(
        "SELECT count(DISTINCT trim(StockCode)) FROM lines "
        f"WHERE StockCode NOT IN ({listed}) AND NOT starts_with(StockCode, 'gift_0001')"
    ) == 5_279


# --------------------------------------------------------------------------- Taobao UserBehavior


TAOBAO_CSV = (
    f"read_csv({q(TAOBAO)}, header = false, "
    "names = ['user_id', 'item_id', 'category_id', 'behavior_type', 'ts'])"
)


def test_taobao_rows_and_time_window(taobao: Ingested) -> None:
    source = taobao.report.sources["behavior"]
    assert (source.rows_read, source.rows_loaded, source.rows_rejected) == (84_475, 84_440, 35)
    assert source.rejected_by_reason == {"outside_time_range": 35}
    assert taobao.one(f"SELECT count(*) FROM {TAOBAO_CSV}") == 84_475
    # The official window is 2017-11-25 .. 2017-12-03 in China time (UTC+8).
    assert taobao.one(
        f"SELECT count(*) FROM {TAOBAO_CSV} WHERE ts < epoch(TIMESTAMP '2017-11-25 00:00:00') - 8 * 3600 "
        "OR ts >= epoch(TIMESTAMP '2017-12-04 00:00:00') - 8 * 3600"
    ) == 35


def test_taobao_users_event_types_and_china_time(taobao: Ingested) -> None:
    events = f"read_parquet({q(Path(taobao.path('events')))})"
    assert taobao.one(f"SELECT count(*) FROM read_parquet({q(Path(taobao.path('users')))})") == 815
    assert taobao.one(f"SELECT count(DISTINCT user_id) FROM {TAOBAO_CSV}") == 815
    counts = dict(taobao.sql(f"SELECT event_type, count(*) FROM {events} GROUP BY ALL"))
    assert set(counts) == {"view", "cart", "favorite", "purchase"}
    in_window = (
        "ts >= epoch(TIMESTAMP '2017-11-25 00:00:00') - 8 * 3600 "
        "AND ts < epoch(TIMESTAMP '2017-12-04 00:00:00') - 8 * 3600"
    )
    raw_counts = dict(
        taobao.sql(f"SELECT behavior_type, count(*) FROM {TAOBAO_CSV} WHERE {in_window} GROUP BY ALL")
    )
    mapping = {"pv": "view", "cart": "cart", "fav": "favorite", "buy": "purchase"}
    assert counts == {mapping[code]: n for code, n in raw_counts.items()}
    # The file's first row: user 1 viewed item 2268318 at 1511544070 = 2017-11-24 17:21:10 UTC.
    assert taobao.sql(
        f"SELECT user_id, product_id, event_type, event_time FROM {events} "
        "WHERE user_id = '1' AND product_id = '2268318'"
    ) == [("1", "2268318", "view", datetime(2017, 11, 25, 1, 21, 10))]
    first, last = taobao.sql(f"SELECT min(event_time), max(event_time) FROM {events}")[0]
    assert datetime(2017, 11, 25) <= first < last < datetime(2017, 12, 4)
    # Products derived from the events, with their category.
    products = f"read_parquet({q(Path(taobao.path('products')))})"
    assert taobao.one(f"SELECT count(*) FROM {products}") == taobao.one(
        f"SELECT count(DISTINCT item_id) FROM {TAOBAO_CSV}"
    )
    assert taobao.one(f"SELECT category_l1 FROM {products} WHERE product_id = '2268318'") == "2520377"


# --------------------------------------------------------------------------- JData 2017


JD_USERS = f"read_csv({q(JDATA / 'JData_User.csv')}, all_varchar = true)"
JD_ACTIONS = f"read_csv({q(JDATA / 'JData_Action_201602.csv')}, all_varchar = true)"
JD_PRODUCTS = f"read_csv({q(JDATA / 'JData_Product.csv')}, all_varchar = true)"
JD_ACTING_USER = r"regexp_replace(user_id, '\.0+$', '')"


def test_jdata_users_with_age_bands(jdata: Ingested) -> None:
    source = jdata.report.sources["users"]
    assert (source.rows_read, source.rows_loaded, source.rows_rejected) == (29_999, 29_999, 0)
    users = f"read_parquet({q(Path(jdata.path('users')))})"
    assert jdata.sql(f"SELECT user_id, age_band, gender, member_level FROM {users} WHERE user_id IN "
                     "('200001', '200002') ORDER BY user_id") == [
        ("200001", "56+", "unknown", 5),  # 56岁以上, sex 2
        ("200002", None, "male", 1),  # age -1: unknown, not a reject
    ]
    from_file = f"SELECT * FROM {users} WHERE user_id IN (SELECT user_id FROM {JD_USERS})"
    bands = dict(jdata.sql(f"SELECT coalesce(age_band, 'null'), count(*) FROM ({from_file}) GROUP BY ALL"))
    mapping = {"15岁以下": "0-15", "16-25岁": "16-25", "26-35岁": "26-35", "36-45岁": "36-45",
               "46-55岁": "46-55", "56岁以上": "56+", "-1": "null"}
    raw = dict(jdata.sql(f"SELECT age, count(*) FROM {JD_USERS} GROUP BY ALL"))
    assert bands == {mapping[age]: n for age, n in raw.items()}
    assert bands["null"] == 2_839
    # Users who act but are not in the user file are derived from the actions.
    derived = jdata.one(
        f"SELECT count(DISTINCT {JD_ACTING_USER}) FROM {JD_ACTIONS} "
        f"WHERE {JD_ACTING_USER} NOT IN (SELECT user_id FROM {JD_USERS})"
    )
    assert derived == 740
    assert jdata.report.tables["users"].derived_rows == derived
    assert jdata.one(f"SELECT count(*) FROM {users}") == 29_999 + derived


def test_jdata_actions_duplicates_and_acting_users(jdata: Ingested) -> None:
    source = jdata.report.sources["actions"]
    duplicates = jdata.one(
        f"SELECT count(*) - (SELECT count(*) FROM (SELECT DISTINCT * FROM {JD_ACTIONS})) FROM {JD_ACTIONS}"
    )
    assert duplicates == 7_643
    assert source.rejected_by_reason == {"duplicate_row": duplicates}
    assert (source.rows_read, source.rows_loaded) == (29_999, 29_999 - duplicates)
    events = f"read_parquet({q(Path(jdata.path('events')))})"
    assert jdata.one(f"SELECT count(DISTINCT user_id) FROM {events}") == 1_030
    assert jdata.one(f"SELECT count(DISTINCT {JD_ACTING_USER}) FROM {JD_ACTIONS}") == 1_030
    assert jdata.one(f"SELECT count(*) FROM {events} WHERE user_id LIKE '%.%'") == 0
    types = {row[0] for row in jdata.sql(f"SELECT DISTINCT event_type FROM {events}")}
    assert types <= {"view", "cart", "cart_remove", "purchase", "favorite", "click"}
    assert jdata.one(f"SELECT count(*) FROM {events} WHERE is_orphan") == 0


def test_jdata_products_from_file_plus_derived(jdata: Ingested) -> None:
    source = jdata.report.sources["products"]
    assert (source.rows_read, source.rows_loaded, source.rows_rejected) == (24_187, 24_187, 0)
    only_in_actions = jdata.one(
        f"SELECT count(DISTINCT sku_id) FROM {JD_ACTIONS} "
        f"WHERE sku_id NOT IN (SELECT sku_id FROM {JD_PRODUCTS})"
    )
    assert only_in_actions == 1_360
    table = jdata.report.tables["products"]
    assert (table.rows, table.derived_rows, table.from_sources) == (24_187 + 1_360, 1_360, ["products"])
    products = pq.read_table(jdata.path("products"), columns=["product_id", "category_l1", "brand"])
    assert products.num_rows == 25_547
    assert len(set(products["product_id"].to_pylist())) == 25_547
