"""Benchmark the sample shop generator: rows per table, seconds, peak memory.

Usage::

    .venv/bin/python bench/bench_sample.py --users 1000000 --out /tmp/sample1m

Prints a table and, last, one JSON line with the results (append it to a log
with ``--json-log``). Targets at 1M users: >= 10M orders, >= 50M events,
under 300 s, peak RSS well under 8 GB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

from huaxiang.datasets.sample import generate_sample
from machine import cpu_model

TARGET_SECONDS = 300.0
TARGET_ORDERS_PER_USER = 10
TARGET_EVENTS_PER_USER = 50


def _peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    scale = 1 if sys.platform == "darwin" else 1024
    peak = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    return peak * scale / 2**20


def main(argv: list[str] | None = None) -> int:
    """Run the generator once and report; exit status 1 when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path("/tmp/sample1m"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json-log", type=Path, default=None,
                        help="append the JSON result line to this file")
    args = parser.parse_args(argv)

    last_report = [time.perf_counter()]

    def progress(step: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if step != "users" or now - last_report[0] > 10 or done == total:
            print(f"  {step}: {done:,}/{total:,}", file=sys.stderr, flush=True)
            last_report[0] = now

    summary = generate_sample(args.out, users=args.users, seed=args.seed, progress=progress)
    sizes = {
        name: (args.out / f"{name}.parquet").stat().st_size for name in summary.rows
    }
    result = {
        "benchmark": "sample_generator",
        "date": dt.date.today().isoformat(),
        "users": args.users,
        "seed": args.seed,
        "rows": summary.rows,
        "file_mib": {k: round(v / 2**20, 1) for k, v in sizes.items()},
        "elapsed_seconds": round(summary.elapsed_seconds, 1),
        "peak_rss_mib": round(_peak_rss_mib(), 1),
        "orders_per_user": round(summary.orders / args.users, 2),
        "events_per_user": round(summary.events / args.users, 2),
        "machine": {
            "nproc": os.cpu_count(),
            "cpu": cpu_model(),
            "python": platform.python_version(),
        },
    }
    for name, count in summary.rows.items():
        print(f"{name:<12} {count:>14,} rows  {sizes[name] / 2**20:>9.1f} MiB")
    print(f"elapsed      {summary.elapsed_seconds:>14.1f} s")
    print(f"peak RSS     {result['peak_rss_mib']:>14.1f} MiB")
    line = json.dumps(result, ensure_ascii=False)
    print(line)
    if args.json_log:
        with args.json_log.open("a", encoding="utf-8") as log:
            log.write(line + "\n")
    met = (
        summary.elapsed_seconds < TARGET_SECONDS * args.users / 1_000_000
        and summary.orders >= TARGET_ORDERS_PER_USER * args.users
        and summary.events >= TARGET_EVENTS_PER_USER * args.users
    )
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
