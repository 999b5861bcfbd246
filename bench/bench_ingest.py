"""Benchmark ingestion of the sample shop: wall time, peak memory, rows per source.

    python bench/bench_ingest.py --users 1000000 --out /tmp/huaxiang-bench-ingest [--memory-limit 6GB]

Generates the sample shop into OUT (unless OUT already holds one of that size), then
ingests it once and prints a JSON line with the timings per step.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from datetime import date
from pathlib import Path

import yaml

from huaxiang import Workspace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("/tmp/huaxiang-bench-ingest"))
    parser.add_argument("--memory-limit", help="engine.memory_limit for DuckDB, e.g. 6GB")
    args = parser.parse_args()

    marker = args.out / "sources" / f".users-{args.users}-seed-{args.seed}"
    if not marker.exists():
        started = time.perf_counter()
        Workspace.create_sample(args.out, users=args.users, seed=args.seed)
        marker.touch()
        print(f"generated in {time.perf_counter() - started:.1f} s", flush=True)

    config_path = args.out / "huaxiang.yaml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    config.setdefault("engine", {})["memory_limit"] = args.memory_limit
    if args.memory_limit is None:
        config["engine"].pop("memory_limit")
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")

    steps: list[tuple[str, float]] = []
    started = time.perf_counter()
    report = Workspace(args.out).ingest(
        progress=lambda message: steps.append((message, round(time.perf_counter() - started, 1)))
    )
    elapsed = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "benchmark": "ingest_sample_shop",
        "date": date.today().isoformat(),
        "users": args.users,
        "memory_limit": args.memory_limit,
        "rows_read": {name: s.rows_read for name, s in report.sources.items()},
        "rows_rejected": {name: s.rows_rejected for name, s in report.sources.items()},
        "elapsed_seconds": round(elapsed, 1),
        "step_started_at_seconds": dict(steps),
        "peak_rss_mib": round(peak_mib),
        "machine": {"nproc": os.cpu_count(), "python": platform.python_version()},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
