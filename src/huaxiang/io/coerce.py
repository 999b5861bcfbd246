"""Turn one raw source column into a typed canonical column, in Ibis.

Each conversion returns the typed value and a flag for rows whose raw value
was present but could not be read (text in an amount, an unknown enum code).
Nothing here raises on bad data: the flag becomes a reject with its reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import ibis
import ibis.expr.datatypes as dt

from huaxiang.errors import ConfigError, SourceError
from huaxiang.model.schema import MONEY_PRECISION, MONEY_SCALE, Column

DECIMAL = dt.Decimal(MONEY_PRECISION, MONEY_SCALE)
IBIS_TYPES: dict[str, dt.DataType] = {
    "string": dt.string,
    "enum": dt.string,
    "int": dt.int64,
    "float": dt.float64,
    "decimal": DECIMAL,
    "bool": dt.boolean,
    "timestamp": dt.Timestamp(scale=6),
    "date": dt.date,
    "list": dt.Array(dt.string),
}
TRUE_WORDS = ("true", "t", "1", "yes", "y", "是", "真")
FALSE_WORDS = ("false", "f", "0", "no", "n", "否", "假")
EPOCH = datetime(1970, 1, 1)
#: Epoch seconds of 0001-01-01 and 9999-12-31 23:59:59.
EPOCH_RANGE = (-62_135_596_800, 253_402_300_799)
_DIRECTIVES = {
    "Y": ("year", r"(\d{4})"),
    "m": ("month", r"(\d{1,2})"),
    "d": ("day", r"(\d{1,2})"),
    "H": ("hour", r"(\d{1,2})"),
    "M": ("minute", r"(\d{1,2})"),
    "S": ("second", r"(\d{1,2})"),
    "f": ("fraction", r"(\d{1,6})"),
}


@dataclass(frozen=True)
class Coerced:
    """A typed column and the rows whose raw value could not become it."""

    value: Any
    bad: Any
    reason: str
    detail: Any


@dataclass(frozen=True)
class TimeSettings:
    """How a source writes times: a format and the offset to the workspace zone."""

    time_format: str | None
    shift_seconds: int


def time_settings(time_format: str | None, source_zone: str | None, workspace_zone: str) -> TimeSettings:
    """Fixed offset from the source's zone (UTC for epochs) to the workspace's."""
    epoch = time_format in ("epoch_s", "epoch_ms")
    src = "UTC" if epoch and source_zone is None else (source_zone or workspace_zone)
    if src == workspace_zone:
        return TimeSettings(time_format, 0)
    return TimeSettings(time_format, _fixed_offset(workspace_zone) - _fixed_offset(src))


def _fixed_offset(zone: str) -> int:
    tz = ZoneInfo(zone)
    offsets = {tz.utcoffset(datetime(2020, month, 1)) for month in (1, 7)}
    if len(offsets) > 1:
        raise SourceError(
            f"Time zone {zone} has daylight saving time; huaxiang converts only between fixed-offset "
            "zones (e.g. Asia/Shanghai, UTC). Convert the times to the workspace zone before ingest."
        )
    offset = offsets.pop()
    return int(offset.total_seconds()) if offset is not None else 0


def coerce(
    raw: Any,
    column: Column,
    source_column: str,
    mapping: dict[str, str | None],
    times: TimeSettings,
    list_separator: str,
) -> Coerced:
    """Convert ``raw`` (an Ibis column of any type) to ``column``'s canonical type."""
    target = IBIS_TYPES[column.kind]
    raw_type = raw.type()
    if raw_type.is_string() or mapping:
        text = raw.cast("string").strip().nullif("")
        if mapping:
            text = _map_values(text, mapping)
        raw_type = dt.string
        raw = text
    present = raw.notnull()
    if mapping:
        null_codes = [k for k, v in mapping.items() if v is None]
        present = present & ~raw.isin(null_codes) if null_codes else present
    value = _convert(raw, raw_type, column, times, list_separator)
    quoted = ibis.literal("'") + raw.cast("string") + ibis.literal("'")
    if column.kind == "enum":
        bad = present & ~value.isin(list(column.values))
        detail = (
            ibis.literal("unknown value ")
            + quoted
            + ibis.literal(
                f" for {column.name} (source column {source_column!r}); allowed: "
                f"{', '.join(column.values)}. Map it under values.{column.name}."
            )
        )
        return Coerced(value.cast(target), bad, "unknown_value", detail)
    bad = present & value.isnull()
    detail = (
        ibis.literal("cannot read ")
        + quoted
        + ibis.literal(f" as {column.type_label} for {column.name} (source column {source_column!r})")
    )
    return Coerced(value.cast(target), bad, "bad_type", detail)


def _map_values(text: Any, mapping: dict[str, str | None]) -> Any:
    cases = [
        (text == code, ibis.literal(new, "string") if new is not None else ibis.null("string"))
        for code, new in mapping.items()
    ]
    return ibis.cases(*cases, else_=text)


