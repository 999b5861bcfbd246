"""``build(workspace_dir, as_of)``: compile the tag catalog and publish a snapshot.

Steps: read the canonical tables present in ``DIR/data`` (through Ibis, on the
workspace's engine: DuckDB, or Spark; :mod:`huaxiang.engine.backends`),
cut them at ``as_of`` (only what was known before midnight at its start),
compile every tag of ``DIR/tags`` onto one wide table keyed by ``user_id``
(:mod:`huaxiang.engine.compile`), run it, and publish ``DIR/snapshots/DATE/``
atomically (:mod:`huaxiang.engine.snapshot`). Tags whose inputs are absent are
skipped with a reason; any other error fails the build before anything is
published, so the previous snapshot keeps serving.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.parquet as pq

from huaxiang.audience.build import build_index_from_table
from huaxiang.audience.index import INDEX_DIR
from huaxiang.catalog import Catalog, load_catalog
from huaxiang.config import CONFIG_FILE, WorkspaceConfig, load_config
from huaxiang.engine.backends import Engine, engine_of, open_engine
from huaxiang.engine.compile import Compiled, compile_catalog, cut_tables
from huaxiang.engine.registry import BuildSettings
from huaxiang.engine.snapshot import column_stats, jsonable, snapshot_path, write_snapshot
from huaxiang.io.readers import connect as connect_engine
from huaxiang.model.schema import TABLES

#: Folder of a snapshot holding the fitted models of the makers (``value_groups.model.json``).
MODELS_DIR = "models"
#: 2 added ``definitions`` (each tag's definition hash, type, names and what it reads).
MANIFEST_VERSION = 2


@dataclass(frozen=True)
class BuildResult:
    """What a build made: where the snapshot is, the tags built and skipped, and the manifest."""

    as_of: dt.date
    path: Path
    rows: int
    built: list[str]
    skipped: dict[str, str]
    manifest: dict[str, Any] = field(repr=False)
    run: dict[str, Any] = field(default_factory=dict, repr=False)
    """``built_at`` and ``timings`` (seconds per step), also written to ``build.json``."""
    audiences: dict[str, str] = field(default_factory=dict)
    """Saved audiences that could not be evaluated on this snapshot, with the reason."""

    @property
    def timings(self) -> dict[str, float]:
        found: dict[str, float] = self.run.get("timings", {})
        return found


def connect(config: WorkspaceConfig | None, root: Path) -> Any:
    """An in-process DuckDB with the workspace's DuckDB settings; spills to ``.huaxiang/spill``.

    For the local helpers (``tags plan``, ``groups``); a build runs on the configured
    engine (:func:`huaxiang.engine.backends.open_engine`).
    """
    (root / ".huaxiang").mkdir(parents=True, exist_ok=True)
    return connect_engine(config, root / ".huaxiang" / "spill")


def read_tables(con: Any, data_dir: Path) -> dict[str, ir.Table]:
    """The canonical tables present as ``DIR/data/<table>.parquet``, read lazily."""
    engine = engine_of(con)
    tables: dict[str, ir.Table] = {}
    for name in TABLES:
        path = data_dir / f"{name}.parquet"
        if path.is_file():
            tables[name] = engine.read_parquet(path, table_name=f"canonical_{name}")
    return tables


def drop_empty_columns(
    con: Any, tables: dict[str, ir.Table], data_dir: Path | None = None
) -> tuple[dict[str, ir.Table], dict[str, list[str]]]:
    """The tables without their entirely-null columns, and those columns by table.

    Ingestion writes every canonical column, null where the source has none; a
    column with no value is as good as absent, and tags reading it are skipped.
    Key columns are kept. With ``data_dir``, the Parquet files' statistics answer
    for the flat columns (no scan); other columns are counted by the engine.
    """
    kept: dict[str, ir.Table] = {}
    empty: dict[str, list[str]] = {}
    for name, table in tables.items():
        keys = set(TABLES[name].key) if name in TABLES else set()
        known = _null_only_columns(data_dir / f"{name}.parquet") if data_dir is not None else {}
        unknown = [column for column in table.columns if column not in known]
        if unknown:
            counts = table.aggregate(**{column: table[column].count() for column in unknown})
            row = engine_of(con).to_pyarrow(counts).to_pylist()[0]
            known.update({column: row[column] == 0 for column in unknown})
        missing = [column for column in table.columns if known[column] and column not in keys]
        if len(missing) == len(table.columns):
            missing = []  # an empty table: keep its shape, the tags will be empty
        kept[name] = table.drop(*missing) if missing else table
        if missing:
            empty[name] = missing
    return kept, empty


def _null_only_columns(path: Path) -> dict[str, bool]:
    """Flat columns of a Parquet file whose statistics say whether every value is null."""
    metadata = pq.ParquetFile(path).metadata
    if metadata.num_rows == 0:
        return {}
    nulls: dict[str, int] = {}
    unusable: set[str] = set()
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        for index in range(row_group.num_columns):
            column = row_group.column(index)
            name = column.path_in_schema
            statistics = column.statistics
            if "." in name or statistics is None or not statistics.has_null_count:
                unusable.add(name)
                continue
            nulls[name] = nulls.get(name, 0) + statistics.null_count
    return {name: count == metadata.num_rows for name, count in nulls.items() if name not in unusable}


def _row_counts(engine: Engine, present: dict[str, ir.Table], cut: dict[str, ir.Table]) -> dict[str, int]:
    """Rows of each table before the as-of date.

    Order lines are cut through their orders (a semi-join, the one costly count): when
    no order falls on or after the as-of date, the lines counted are those not flagged
    as orphans (lines of an order that is not in ``orders``), which needs no join.
    """

    def count(table: ir.Table) -> int:
        return int(engine.to_pyarrow(table.count().as_table()).column(0)[0].as_py())

    counts = {name: count(table) for name, table in cut.items() if name != "order_items"}
    if "order_items" in cut:
        items = present["order_items"]
        whole = "orders" in present and counts.get("orders") == count(present["orders"])
        if whole and "is_orphan" in items.columns:
            counts["order_items"] = count(items.filter(~items.is_orphan.fill_null(False)))
        else:
            counts["order_items"] = count(cut["order_items"])
    return {name: counts[name] for name in cut}


def write_model_files(folder: Path, artifacts: dict[str, bytes]) -> None:
    """The makers' fitted-model files into ``folder/models/`` (the unpublished snapshot)."""
    if not artifacts:
        return
    (folder / MODELS_DIR).mkdir()
    for name, content in sorted(artifacts.items()):
        (folder / MODELS_DIR / name).write_bytes(content)


