"""Ingest every configured source into the canonical tables, losing nothing.

For each source: read it raw, stage it (map, type, check), keep the loaded
rows and write the rejected ones with their reasons. Then, per canonical
table: union the sources, reject later rows that repeat a key, add rows
derived from other tables (users seen only in orders, products seen only in
events), flag orphans, and write everything into a new version of
``DIR/data`` that replaces the previous one atomically.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import ibis
import pyarrow as pa
import pyarrow.parquet as pq

from huaxiang.config import ORDER_LINES, WorkspaceConfig
from huaxiang.errors import SourceError, StrictIngestError
from huaxiang.io.coerce import IBIS_TYPES, time_settings
from huaxiang.io.readers import ROW, connect, read_source
from huaxiang.io.stage import (
    AFTER_SALE,
    COLUMN,
    DETAIL,
    REASON,
    Staged,
    duplicate_rows,
    stage,
)
from huaxiang.model.schema import TABLES
from huaxiang.storage import publishing

SOURCE = "_source"
REPORT_FILE = "ingest_report.json"
REJECT_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("row", pa.int64()),
        ("column", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("raw", pa.string()),
    ]
)
Progress = Callable[[str], None]
EXAMPLES = 5


@dataclass
class SourceReport:
    """What happened to one source's rows."""

    into: str
    location: str
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)


@dataclass
class TableReport:
    """One canonical table as written."""

    rows: int
    from_sources: list[str]
    derived_rows: int = 0
    orphans: int = 0


@dataclass
class IngestReport:
    """The ingest report, also written as ``data/ingest_report.json``."""

    workspace: str
    ingested_at: str
    seconds: float
    published: bool
    sources: dict[str, SourceReport]
    tables: dict[str, TableReport]
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def rows_rejected(self) -> int:
        return sum(s.rows_rejected for s in self.sources.values())

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=2, sort_keys=True)


def ingest(
    workspace: Path,
    config: WorkspaceConfig,
    *,
    strict: bool = False,
    dry_run: bool = False,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> IngestReport:
    """Ingest all sources of ``config`` and publish ``workspace/data`` (unless ``dry_run``).

    Parameters
    ----------
    workspace
        The workspace folder (relative source paths are resolved against it).
    config
        Its validated ``huaxiang.yaml``.
    strict
        Raise :class:`StrictIngestError` and publish nothing when any row is rejected.
    dry_run
        Check everything and report, but write nothing.
    now
        The ingest time (local to the workspace zone); rows after it are rejected.
    progress
        Called with a short message as each step starts.
    """
    started = time.perf_counter()
    if not config.sources:
        raise SourceError(
            "No sources are configured: add them under 'sources:' in huaxiang.yaml "
            "(see docs/workspace.md), or run 'huaxiang sample' for a sample shop."
        )
    zone = ZoneInfo(config.timezone)
    now = now or datetime.now(zone).replace(tzinfo=None)
    say = progress or (lambda message: None)
    reports: dict[str, SourceReport] = {}
    rejects: dict[str, list[pa.Table]] = {}
    parts: dict[str, list[tuple[str, ibis.Table]]] = {name: [] for name in TABLES}
    derivations: list[tuple[str, ibis.Table, tuple[str, ...]]] = []
    staged_by_name: dict[str, Staged] = {}
    claimed: list[ibis.Table] = []  # order ids loaded by earlier sources (orders / order_lines)

    with tempfile.TemporaryDirectory(prefix="huaxiang-ingest-") as scratch:
        con = connect(config, Path(scratch) / "spill")
        for name, source in config.sources.items():
            say(f"reading {name}")
            raw = read_source(con, name, source, workspace, Path(scratch))
            times = time_settings(source.time_format, source.timezone, config.timezone)
            csv_hint = (raw.location, "utf-8") if source.resolved_format == "csv" else None
            duplicates = con.create_table(f"duplicates_{name}", duplicate_rows(raw.table, raw.columns),
                                          temp=True)
            staged = stage(raw, source, times, now, duplicates, csv_hint)
            table = con.create_table(f"staged_{name}", staged.table, temp=True)
            staged = replace(staged, table=table)
            staged_by_name[name] = staged
            reports[name] = SourceReport(source.into, raw.location, rows_read=raw.rows_read)
            rejects[name] = [_malformed_rejects(name, raw.malformed), _staged_rejects(name, staged)]
            loaded = table.filter(table[REASON].isnull()).mutate(**{SOURCE: ibis.literal(name)})
            # Lines without a mapped line_no are numbered in source order within their order.
            has_line_no = "line_no" in staged.mapping
            if source.into == ORDER_LINES:
                loaded = _drop_claimed_orders(loaded, claimed, staged, rejects[name])
                parts["order_items"].append((name, _items_from_lines(loaded, has_line_no)))
                parts["orders"].append((name, _orders_from_lines(loaded)))
            elif source.into == "order_items":
                parts["order_items"].append((name, _items_from_lines(loaded, has_line_no)))
            else:
                parts[source.into].append((name, loaded))
            if source.into in ("orders", ORDER_LINES):
                claimed.append(
                    loaded.select("order_id").distinct().mutate(_first=ibis.literal(name),
                                                                _n=ibis.literal(len(claimed)))
                )
            for table_name, columns in staged.derived.items():
                derivations.append((table_name, _entity_rows(table, table_name), columns))

        say("combining tables")
        finals = _combine(con, parts, rejects, staged_by_name)
        _add_derived(con, finals, derivations, len(rejects))
        _flag_orphans(finals)
        report = _report(workspace, config, reports, rejects, finals, started, now)
        if strict and report.rows_rejected:
            raise StrictIngestError(_strict_message(report))
        if dry_run:
            report.published = False
            return report
        say("writing tables")
        with publishing(workspace / "data") as out:
            (out / "rejects").mkdir()
            for table_name, expr in finals.items():
                _write_table(con, expr, table_name, out / f"{table_name}.parquet")
            for name, pieces in rejects.items():
                pq.write_table(_concat_rejects(pieces), out / "rejects" / f"{name}.parquet")
            report.published = True
            report.seconds = round(time.perf_counter() - started, 3)
            (out / REPORT_FILE).write_text(report.to_json(), encoding="utf-8")
    return report


def _malformed_rejects(name: str, malformed: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {"source": name, "row": m[ROW], "column": m["column"], "reason": m["reason"],
             "detail": m["detail"], "raw": m["raw"]}
            for m in malformed
        ],
        schema=REJECT_SCHEMA,
    )