def _convert(raw: Any, raw_type: dt.DataType, column: Column, times: TimeSettings, sep: str) -> Any:
    kind = column.kind
    if kind in ("string", "enum"):
        text = raw.cast("string") if not raw_type.is_string() else raw
        if raw_type.is_floating() or (raw_type.is_string() and column.name.endswith("_id")):
            # Ids read as floats by some tools: 17850.0 is the customer 17850.
            text = text.re_replace(r"^(-?\d+)\.0+$", r"\1")
        return text
    if kind == "int":
        if raw_type.is_integer():
            return raw.cast("int64")
        number = raw.cast("float64") if raw_type.is_numeric() else raw.try_cast("float64")
        whole = number.notnull() & (number == number.floor()) & (number.abs() < 9.0e15)
        return ibis.ifelse(whole, number.cast("int64"), ibis.null("int64"))
    if kind == "float":
        return raw.cast("float64") if raw_type.is_numeric() else raw.try_cast("float64")
    if kind == "decimal":
        if raw_type.is_numeric():
            return raw.cast(DECIMAL)
        cleaned = raw.re_replace(r"[¥￥$£€\s]", "")
        # Thousands separators only in well-formed groups (1,234,567.80); "12,34" stays unreadable.
        grouped = cleaned.re_search(r"^[-+]?\d{1,3}(,\d{3})+(\.\d*)?$")
        return ibis.ifelse(grouped, cleaned.replace(",", ""), cleaned).try_cast(DECIMAL)
    if kind == "bool":
        if raw_type.is_boolean():
            return raw
        if raw_type.is_numeric():
            return raw != 0
        lowered = raw.lower()
        return ibis.cases(
            (lowered.isin(TRUE_WORDS), True), (lowered.isin(FALSE_WORDS), False), else_=ibis.null("boolean")
        )
    if kind == "timestamp":
        return _timestamp(raw, raw_type, times)
    if kind == "date":
        if raw_type.is_timestamp():
            return raw.date()
        if raw_type.is_date():
            return raw
        return raw.cast("string").try_cast("date")
    if kind == "list":
        if raw_type.is_array():
            return raw.cast(dt.Array(dt.string))
        parts = raw.cast("string").split(sep).map(lambda part: part.strip())
        return parts.filter(lambda part: part != "")
    raise ConfigError(f"Unsupported column kind {kind!r}")  # pragma: no cover - schema is closed


def _timestamp(raw: Any, raw_type: dt.DataType, times: TimeSettings) -> Any:
    fmt = times.time_format
    if raw_type.is_timestamp() or raw_type.is_date():
        value = raw.cast(dt.Timestamp(scale=6))
    elif fmt in ("epoch_s", "epoch_ms") or raw_type.is_integer():
        number = raw.cast("float64") if raw_type.is_numeric() else raw.try_cast("float64")
        seconds = number / 1000 if fmt == "epoch_ms" else number
        # A number beyond the years 1..9999 is unreadable (a reject), not an engine error.
        readable = seconds.between(EPOCH_RANGE[0], EPOCH_RANGE[1])
        whole = ibis.ifelse(readable, seconds, 0).floor().cast("int64")
        value = ibis.ifelse(
            readable, ibis.literal(EPOCH) + whole.as_interval("s"), ibis.null(dt.Timestamp(scale=6))
        )
    elif fmt:
        value = _parse_format(raw, fmt)
    else:
        value = raw.try_cast(dt.Timestamp(scale=6))
    if times.shift_seconds:
        value = value + ibis.interval(seconds=times.shift_seconds)
    return value


def strptime_pattern(fmt: str) -> tuple[str, list[str]]:
    """A regex for a strptime-style format and the parts its groups capture."""
    pattern, parts, i = "^", [], 0
    while i < len(fmt):
        if fmt[i] == "%" and i + 1 < len(fmt):
            directive = fmt[i + 1]
            if directive not in _DIRECTIVES:
                raise ConfigError(
                    f"time_format {fmt!r}: %{directive} is not supported; use "
                    f"{' '.join('%' + d for d in _DIRECTIVES)}, 'epoch_s' or 'epoch_ms'."
                )
            part, group = _DIRECTIVES[directive]
            pattern += group
            parts.append(part)
            i += 2
        else:
            pattern += re.escape(fmt[i])
            i += 1
    if not {"year", "month", "day"} <= set(parts):
        raise ConfigError(f"time_format {fmt!r} must contain %Y, %m and %d.")
    return pattern + "$", parts


def _parse_format(raw: Any, fmt: str) -> Any:
    """Rewrite text in ``fmt`` as ISO text, then cast: invalid dates become null, not errors."""
    pattern, parts = strptime_pattern(fmt)
    text = raw.cast("string")
    matches = text.re_search(pattern)

    def part(name: str, width: int, default: str) -> Any:
        if name not in parts:
            return ibis.literal(default)
        return text.re_extract(pattern, parts.index(name) + 1).lpad(width, "0")

    iso = (
        part("year", 4, "1970") + "-" + part("month", 2, "01") + "-" + part("day", 2, "01") + " "
        + part("hour", 2, "00") + ":" + part("minute", 2, "00") + ":" + part("second", 2, "00")
        + "." + part("fraction", 6, "0").rpad(6, "0")
    )
    return ibis.ifelse(matches, iso, ibis.null("string")).try_cast(dt.Timestamp(scale=6))
