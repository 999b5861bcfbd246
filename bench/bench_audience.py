"""Benchmark the audience engine (issue 4): bitmap index against DuckDB over the snapshot's Parquet.

    python bench/bench_audience.py --users 10000000 --out /tmp/hx-bench-audience
    python bench/bench_audience.py --snapshot WS/snapshots/2026-11-01 --out /tmp/hx-bench-audience

Without ``--snapshot`` a synthetic snapshot of ``--users`` users is written with
:func:`huaxiang.audience.synthetic.synthetic_snapshot` into
``OUT/synthetic-<users>`` (reused when already there). With ``--snapshot`` (a
folder holding a built snapshot's ``tags.parquet`` and ``manifest.json``, e.g. the
1M-user sample shop) its two files are copied into ``OUT/snapshot``, so the
given snapshot is only read. In both cases the index is then built fresh, with
:func:`huaxiang.audience.build_index` (timed; size on disk against
``tags.parquet``), and in the same process:

- **cold**: the first evaluation of each audience on the freshly opened index
  (bitmaps and number arrays read from their files: the OS page cache is warm,
  since the files were just written) and the first DuckDB query;
- then ``--rounds`` rounds, each running, for the five-condition audience(s):
  the DuckDB SQL query once (``SELECT count(*) FROM read_parquet(tags.parquet)
  WHERE ...``, hand-written, one connection reused), the same tree compiled by
  :func:`huaxiang.audience.to_ibis` once (filter + count on DuckDB), and
  ``--per-round`` times each of: ``evaluate`` of the checked tree (the bitmap
  work), ``AudienceEngine.estimate`` of the text (parse, check and evaluate),
  and ``AudienceEngine.venn`` of three audiences (each parsed, checked and
  evaluated, then every region counted). Interleaving the rounds gives both
  sides the same share of a busy machine. ``--duckdb-table`` also times the SQL
  over a DuckDB in-memory table of the same Parquet (not a target; it shows how
  much of DuckDB's time is reading Parquet).

The bitmap count, the SQL count and the Ibis count must be equal (asserted), and
so must the Venn's regions and a GROUP BY of the three filters in DuckDB. Prints
a summary and, last, one JSON line (appended to ``--json-log`` when given). Exit
status 1 when a target of issue 4 is missed: five conditions p50 <= 20 ms and at
least 20x faster than DuckDB over Parquet; Venn of three p50 <= 50 ms.

``--index-only`` (for 10⁸ users, whose tags table does not fit in memory) writes the
synthetic index directly, one tag at a time, with
:func:`huaxiang.audience.synthetic.synthetic_index` (the same users as the synthetic
snapshot of the same size and seed) into ``OUT/synthetic-index-<users>`` (reused when
complete), and times the same bitmap operations (cold, evaluate, estimate = parse,
check and evaluate, Venn of three, regions only) on a ``SnapshotIndex``; there is no
Parquet file, so no DuckDB or Ibis, and no targets (they are for 10M users).

``--chdb`` (with a snapshot) also loads ``tags.parquet`` into chdb (in-process
ClickHouse) as the wide tag table and the (tag, value) bitmap table of
:mod:`huaxiang.audience.clickhouse`, and times the five-condition audience's
compiled SQL in both modes (``--chdb-rounds`` runs each); the counts must equal
the bitmap index's.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import duckdb
import ibis
import pyarrow.parquet as pq

from huaxiang.audience import AudienceEngine, build_index, check, evaluate, parse, to_ibis, venn
from huaxiang.audience.index import INDEX_DIR, SnapshotIndex
from huaxiang.audience.ops import venn as venn_regions
from huaxiang.audience.synthetic import synthetic_index, synthetic_snapshot
from machine import machine

TARGET_P50_MS = 20.0
TARGET_SPEEDUP = 20.0
TARGET_VENN_MS = 50.0
MIB = 2**20


@dataclass(frozen=True)
class Audience:
    """An audience in the engine's text form and as hand-written DuckDB SQL (a WHERE clause).

    ``sql`` defaults to the text, which is valid DuckDB SQL unless a hierarchical tag is involved.
    """

    name: str
    text: str
    sql_text: str = ""

    @property
    def sql(self) -> str:
        return self.sql_text or self.text


# Synthetic snapshot (huaxiang.audience.synthetic): five conditions with an OR and a NOT, two of them
# wide number ranges (the same audience as in docs/audiences.md). finance_group is hierarchical: a
# parent value matches its children, which the SQL spells out.
SYNTHETIC_FIVE = [
    Audience(
        "five",
        "is_member AND city_tier IN (3, 4, 5, 6) AND (segment = 'vip' OR outing_score >= 0.5) "
        "AND NOT finance_group = '家庭' AND spend_365d >= 500",
        "is_member AND city_tier IN (3, 4, 5, 6) AND (segment = 'vip' OR outing_score >= 0.5) "
        "AND NOT (finance_group = '家庭' OR starts_with(finance_group, '家庭/')) AND spend_365d >= 500",
    )
]
SYNTHETIC_VENN = [
    SYNTHETIC_FIVE[0],
    Audience("young_dyson", "viewed_dyson_30d AND age BETWEEN 18 AND 35"),
    Audience("outgoing", "segment IN ('vip', 'regular') AND outing_score >= 0.3"),
]

# The sample shop (standard catalog): the SPEC's example ("high purchasing power, tier 3-6 city,
# viewed and favorited Dyson hair dryers, promo-driven or impulsive, not churned"), and a wide
# audience of the same shape whose conditions are mostly number ranges (large bitmaps).
SHOP_FIVE = [
    Audience(
        "spec",
        "purchasing_power_level = '高' AND city_tier BETWEEN 3 AND 6 "
        "AND viewed_and_faved_dyson_hair_dryer_30d AND (style_promo_driven OR trait_impulsive) "
        "AND NOT lifecycle_stage = 'churned'",
    ),
    Audience(
        "wide",
        "monetary_365d >= 500 AND city_tier BETWEEN 3 AND 6 "
        "AND (promo_sensitive OR scene_outing_score >= 0.3) "
        "AND NOT lifecycle_stage = 'churned' AND age BETWEEN 18 AND 45",
    ),
]
SHOP_VENN = [
    SHOP_FIVE[0],
    Audience("important_towns", "rfm_class = '重要价值客户' AND city_tier IN (3, 4, 5, 6)"),
    Audience("outing", "scene_outing AND NOT lifecycle_stage = 'churned'"),
]


# ---------------------------------------------------------------------------- helpers


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    """(milliseconds, result) of one call."""
    started = time.perf_counter()
    result = call()
    return (time.perf_counter() - started) * 1000, result


def summary(samples: list[float]) -> dict[str, float | int]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered), 3),
        "p95_ms": round(p95, 3),
        "min_ms": round(ordered[0], 3),
        "max_ms": round(ordered[-1], 3),
    }


def sql_literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


# ---------------------------------------------------------------------------- steps


def prepare(args: argparse.Namespace) -> tuple[Path, str, dict[str, Any]]:
    """The workspace to benchmark, its kind, and how its snapshot was made."""
    made: dict[str, Any] = {}
    if args.snapshot is None:
        workspace = args.out / f"synthetic-{args.users}"
        marker = workspace / f".complete-seed-{args.seed}"
        if not marker.exists():
            shutil.rmtree(workspace, ignore_errors=True)
            seconds, _ = timed(lambda: synthetic_snapshot(workspace, args.users, seed=args.seed))
            marker.touch()
            made["synthetic_seconds"] = round(seconds / 1000, 1)
            print(f"synthetic snapshot of {args.users:,} users written in {seconds / 1000:.1f} s", flush=True)
        else:
            made["synthetic_seconds"] = None  # reused from an earlier run
        return workspace, "synthetic", made
    source = args.snapshot.resolve()
    if not (source / "tags.parquet").is_file() or not (source / "manifest.json").is_file():
        raise SystemExit(f"{args.snapshot} holds no tags.parquet and manifest.json (not a built snapshot).")
    manifest = json.loads((source / "manifest.json").read_text(encoding="utf-8"))
    as_of = dt.date.fromisoformat(str(manifest["as_of"])[:10])
    workspace = args.out / "snapshot"
    shutil.rmtree(workspace, ignore_errors=True)
    target = workspace / "snapshots" / as_of.isoformat()
    target.mkdir(parents=True)
    for name in ("tags.parquet", "manifest.json"):
        shutil.copyfile(source / name, target / name)
    made["source"] = str(source)
    made["source_had_index"] = (source / INDEX_DIR).is_dir()
    return workspace, "snapshot", made


def fresh_index(snapshot_dir: Path) -> dict[str, Any]:
    """Build the snapshot's index from scratch; time and sizes."""
    shutil.rmtree(snapshot_dir / INDEX_DIR, ignore_errors=True)
    report = build_index(snapshot_dir)
    index_dir = snapshot_dir / INDEX_DIR
    numbers = folder_bytes(index_dir / "numbers")
    bitmaps = (index_dir / "bitmaps.bin").stat().st_size
    parquet = (snapshot_dir / "tags.parquet").stat().st_size
    return {
        "seconds": report.seconds,
        "tags": report.tags,
        "skipped": report.skipped,
        "index_mib": round(report.bytes / MIB, 1),
        "bitmaps_mib": round(bitmaps / MIB, 1),
        "numbers_mib": round(numbers / MIB, 1),
        "tags_parquet_mib": round(parquet / MIB, 1),
        "index_over_parquet": round(report.bytes / parquet, 2),
    }


