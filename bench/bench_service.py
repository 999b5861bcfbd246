"""Benchmark the tag service (issue 6): one user's tags, in the process and over HTTP.

    python bench/bench_service.py --source /tmp/hx-bench-build-1m/full --out /tmp/hx-bench-service

``--source`` is a built workspace (the 1M-user sample shop); it is only read:
``OUT/workspace`` gets a copy of its ``huaxiang.yaml`` and ``tags/`` and links to its
``data/`` and latest snapshot, and the service's own files (metadata database,
event log) go into ``OUT/workspace/.huaxiang``.

1. **In the process**: the snapshot is loaded into an :class:`OnlineStore`
   (timed), then ``--lookups`` random users are looked up one at a time doing
   what ``GET /users/{id}/tags`` does (all tags, imputed flags, real-time tags,
   JSON encoding); p50 / p99 / max of the wall time, and p50 / p99 of the thread's
   CPU time (which leaves out the time the thread waited for a core on a shared
   machine). Target: p99 ≤ 5 ms.
2. **Over HTTP**: ``huaxiang serve --workers W`` in a child process on loopback,
   a ``service`` token, and ``wrk`` (``apt-get install wrk``) with ``--connections``
   connections for ``--seconds`` seconds, each request for a random one of 10,000
   users. wrk's own summary (requests/s, latency percentiles, errors, non-2xx) is
   recorded. Target: ≥ 3,000 lookups/s with zero errors. Before it, the same wrk run
   against ``GET /version`` gives the framework's ceiling at that moment (the machine is
   shared, so this says how much of the machine the run had).

One JSON line per run is appended to ``OUT/results.jsonl`` with the machine and the
load average before and after (the machine is shared).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from huaxiang.audience.store import default_url
from huaxiang.history import list_snapshots
from huaxiang.serve.auth import TokenStore
from machine import machine

WRK_SCRIPT = """
local ids = {}
for line in io.lines("%(ids)s") do ids[#ids + 1] = line end
local headers = {["Authorization"] = "Bearer %(token)s"}
math.randomseed(%(seed)d + math.floor(os.clock() * 1000000))
request = function()
  return wrk.format("GET", "/users/" .. ids[math.random(#ids)] .. "/tags", headers)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %%d, "duration_us": %%d, "bytes": %%d, ' ..
    '"connect": %%d, "read": %%d, "write": %%d, ' ..
    '"status": %%d, "timeout": %%d, "p50_ms": %%.3f, "p90_ms": %%.3f, "p99_ms": %%.3f, "max_ms": %%.3f}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000))
end
"""


def prepare(source: Path, out: Path) -> Path:
    """OUT/workspace: the source's config and catalog copied, its data and latest snapshot linked."""
    workspace = out / "workspace"
    if workspace.exists():
        shutil.rmtree(workspace)
    (workspace / "snapshots").mkdir(parents=True)
    shutil.copy(source / "huaxiang.yaml", workspace / "huaxiang.yaml")
    shutil.copytree(source / "tags", workspace / "tags")
    os.symlink((source / "data").resolve(), workspace / "data")
    latest = list_snapshots(source)[-1]
    os.symlink(latest.path.resolve(), workspace / "snapshots" / latest.as_of.isoformat())
    return workspace


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def in_process(workspace: Path, lookups: int, seed: int) -> tuple[dict[str, Any], list[str]]:
    """Load the store, then time ``lookups`` random lookups the way the endpoint makes them."""
    from zoneinfo import ZoneInfo

    from huaxiang.serve.events import EventFeed
    from huaxiang.serve.settings import Settings
    from huaxiang.serve.store import OnlineStore

    started = time.perf_counter()
    store = OnlineStore(workspace)
    store.refresh()
    load_s = time.perf_counter() - started
    rss_mb = _rss_mb()
    generation = store.current
    feed = EventFeed(Settings(workspace=workspace), ZoneInfo("Asia/Shanghai"))
    ids = list(generation.tags.rows)
    rng = random.Random(seed)
    sample = [rng.choice(ids) for _ in range(lookups)]
    timings: list[float] = []
    cpu: list[float] = []
    size = 0
    for user in sample:
        begin_cpu = time.thread_time_ns()
        begin = time.perf_counter()
        tags, imputed = generation.tags.lookup(user)  # type: ignore[misc]
        body = {
            "user_id": user,
            "as_of": generation.as_of.isoformat(),
            "in_snapshot": True,
            "tags": tags,
            "imputed": imputed,
            "realtime": feed.tags(user),
        }
        size += len(orjson.dumps(body))  # as the endpoint encodes it
        timings.append((time.perf_counter() - begin) * 1000)
        cpu.append((time.thread_time_ns() - begin_cpu) / 1e6)
    result = {
        "users": generation.tags.users,
        "tags": len(generation.tags.tags),
        "load_s": round(load_s, 2),
        "rss_after_load_mb": rss_mb,
        "lookups": lookups,
        "p50_ms": round(percentile(timings, 0.5), 4),
        "p99_ms": round(percentile(timings, 0.99), 4),
        "max_ms": round(max(timings), 3),
        "cpu_p50_ms": round(percentile(cpu, 0.5), 4),
        "cpu_p99_ms": round(percentile(cpu, 0.99), 4),
        "mean_body_bytes": size // lookups,
    }
    store.close()
    return result, [rng.choice(ids) for _ in range(10_000)]


def _rss_mb() -> int:
    """This process's resident memory (MB), from /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
    return -1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def over_http(
    workspace: Path, out: Path, ids: list[str], workers: int, connections: int, seconds: int, threads: int
) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    store = TokenStore(default_url(workspace))
    token = store.create(f"bench-{int(time.time())}", "service", rate_per_s=1_000_000).token
    store.close()
    (out / "ids.txt").write_text("\n".join(ids) + "\n", encoding="utf-8")
    script = out / "lookup.lua"
    script.write_text(WRK_SCRIPT % {"ids": out / "ids.txt", "token": token, "seed": 7}, encoding="utf-8")
    port = _free_port()
    log = open(out / "serve.log", "wb")  # noqa: SIM115 - closed below, after the server stops
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "huaxiang.cli",
            "serve",
            "-w",
            str(workspace),
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 300
        ready = 0
        while ready < 20:  # every worker must have loaded the snapshot: many healthy answers in a row
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the service did not start; see " + str(out / "serve.log"))
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json()
                ready = ready + 1 if health.get("status") == "ok" else 0
            except (httpx.HTTPError, ValueError):
                ready = 0
                time.sleep(0.5)
        command = [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}",
        ]
        subprocess.run([*command[:5], "-d", "3s", *command[7:]], capture_output=True, check=True)  # warm-up
        # The framework's ceiling at this moment: the same server answering GET /version.
        baseline = [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            f"http://127.0.0.1:{port}/version",
        ]
        version_run = subprocess.run(baseline, capture_output=True, text=True, check=True).stdout
        load_before = os.getloadavg()
        finished = subprocess.run(command, capture_output=True, text=True, check=True)
        load_after = os.getloadavg()
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()
    line = next(line for line in finished.stdout.splitlines() if line.startswith("WRKJSON "))
    summary = json.loads(line[len("WRKJSON ") :])
    non_2xx = 0
    for text in finished.stdout.splitlines():
        if "Non-2xx" in text:
            non_2xx = int(text.split(":")[1])
    summary.update(
        requests_per_s=round(summary["requests"] / (summary["duration_us"] / 1e6), 1),
        non_2xx=non_2xx,
        errors=summary["connect"] + summary["read"] + summary["write"] + summary["timeout"] + non_2xx,
        workers=workers,
        connections=connections,
        threads=threads,
        seconds=seconds,
        command=" ".join(command),
        version_requests_per_s=next(
            float(text.split(":")[1]) for text in version_run.splitlines() if text.startswith("Requests/sec")
        ),
        load_during=[round(x, 2) for x in load_before],
        load_after=[round(x, 2) for x in load_after],
    )
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path("/tmp/hx-bench-build-1m/full"))
    parser.add_argument("--out", type=Path, default=Path("/tmp/hx-bench-service"))
    parser.add_argument("--lookups", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--skip-http", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    load_start = os.getloadavg()
    workspace = prepare(args.source, args.out)
    process, ids = in_process(workspace, args.lookups, seed=7)
    print("in process:", json.dumps(process), flush=True)
    record: dict[str, Any] = {
        "benchmark": "service_lookup",
        "started": started,
        "machine": machine(("fastapi", "uvicorn", "starlette", "pyarrow", "numpy")),
        "load_at_start": [round(x, 2) for x in load_start],
        "in_process": process,
    }
    if not args.skip_http:
        record["http"] = over_http(
            workspace, args.out, ids, args.workers, args.connections, args.seconds, args.threads
        )
        print("over HTTP:", json.dumps(record["http"]), flush=True)
    with open(args.out / "results.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