def _staged_rejects(name: str, staged: Staged) -> pa.Table:
    t = staged.table
    rejected = t.filter(t[REASON].notnull()).select(ROW, COLUMN, REASON, DETAIL)
    data = rejected.inner_join(staged.raw_values(), ROW).order_by(ROW).to_pyarrow()
    raw_text = _raw_json(data, staged.raw_names)
    return pa.table(
        {
            "source": pa.array([name] * data.num_rows, pa.string()),
            "row": data[ROW].cast(pa.int64()),
            "column": data[COLUMN].cast(pa.string()),
            "reason": data[REASON].cast(pa.string()),
            "detail": data[DETAIL].cast(pa.string()),
            "raw": pa.array(raw_text, pa.string()),
        },
        schema=REJECT_SCHEMA,
    )


def _raw_json(data: pa.Table, names: tuple[str, ...]) -> list[str]:
    """The original values of each row (its ``raw__i`` columns) as JSON objects."""
    raw_columns = [f"raw__{i}" for i in range(len(names))]
    if not data.num_rows:
        return []
    return [
        json.dumps(dict(zip(names, values, strict=True)), ensure_ascii=False, default=str)
        for values in zip(*(data[c].to_pylist() for c in raw_columns), strict=True)
    ]


def _drop_claimed_orders(
    lines: ibis.Table, claimed: list[ibis.Table], staged: Staged, rejects: list[pa.Table]
) -> ibis.Table:
    """Reject every line of an order an earlier source already loaded (the first source wins).

    Without this, the later lines would both fail the orders key and be loaded
    (or fail) as order items: one row counted twice, and orders merged silently.
    """
    if not claimed:
        return lines
    earlier = ibis.union(*claimed, distinct=False) if len(claimed) > 1 else claimed[0]
    earlier = earlier.group_by("order_id").aggregate(_first=earlier._first.argmin(earlier._n))
    repeated = lines.inner_join(earlier, "order_id").select(ROW, "order_id", "_first")
    data = repeated.inner_join(staged.raw_values(), ROW).order_by(ROW).to_pyarrow()
    if data.num_rows:
        rows = data.select([ROW, "order_id", "_first"]).to_pylist()
        rejects.append(
            pa.table(
                {
                    "source": pa.array([staged.name] * data.num_rows, pa.string()),
                    "row": pa.array([r[ROW] for r in rows], pa.int64()),
                    "column": pa.array(["order_id"] * data.num_rows, pa.string()),
                    "reason": pa.array(["duplicate_key"] * data.num_rows, pa.string()),
                    "detail": pa.array(
                        [
                            f"order_id {r['order_id']!r} was already loaded (first from source "
                            f"'{r['_first']}'); the first source's order is kept"
                            for r in rows
                        ],
                        pa.string(),
                    ),
                    "raw": pa.array(_raw_json(data, staged.raw_names), pa.string()),
                },
                schema=REJECT_SCHEMA,
            )
        )
    return lines.anti_join(earlier, "order_id")