def venn_sql(con: duckdb.DuckDBPyConnection, parquet: Path, audiences: list[Audience]) -> dict[str, int]:
    """Region sizes of the three filters in DuckDB (for the Venn's correctness), keyed like ``Venn``."""
    flags = ", ".join(f"coalesce(({a.sql}), false) AS f{i}" for i, a in enumerate(audiences))
    rows = con.execute(
        f"SELECT f0, f1, f2, count(*) FROM (SELECT {flags} FROM read_parquet({sql_literal(parquet)})) "
        "GROUP BY ALL"
    ).fetchall()
    return {str((bool(a), bool(b), bool(c))): int(n) for a, b, c, n in rows if a or b or c}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000_000, help="synthetic users (without --snapshot)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--snapshot",
        type=Path,
        default=None,
        help="a built snapshot folder (tags.parquet + manifest.json), not synthetic tags",
    )
    parser.add_argument("--out", type=Path, default=Path("/tmp/hx-bench-audience"))
    parser.add_argument("--rounds", type=int, default=20, help="rounds of DuckDB + Ibis + bitmap runs")
    parser.add_argument("--per-round", type=int, default=10, help="bitmap evaluations per round")
    parser.add_argument(
        "--duckdb-table",
        action="store_true",
        help="also time the SQL over an in-memory DuckDB table (informational)",
    )
    parser.add_argument("--json-log", type=Path, default=None, help="append the JSON line to this file")
    parser.add_argument(
        "--index-only",
        action="store_true",
        help="write the synthetic index directly (no tags.parquet, no DuckDB): 10^8 users",
    )
    parser.add_argument(
        "--chdb", action="store_true", help="also time the ClickHouse SQL (wide and bitmap modes) in chdb"
    )
    parser.add_argument("--chdb-rounds", type=int, default=5, help="runs of each chdb query")
    args = parser.parse_args(argv)
    if args.index_only:
        if args.snapshot is not None or args.chdb:
            parser.error("--index-only writes a synthetic index: no --snapshot, no --chdb")
        return main_index_only(args)

    load_start = os.getloadavg()
    started = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    workspace, kind, made = prepare(args)
    five, venn_audiences = (SYNTHETIC_FIVE, SYNTHETIC_VENN) if kind == "synthetic" else (SHOP_FIVE, SHOP_VENN)

    engine = AudienceEngine(workspace)
    snapshot_dir = engine.snapshot.path
    parquet = engine.snapshot.tags_path
    users = pq.read_metadata(parquet).num_rows
    print(f"snapshot {snapshot_dir} ({users:,} users); building the index ...", flush=True)
    index_report = fresh_index(snapshot_dir)
    print(
        f"index: {index_report['seconds']:.1f} s, {index_report['index_mib']:,} MiB "
        f"(tags.parquet {index_report['tags_parquet_mib']:,} MiB)",
        flush=True,
    )

    index: SnapshotIndex = engine.index  # opened now: nothing read yet but index.json
    con = duckdb.connect()
    ibis_con = ibis.duckdb.connect()
    ibis_table = ibis_con.read_parquet(parquet)
    hierarchical = frozenset(n for n, s in index.specs.items() if s.type == "hierarchical_enum")
    trees = {a.name: check(parse(a.text), index.specs) for a in [*five, *venn_audiences]}
    query = {a.name: f"SELECT count(*) FROM read_parquet({sql_literal(parquet)}) WHERE {a.sql}" for a in five}
    ibis_count = {
        a.name: ibis_table.filter(to_ibis(trees[a.name], ibis_table, None, hierarchical)).count()
        for a in five
    }

    def sql_count(name: str) -> int:
        row = con.execute(query[name]).fetchone()
        assert row is not None
        return int(row[0])

    def bitmap_count(name: str) -> int:
        return len(evaluate(trees[name], index))

    def ibis_run(name: str) -> int:
        return int(ibis_count[name].execute())

    def estimate(text: str) -> int:
        return engine.estimate(text).size

    # Cold: the first evaluation reads its bitmaps and number arrays from the files.
    cold: dict[str, float] = {}
    counts: dict[str, dict[str, int]] = {}
    for audience in five:
        found: dict[str, int] = {}
        for method, run in (("bitmap", bitmap_count), ("duckdb", sql_count), ("ibis", ibis_run)):
            ms, found[method] = timed(partial(run, audience.name))
            cold[f"{audience.name}_{method}"] = round(ms, 3)
        counts[audience.name] = found
        assert len(set(found.values())) == 1, (audience.name, found)
    texts = [a.text for a in venn_audiences]
    names = [a.name for a in venn_audiences]
    ms, diagram = timed(partial(engine.venn, texts, names))
    cold["venn"] = round(ms, 3)
    expected = venn_sql(con, parquet, venn_audiences)
    got = {str(pattern): size for pattern, size in diagram.regions.items() if size}
    assert got == expected, (got, expected)
    print(f"cold: {cold}; counts {counts}", flush=True)

    table_con: duckdb.DuckDBPyConnection | None = None
    if args.duckdb_table:
        table_con = duckdb.connect()
        table_con.execute(f"CREATE TABLE tags AS SELECT * FROM read_parquet({sql_literal(parquet)})")

    def table_count(sql: str) -> Any:
        assert table_con is not None
        return table_con.execute(f"SELECT count(*) FROM tags WHERE {sql}").fetchone()

    members_of_venn = [evaluate(trees[name], index) for name in names]
    samples: dict[str, list[float]] = {}
    loads: list[float] = []

    def record(key: str, call: Callable[[], Any]) -> None:
        samples.setdefault(key, []).append(timed(call)[0])

    for round_number in range(args.rounds):
        for audience in five:
            record(f"{audience.name}_duckdb", partial(sql_count, audience.name))
            record(f"{audience.name}_ibis", partial(ibis_run, audience.name))
            if table_con is not None:
                record(f"{audience.name}_duckdb_table", partial(table_count, audience.sql))
            for _ in range(args.per_round):
                record(f"{audience.name}_bitmap", partial(bitmap_count, audience.name))
                record(f"{audience.name}_estimate", partial(estimate, audience.text))
        for _ in range(args.per_round):
            record("venn", partial(engine.venn, texts, names))
            record("venn_regions_only", partial(venn, members_of_venn, names, users))
        loads.append(os.getloadavg()[0])
        print(f"  round {round_number + 1}/{args.rounds} (load {loads[-1]:.2f})", file=sys.stderr, flush=True)

    stats = {key: summary(values) for key, values in samples.items()}
    chdb_report = time_chdb(args, parquet, index, five, counts) if args.chdb else None

    def p50(key: str) -> float:
        return float(stats[key]["p50_ms"])

    # The targets are judged on estimate (text parsed, checked and evaluated), the slower bitmap figure.
    speedups = {a.name: round(p50(f"{a.name}_duckdb") / p50(f"{a.name}_estimate"), 1) for a in five}
    targets: dict[str, dict[str, Any]] = {}
    for audience in five:
        value = p50(f"{audience.name}_estimate")
        targets[f"{audience.name}_p50_le_20ms"] = {"value": value, "met": value <= TARGET_P50_MS}
        speedup = speedups[audience.name]
        targets[f"{audience.name}_speedup_ge_20x"] = {"value": speedup, "met": speedup >= TARGET_SPEEDUP}
    targets["venn3_p50_le_50ms"] = {"value": p50("venn"), "met": p50("venn") <= TARGET_VENN_MS}

    result = {
        "benchmark": "audience_engine",
        "date": dt.date.today().isoformat(),
        "kind": kind,
        "users": users,
        "seed": args.seed if kind == "synthetic" else None,
        "as_of": engine.as_of,
        "snapshot": made,
        "index": index_report,
        "audiences": {a.name: a.text for a in [*five, *venn_audiences]},
        "counts": counts,
        "venn_sizes": dict(zip(names, diagram.sizes, strict=True)),
        "venn_union": diagram.union,
        "cold_ms": cold,
        "warm": stats,
        "speedup_vs_duckdb_parquet": speedups,
        "targets": targets,
        "chdb": chdb_report,
        "rounds": args.rounds,
        "per_round": args.per_round,
        "elapsed_seconds": round(time.perf_counter() - started, 1),
        "peak_rss_mib": round(peak_rss_mib()),
        "load_avg": {
            "start": round(load_start[0], 2),
            "min": round(min(loads), 2),
            "max": round(max(loads), 2),
            "end": round(os.getloadavg()[0], 2),
        },
        "machine": machine(("duckdb", "pyroaring", "ibis-framework", "pyarrow", "numpy")),
    }
    con.close()
    ibis_con.disconnect()
    if table_con is not None:
        table_con.close()
    engine.close()

    print(f"{'measure':<28} {'p50 ms':>10} {'p95 ms':>10} {'n':>6}")
    for key, value in stats.items():
        print(f"{key:<28} {value['p50_ms']:>10,.2f} {value['p95_ms']:>10,.2f} {value['n']:>6}")
    for key, value in targets.items():
        print(f"target {key}: {'met' if value['met'] else 'MISSED'} ({value['value']})")
    line = json.dumps(result, ensure_ascii=False)
    print(line)
    if args.json_log:
        with args.json_log.open("a", encoding="utf-8") as log:
            log.write(line + "\n")
    return 0 if all(value["met"] for value in targets.values()) else 1


