"""The engines a build runs on: what differs between DuckDB and Spark, and nothing else.

The catalog is compiled to Ibis expressions once (:mod:`huaxiang.engine.compile`);
an engine only connects, reads the canonical Parquet files, runs an intermediate
result into a table (a *checkpoint*, which keeps the expression small) and returns
results as Arrow. Everything else is the same expression on every engine.

``engine: {type: duckdb}`` (the default) runs in-process DuckDB and spills to
``.huaxiang/spill``. ``engine: {type: spark, master: ..., conf: {...}}`` runs Ibis's
PySpark backend on a Spark session (local mode by default; ``huaxiang[spark]``).
A Spark session that was already running when the build started (a notebook's,
``spark-submit``'s, a test run's) is used and left running; one the build started
is stopped when it ends.
"""

from __future__ import annotations

import itertools
import os
import re
import sys
import uuid
import warnings
from pathlib import Path
from typing import Any, ClassVar

import ibis
import ibis.common.exceptions as ibis_errors
import ibis.expr.types as ir
import pyarrow as pa

from huaxiang.config import EngineConfig, WorkspaceConfig
from huaxiang.errors import ConfigError
from huaxiang.io.readers import connect as connect_duckdb

#: Spark settings a build sets unless ``engine.conf`` says otherwise: Arrow transfers, and UTC,
#: the zone of the canonical tables' (naive) timestamps.
SPARK_DEFAULTS = {
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.session.timeZone": "UTC",
}
#: Only for a session huaxiang starts: no progress bars over the CLI's own output.
SPARK_START_DEFAULTS = {"spark.ui.showConsoleProgress": "false"}

SPARK_INSTALL_HINT = (
    "The Spark engine needs PySpark and Java 17 or later: pip install 'huaxiang[spark]' "
    "(and a JDK, e.g. apt-get install openjdk-17-jre-headless)."
)


class EngineCapabilityError(ConfigError):
    """The configured engine cannot run an operation the catalog uses (e.g. Spark and kurtosis).

    Raised instead of computing something different: the message names the engine,
    the operation and the tags (or maker columns) that use it, and says to build
    those tags on DuckDB or change them. ``tags`` is empty when they could not be told.
    """

    def __init__(self, engine: str, operation: str, tags: list[str] | None = None) -> None:
        self.engine = engine
        self.operation = operation
        self.tags = list(tags or [])
        where = f" (used by {', '.join(self.tags)})" if self.tags else ""
        super().__init__(
            f"engine {engine} cannot run {operation}{where}; build these tags on DuckDB "
            "(engine: {type: duckdb}) or change their definition (docs/scale.md, known gaps)."
        )

    def naming(self, tags: list[str]) -> EngineCapabilityError:
        """The same error naming ``tags`` (the compiler knows which tags a maker's columns feed)."""
        return EngineCapabilityError(self.engine, self.operation, tags)


class Engine:
    """An Ibis backend plus the few operations whose code differs between engines."""

    name: ClassVar[str]

    def __init__(self, con: Any) -> None:
        self.con = con
        self._steps = itertools.count()
        # Unique per build: two builds may share one Spark session (and its temporary views).
        self._prefix = f"huaxiang_build_{uuid.uuid4().hex[:8]}"

    def read_parquet(self, location: str | Path, table_name: str) -> ir.Table:
        """A canonical table read lazily from a Parquet file (or folder, or URI)."""
        return self.con.read_parquet(location, table_name=table_name)

    def materialise(self, table: ir.Table) -> ir.Table:
        """``table`` run into an engine table (a checkpoint); later expressions read that table."""
        raise NotImplementedError

    def to_pyarrow(self, expr: ir.Expr) -> pa.Table:
        """Run ``expr`` and return the result as an Arrow table of the expression's schema."""
        result: pa.Table = self.con.to_pyarrow(expr)
        return result

    def close(self) -> None:
        self.con.disconnect()

    def step_name(self) -> str:
        return f"{self._prefix}_step_{next(self._steps)}"

    def capability_error(self, error: Exception, table: ir.Table) -> EngineCapabilityError:
        """An Ibis translation error as :class:`EngineCapabilityError`, naming the failing columns."""
        failing = []
        for column in table.columns:
            try:
                self.con.compile(table.select(column))
            except ibis_errors.TranslationError:
                failing.append(column)
        return EngineCapabilityError(self.name, _operation(error), [c for c in failing if c != "user_id"])