def _items_from_lines(lines: ibis.Table, has_line_no: bool) -> ibis.Table:
    line_no = (
        lines.line_no
        if has_line_no
        else (ibis.row_number().over(group_by=lines.order_id, order_by=lines[ROW]) + 1).cast("int64")
    )
    return lines.mutate(line_no=line_no, quantity=lines.quantity.abs())


def _orders_from_lines(lines: ibis.Table) -> ibis.Table:
    order_columns = [c.name for c in TABLES["orders"].columns]
    first = {
        c: lines[c].argmin(lines[ROW])
        for c in order_columns
        if c not in ("order_id", "order_time", "amount", AFTER_SALE)
    }
    line_amount = lines.quantity.abs().cast("decimal(18,2)") * lines.unit_price - lines.discount.fill_null(0)
    return lines.group_by("order_id").aggregate(
        order_time=lines.order_time.min(),
        amount=line_amount.sum().cast(IBIS_TYPES["decimal"]),
        **{AFTER_SALE: lines[AFTER_SALE].any()},
        **first,
        **{ROW: lines[ROW].min(), SOURCE: lines[SOURCE].arbitrary()},
    )


def _entity_rows(staged: ibis.Table, table_name: str) -> ibis.Table:
    """Rows that speak for an entity of ``table_name`` (a user, a product).

    Every parsed row with a valid key counts, even one rejected for another
    reason: a customer whose only lines were postage is still a customer. Rows
    matched by a ``reject_if`` rule on the key's own column do not: such a rule
    says those keys are no entities (``POST`` is not a product).
    """
    return staged.filter(~staged[f"{table_name}__not_entity"])


def _add_derived(
    con: Any,
    finals: dict[str, ibis.Table],
    derivations: list[tuple[str, ibis.Table, tuple[str, ...]]],
    order: int,
) -> None:
    """Add users / products seen only in other tables (e.g. buyers with no user record)."""
    found: dict[str, list[ibis.Table]] = {}
    for position, (table_name, staged, columns) in enumerate(derivations):
        key = TABLES[table_name].key[0]
        seen = staged.filter(staged[key].notnull())
        found.setdefault(table_name, []).append(
            seen.group_by(key).aggregate(
                _source_order=ibis.literal(position),
                _first=seen[ROW].min(),
                **{c: seen[f"{table_name}__{c}"].argmin(seen[ROW]) for c in columns},
            )
        )
    for table_name, pieces in found.items():
        key = TABLES[table_name].key[0]
        # Sources may derive different attributes: give every piece the same columns.
        kinds = {c.name: c.kind for c in TABLES[table_name].columns}
        names = list(dict.fromkeys(c for piece in pieces for c in piece.columns))
        pieces = [
            piece.mutate(
                **{c: ibis.null(IBIS_TYPES[kinds[c]]) for c in names if c not in piece.columns}
            ).select(*names)
            for piece in pieces
        ]
        rows = ibis.union(*pieces, distinct=False) if len(pieces) > 1 else pieces[0]
        # The first source (in huaxiang.yaml order) that sees an entity describes it.
        rows = rows.mutate(
            _n=ibis.row_number().over(group_by=rows[key], order_by=[rows._source_order, rows._first])
        )
        rows = rows.filter(rows._n == 0).drop("_n", "_first", "_source_order")
        if table_name in finals:
            rows = rows.anti_join(finals[table_name], key)
        rows = _canonical(rows, table_name).mutate(
            **{SOURCE: ibis.null("string"), ROW: ibis.null("int64"), "_order": ibis.literal(order)}
        )
        combined = ibis.union(finals[table_name], rows) if table_name in finals else rows
        finals[table_name] = con.create_table(f"final_{table_name}_derived", combined, temp=True)


