"""The workspace file ``huaxiang.yaml``: engine, sources, mapping, windows, promo calendar.

Every model forbids unknown keys, so a misspelt key is an error with a
"did you mean" rather than a silently ignored setting.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from huaxiang.errors import did_you_mean
from huaxiang.model.schema import TABLES
from huaxiang.yamlfile import load_yaml, validate_file

CONFIG_FILE = "huaxiang.yaml"
ORDER_LINES = "order_lines"
#: Canonical columns an ``order_lines`` source may map: an order's and a line's.
ORDER_LINE_COLUMNS = tuple(
    dict.fromkeys(TABLES["orders"].column_names + TABLES["order_items"].column_names)
)
DERIVABLE = ("users", "products")
SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class CsvOptions(Strict):
    """How to read a delimited text file."""

    delimiter: str = Field(",", min_length=1, max_length=1)
    header: bool = True
    encoding: str = "utf-8"
    quote: str = Field('"', min_length=1, max_length=1)
    column_names: list[str] | None = None
    null_values: list[str] = Field(default_factory=lambda: [""])

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        import codecs

        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(
                f"unknown encoding {value!r}; use a Python codec name such as utf-8, gbk, gb18030"
            ) from None
        return value


class RowFilter(Strict):
    """A test on one source column: ``prefix``, ``in`` (a list), ``regex`` or ``is_null``."""

    column: str
    prefix: str | None = None
    in_: list[str] | None = Field(None, alias="in")
    regex: str | None = None
    is_null: bool | None = None
    reason: str = "filtered"

    @model_validator(mode="after")
    def _one_test(self) -> RowFilter:
        tests = [self.prefix, self.in_, self.regex, self.is_null]
        if sum(t is not None for t in tests) != 1:
            raise ValueError("give exactly one of prefix, in, regex, is_null")
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ValueError(f"invalid regex {self.regex!r}: {exc}") from None
        if not SNAKE.match(self.reason):
            raise ValueError(f"reason must be snake_case, got {self.reason!r}")
        return self


class TimeRange(Strict):
    """Keep only rows whose time falls in ``[start, end)``; the rest are rejected."""

    start: date | None = None
    end: date | None = None


class SourceConfig(Strict):
    """One source: where it is, how to read it, and how it maps onto a canonical table."""

    into: str
    path: str | None = None
    format: Literal["csv", "parquet", "table"] | None = None
    connection: str | None = None
    table: str | None = None
    csv: CsvOptions = Field(default_factory=CsvOptions)
    columns: dict[str, str] = Field(default_factory=dict)
    values: dict[str, dict[str, str | None]] = Field(default_factory=dict)
    time_format: str | None = None
    timezone: str | None = None
    list_separator: str = "|"
    reject_if: list[RowFilter] = Field(default_factory=list)
    after_sale_if: RowFilter | None = None
    time_range: TimeRange | None = None
    derive: dict[str, dict[str, str]] = Field(default_factory=dict)

    @field_validator("into")
    @classmethod
    def _known_target(cls, value: str) -> str:
        targets = [*TABLES, ORDER_LINES]
        if value not in targets:
            raise ValueError(
                f"unknown table {value!r}; allowed: {', '.join(targets)}.{did_you_mean(value, targets)}"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return None if value is None else _check_zone(value)

    @field_validator("columns", "values")
    @classmethod
    def _known_columns(cls, value: dict[str, object], info: ValidationInfo) -> dict[str, object]:
        into = info.data.get("into")
        if into is None:
            return value
        allowed = _target_columns(into)
        for name in value:
            if name not in allowed:
                raise ValueError(
                    f"{name!r} is not a column of {into}.{did_you_mean(name, allowed)} "
                    f"Allowed: {', '.join(allowed)}."
                )
        return value

    @field_validator("derive")
    @classmethod
    def _derivable(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for derived, mapping in value.items():
            if derived not in DERIVABLE:
                raise ValueError(
                    f"{derived!r} cannot be derived; allowed: {', '.join(DERIVABLE)}."
                    f"{did_you_mean(derived, DERIVABLE)}"
                )
            table_columns = TABLES[derived].column_names
            for name in mapping:
                if name not in table_columns:
                    raise ValueError(
                        f"{derived}: {name!r} is not a column of {derived}."
                        f"{did_you_mean(name, table_columns)}"
                    )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SourceConfig:
        fmt = self.resolved_format
        if self.format == "table" and not self.table:
            raise ValueError("a 'table' source needs 'table' (and optionally 'connection')")
        if (fmt != "table" or not self.table) and not self.path:
            # Neither a file nor a table: a forgotten 'path' is the likely cause.
            raise ValueError("give 'path' (a CSV or Parquet file) or 'format: table' with 'table'")
        if self.after_sale_if is not None and self.into not in ("orders", ORDER_LINES):
            raise ValueError("after_sale_if applies to sources into orders or order_lines")
        return self

    @property
    def resolved_format(self) -> str:
        if self.format:
            return self.format
        if self.path and self.path.lower().endswith((".parquet", ".pq")):
            return "parquet"
        if self.path:
            return "csv"
        return "table"

    @property
    def target_columns(self) -> tuple[str, ...]:
        return _target_columns(self.into)


def _target_columns(into: str) -> tuple[str, ...]:
    return ORDER_LINE_COLUMNS if into == ORDER_LINES else TABLES[into].column_names


class EngineConfig(Strict):
    """Where the computation runs. DuckDB, embedded, is the default.

    ``type: spark`` runs the build on Spark through Ibis's PySpark backend
    (``huaxiang[spark]``; docs/scale.md): ``master`` is the Spark master URL
    (``local[*]`` by default) and ``conf`` any Spark settings
    (``spark.executor.memory: 4g``). ``threads`` and ``memory_limit`` are DuckDB's.
    """

    type: Literal["duckdb", "spark"] = "duckdb"
    threads: int | None = Field(None, ge=1)
    memory_limit: str | None = None
    master: str | None = None
    conf: dict[str, str | int | float | bool] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _settings_fit_the_engine(self) -> EngineConfig:
        if self.type == "duckdb":
            given = [name for name in ("master", "conf") if getattr(self, name)]
            if given:
                raise ValueError(
                    f"engine.{given[0]} is a Spark setting, but engine.type is duckdb; "
                    "set 'type: spark' or remove it."
                )
        else:
            given = [name for name in ("threads", "memory_limit") if getattr(self, name) is not None]
            if given:
                raise ValueError(
                    f"engine.{given[0]} is a DuckDB setting; with 'type: spark' give Spark settings "
                    "under engine.conf (e.g. spark.driver.memory: 4g)."
                )
        return self

    @property
    def spark_master(self) -> str:
        """The Spark master URL (``local[*]``, all local cores, unless ``master`` says otherwise)."""
        return self.master or "local[*]"


class Promo(Strict):
    """A recurring promotion window, given as month-day (``06-01``) bounds, inclusive."""

    id: str
    name_zh: str
    name_en: str
    start: str = Field(pattern=r"^\d{2}-\d{2}$")
    end: str = Field(pattern=r"^\d{2}-\d{2}$")


class Windows(Strict):
    """Default look-back windows, in days."""

    long_days: int = Field(365, ge=1)
    recent_days: int = Field(30, ge=1)


DEFAULT_PROMOS = (
    Promo(id="mid_year_618", name_zh="618年中大促", name_en="618 mid-year sale", start="06-01", end="06-18"),
    Promo(id="double_11", name_zh="双11", name_en="Singles' Day", start="11-01", end="11-11"),
)


class WorkspaceConfig(Strict):
    """The whole ``huaxiang.yaml``."""

    version: Literal[1] = 1
    name: str
    timezone: str = "Asia/Shanghai"
    currency: str = Field("CNY", pattern=r"^[A-Z]{3}$")
    engine: EngineConfig = Field(default_factory=EngineConfig)
    sources: dict[str, SourceConfig] = Field(default_factory=dict)
    windows: Windows = Field(default_factory=Windows)
    promo_calendar: list[Promo] = Field(default_factory=lambda: list(DEFAULT_PROMOS))

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return _check_zone(value)

    @field_validator("sources")
    @classmethod
    def _source_names(cls, value: dict[str, SourceConfig]) -> dict[str, SourceConfig]:
        for name in value:
            if not SNAKE.match(name):
                raise ValueError(f"source name {name!r} must be snake_case (letters, digits, _)")
        return value


def _check_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Asia/Shanghai") from None
    return value


def load_config(workspace: Path) -> WorkspaceConfig:
    """Read and validate ``workspace/huaxiang.yaml``."""
    path = workspace / CONFIG_FILE
    data, node = load_yaml(path)
    return validate_file(path, WorkspaceConfig, data, node)