class DuckDBEngine(Engine):
    """In-process DuckDB: checkpoints are temporary tables, spilled to disk when memory runs short."""

    name = "duckdb"

    def materialise(self, table: ir.Table) -> ir.Table:
        try:
            return self.con.create_table(self.step_name(), table, temp=True)
        except ibis_errors.TranslationError as error:
            raise self.capability_error(error, table) from None


class SparkEngine(Engine):
    """Ibis's PySpark backend on a Spark session.

    A checkpoint is the query's result kept by Spark (``localCheckpoint``: computed once,
    its lineage cut so later plans stay small) behind a temporary view. Results reach
    Python as Arrow (``DataFrame.toArrow``), not through pandas.
    """

    name = "spark"

    def __init__(self, con: Any, *, owns_session: bool) -> None:
        super().__init__(con)
        self.owns_session = owns_session
        self._kept: list[tuple[str, Any]] = []

    def _dataframe(self, expr: ir.Expr) -> Any:
        try:
            sql = self.con.compile(expr)
        except ibis_errors.TranslationError as error:
            table = expr.as_table() if hasattr(expr, "as_table") else expr
            raise self.capability_error(error, table) from None
        # Registers the memtables and UDFs the expression uses, as the backend's execute() does.
        self.con._run_pre_execute_hooks(expr)
        return self.con._session.sql(sql)

    def materialise(self, table: ir.Table) -> ir.Table:
        name = self.step_name()
        frame = _with_types(self._dataframe(table), table.schema()).localCheckpoint(eager=True)
        frame.createOrReplaceTempView(name)
        self._kept.append((name, frame))
        return self.con.table(name)

    def to_pyarrow(self, expr: ir.Expr) -> pa.Table:
        try:
            result: pa.Table = self.con.to_pyarrow(expr)
        except ibis_errors.TranslationError as error:
            table = expr.as_table() if hasattr(expr, "as_table") else expr
            raise self.capability_error(error, table) from None
        return result

    def close(self) -> None:
        session = self.con._session
        for name, frame in self._kept:
            session.catalog.dropTempView(name)
            frame.unpersist()
        self._kept = []
        if self.owns_session:
            session.stop()


def _operation(error: Exception) -> str:
    """The operation an Ibis translation error is about (``Kurtosis``), else its message."""
    text = str(error).strip()
    quoted = re.search(r"'(\w+)'", text)
    return quoted.group(1) if quoted else text or type(error).__name__


def _with_types(frame: Any, schema: Any) -> Any:
    """A Spark DataFrame with the column types of the Ibis ``schema``.

    Ibis elides casts it thinks are no-ops, but Spark's types can differ from Ibis's
    (``NTILE`` is an INT in Spark, BIGINT to Ibis): a checkpoint keeps Ibis's types so
    the expressions built on it, and the snapshot, have the same types on every engine.
    """
    from ibis.backends.pyspark.datatypes import PySparkType
    from pyspark.sql import functions

    columns = []
    for name, dtype in schema.items():
        wanted = PySparkType.from_ibis(dtype)
        column = functions.col(f"`{name}`")
        columns.append(column if frame.schema[name].dataType == wanted else column.cast(wanted).alias(name))
    return frame.select(*columns)


def _conform(result: pa.Table, schema: pa.Schema) -> pa.Table:
    """Spark's Arrow result with the names and types of the Ibis expression's schema.

    Spark returns timestamps zoned in UTC (the session zone) where the canonical tables
    hold naive UTC timestamps; the values are the same, only the type is conformed.
    """
    columns = []
    for index, target in enumerate(schema):
        column = result.column(index)
        if pa.types.is_timestamp(column.type) and pa.types.is_timestamp(target.type):
            column = column.cast(pa.timestamp(column.type.unit, tz=target.type.tz))
        columns.append(column.cast(target.type) if column.type != target.type else column)
    return pa.Table.from_arrays(columns, schema=schema)