def _combine(
    con: Any,
    parts: dict[str, list[tuple[str, ibis.Table]]],
    rejects: dict[str, list[pa.Table]],
    staged: dict[str, Staged],
) -> dict[str, ibis.Table]:
    """Union each table's sources and reject rows that repeat a key (the first is kept)."""
    finals: dict[str, ibis.Table] = {}
    order = {name: i for i, name in enumerate(rejects)}
    for table_name, spec in TABLES.items():
        if not parts[table_name]:
            continue
        pieces = [
            _canonical(expr, table_name).mutate(_order=ibis.literal(order[src]))
            for src, expr in parts[table_name]
        ]
        combined = ibis.union(*pieces, distinct=False) if len(pieces) > 1 else pieces[0]
        combined = combined.select(*spec.column_names, SOURCE, ROW, "_order")
        if spec.key:
            # Keys are nearly always unique: rank only the rows of keys seen more than once.
            key = list(spec.key)
            repeated = combined.group_by(key).aggregate(_copies=ibis._.count()).filter(ibis._._copies > 1)
            suspects = combined.semi_join(repeated, key)
            window = {"group_by": [suspects[k] for k in key], "order_by": [suspects._order, suspects[ROW]]}
            ranked = suspects.mutate(
                _rank=ibis.row_number().over(**window),
                _first=suspects[SOURCE].first().over(**window),
            )
            ranked = con.create_table(f"repeated_{table_name}", ranked, temp=True)
            _key_rejects(ranked, spec.key, rejects, staged)
            losers = ranked.filter(ranked._rank > 0).select(SOURCE, ROW)
            combined = combined.anti_join(losers, [SOURCE, ROW])
        finals[table_name] = combined
    return finals


def _canonical(expr: ibis.Table, table_name: str) -> ibis.Table:
    spec = TABLES[table_name]
    values = {}
    for column in spec.columns:
        target = IBIS_TYPES[column.kind]
        values[column.name] = (
            expr[column.name].cast(target) if column.name in expr.columns else ibis.null(target)
        )
    keep = {c: expr[c] for c in (SOURCE, ROW) if c in expr.columns}
    return expr.select(**values, **keep)


def _key_rejects(
    combined: ibis.Table,
    key: tuple[str, ...],
    rejects: dict[str, list[pa.Table]],
    staged: dict[str, Staged],
) -> None:
    repeated = combined.filter(combined._rank > 0)
    key_text = ibis.literal(", ").join([combined[k].cast("string") for k in key]) if len(key) > 1 else (
        combined[key[0]].cast("string")
    )
    rows = repeated.select(
        source=repeated[SOURCE],
        row=repeated[ROW],
        key=key_text,
        first=repeated._first,
    ).to_pyarrow().to_pylist()
    by_source: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_source.setdefault(r["source"], []).append(
            {
                "source": r["source"],
                "row": r["row"],
                "column": ",".join(key),
                "reason": "duplicate_key",
                "detail": f"{'/'.join(key)} {r['key']!r} was already loaded (first from source "
                f"'{r['first']}'); the first row is kept",
                "raw": None,
            }
        )
    for source, items in by_source.items():
        raw = _raw_by_row(staged[source], [item["row"] for item in items])
        for item in items:
            item["raw"] = raw.get(item["row"])
        rejects[source].append(pa.Table.from_pylist(items, schema=REJECT_SCHEMA))


