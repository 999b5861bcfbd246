"""Helpers of the integration tests over the real data sets in ../shared/data.

Each example's ``huaxiang.yaml`` is copied alone into a temporary folder, its
``path:`` entries made absolute, and ingested there: nothing is written into
the repository.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import duckdb

from huaxiang.config import CONFIG_FILE, load_config
from huaxiang.io.ingest import IngestReport, ingest

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO / ".." / "shared" / "data"
EXAMPLES = REPO / "examples"


RETAIL = SHARED_DATA / "online_retail_ii" / "online_retail_II_unified_2009_2011.parquet"
TAOBAO = SHARED_DATA / "taobao_userbehavior" / "UserBehavior_head_815users.csv"
JDATA = SHARED_DATA / "jdata_2017"


class Ingested:
    """An example ingested into a temporary copy of its workspace."""

    def __init__(self, root: Path, report: IngestReport) -> None:
        self.root = root
        self.report = report
        self.con = duckdb.connect()

    def path(self, table: str) -> str:
        return str(self.root / "data" / f"{table}.parquet")

    def rejects(self, source: str) -> str:
        return str(self.root / "data" / "rejects" / f"{source}.parquet")

    def sql(self, query: str) -> list[tuple[Any, ...]]:
        return self.con.execute(query).fetchall()

    def one(self, query: str) -> Any:
        return self.sql(query)[0][0]


def ingest_example(name: str, root: Path) -> Ingested:
    """Copy examples/<name>/huaxiang.yaml into ``root`` with absolute source paths; ingest it."""
    source = EXAMPLES / name / CONFIG_FILE
    text = source.read_text(encoding="utf-8")

    def absolute(match: re.Match[str]) -> str:
        path = (source.parent / match.group(2)).resolve()
        assert path.is_relative_to(SHARED_DATA.resolve()), path
        assert path.is_file(), path
        return f"{match.group(1)}{path}"

    text, count = re.subn(r"^(\s*path:\s*)(\S+)$", absolute, text, flags=re.MULTILINE)
    assert count >= 1
    root.mkdir(parents=True)
    (root / CONFIG_FILE).write_text(text, encoding="utf-8")
    report = ingest(root, load_config(root))
    for source_name, source_report in report.sources.items():
        assert source_report.rows_read == source_report.rows_loaded + source_report.rows_rejected, source_name
    return Ingested(root, report)


def q(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


# The rules of examples/online_retail/huaxiang.yaml, written again in SQL, in the same order.
NON_PRODUCT = ("POST", "DOT", "M", "m", "C2", "D", "S", "B", "BANK CHARGES", "ADJUST", "ADJUST2",
               "AMAZONFEE", "PADS", "CRUK", "TEST001", "TEST002")
RETAIL_REASON = f"""
    CASE
      WHEN starts_with(Invoice, 'A') THEN 'bad_debt_adjustment'
      WHEN nullif(trim(CAST("Customer ID" AS VARCHAR)), '') IS NULL THEN 'no_customer_id'
      WHEN StockCode IN ({", ".join(f"'{c}'" for c in NON_PRODUCT)}) THEN 'non_product_code'
      WHEN starts_with(StockCode, 'gift_0001') THEN 'gift_voucher'
      WHEN Price <= 0 THEN 'non_positive_price'
      WHEN Quantity = 0 THEN 'non_positive_quantity'
    END
"""