def open_engine(config: WorkspaceConfig | None, root: Path) -> Engine:
    """The engine of ``huaxiang.yaml``'s ``engine`` section (DuckDB without a config)."""
    engine = config.engine if config is not None else EngineConfig()
    if engine.type == "spark":
        return _open_spark(engine)
    (root / ".huaxiang").mkdir(parents=True, exist_ok=True)
    return DuckDBEngine(connect_duckdb(config, root / ".huaxiang" / "spill"))


def _open_spark(engine: EngineConfig) -> SparkEngine:
    # PySpark 4 warns on every collection that it does not fully support pandas 3; huaxiang
    # collects through Arrow, not pandas (see _arrow_backend), so the warning says nothing here.
    warnings.filterwarnings(
        "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
    )
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ConfigError(
            f"huaxiang.yaml asks for engine type spark, but PySpark is missing. {SPARK_INSTALL_HINT}"
        ) from None
    running = SparkSession.getActiveSession()
    if running is None:
        # Python workers (memtables, UDFs) must run this interpreter, with its packages.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        builder = SparkSession.builder.master(engine.spark_master).appName("huaxiang")
        for key, value in {**SPARK_START_DEFAULTS, **SPARK_DEFAULTS, **engine.conf}.items():
            builder = builder.config(key, str(value))
        try:
            session = builder.getOrCreate()
        except Exception as exc:  # no Java, a bad master URL, a port taken ...
            text = str(exc).strip().splitlines()
            raise ConfigError(
                f"engine spark: cannot start a Spark session on master {engine.spark_master!r}: "
                f"{text[0] if text else type(exc).__name__}. {SPARK_INSTALL_HINT}"
            ) from None
        # Spark's WARN lines (a window over all buyers, as quintiles are, "moves all data to a
        # single partition") are noise to the user of a build; errors still show.
        session.sparkContext.setLogLevel("ERROR")
    else:
        session = running
        # Runtime settings of huaxiang.yaml apply to the running session too.
        for key, value in {**SPARK_DEFAULTS, **engine.conf}.items():
            if not key.startswith(("spark.master", "spark.driver", "spark.executor", "spark.ui")):
                session.conf.set(key, str(value))
    con = _arrow_backend().connect(session)
    return SparkEngine(con, owns_session=running is None)


_ARROW_BACKEND: list[Any] = []


def _arrow_backend() -> Any:
    """Ibis's PySpark backend, collecting results as Arrow (``DataFrame.toArrow``) instead of pandas.

    Ibis 12 collects through ``toPandas``, which loses DECIMAL and timestamp types on the way
    and warns under pandas 3. Every ``expr.to_pyarrow()`` of a build (makers collecting a
    small table included) reaches the engine's connection, so the override is made there.
    """
    if not _ARROW_BACKEND:
        from ibis.backends.pyspark import Backend

        ibis.pyspark  # noqa: B018 -- loading the backend by name registers its options (ibis.options.pyspark)

        class ArrowPySparkBackend(Backend):
            def to_pyarrow(
                self,
                expr: ir.Expr,
                /,
                *,
                params: Any = None,
                limit: int | str | None = None,
                **kwargs: Any,
            ) -> pa.Table:
                table_expr = expr.as_table()
                sql = self.compile(table_expr, params=params, limit=limit)
                self._run_pre_execute_hooks(table_expr)
                result = self._session.sql(sql).toArrow()
                return expr.__pyarrow_result__(_conform(result, table_expr.schema().to_pyarrow()))

        _ARROW_BACKEND.append(ArrowPySparkBackend())
    return _ARROW_BACKEND[0]


def engine_of(con: Any) -> Engine:
    """The :class:`Engine` operations for an Ibis connection (DuckDB or PySpark)."""
    if con.name == "pyspark":
        return SparkEngine(con, owns_session=False)
    return DuckDBEngine(con)


def spark_available() -> str | None:
    """None when PySpark and Java are installed, else why not (for tests and error hints)."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return f"PySpark is not installed. {SPARK_INSTALL_HINT}"
    java_home = os.environ.get("JAVA_HOME")
    java = Path(java_home) / "bin" / "java" if java_home else None
    if (java is None or not java.is_file()) and not _on_path("java"):
        return f"Java is not installed (no JAVA_HOME, no java on PATH). {SPARK_INSTALL_HINT}"
    return None


def _on_path(program: str) -> bool:
    return any((Path(folder) / program).is_file() for folder in os.environ.get("PATH", "").split(os.pathsep))