def definitions(catalog: Catalog) -> dict[str, dict[str, Any]]:
    """What the manifest records of every catalog tag (built or skipped), in build order.

    ``hash`` (:attr:`TagDef.definition_hash`), ``type``, ``category``, the names, ``reads``
    (the tags it reads directly) and ``inputs`` (canonical columns): enough for
    ``huaxiang tags plan`` to tell what a catalog change rebuilds, and for
    ``huaxiang profile`` to label a snapshot's values without the current catalog. Enum
    tags with declared ``values`` list them (value and labels) in their declared order.
    """
    found: dict[str, dict[str, Any]] = {}
    for tag in catalog:
        entry: dict[str, Any] = {
            "hash": tag.definition_hash,
            "type": tag.type,
            "category": tag.category.value,
            "name_zh": tag.name_zh,
            "name_en": tag.name_en,
            "reads": sorted(catalog.dependencies.get(tag.id, ())),
            "inputs": list(catalog.inputs(tag.id)),
        }
        if tag.values is not None:
            entry["values"] = [value.model_dump(exclude_none=True) for value in tag.values]
        found[tag.id] = entry
    return found


class Clock:
    """Seconds per step of a build (``lap(name)`` closes the step that ran since the last lap)."""

    def __init__(self) -> None:
        self.started = self.last = time.perf_counter()
        self.timings: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = round(now - self.last, 4)
        self.last = now

    def total(self) -> None:
        self.timings["total_s"] = round(time.perf_counter() - self.started, 4)


@dataclass
class Computed:
    """The tags of a catalog as of a date, in memory (what :func:`build` then publishes)."""

    tags: pa.Table
    """``user_id`` plus one column per built tag, sorted by ``user_id``."""
    compiled: Compiled
    row_counts: dict[str, int]
    """Rows of each canonical table before the as-of date."""
    details: dict[str, list[dict[str, Any]]]
    """The makers' detail tables as rows (for the manifest)."""
    empty_columns: dict[str, list[str]]
    timings: dict[str, float]
    engine: str = "duckdb"
    """The engine that computed the tags (``duckdb``, ``spark``)."""


