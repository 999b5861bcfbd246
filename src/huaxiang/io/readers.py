"""Read a configured source into the engine as raw columns plus its row number.

This is the one engine-specific step of ingestion (DuckDB reads CSV and
Parquet natively); everything after it is Ibis. Each raw table gets ``_row``:
the 1-based number of the record in the source (for a CSV with a header, the
header is record 0), so every reject can be traced back to its line.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa

from huaxiang.config import SourceConfig, WorkspaceConfig
from huaxiang.errors import SourceError, SourceNotFoundError

ROW = "_row"
_CHUNK = 1 << 24


@dataclass
class RawSource:
    """A source as read: its raw table, row count and the records it could not parse."""

    name: str
    location: str
    table: ibis.Table
    columns: list[str]
    rows_read: int
    malformed: list[dict[str, Any]]


def connect(config: WorkspaceConfig | None, spill: Path) -> Any:
    """An in-process DuckDB with the workspace's ``engine`` settings (threads, memory_limit).

    Intermediate tables spill to the folder ``spill`` when memory runs short; its parent
    must exist (DuckDB creates only the last level). Ingest and build both connect here.
    """
    options: dict[str, Any] = {"temp_directory": str(spill)}
    if config is not None and config.engine.threads:
        options["threads"] = config.engine.threads
    if config is not None and config.engine.memory_limit:
        options["memory_limit"] = config.engine.memory_limit
    con = ibis.duckdb.connect(**options)
    con.raw_sql("SET enable_progress_bar = false")
    return con


def read_source(
    con: Any, name: str, source: SourceConfig, workspace: Path, scratch: Path
) -> RawSource:
    """Read source ``name`` into ``con`` (a DuckDB Ibis backend)."""
    fmt = source.resolved_format
    if fmt == "table":
        return _read_table(con, name, source, workspace)
    assert source.path is not None
    path = (workspace / source.path).resolve()
    if not path.is_file():
        raise SourceNotFoundError(
            f"Source '{name}': file {source.path} not found (looked at {path}). "
            f"Fix 'sources.{name}.path' in huaxiang.yaml."
        )
    if fmt == "parquet":
        return _read_parquet(con, name, path)
    return _read_csv(con, name, source, path, scratch)


def _read_parquet(con: Any, name: str, path: Path) -> RawSource:
    raw = f"raw_{name}"
    try:
        # A view, not a copy: Parquet is columnar and cheap to scan again.
        con.raw_sql(
            f"CREATE OR REPLACE TEMP VIEW {_q(raw)} AS SELECT * EXCLUDE (file_row_number), "
            f"file_row_number + 1 AS {ROW} "
            f"FROM read_parquet({_lit(str(path))}, file_row_number = true)"
        )
        table = con.table(raw)
    except Exception as exc:
        raise SourceError(f"Source '{name}': cannot read {path} as Parquet: {_first_line(exc)}") from None
    columns = [c for c in table.columns if c != ROW]
    return RawSource(name, str(path), table, columns, int(table.count().execute()), [])


def _read_table(con: Any, name: str, source: SourceConfig, workspace: Path) -> RawSource:
    assert source.table is not None
    url = source.connection or "duckdb://"
    if url.startswith("duckdb://") and len(url) > len("duckdb://"):
        # A relative DuckDB file is relative to the workspace, like every other path.
        db = Path(url[len("duckdb://") :])
        url = f"duckdb://{(workspace / db).resolve() if not db.is_absolute() else db}"
    try:
        other = ibis.connect(url)
        data = other.table(source.table).to_pyarrow()
    except Exception as exc:
        raise SourceError(
            f"Source '{name}': cannot read table {source.table!r} from {url}: {_first_line(exc)}"
        ) from None
    data = data.append_column(ROW, pa.array(range(1, data.num_rows + 1), pa.int64()))
    table = con.create_table(f"raw_{name}", data, temp=True)
    columns = [c for c in table.columns if c != ROW]
    return RawSource(name, f"{url}#{source.table}", table, columns, data.num_rows, [])


def _read_csv(con: Any, name: str, source: SourceConfig, path: Path, scratch: Path) -> RawSource:
    opts = source.csv
    utf8_path = _as_utf8(name, path, opts.encoding, scratch)
    raw, rejects = f"raw_{name}", f"rejects_{name}"
    args = [
        f"delim = {_lit(opts.delimiter)}",
        f"quote = {_lit(opts.quote)}",
        f"header = {'true' if opts.header else 'false'}",
        "all_varchar = true",
        "store_rejects = true",
        f"rejects_table = {_lit(rejects)}",
        f"rejects_scan = {_lit(rejects + '_scan')}",
        f"nullstr = [{', '.join(_lit(v) for v in opts.null_values)}]",
        "sample_size = -1",
    ]
    if opts.column_names:
        args.append(f"names = [{', '.join(_lit(c) for c in opts.column_names)}]")
    if path.stat().st_size == 0:
        raise SourceError(f"Source '{name}': {path} is empty (not even a header).")
    try:
        con.raw_sql(
            f"CREATE OR REPLACE TEMP TABLE {_q(raw)} AS "
            f"SELECT * FROM read_csv({_lit(str(utf8_path))}, {', '.join(args)})"
        )
        bad = fetch_arrow(
            con, f"SELECT line, error_type, csv_line, error_message FROM {_q(rejects)} ORDER BY line"
        ).to_pylist()
    except Exception as exc:
        raise SourceError(f"Source '{name}': cannot read {path} as CSV: {_first_line(exc)}") from None
    header_lines = 1 if opts.header else 0
    by_line: dict[int, dict[str, Any]] = {}
    for r in bad:
        # DuckDB may report several errors for one record: keep one reject per record.
        row = int(r["line"]) - header_lines
        message = f"{r['error_type'].lower()}: {r['error_message'].splitlines()[0]}"
        if row in by_line:
            by_line[row]["detail"] += "; " + message
        else:
            by_line[row] = {ROW: row, "reason": "malformed_row", "column": None,
                            "detail": message, "raw": _fields_json(r["csv_line"], opts.delimiter, opts.quote)}
    malformed = [by_line[row] for row in sorted(by_line)]
    table = con.table(raw)
    columns = list(table.columns)
    good = int(table.count().execute())
    # rowid follows file order; each skipped record shifts the numbers after it.
    if malformed:
        shifts = ", ".join(str(m[ROW] - i) for i, m in enumerate(malformed))
        skipped = (
            f"(SELECT count(*) FROM (SELECT unnest([{shifts}]) AS s) WHERE s <= {_q(raw)}.rowid + 1)"
        )
    else:
        skipped = "0"
    con.raw_sql(
        f"CREATE OR REPLACE TEMP TABLE {_q(raw)} AS "
        f"SELECT *, rowid + 1 + {skipped} AS {ROW} FROM {_q(raw)} ORDER BY rowid"
    )
    return RawSource(name, str(path), con.table(raw), columns, good + len(malformed), malformed)


def _as_utf8(name: str, path: Path, encoding: str, scratch: Path) -> Path:
    """Check the encoding, and transcode to a UTF-8 scratch file when it is not UTF-8.

    DuckDB reads only UTF-8 (and a few others); decoding here also lets a bad
    byte be reported with its line instead of failing deep in the reader.
    """
    codec = codecs.lookup(encoding)
    is_utf8 = codec.name in ("utf-8", "utf-8-sig")
    decoder = codec.incrementaldecoder("strict")
    target = None if is_utf8 else tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=scratch, suffix=".csv", delete=False
    )
    line, offset = 1, 0
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                try:
                    text = decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    good = chunk[: exc.start]
                    bad_line = line + good.count(b"\n")
                    hint = (
                        " Chinese exports are often GBK: set "
                        f"'sources.{name}.csv.encoding: gbk' (or gb18030)."
                        if is_utf8
                        else f" Check 'sources.{name}.csv.encoding'."
                    )
                    raise SourceError(
                        f"Source '{name}': {path.name} line {bad_line} (byte {offset + exc.start}) "
                        f"is not valid {encoding}: {chunk[exc.start:exc.start + 4]!r}.{hint}"
                    ) from None
                if target is not None:
                    target.write(text)
                line += chunk.count(b"\n")
                offset += len(chunk)
            tail = decoder.decode(b"", final=True)
            if target is not None:
                target.write(tail)
    except UnicodeDecodeError:
        raise SourceError(
            f"Source '{name}': {path.name} ends inside a multi-byte {encoding} character."
        ) from None
    finally:
        if target is not None:
            target.close()
    return path if target is None else Path(target.name)


def _fields_json(line: str | None, delimiter: str, quote: str) -> str | None:
    """A malformed record's fields as a JSON array (its values cannot be matched to column names)."""
    if line is None:
        return None
    try:
        fields = next(csv.reader(io.StringIO(line), delimiter=delimiter, quotechar=quote), [])
    except csv.Error:
        fields = [line]
    return json.dumps(fields, ensure_ascii=False)


def sniff_delimiter(path: Path, encoding: str) -> str | None:
    """Guess a CSV file's delimiter from its first lines (for error hints)."""
    try:
        with path.open(encoding=encoding, errors="replace") as handle:
            sample = handle.read(8192)
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except (csv.Error, OSError):
        return None


def fetch_arrow(con: Any, sql: str) -> pa.Table:
    """Run a query on the Ibis backend and return Arrow."""
    return con.sql(sql).to_pyarrow()


def _q(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
