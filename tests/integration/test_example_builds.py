"""The standard catalog built on the three real-data examples, figures cross-checked with DuckDB.

Each example is ingested once per session (conftest.py); here the standard catalog
is installed into its workspace, built as of the day after its data ends, and the
tags are compared with independent SQL over the source files. Tags whose inputs a
data set lacks are skipped and must say which input is missing.
"""

from __future__ import annotations

import datetime as dt

import pyarrow.parquet as pq
import pytest
from realdata import SHARED_DATA, Ingested

from huaxiang.engine import BuildResult, build
from huaxiang.workspace import install_standard_catalog

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"the real data sets are not here: {SHARED_DATA}"),
]

RETAIL_AS_OF = dt.date(2011, 12, 10)  # the data ends on 2011-12-09
TAOBAO_AS_OF = dt.date(2017, 12, 4)  # the 9 days end on 2017-12-03
JDATA_AS_OF = dt.date(2016, 3, 1)  # February 2016 actions


def build_standard(ingested: Ingested, as_of: dt.date) -> BuildResult:
    install_standard_catalog(ingested.root / "tags")
    return build(ingested.root, as_of)


def assert_skips_name_their_inputs(result: BuildResult) -> None:
    for tag, reason in result.skipped.items():
        assert reason.startswith(("missing input", "depends on skipped tag")), (tag, reason)


# --------------------------------------------------------------------------- Online Retail II


@pytest.fixture(scope="module")
def retail_built(retail: Ingested) -> BuildResult:
    return build_standard(retail, RETAIL_AS_OF)


def test_retail_builds_rfm_lifecycle_value_and_purchasing_power_for_every_customer(
    retail: Ingested, retail_built: BuildResult
) -> None:
    for tag in ("recency_days", "frequency_365d", "monetary_365d", "rfm_class", "rfm_cell", "lifecycle_stage",
                "value_layer", "purchasing_power_band", "purchasing_power_level"):
        assert tag in retail_built.built, (tag, retail_built.skipped.get(tag))
    tags = pq.read_table(retail_built.path / "tags.parquet").to_pylist()
    assert len(tags) == 5_942
    # Every customer has a lifecycle stage and a value layer; customers who bought in the last
    # 365 days (valid, i.e. not a C-invoice) have an RFM class and a purchasing power band.
    assert all(row["lifecycle_stage"] is not None and row["value_layer"] is not None for row in tags)
    buyers = [row for row in tags if row["frequency_365d"] > 0]
    assert len(buyers) == retail.one(
        "SELECT count(DISTINCT \"Customer ID\") FROM loaded WHERE NOT starts_with(Invoice, 'C') "
        "AND InvoiceDate >= TIMESTAMP '2010-12-10' AND InvoiceDate < TIMESTAMP '2011-12-10'"
    )
    assert all(row["rfm_class"] is not None and row["purchasing_power_band"] is not None for row in buyers)
    assert all(row["rfm_class"] is None for row in tags if row["frequency_365d"] == 0)
    assert_skips_name_their_inputs(retail_built)


def test_retail_monetary_and_frequency_match_sql_over_the_source_file(
    retail: Ingested, retail_built: BuildResult
) -> None:
    expected = {
        str(customer): (orders, spend)
        for customer, orders, spend in retail.sql(
            """
            SELECT CAST(CAST("Customer ID" AS BIGINT) AS VARCHAR), count(DISTINCT Invoice),
                   sum(abs(Quantity)::DECIMAL(18,2) * Price::DECIMAL(18,2))
            FROM loaded
            WHERE NOT starts_with(Invoice, 'C')
              AND InvoiceDate >= TIMESTAMP '2010-12-10' AND InvoiceDate < TIMESTAMP '2011-12-10'
            GROUP BY ALL
            """
        )
    }
    tags = pq.read_table(retail_built.path / "tags.parquet", columns=["user_id", "frequency_365d",
                                                                       "monetary_365d"]).to_pylist()
    got = {row["user_id"]: (row["frequency_365d"], row["monetary_365d"]) for row in tags
           if row["frequency_365d"] > 0}
    assert got.keys() == expected.keys()
    mismatched = [user for user, (orders, spend) in expected.items()
                  if got[user][0] != orders or abs(float(got[user][1]) - float(spend)) > 0.005]
    assert mismatched == []


def test_retail_recency_is_days_from_the_last_valid_order_date(
    retail: Ingested, retail_built: BuildResult
) -> None:
    last = dict(
        retail.sql(
            """
            SELECT CAST(CAST("Customer ID" AS BIGINT) AS VARCHAR),
                   date_diff('day', max(InvoiceDate)::DATE, DATE '2011-12-10')
            FROM loaded
            WHERE NOT starts_with(Invoice, 'C')
              AND InvoiceDate >= TIMESTAMP '2010-12-10' AND InvoiceDate < TIMESTAMP '2011-12-10'
            GROUP BY ALL
            """
        )
    )
    tags = pq.read_table(retail_built.path / "tags.parquet", columns=["user_id", "recency_days"]).to_pylist()
    got = {row["user_id"]: row["recency_days"] for row in tags if row["recency_days"] is not None}
    assert got == last


def test_retail_manifest_records_the_lifecycle_threshold(retail_built: BuildResult) -> None:
    thresholds = retail_built.manifest["lifecycle_thresholds"]
    assert thresholds["churn_source"] == "derived"
    assert 60 <= thresholds["churn_threshold_days"] <= 730
    coverage = retail_built.manifest["tags"]["lifecycle_stage"]
    assert coverage["non_null"] == 5_942