def compute(
    workspace_dir: str | Path,
    as_of: dt.date,
    catalog: Catalog,
    config: WorkspaceConfig | None = None,
    *,
    clock: Clock | None = None,
) -> Computed:
    """Compute the tags of ``catalog`` over ``workspace_dir/data`` as of ``as_of``, without publishing.

    The first half of :func:`build` (read, cut, compile, run into an Arrow table), for
    callers that want the values in memory, e.g. to compare engines or time the engine.
    """
    root = Path(workspace_dir)
    clock = clock or Clock()
    engine = open_engine(config, root)
    try:
        con = engine.con
        present, empty_columns = drop_empty_columns(con, read_tables(con, root / "data"), root / "data")
        tables = cut_tables(present, as_of)
        clock.lap("read_s")
        compiled = compile_catalog(
            catalog, tables, as_of, materialise=engine.materialise, settings=BuildSettings.from_config(config)
        )
        clock.lap("compute_s")
        result: pa.Table = engine.to_pyarrow(compiled.wide.order_by("user_id"))
        row_counts = _row_counts(engine, present, tables)
        details = {
            name: [jsonable(row) for row in engine.to_pyarrow(table).to_pylist()]
            for name, table in compiled.details.items()
        }
        clock.lap("collect_s")
    finally:
        engine.close()
    return Computed(result, compiled, row_counts, details, empty_columns, clock.timings, engine.name)


def build(
    workspace_dir: str | Path,
    as_of: dt.date,
    *,
    catalog: Catalog | None = None,
    config: WorkspaceConfig | None = None,
) -> BuildResult:
    """Build the tags of ``workspace_dir`` as of ``as_of`` and publish ``snapshots/YYYY-MM-DD``.

    Parameters
    ----------
    workspace_dir
        The workspace folder: canonical tables in ``data/``, the catalog in ``tags/``.
    as_of
        Snapshot date; data strictly before midnight at its start is used.
    catalog
        A loaded catalog, instead of reading ``workspace_dir/tags``.
    config
        The workspace settings (promo calendar, windows); read from
        ``workspace_dir/huaxiang.yaml`` when it exists, defaults otherwise.

    Raises
    ------
    huaxiang.errors.ConfigError
        The catalog is invalid, there is no users table, or a tag cannot be compiled.
    """
    root = Path(workspace_dir)
    clock = Clock()
    if catalog is None:
        catalog = load_catalog(root / "tags")
    if config is None and (root / CONFIG_FILE).is_file():
        config = load_config(root)
    clock.lap("load_catalog_s")
    computed = compute(root, as_of, catalog, config, clock=clock)
    result, compiled, details = computed.tags, computed.compiled, computed.details
    row_counts, empty_columns = computed.row_counts, computed.empty_columns
    manifest: dict[str, Any] = {
        "manifest_version": MANIFEST_VERSION,
        "as_of": as_of.isoformat(),
        "catalog_hash": catalog.hash,
        "engine": computed.engine,
        "rows": {"users": result.num_rows, "tables": row_counts},
        "empty_columns": empty_columns,
        "tags": {tag_id: column_stats(result.column(tag_id)) for tag_id in compiled.built},
        "skipped": [{"tag": tag_id, "reason": reason} for tag_id, reason in compiled.skipped.items()],
        "partial": [{"tag": tag_id, "without": without} for tag_id, without in compiled.partial.items()],
        "models": details,
        "definitions": definitions(catalog),
        "generated": compiled.generated,
    }
    if compiled.artifacts:
        manifest["model_files"] = [f"{MODELS_DIR}/{name}" for name in sorted(compiled.artifacts)]
    lifecycle = [rows for name, rows in details.items() if name.startswith("lifecycle") and rows]
    if lifecycle:
        manifest["lifecycle_thresholds"] = lifecycle[0][0]
    target = snapshot_path(root, as_of)
    run: dict[str, Any] = {"timings": clock.timings}

    def index(folder: Path) -> None:
        """The audience index, inside the unpublished snapshot (published with it or not at all)."""
        write_model_files(folder, compiled.artifacts)
        clock.lap("write_s")
        build_index_from_table(
            result,
            folder / INDEX_DIR,
            catalog=catalog,
            definitions={**manifest["generated"], **manifest["definitions"]},
            as_of=as_of.isoformat(),
        )
        clock.lap("index_s")
        clock.total()
        run["built_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")

    write_snapshot(target, result, manifest, run, also=index)
    return BuildResult(
        as_of=as_of,
        path=target,
        rows=result.num_rows,
        built=list(compiled.built),
        skipped=dict(compiled.skipped),
        manifest=manifest,
        run=run,
    )