def time_chdb(
    args: argparse.Namespace,
    parquet: Path,
    index: SnapshotIndex,
    five: list[Audience],
    counts: dict[str, dict[str, int]],
) -> dict[str, Any]:
    """Load the tags into chdb (both tables, timed) and time each audience's SQL in both modes."""
    from chdb import session as chdb_session

    from huaxiang.audience.clickhouse import bitmap_table_sql, parquet_source, tag_table_sql, to_clickhouse

    folder = args.out / "chdb"
    shutil.rmtree(folder, ignore_errors=True)
    session = chdb_session.Session(str(folder))
    report: dict[str, Any] = {"version": machine(("chdb",))["chdb"]}
    try:
        load = tag_table_sql(pq.read_schema(parquet), index.specs, parquet_source(str(parquet)))
        report["load_tags_seconds"] = round(sum(timed(partial(session.query, q))[0] for q in load) / 1000, 1)
        report["load_bitmaps_seconds"] = round(
            sum(timed(partial(session.query, q))[0] for q in bitmap_table_sql(index.specs)) / 1000, 1
        )
        report["bitmap_table_mib"] = round(
            float(
                str(
                    session.query(
                        "SELECT sum(bytes_on_disk) FROM system.parts WHERE active AND table = 'tag_bitmaps'",
                        "CSV",
                    )
                ).strip()
                or 0
            )
            / MIB,
            1,
        )
        print(
            f"chdb: loaded in {report['load_tags_seconds']} s + {report['load_bitmaps_seconds']} s",
            flush=True,
        )
        for audience in five:
            tree = check(parse(audience.text), index.specs)
            for mode in ("wide", "bitmap"):
                query = to_clickhouse(tree, index.specs, mode=mode)
                times = []
                for _ in range(args.chdb_rounds):
                    ms, found = timed(partial(session.query, query, "CSV"))
                    times.append(ms)
                    assert int(str(found).strip()) == counts[audience.name]["bitmap"], (mode, found)
                report[f"{audience.name}_{mode}"] = summary(times)
                print(
                    f"chdb {audience.name} {mode}: p50 {report[f'{audience.name}_{mode}']['p50_ms']} ms",
                    flush=True,
                )
    finally:
        session.close()
        shutil.rmtree(folder, ignore_errors=True)
    return report


