"""Fixtures of the integration tests: each example workspace is ingested once per session."""

from __future__ import annotations

import pytest
from realdata import RETAIL, RETAIL_REASON, Ingested, ingest_example, q


@pytest.fixture(scope="session")
def retail(tmp_path_factory: pytest.TempPathFactory) -> Ingested:
    """Online Retail II takes ~12 s: ingested once for the session.

    Its connection holds ``lines`` (the file with each line's rule-based reason)
    and ``loaded`` (the lines no rule rejects, exact copies removed).
    """
    ingested = ingest_example("online_retail", tmp_path_factory.mktemp("examples") / "online_retail")
    ingested.con.execute(
        f"CREATE TABLE lines AS SELECT *, {RETAIL_REASON} AS reason FROM read_parquet({q(RETAIL)})"
    )
    ingested.con.execute(
        "CREATE TABLE loaded AS SELECT DISTINCT * EXCLUDE (reason) FROM lines WHERE reason IS NULL"
    )
    return ingested


@pytest.fixture(scope="session")
def taobao(tmp_path_factory: pytest.TempPathFactory) -> Ingested:
    return ingest_example("taobao", tmp_path_factory.mktemp("examples") / "taobao")


@pytest.fixture(scope="session")
def jdata(tmp_path_factory: pytest.TempPathFactory) -> Ingested:
    return ingest_example("jdata", tmp_path_factory.mktemp("examples") / "jdata")


