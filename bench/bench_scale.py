"""How the whole standard catalog's build grows with the shop: time and peak memory per size.

    python bench/bench_scale.py --users 100000 1000000 3000000 10000000 --out /tmp/huaxiang-bench-scale \
        [--memory-limit 12GB] [--plot docs/img/scaling.png]

For each size N the sample shop (orders and events in proportion: about 13.5 orders and 97
events per user) is generated into ``OUT/N`` and ingested, unless that folder already holds
it. Then ``Workspace(OUT/N).build(as_of)`` runs in a fresh child process, so that each size's
peak resident memory (``ru_maxrss`` of the child, DuckDB included) is its own. Steps that
already ran are kept from ``OUT/N/scale.json``; ``--rebuild`` times the build again.

It prints one JSON line per size and a last line with the whole curve: seconds and peak GiB
per size, and the growth exponent between consecutive sizes (``log(t2/t1) / log(n2/n1)``:
1.0 is linear, below 1 better). With ``--plot`` it draws both curves on log-log axes with
Plotly and saves a PNG through headless Chromium (``/usr/bin/chromium``; the page is local).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from machine import machine  # noqa: E402

AS_OF = dt.date(2026, 10, 31)
CHILD = """
import datetime as dt, json, resource, sys, time
from huaxiang import Workspace
started = time.perf_counter()
result = Workspace(sys.argv[1]).build(dt.date.fromisoformat(sys.argv[2]))
elapsed = time.perf_counter() - started
print(json.dumps({
    "build_s": round(elapsed, 1),
    "peak_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
    "tags": len(result.built),
    "rows": result.rows,
    "timings": {k: round(v, 1) for k, v in result.timings.items()},
}))
"""


def prepare(root: Path, users: int, seed: int, memory_limit: str | None) -> dict[str, Any]:
    """Generate and ingest the shop of ``users`` into ``root`` once; the times of both."""
    from huaxiang import Workspace

    state_file = root / "scale.json"
    state: dict[str, Any] = json.loads(state_file.read_text()) if state_file.exists() else {}
    if "ingest_s" not in state:
        started = time.perf_counter()
        Workspace.create_sample(root, users=users, seed=seed)
        state["generate_s"] = round(time.perf_counter() - started, 1)
        config_path = root / "huaxiang.yaml"
        config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        if memory_limit:
            config.setdefault("engine", {})["memory_limit"] = memory_limit
        config_path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
        started = time.perf_counter()
        report = Workspace(root).ingest()
        state["ingest_s"] = round(time.perf_counter() - started, 1)
        state["rows"] = {name: s.rows_loaded for name, s in report.sources.items()}
        state_file.write_text(json.dumps(state, indent=1))
    return state


def build(root: Path, as_of: dt.date) -> dict[str, Any]:
    """The whole catalog built in a child process: seconds, its peak memory, tags and rows."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(root), as_of.isoformat()],
        check=False,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"the build of {root} failed:\n{done.stderr[-3000:]}")
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def exponents(points: list[dict[str, Any]], key: str) -> list[float | None]:
    """Growth exponent between consecutive sizes: 1.0 linear, below 1 better than linear."""
    out: list[float | None] = []
    for before, after in zip(points, points[1:], strict=False):
        if before[key] and after[key]:
            out.append(
                round(math.log(after[key] / before[key]) / math.log(after["users"] / before["users"]), 2)
            )
        else:
            out.append(None)
    return out


def plot(points: list[dict[str, Any]], target: Path) -> None:
    """Build seconds and peak GiB against users, log-log, saved as a PNG by headless Chromium."""
    import plotly.graph_objects as go
    from playwright.sync_api import sync_playwright
    from plotly.subplots import make_subplots

    users = [p["users"] for p in points]
    figure = make_subplots(rows=1, cols=2, subplot_titles=("build time (s)", "peak memory (GiB)"))
    figure.add_trace(
        go.Scatter(x=users, y=[p["build_s"] for p in points], mode="lines+markers", name="build s"),
        row=1,
        col=1,
    )
    linear = [points[0]["build_s"] * n / users[0] for n in users]
    figure.add_trace(
        go.Scatter(x=users, y=linear, mode="lines", line={"dash": "dot"}, name="linear from the smallest"),
        row=1,
        col=1,
    )
    figure.add_trace(
        go.Scatter(x=users, y=[p["peak_gib"] for p in points], mode="lines+markers", name="peak GiB"),
        row=1,
        col=2,
    )
    figure.update_xaxes(type="log", title_text="users")
    figure.update_yaxes(type="log")
    figure.update_layout(width=1100, height=450, title="huaxiang: the standard catalog's build by shop size")
    with tempfile.TemporaryDirectory() as folder:
        page_file = Path(folder) / "scaling.html"
        figure.write_html(page_file, include_plotlyjs=True, full_html=True)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=[
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                ],
            )
            page = browser.new_page(viewport={"width": 1120, "height": 470})
            page.goto(page_file.as_uri())
            page.wait_for_selector(".main-svg")
            page.screenshot(path=str(target))
            browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("/tmp/huaxiang-bench-scale"))
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=AS_OF)
    parser.add_argument("--memory-limit", help="engine.memory_limit for DuckDB, e.g. 12GB")
    parser.add_argument("--rebuild", action="store_true", help="time the builds again")
    parser.add_argument("--plot", type=Path, help="save the curves as a PNG here")
    args = parser.parse_args()

    points: list[dict[str, Any]] = []
    for users in sorted(args.users):
        root = args.out / str(users)
        state = prepare(root, users, args.seed, args.memory_limit)
        if "build" not in state or args.rebuild:
            state["build"] = build(root, args.as_of)
            (root / "scale.json").write_text(json.dumps(state, indent=1))
        point = {
            "users": users,
            "orders": state["rows"].get("orders"),
            "events": state["rows"].get("events"),
            "generate_s": state["generate_s"],
            "ingest_s": state["ingest_s"],
            "build_s": state["build"]["build_s"],
            "peak_gib": state["build"]["peak_gib"],
            "tags": state["build"]["tags"],
        }
        points.append(point)
        print(
            json.dumps({"benchmark": "scale_point", **point, "timings": state["build"]["timings"]}),
            flush=True,
        )
    summary = {
        "benchmark": "scale",
        "date": dt.date.today().isoformat(),
        "as_of": args.as_of.isoformat(),
        "memory_limit": args.memory_limit,
        "points": points,
        "time_exponents": exponents(points, "build_s"),
        "memory_exponents": exponents(points, "peak_gib"),
        "machine": machine(("duckdb", "ibis-framework", "pyarrow")),
        "parent_peak_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
    }
    print(json.dumps(summary))
    if args.plot:
        plot(points, args.plot)


if __name__ == "__main__":
    main()