def main_index_only(args: argparse.Namespace) -> int:
    """The bitmap operations on a synthetic index written directly (``--index-only``)."""
    load_start = os.getloadavg()
    started = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    workspace = args.out / f"synthetic-index-{args.users}"
    marker = workspace / f".complete-seed-{args.seed}"
    made: dict[str, Any] = {}
    if not marker.exists():
        shutil.rmtree(workspace, ignore_errors=True)
        seconds, _ = timed(lambda: synthetic_index(workspace, args.users, seed=args.seed))
        marker.write_text(f"{seconds / 1000:.1f}\n")
        made["synthetic_index_seconds"] = round(seconds / 1000, 1)
        made["synthetic_index_peak_rss_mib"] = round(peak_rss_mib())
        print(f"synthetic index of {args.users:,} users written in {seconds / 1000:.1f} s", flush=True)
    else:
        made["synthetic_index_seconds"] = float(marker.read_text().strip() or 0) or None  # an earlier run's
    folder = next((workspace / "snapshots").iterdir()) / INDEX_DIR
    index = SnapshotIndex(folder)
    index_report = {
        "index_mib": round(folder_bytes(folder) / MIB, 1),
        "bitmaps_mib": round((folder / "bitmaps.bin").stat().st_size / MIB, 1),
        "numbers_mib": round(folder_bytes(folder / "numbers") / MIB, 1),
        "tags": len(index.specs),
    }
    users = index.users
    texts = {a.name: a.text for a in [*SYNTHETIC_FIVE, *SYNTHETIC_VENN]}
    trees = {name: check(parse(text), index.specs) for name, text in texts.items()}
    names = [a.name for a in SYNTHETIC_VENN]

    def estimate(text: str) -> int:  # what AudienceEngine.estimate does (no saved audiences involved)
        return len(evaluate(check(parse(text), index.specs), index))

    def venn_of_texts() -> Any:
        return venn_regions(
            [evaluate(check(parse(texts[n]), index.specs), index) for n in names], names, users
        )

    def bitmap_count(name: str) -> int:
        return len(evaluate(trees[name], index))

    cold: dict[str, float] = {}
    counts: dict[str, int] = {}
    for audience in SYNTHETIC_FIVE:
        ms, counts[audience.name] = timed(partial(bitmap_count, audience.name))
        cold[f"{audience.name}_bitmap"] = round(ms, 3)
    ms, diagram = timed(venn_of_texts)
    cold["venn"] = round(ms, 3)
    print(f"cold: {cold}; counts {counts}", flush=True)
    members_of_venn = [evaluate(trees[name], index) for name in names]
    samples: dict[str, list[float]] = {}
    loads: list[float] = []

    def record(key: str, call: Callable[[], Any]) -> None:
        samples.setdefault(key, []).append(timed(call)[0])

    for round_number in range(args.rounds):
        for audience in SYNTHETIC_FIVE:
            for _ in range(args.per_round):
                record(f"{audience.name}_bitmap", partial(bitmap_count, audience.name))
                record(f"{audience.name}_estimate", partial(estimate, audience.text))
        for _ in range(args.per_round):
            record("venn", venn_of_texts)
            record("venn_regions_only", partial(venn_regions, members_of_venn, names, users))
        loads.append(os.getloadavg()[0])
        print(f"  round {round_number + 1}/{args.rounds} (load {loads[-1]:.2f})", file=sys.stderr, flush=True)
    stats = {key: summary(values) for key, values in samples.items()}
    result = {
        "benchmark": "audience_engine_index_only",
        "date": dt.date.today().isoformat(),
        "kind": "synthetic_index",
        "users": users,
        "seed": args.seed,
        "snapshot": made,
        "index": index_report,
        "audiences": texts,
        "counts": counts,
        "venn_sizes": dict(zip(names, diagram.sizes, strict=True)),
        "venn_union": diagram.union,
        "cold_ms": cold,
        "warm": stats,
        "rounds": args.rounds,
        "per_round": args.per_round,
        "elapsed_seconds": round(time.perf_counter() - started, 1),
        "peak_rss_mib": round(peak_rss_mib()),
        "load_avg": {
            "start": round(load_start[0], 2),
            "min": round(min(loads), 2),
            "max": round(max(loads), 2),
            "end": round(os.getloadavg()[0], 2),
        },
        "machine": machine(("pyroaring", "pyarrow", "numpy")),
    }
    index.close()
    print(f"{'measure':<28} {'p50 ms':>10} {'p95 ms':>10} {'n':>6}")
    for key, value in stats.items():
        print(f"{key:<28} {value['p50_ms']:>10,.2f} {value['p95_ms']:>10,.2f} {value['n']:>6}")
    line = json.dumps(result, ensure_ascii=False)
    print(line)
    if args.json_log:
        with args.json_log.open("a", encoding="utf-8") as log:
            log.write(line + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