def _raw_by_row(staged: Staged, rows: list[int]) -> dict[int, str]:
    """The original values (JSON) of some rows of a staged source, by row number."""
    wanted = ibis.memtable(pa.table({"_wanted": pa.array(rows, pa.int64())}))
    raw = staged.raw_values()
    found = raw.inner_join(wanted, raw[ROW] == wanted._wanted).drop("_wanted").to_pyarrow()
    return dict(zip(found[ROW].to_pylist(), _raw_json(found, staged.raw_names), strict=True))


def _flag_orphans(finals: dict[str, ibis.Table]) -> None:
    for child, parent, key in (("order_items", "orders", "order_id"), ("events", "products", "product_id")):
        if child not in finals or parent not in finals:
            continue
        t, known = finals[child], finals[parent].select(key).distinct()
        t = t.left_join(known.mutate(_known=ibis.literal(True)), key)
        orphan = t[key].notnull() & t._known.isnull()
        finals[child] = t.mutate(is_orphan=orphan).drop("_known", f"{key}_right")


def _write_table(con: Any, expr: ibis.Table, table_name: str, path: Path) -> None:
    spec = TABLES[table_name]
    ordered = expr.order_by([*spec.key, "_order", ROW]).select(*spec.column_names)
    con.to_parquet(ordered, path)


def _concat_rejects(pieces: list[pa.Table]) -> pa.Table:
    table = pa.concat_tables(pieces) if pieces else REJECT_SCHEMA.empty_table()
    return table.sort_by([("row", "ascending"), ("reason", "ascending")])


def _report(
    workspace: Path,
    config: WorkspaceConfig,
    reports: dict[str, SourceReport],
    rejects: dict[str, list[pa.Table]],
    finals: dict[str, ibis.Table],
    started: float,
    now: datetime,
) -> IngestReport:
    counted: dict[str, int] = {}
    tables: dict[str, TableReport] = {}
    for table_name, expr in finals.items():
        stats = expr.aggregate(
            rows=expr.count(),
            derived=expr[SOURCE].isnull().sum(),
            orphans=(expr.is_orphan.sum() if "is_orphan" in expr.columns else ibis.literal(0)),
        ).to_pyarrow().to_pylist()[0]
        by_source = expr.filter(expr[SOURCE].notnull()).group_by(SOURCE).aggregate(n=ibis._.count())
        source_rows = by_source.to_pyarrow().to_pylist()
        for row in source_rows:
            name = row[SOURCE]
            lines_form = reports[name].into == ORDER_LINES
            if not lines_form or table_name == "order_items":
                counted[name] = counted.get(name, 0) + int(row["n"])
        tables[table_name] = TableReport(
            rows=int(stats["rows"]),
            from_sources=sorted(r[SOURCE] for r in source_rows),
            derived_rows=int(stats["derived"] or 0),
            orphans=int(stats["orphans"] or 0),
        )
    examples: dict[str, list[dict[str, Any]]] = {}
    for name, report in reports.items():
        table = _concat_rejects(rejects[name])
        report.rows_rejected = table.num_rows
        report.rows_loaded = counted.get(name, 0)
        reasons: dict[str, int] = {}
        for reason in table["reason"].to_pylist():
            reasons[reason] = reasons.get(reason, 0) + 1
        report.rejected_by_reason = dict(sorted(reasons.items()))
        examples[name] = [
            {k: r[k] for k in ("row", "column", "reason", "detail")}
            for r in table.slice(0, EXAMPLES).to_pylist()
        ]
        if report.rows_read != report.rows_loaded + report.rows_rejected:
            raise AssertionError(
                f"internal error: source {name} read {report.rows_read} rows but loaded "
                f"{report.rows_loaded} and rejected {report.rows_rejected}"
            )
    return IngestReport(
        workspace=str(workspace),
        ingested_at=now.isoformat(timespec="seconds"),
        seconds=round(time.perf_counter() - started, 3),
        published=False,
        sources=reports,
        tables=tables,
        examples=examples,
    )


def _strict_message(report: IngestReport) -> str:
    lines = [f"--strict: {report.rows_rejected:,} rows were rejected; nothing was published."]
    for name, examples in report.examples.items():
        for r in examples[:3]:
            lines.append(f"  {name} row {r['row']}: {r['reason']} ({r['column']}): {r['detail']}")
    lines.append("See every reason with 'huaxiang validate' (it writes nothing).")
    return "\n".join(lines)
