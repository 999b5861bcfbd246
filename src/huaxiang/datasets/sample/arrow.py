"""Arrow types of the canonical tables and fast builders from numpy arrays."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from huaxiang.model.schema import MONEY_PRECISION, MONEY_SCALE, TABLES, Kind

MONEY_TYPE = pa.decimal128(MONEY_PRECISION, MONEY_SCALE)
_ARROW_TYPES: dict[Kind, pa.DataType] = {
    "string": pa.string(),
    "enum": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "decimal": MONEY_TYPE,
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us"),
    "date": pa.date32(),
    "list": pa.list_(pa.string()),
}

#: One row per user with what the generator planted (not a canonical table).
TRUTH_SCHEMA = pa.schema([
    ("user_id", pa.string()),
    ("persona", pa.string()),
    ("persona_zh", pa.string()),
    ("planted_lifecycle", pa.string()),
    ("churn_date", pa.date32()),
    ("silent_since", pa.date32()),
    ("outing_lover", pa.bool_()),
    ("promo_sensitive", pa.bool_()),
    ("big_spender", pa.bool_()),
    ("has_child", pa.bool_()),
    ("pet_owner", pa.bool_()),
    ("true_age", pa.int64()),
    ("true_city", pa.string()),
    ("true_city_tier", pa.int64()),
    ("activity_multiplier", pa.float64()),
    ("campaign_variant", pa.string()),
    ("campaign_uplift_order", pa.bool_()),
])

#: Fixed writer options: identical inputs give byte-identical files.
PARQUET_OPTIONS: dict[str, object] = {
    "version": "2.6",
    "compression": "snappy",
    "use_dictionary": True,
    "write_statistics": True,
    "data_page_version": "1.0",
}


def arrow_schema(table_name: str) -> pa.Schema:
    """Arrow schema of a canonical table (every column nullable; ingestion enforces `required`)."""
    if table_name == "truth":
        return TRUTH_SCHEMA
    return pa.schema(
        [pa.field(c.name, _ARROW_TYPES[c.kind]) for c in TABLES[table_name].columns]
    )


def table_from_columns(table_name: str, columns: dict[str, pa.Array]) -> pa.Table:
    """Assemble a table in schema order; columns not given are all null."""
    schema = arrow_schema(table_name)
    unknown = set(columns) - set(schema.names)
    if unknown:
        raise KeyError(f"{table_name} has no columns {sorted(unknown)}")
    length = len(next(iter(columns.values())))
    arrays = [
        columns[f.name] if f.name in columns else pa.nulls(length, f.type) for f in schema
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def money_array(cents: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """decimal128(18, 2) from integer cents, without a per-value Python loop."""
    cents = np.ascontiguousarray(cents, dtype=np.int64)
    words = np.empty((len(cents), 2), dtype=np.int64)
    words[:, 0] = cents
    words[:, 1] = cents >> 63  # sign extension to the high 64 bits
    array = pa.Array.from_buffers(MONEY_TYPE, len(cents), [None, pa.py_buffer(words)])
    if valid is not None:
        array = pc.if_else(pa.array(valid), array, pa.scalar(None, MONEY_TYPE))
    return array


def timestamp_array(micros: np.ndarray) -> pa.Array:
    """Naive ``timestamp[us]`` from microseconds since 1970-01-01 (shop local time)."""
    return pa.array(np.ascontiguousarray(micros, dtype=np.int64).view("datetime64[us]"))


def date_array(days: np.ndarray, valid: np.ndarray) -> pa.Array:
    """``date32`` from days since 1970-01-01, null where not ``valid``."""
    return pa.array(days.astype(np.int32), pa.date32(), mask=~valid)


def pad_ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """Identifiers like ``U00000042``: prefix + zero-padded number, built in Arrow."""
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers, pa.int64()), pa.string()), width, "0")
    return pc.binary_join_element_wise(pa.scalar(prefix), digits, "")


def take_strings(values: pa.Array, indices: np.ndarray) -> pa.Array:
    """``values[indices]`` with null where the index is negative."""
    indices = np.asarray(indices)
    missing = indices < 0
    if missing.any():
        return values.take(pa.array(np.where(missing, 0, indices), mask=missing))
    return values.take(pa.array(indices))


def string_codes(labels: tuple[str, ...], codes: np.ndarray) -> pa.Array:
    """Labels by integer code (negative code = null)."""
    return take_strings(pa.array(labels, pa.string()), codes)


def int_array(values: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """int64 array, null where not ``valid``."""
    mask = None if valid is None else ~valid
    return pa.array(values.astype(np.int64), pa.int64(), mask=mask)


def list_array(lengths: np.ndarray, values: pa.Array, valid: np.ndarray | None = None) -> pa.Array:
    """``list<string>`` from per-row lengths and the flat values (null rows where not valid)."""
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    mask = None if valid is None else pa.array(~valid)
    return pa.ListArray.from_arrays(pa.array(offsets), values, mask=mask)


class ParquetSink:
    """One ``ParquetWriter`` per output file, opened lazily, with fixed options."""

    def __init__(self, out_dir: Path, names: tuple[str, ...]) -> None:
        self._out_dir = out_dir
        self._names = names
        self._writers: dict[str, pq.ParquetWriter] = {}
        self.rows: dict[str, int] = dict.fromkeys(names, 0)

    def write(self, name: str, table: pa.Table) -> None:
        """Append ``table`` (one row group per call, at most ~1M rows each) to ``name``."""
        writer = self._writers.get(name)
        if writer is None:
            writer = pq.ParquetWriter(
                self._out_dir / f"{name}.parquet", arrow_schema(name), **PARQUET_OPTIONS
            )
            self._writers[name] = writer
        writer.write_table(table, row_group_size=1 << 20)
        self.rows[name] += table.num_rows

    def close(self) -> None:
        """Close every writer; a file with no rows still gets its schema."""
        for name in self._names:
            if name not in self._writers:
                self.write(name, arrow_schema(name).empty_table())
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()

    def __enter__(self) -> ParquetSink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            for writer in self._writers.values():
                writer.close()
