"""What the shared engine suite builds: the engines, the data sets, and workspaces set to an engine.

A plain module (not conftest.py) so that tests can import it by a name no other test folder uses.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import yaml

from huaxiang.config import CONFIG_FILE
from huaxiang.model.schema import TABLES

ENGINES = ("duckdb", "spark")
#: PySpark 4.3 warns that it does not fully support pandas 3 (it works: see DESIGN's field notes).
PANDAS_WARNING = "ignore:PySpark does not yet fully support pandas:FutureWarning"
#: One small Spark for the whole run: two cores, two shuffle partitions, no UI, loopback only.
SPARK_CONF = {
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.driver.host": "127.0.0.1",
    "spark.sql.session.timeZone": "UTC",
}

SAMPLE_AS_OF = dt.date(2026, 11, 1)
#: Users kept of each real data set: enough for every tag to have values, small enough for CI.
SLICE_USERS = 600
#: Data set -> (example folder, as-of date: the day after its data ends).
EXAMPLES = {
    "online_retail": ("online_retail", dt.date(2011, 12, 10)),
    "taobao": ("taobao", dt.date(2017, 12, 4)),
    "jdata": ("jdata", dt.date(2016, 3, 1)),
}
DATASETS = ("sample", *EXAMPLES)


def engine_section(engine: str) -> dict[str, Any]:
    """The ``engine:`` of ``huaxiang.yaml`` for ``engine`` in these tests."""
    if engine == "spark":
        return {"type": "spark", "master": "local[2]", "conf": {"spark.sql.shuffle.partitions": 2}}
    return {"type": "duckdb"}


def on_engine(source: Path, target: Path, engine: str) -> Path:
    """A copy of workspace ``source`` (config, catalog, canonical tables) set to run on ``engine``."""
    target.mkdir(parents=True)
    shutil.copytree(source / "tags", target / "tags")
    (target / "data").mkdir()
    for name in TABLES:
        path = source / "data" / f"{name}.parquet"
        if path.is_file():
            shutil.copy2(path, target / "data" / path.name)
    config = yaml.safe_load((source / CONFIG_FILE).read_text(encoding="utf-8"))
    config["engine"] = engine_section(engine)
    (target / CONFIG_FILE).write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), "utf-8")
    return target


def slice_users(root: Path, users: int) -> None:
    """Keep the first ``users`` users (by id) of ``root/data`` and their rows; products stay whole."""
    data = root / "data"
    con = duckdb.connect()

    def source(name: str) -> str:
        return "read_parquet('" + str(data / f"{name}.parquet").replace("'", "''") + "')"

    con.execute(f"CREATE TABLE kept AS SELECT user_id FROM {source('users')} ORDER BY user_id LIMIT {users}")
    if (data / "orders.parquet").is_file():
        con.execute(
            f"CREATE TABLE kept_orders AS SELECT order_id FROM {source('orders')} "
            "WHERE user_id IN (SELECT user_id FROM kept)"
        )
    for name in TABLES:
        path = data / f"{name}.parquet"
        if not path.is_file():
            continue
        columns = pq.read_schema(path).names
        if "user_id" in columns:
            where = "WHERE user_id IN (SELECT user_id FROM kept)"
        elif name == "order_items":
            where = "WHERE order_id IN (SELECT order_id FROM kept_orders)"
        else:
            continue
        table = con.execute(f"SELECT * FROM {source(name)} {where}").to_arrow_table()
        # Same schema as ingestion wrote (DuckDB's COPY would write its own types).
        pq.write_table(table.cast(pq.read_schema(path)), path)
    con.close()
