"""Benchmark the tag engine: the standard catalog, and RFM against hand-written SQL and pymc-marketing.

    python bench/bench_build.py --users 1000000 --out /tmp/huaxiang-bench-build [--memory-limit 6GB]
    python bench/bench_build.py --workspace /tmp/hx-ingest-1m --out /tmp/huaxiang-bench-build

Without ``--workspace`` the sample shop is generated and ingested into ``OUT/source``
(skipped when it is already there). The ingested data is only read: two bench
workspaces, ``OUT/full`` (the standard catalog as ``huaxiang init`` installs it
now) and ``OUT/rfm`` (only ``rfm.yaml``), link to it. In one process, each step
timed on its own and its peak memory measured (the process's resident high-water
mark, DuckDB included, reset before each step), the script runs:

- ``groupby``: one hand-written DuckDB GROUP BY pass over orders and events (per
  user: orders, amount, last order; events per type), written to Parquet; the
  baseline of the whole catalog;
- ``catalog``: ``Workspace(OUT/full).build(as_of)``, the whole standard catalog;
- ``rfm_engine``: ``huaxiang.engine.build`` with a catalog of the RFM tags only (the
  whole build: compute, manifest, ``tags.parquet``, audience index, atomic publish);
- ``rfm_compute``: ``huaxiang.engine.compute`` with the same catalog: the RFM tags
  computed into an Arrow table in memory, nothing written (what ``rfm_segments``
  gives: a table in memory);
- ``rfm_sql``: a hand-written DuckDB query computing the same columns from
  ``orders.parquet`` and ``users.parquet``, written to Parquet; both results are
  compared for every user and must be identical;
- ``pymc_load`` and ``pymc_rfm_segments``: the same valid orders of the window
  loaded into pandas, then ``pymc_marketing.clv.utils.rfm_segments`` (needs the
  ``bench`` extra: ``pip install -e '.[bench]'``). The speed-up against it is given
  for the in-memory computation (like for like: both read the orders and return a
  table) and for the whole build.

The short steps (``groupby``, ``rfm_engine``, ``rfm_compute``, ``rfm_sql``) run ``--repeat`` times
(RFM engine and query alternated) and the fastest run counts, since the machine's
two cores are usually shared; the catalog and pymc-marketing run once.

It prints a JSON line with the timings, the peaks, the ratios and the targets of
issue 3 (RFM within 2x of the hand-written query and at least 10x faster than
``rfm_segments``; the catalog within 10x of the GROUP BY pass; peak under 8 GB).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import yaml

from huaxiang import Workspace
from huaxiang.catalog import load_catalog
from huaxiang.config import load_config
from huaxiang.engine import build, compute
from huaxiang.model.schema import EVENT_TYPES
from huaxiang.segment.rfm import (
    PLAYBOOK_CORE_RECALL,
    PLAYBOOK_DAILY_LOYALTY,
    PLAYBOOK_IGNORE,
    PLAYBOOK_RAISE_FREQUENCY,
    PLAYBOOK_RECALL,
    PLAYBOOK_UPSELL_CATEGORY,
    RFM_CLASSES,
)
from huaxiang.workspace import install_standard_catalog
from machine import machine

GIB = 1024**3
MIB = 1024**2
WINDOW_DAYS = 365
RFM_COLUMNS = (
    "recency_days",
    "frequency_365d",
    "monetary_365d",
    "aov_365d",
    "rfm_r_score",
    "rfm_f_score",
    "rfm_m_score",
    "rfm_score",
    "rfm_class",
    "rfm_cell",
    "rfm_playbook",
)
TARGETS = {
    "rfm_vs_sql_max": 2.0,
    "rfm_speedup_vs_pymc_min": 10.0,
    "catalog_vs_groupby_max": 10.0,
    "peak_rss_gib_max": 8.0,
}


# ---------------------------------------------------------------------------- memory


class PeakMemory:
    """Peak resident memory of this process per step, DuckDB's threads included.

    Linux keeps the high-water mark in ``VmHWM``; writing ``5`` to
    ``/proc/self/clear_refs`` resets it, so each step gets its own peak. Where that
    is refused, a thread samples ``VmRSS`` every 50 ms instead.
    """

    def __init__(self) -> None:
        self.exact = True
        self._sampled = 0
        self.overall = 0
        """The peak over the whole run so far (each reset folds the step's peak in)."""
        self._stop = threading.Event()
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            self.exact = False
            threading.Thread(target=self._sample, daemon=True).start()

    @staticmethod
    def _status(field: str) -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        return 0

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self._sampled = max(self._sampled, self._status("VmRSS"))

    def reset(self) -> None:
        self.overall = max(self.overall, self.peak())
        if self.exact:
            Path("/proc/self/clear_refs").write_text("5")
        else:
            self._sampled = self._status("VmRSS")

    def peak(self) -> int:
        return self._status("VmHWM") if self.exact else max(self._sampled, self._status("VmRSS"))

    def whole_run(self) -> int:
        """The peak since the process started (``ru_maxrss`` is reset with ``VmHWM``, so not that)."""
        self.overall = max(self.overall, self.peak())
        return self.overall


class Steps:
    """Times each step and records its peak memory and the load average at its end."""

    def __init__(self) -> None:
        self.memory = PeakMemory()
        self.runs: dict[str, list[float]] = {}
        self.peak_mib: dict[str, int] = {}
        self.load: dict[str, list[float]] = {}

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        print(f"{time.strftime('%H:%M:%S')} {name} ...", flush=True)
        self.memory.reset()
        started = time.perf_counter()
        yield
        seconds = round(time.perf_counter() - started, 2)
        peak = round(self.memory.peak() / MIB)
        self.runs.setdefault(name, []).append(seconds)
        self.peak_mib[name] = max(self.peak_mib.get(name, 0), peak)
        self.load.setdefault(name, []).append(round(os.getloadavg()[0], 2))
        print(f"    {seconds:.2f} s, peak {peak} MiB", flush=True)

    @property
    def best(self) -> dict[str, float]:
        """The fastest run of each step."""
        return {name: min(runs) for name, runs in self.runs.items()}


# ---------------------------------------------------------------------------- workspaces


def source_workspace(args: argparse.Namespace) -> tuple[Path, dict[str, float]]:
    """The ingested workspace to read: ``--workspace``, or the sample shop made in ``OUT/source``."""
    if args.workspace is not None:
        if not (args.workspace / "data" / "orders.parquet").is_file():
            raise SystemExit(f"{args.workspace} holds no ingested data (no data/orders.parquet)")
        return args.workspace, {}
    root = args.out / "source"
    prepared: dict[str, float] = {}
    marker = root / "sources" / f".users-{args.users}-seed-{args.seed}"
    if not marker.exists():
        started = time.perf_counter()
        Workspace.create_sample(root, users=args.users, seed=args.seed)
        marker.touch()
        prepared["generate_s"] = round(time.perf_counter() - started, 1)
    ingested = root / ".huaxiang" / f".ingested-users-{args.users}-seed-{args.seed}"
    if not ingested.exists() or not (root / "data" / "orders.parquet").is_file():
        config_path = root / "huaxiang.yaml"
        config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        config.setdefault("engine", {})["memory_limit"] = args.memory_limit
        config_path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
        started = time.perf_counter()
        Workspace(root).ingest()
        ingested.touch()
        prepared["ingest_s"] = round(time.perf_counter() - started, 1)
    return root, prepared


def bench_workspace(
    root: Path, data: Path, config: dict[str, Any], tag_files: str, exclude: list[str]
) -> list[str]:
    """A workspace at ``root`` reading ``data`` (a link), with a fresh ``tags/``; the tag files."""
    # DuckDB spills into .huaxiang/spill and creates only the last folder; ingest makes .huaxiang.
    (root / ".huaxiang").mkdir(parents=True, exist_ok=True)
    (root / "huaxiang.yaml").write_text(
        yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    link = root / "data"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(data.resolve(), target_is_directory=True)
    tags = root / "tags"
    shutil.rmtree(tags, ignore_errors=True)
    install_standard_catalog(tags)
    for path in tags.glob("*.yaml"):
        if (tag_files != "all" and path.name != tag_files) or path.name in exclude:
            path.unlink()
    shutil.rmtree(root / "snapshots", ignore_errors=True)
    return sorted(path.name for path in tags.glob("*.yaml"))


def warm_cache(data: Path) -> float:
    """Read every canonical file once, so no step pays for the first read from disk; GiB read."""
    total = 0
    for path in sorted(data.resolve().glob("*.parquet")):
        with path.open("rb") as handle:
            while chunk := handle.read(64 * MIB):
                total += len(chunk)
    return total / GIB


# ---------------------------------------------------------------------------- hand-written SQL


def sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def groupby_sql(data: Path, as_of: dt.date, out: Path) -> str:
    """One GROUP BY pass over orders and one over events, joined per user: the catalog's baseline."""
    end = f"TIMESTAMP '{as_of.isoformat()} 00:00:00'"
    per_type = ",\n            ".join(
        f"count(*) FILTER (WHERE event_type = '{event}') AS events_{event}" for event in EVENT_TYPES
    )
    return f"""
    COPY (
        WITH o AS (
            SELECT user_id, count(*) AS orders, sum(amount) AS amount, max(order_time) AS last_order_time
            FROM read_parquet({sql_text(str(data / "orders.parquet"))})
            WHERE order_time < {end}
            GROUP BY user_id
        ), e AS (
            SELECT user_id,
            {per_type}
            FROM read_parquet({sql_text(str(data / "events.parquet"))})
            WHERE event_time < {end}
            GROUP BY user_id
        )
        SELECT u.user_id, o.* EXCLUDE (user_id), e.* EXCLUDE (user_id)
        FROM read_parquet({sql_text(str(data / "users.parquet"))}) AS u
        LEFT JOIN o USING (user_id)
        LEFT JOIN e USING (user_id)
    ) TO {sql_text(str(out))} (FORMAT parquet)
    """


def rfm_sql(data: Path, as_of: dt.date, out: Path) -> str:
    """The RFM tags of ``rfm.yaml`` written by hand (definition: ``huaxiang.segment.rfm``)."""
    end = f"TIMESTAMP '{as_of.isoformat()} 00:00:00'"
    start = f"TIMESTAMP '{(as_of - dt.timedelta(days=WINDOW_DAYS)).isoformat()} 00:00:00'"
    classes = "\n                ".join(
        f"WHEN m_high = {m} AND r_high = {r} AND f_high = {f} THEN {sql_text(label)}"
        for (m, r, f), label in RFM_CLASSES.items()
    )
    return f"""
    COPY (
        WITH per_user AS (
            SELECT user_id, max(order_time) AS last_order_time, count(*) AS orders,
                   CAST(sum(amount) AS DECIMAL(18, 2)) AS amount
            FROM read_parquet({sql_text(str(data / "orders.parquet"))})
            WHERE NOT coalesce(is_after_sale, false) AND order_time >= {start} AND order_time < {end}
            GROUP BY user_id
        ), base AS (
            SELECT u.user_id, p.orders IS NOT NULL AS has_order,
                   date_diff('day', CAST(p.last_order_time AS DATE), DATE '{as_of.isoformat()}')
                       AS recency_days,
                   coalesce(p.orders, 0) AS frequency_365d,
                   coalesce(p.amount, CAST(0 AS DECIMAL(18, 2))) AS monetary_365d
            FROM read_parquet({sql_text(str(data / "users.parquet"))}) AS u
            LEFT JOIN per_user AS p USING (user_id)
            WHERE u.register_time IS NULL OR u.register_time < {end}
        ), scored AS (
            SELECT *,
                ntile(5) OVER (PARTITION BY has_order ORDER BY recency_days DESC, user_id) AS r,
                ntile(5) OVER (PARTITION BY has_order ORDER BY frequency_365d, user_id) AS f,
                ntile(5) OVER (PARTITION BY has_order ORDER BY monetary_365d, user_id) AS m,
                recency_days * count_if(has_order) OVER w
                    <= sum(recency_days) OVER w AS r_high,
                frequency_365d * count_if(has_order) OVER w >= sum(frequency_365d) OVER w AS f_high,
                monetary_365d * count_if(has_order) OVER w >= sum(monetary_365d) OVER w AS m_high,
                monetary_365d * sum(frequency_365d) OVER w >= sum(monetary_365d) OVER w * frequency_365d
                    AS aov_high
            FROM base
            WINDOW w AS (PARTITION BY has_order)
        )
        SELECT user_id, recency_days, frequency_365d, monetary_365d,
            CASE WHEN has_order THEN CAST(monetary_365d / frequency_365d AS DECIMAL(18, 2)) END AS aov_365d,
            CASE WHEN has_order THEN r END AS rfm_r_score,
            CASE WHEN has_order THEN f END AS rfm_f_score,
            CASE WHEN has_order THEN m END AS rfm_m_score,
            CASE WHEN has_order THEN r + f + m END AS rfm_score,
            CASE WHEN has_order THEN CASE
                {classes}
            END END AS rfm_class,
            CASE WHEN has_order THEN 'R' || r || 'F' || f || 'M' || m END AS rfm_cell,
            CASE WHEN NOT has_order THEN NULL
                WHEN m >= 4 AND f >= 4 AND r >= 4 THEN {sql_text(PLAYBOOK_DAILY_LOYALTY)}
                WHEN m >= 4 AND f = 3 AND r >= 4 THEN {sql_text(PLAYBOOK_RAISE_FREQUENCY)}
                WHEN m >= 4 AND f >= 4 AND r < 4 THEN {sql_text(PLAYBOOK_CORE_RECALL)}
                WHEN m = 3 AND f >= 4 AND r >= 4 THEN {sql_text(PLAYBOOK_UPSELL_CATEGORY)}
                WHEN m = 3 AND f = 3 AND r >= 4 THEN {sql_text(PLAYBOOK_RAISE_FREQUENCY)}
                WHEN aov_high THEN {sql_text(PLAYBOOK_RECALL)}
                ELSE {sql_text(PLAYBOOK_IGNORE)}
            END AS rfm_playbook
        FROM scored
        ORDER BY user_id
    ) TO {sql_text(str(out))} (FORMAT parquet)
    """


def connect(memory_limit: str | None, spill: Path) -> duckdb.DuckDBPyConnection:
    """DuckDB with the settings the engine uses (memory limit, spill folder, default threads)."""
    con = duckdb.connect()
    con.execute(f"SET temp_directory = {sql_text(str(spill))}")
    if memory_limit:
        con.execute(f"SET memory_limit = {sql_text(memory_limit)}")
    con.execute("SET enable_progress_bar = false")
    return con


def compare_rfm(engine_file: Path, sql_file: Path) -> dict[str, int]:
    """Rows of each result, and per column the users whose values differ (NULLs compare equal)."""
    con = duckdb.connect()
    differs = ", ".join(
        f"count(*) FILTER (WHERE a.{column} IS DISTINCT FROM b.{column}) AS {column}"
        for column in RFM_COLUMNS
    )
    row = con.execute(
        f"""
        SELECT (SELECT count(*) FROM read_parquet({sql_text(str(engine_file))})) AS engine_rows,
               (SELECT count(*) FROM read_parquet({sql_text(str(sql_file))})) AS sql_rows,
               count(*) AS joined_rows, {differs}
        FROM read_parquet({sql_text(str(engine_file))}) AS a
        JOIN read_parquet({sql_text(str(sql_file))}) AS b USING (user_id)
        """
    ).fetchone()
    assert row is not None
    names = ["engine_rows", "sql_rows", "joined_rows", *RFM_COLUMNS]
    con.close()
    return dict(zip(names, (int(value) for value in row), strict=True))


# ---------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000, help="sample shop size (without --workspace)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workspace", type=Path, help="an ingested workspace to read instead")
    parser.add_argument("--out", type=Path, default=Path("/tmp/huaxiang-bench-build"))
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=dt.date(2026, 11, 1))
    parser.add_argument("--memory-limit", default="6GB", help="engine.memory_limit for DuckDB")
    parser.add_argument(
        "--exclude", action="append", default=[], help="leave this standard catalog file out (repeatable)"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of the short steps (GROUP BY, both RFM); best counts"
    )
    parser.add_argument("--skip-pymc", action="store_true", help="leave out pymc-marketing")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    source, prepared = source_workspace(args)
    data = (source / "data").resolve()
    config = yaml.safe_load((source / "huaxiang.yaml").read_text(encoding="utf-8"))
    config.pop("sources", None)  # the bench workspaces only read the ingested data
    config.setdefault("engine", {})["memory_limit"] = args.memory_limit
    full_dir, rfm_dir, sql_dir = args.out / "full", args.out / "rfm", args.out / "handwritten"
    catalog_files = bench_workspace(full_dir, data, config, "all", args.exclude)
    bench_workspace(rfm_dir, data, config, "rfm.yaml", [])
    sql_dir.mkdir(exist_ok=True)
    cached_gib = warm_cache(data)
    steps = Steps()
    load_start = os.getloadavg()[0]

    for _ in range(args.repeat):
        with steps.step("groupby"):
            con = connect(args.memory_limit, sql_dir / "spill")
            con.execute(groupby_sql(data, args.as_of, sql_dir / "groupby.parquet"))
            con.close()

    with steps.step("catalog"):
        full = Workspace(full_dir).build(args.as_of)

    rfm_timings = []
    for _ in range(args.repeat):  # alternated, so both meet the same neighbours on the CPU
        with steps.step("rfm_engine"):
            rfm = build(rfm_dir, args.as_of, catalog=load_catalog(rfm_dir / "tags"))
        rfm_timings.append(rfm.timings)
        with steps.step("rfm_sql"):
            con = connect(args.memory_limit, sql_dir / "spill")
            con.execute(rfm_sql(data, args.as_of, sql_dir / "rfm.parquet"))
            con.close()
        with steps.step("rfm_compute"):
            computed = compute(rfm_dir, args.as_of, load_catalog(rfm_dir / "tags"), load_config(rfm_dir))
        assert computed.tags.num_rows == rfm.rows
        del computed

    agreement = compare_rfm(rfm.path / "tags.parquet", sql_dir / "rfm.parquet")
    assert agreement["engine_rows"] == agreement["sql_rows"] == agreement["joined_rows"], agreement
    assert all(agreement[column] == 0 for column in RFM_COLUMNS), agreement
    con = duckdb.connect()
    sql_result = sql_text(str(sql_dir / "rfm.parquet"))
    buyers_row = con.execute(
        f"SELECT count(*) FROM read_parquet({sql_result}) WHERE frequency_365d > 0"
    ).fetchone()
    con.close()
    buyers = int(buyers_row[0]) if buyers_row else 0

    pymc: dict[str, Any] = {}
    if not args.skip_pymc:
        started = time.perf_counter()
        from pymc_marketing.clv.utils import rfm_segments

        pymc["import_s"] = round(time.perf_counter() - started, 1)
        start = args.as_of - dt.timedelta(days=WINDOW_DAYS)
        with steps.step("pymc_load"):
            con = connect(args.memory_limit, sql_dir / "spill")
            orders = con.execute(
                f"""
                SELECT user_id, order_time, CAST(amount AS DOUBLE) AS amount
                FROM read_parquet({sql_text(str(data / "orders.parquet"))})
                WHERE NOT coalesce(is_after_sale, false)
                  AND order_time >= TIMESTAMP '{start.isoformat()} 00:00:00'
                  AND order_time < TIMESTAMP '{args.as_of.isoformat()} 00:00:00'
                """
            ).df()
            con.close()
        with steps.step("pymc_rfm_segments"):
            segments = rfm_segments(
                orders,
                customer_id_col="user_id",
                datetime_col="order_time",
                monetary_value_col="amount",
                observation_period_end=(args.as_of - dt.timedelta(days=1)).isoformat(),
            )
        pymc["orders"] = len(orders)
        pymc["customers"] = len(segments)
        assert pymc["customers"] == buyers, (pymc["customers"], buyers)
        del orders, segments

    best = steps.best
    groupby_s, catalog_s = best["groupby"], best["catalog"]
    rfm_s, sql_s, compute_s = best["rfm_engine"], best["rfm_sql"], best["rfm_compute"]
    peak_gib = steps.memory.whole_run() / GIB
    pymc_s = best.get("pymc_rfm_segments")
    ratios: dict[str, float | None] = {
        "rfm_vs_sql": round(rfm_s / sql_s, 2),
        "rfm_speedup_vs_pymc": round(pymc_s / compute_s, 2) if pymc_s is not None else None,
        "rfm_build_speedup_vs_pymc": round(pymc_s / rfm_s, 2) if pymc_s is not None else None,
        "catalog_vs_groupby": round(catalog_s / groupby_s, 2),
    }
    engine_steps = ("groupby", "catalog", "rfm_engine", "rfm_compute", "rfm_sql")
    build_peak_gib = max(steps.peak_mib[name] for name in engine_steps) / 1024
    met = {
        "rfm_vs_sql": ratios["rfm_vs_sql"] is not None and ratios["rfm_vs_sql"] <= TARGETS["rfm_vs_sql_max"],
        "rfm_speedup_vs_pymc": ratios["rfm_speedup_vs_pymc"] is not None
        and ratios["rfm_speedup_vs_pymc"] >= TARGETS["rfm_speedup_vs_pymc_min"],
        "catalog_vs_groupby": ratios["catalog_vs_groupby"] is not None
        and ratios["catalog_vs_groupby"] <= TARGETS["catalog_vs_groupby_max"],
        "peak_rss": peak_gib < TARGETS["peak_rss_gib_max"],
    }
    result = {
        "benchmark": "engine_build",
        "date": dt.date.today().isoformat(),
        "as_of": args.as_of.isoformat(),
        "memory_limit": args.memory_limit,
        "rows": full.manifest["rows"],
        "prepared": prepared,
        "cached_gib": round(cached_gib, 2),
        "catalog_files": catalog_files,
        "catalog_excluded": args.exclude,
        "catalog_built": len(full.built),
        "catalog_skipped": full.skipped,
        "catalog_built_tags": full.built,
        "rfm_built": rfm.built,
        "buyers_365d": buyers,
        "repeat": args.repeat,
        "seconds_best": best,
        "seconds_runs": steps.runs,
        "peak_rss_mib": steps.peak_mib,
        "peak_rss_gib_process": round(peak_gib, 2),
        "peak_rss_gib_engine_steps": round(build_peak_gib, 2),
        "load_average": {"start": [round(load_start, 2)], **steps.load},
        "catalog_timings": full.timings,
        "rfm_timings": rfm_timings,
        "rfm_agreement": agreement,
        "pymc": pymc,
        "ratios": ratios,
        "targets": TARGETS,
        "met": met,
        "machine": machine(("duckdb", "ibis-framework", "pandas", "pymc-marketing")),
    }
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
