"""Benchmark the standard catalog on Spark (local mode) against DuckDB, on the sample shop.

    python bench/bench_spark.py --users 100000 --out /tmp/huaxiang-bench-spark
    python bench/bench_spark.py --users 1000000 --out /tmp/huaxiang-bench-spark-1m --driver-memory 8g
    python bench/bench_spark.py --workspace /tmp/hx-ingest-1m --out /tmp/huaxiang-bench-spark

Without ``--workspace`` the sample shop (seed 7) is generated and ingested into
``OUT/source`` (skipped when it is already there). The standard catalog is then
computed as of ``--as-of`` twice with :func:`huaxiang.engine.compute` (read, compile,
run, collect into Arrow; publishing is the same code for every engine and is left
out): once on DuckDB, once on Spark (``engine: {type: spark, master: MASTER}``, a
session started by huaxiang, so its start-up is counted). Both tag tables are then
compared for every user and every tag; the differing tags are listed (there should
be none). One JSON line gives the machine, the step timings of both engines and the
comparison.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from huaxiang import Workspace
from huaxiang.catalog import load_catalog
from huaxiang.config import EngineConfig, WorkspaceConfig, load_config
from huaxiang.engine import compute
from huaxiang.workspace import install_standard_catalog
from machine import machine


def prepare(args: argparse.Namespace) -> Path:
    """An ingested workspace with the standard catalog: ``--workspace`` or the sample shop in OUT/source."""
    if args.workspace is not None:
        root = Path(args.workspace)
    else:
        root = Path(args.out) / "source"
        if not (root / "data" / "users.parquet").is_file():
            workspace = Workspace.create_sample(root, users=args.users, seed=args.seed)
            workspace.ingest()
    if not any((root / "tags").glob("*.yaml")):
        install_standard_catalog(root / "tags")
    return root


def on(config: WorkspaceConfig, engine: dict[str, Any]) -> WorkspaceConfig:
    return config.model_copy(update={"engine": EngineConfig.model_validate(engine)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default="/tmp/huaxiang-bench-spark")
    parser.add_argument("--workspace", help="an ingested workspace to read instead of the sample shop")
    parser.add_argument("--as-of", default="2026-11-01", type=dt.date.fromisoformat)
    parser.add_argument("--master", default="local[*]")
    parser.add_argument("--driver-memory", default="4g")
    parser.add_argument("--shuffle-partitions", type=int, default=8)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

    root = prepare(args)
    catalog = load_catalog(root / "tags")
    config = load_config(root)
    users = None

    started = time.perf_counter()
    duck = compute(root, args.as_of, catalog, on(config, {"type": "duckdb"}))
    duck_s = time.perf_counter() - started
    users = duck.tags.num_rows
    print(f"duckdb: {duck_s:.1f} s, {users:,} users, {duck.tags.num_columns - 1} tags", file=sys.stderr)

    spark_engine = {
        "type": "spark",
        "master": args.master,
        "conf": {
            "spark.driver.memory": args.driver_memory,
            "spark.sql.shuffle.partitions": args.shuffle_partitions,
            "spark.ui.enabled": False,
            "spark.driver.bindAddress": "127.0.0.1",
            "spark.driver.host": "127.0.0.1",
        },
    }
    started = time.perf_counter()
    spark = compute(root, args.as_of, catalog, on(config, spark_engine))
    spark_s = time.perf_counter() - started
    print(f"spark: {spark_s:.1f} s", file=sys.stderr)

    reference, other = duck.tags.sort_by("user_id"), spark.tags.sort_by("user_id")
    differing = [
        name
        for name in reference.column_names
        if name not in other.column_names or not reference.column(name).equals(other.column(name))
    ]
    # How far apart differing float tags are (scene probabilities go through POWER, which Java
    # and the C library round differently in the last bit; docs/scale.md).
    largest: dict[str, float] = {}
    for name in differing:
        left, right = reference.column(name), other.column(name)
        if pa.types.is_floating(left.type) and left.type == right.type:
            gap = pc.abs(pc.subtract(left, right))
            relative = pc.divide(gap, pc.max_element_wise(pc.abs(left), pa.scalar(1e-300)))
            largest[name] = pc.max(relative).as_py()
    print(
        json.dumps(
            {
                "bench": "spark",
                "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "machine": machine(("duckdb", "pyspark", "ibis-framework", "pyarrow")),
                "load_average": os.getloadavg(),
                "users": users,
                "tags": reference.num_columns - 1,
                "master": args.master,
                "duckdb_s": round(duck_s, 2),
                "duckdb_timings": duck.timings,
                "spark_s": round(spark_s, 2),
                "spark_timings": spark.timings,
                "spark_over_duckdb": round(spark_s / duck_s, 2),
                "schema_equal": reference.schema.equals(other.schema),
                "differing_tags": differing,
                "largest_relative_difference": largest,
            }
        )
    )


if __name__ == "__main__":
    main()
