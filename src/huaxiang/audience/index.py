"""The bitmap index of a snapshot: ``DIR/snapshots/DATE/index/``.

Users get a dense ``uint32`` id: their row in ``tags.parquet``, which the tag
engine writes ordered by ``user_id`` (the builder sorts if it is not). The
folder holds

``users.parquet``
    the dictionary: ``user_id`` of dense id 0, 1, 2 ... (one column).
``bitmaps.bin``
    every serialised :class:`pyroaring.BitMap` back to back; ``index.json``
    holds the offsets table, so one bitmap is read (from a memory map) only
    when a query needs it.
``numbers/<tag>.values.npy``, ``numbers/<tag>.ids.npy``
    numeric tags as (value, id) pairs sorted by value, then id (their bucket
    bitmaps are in ``bitmaps.bin``).
``index.json``
    format, row count, and per tag: type, names, declared and seen values,
    ``[offset, length, count]`` of each value's bitmap and of the null bitmap.

Boolean tags have a bitmap for ``true`` and for ``false``; enum tags one per
value; hierarchical tags one per leaf value and one per parent path (the union
of its children: ``千禧一代`` = ``千禧一代/精英青年`` ∪ ...). Every tag has a
null bitmap.

Numbers (integer, number, probability, decimal) are kept as sorted arrays, not
bit-sliced: a comparison is two binary searches giving a span of positions; the
array is cut into at most :data:`BUCKETS` buckets of consecutive positions, each
with a stored bitmap, so a span is the union of the whole buckets inside it plus
one small bitmap of the ids at its ragged ends (measured on 1M synthetic users:
a five-condition audience with two wide ranges fell from 41 ms when every span
was sorted into a new bitmap to 2.6 ms; docs/audiences.md). Sorted arrays are
exact for floats and decimals without choosing a precision (a bit-sliced index
needs integers), and the same arrays answer top-N by the tag exactly (ties by
user_id, since dense ids follow user_id). Integers and decimals are stored as
int64 (decimals unscaled, with their scale), floats as float64; NaN counts as
null.
"""

from __future__ import annotations

import array
import json
import mmap
import os
import shutil
import tempfile
from collections.abc import Iterable
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq
from pyroaring import BitMap

from huaxiang.audience.definition import OPS, Scalar, TagSpec
from huaxiang.audience.errors import AudienceError
from huaxiang.errors import NotFoundError, did_you_mean

if TYPE_CHECKING:
    pass

INDEX_DIR = "index"
INDEX_FILE = "index.json"
USERS_FILE = "users.parquet"
BITMAPS_FILE = "bitmaps.bin"
NUMBERS_DIR = "numbers"
FORMAT_VERSION = 3
BUCKETS = 1024
"""Number arrays are cut into at most this many buckets of consecutive positions, each with a bitmap."""
PREFIX_EVERY = 32
"""Every this many buckets, a number tag also stores the bitmap of all ids before that position."""

IdArray = npt.NDArray[np.uint32]

NUMBER_TYPES = ("integer", "number", "probability")
_ENUM_TYPES = ("enum", "hierarchical_enum")


def bitmap_of(ids: npt.NDArray[Any]) -> BitMap:
    """A bitmap of dense ids (through ``array.array``: several times faster than from numpy)."""
    if len(ids) == 0:
        return BitMap()
    return BitMap(array.array("I", np.ascontiguousarray(ids, dtype=np.uint32).tobytes()))


def ids_of(bitmap: BitMap) -> IdArray:
    """The dense ids of a bitmap, ascending, as a numpy array."""
    return np.frombuffer(bitmap.to_array(), dtype=np.uint32) if bitmap else np.empty(0, dtype=np.uint32)


# ---------------------------------------------------------------------------- reading


class SnapshotIndex:
    """A built index, loaded lazily: bitmaps and number arrays are read on first use and cached."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        meta_path = self.path / INDEX_FILE
        if not meta_path.is_file():
            raise NotFoundError(
                f"no audience index at {self.path}; "
                "build it with huaxiang.audience.build_index(snapshot_dir)."
            )
        self.meta: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
        if self.meta.get("format") != FORMAT_VERSION:
            raise AudienceError(
                f"the index at {self.path} has format {self.meta.get('format')}, this version reads "
                f"{FORMAT_VERSION}; delete the folder and build it again."
            )
        self.users: int = int(self.meta["users"])
        self.as_of: str | None = self.meta.get("as_of")
        self._bitmaps: dict[tuple[str, str], BitMap] = {}
        self._numbers: dict[str, tuple[npt.NDArray[Any], IdArray]] = {}
        self._blob: mmap.mmap | None = None

    def __repr__(self) -> str:
        return f"SnapshotIndex({str(self.path)!r}, users={self.users})"

    @cached_property
    def specs(self) -> dict[str, TagSpec]:
        """A :class:`TagSpec` per indexed tag (what definitions are checked against)."""
        found: dict[str, TagSpec] = {}
        for name, entry in self.meta["tags"].items():
            values: tuple[str, ...] = ()
            if entry["type"] in _ENUM_TYPES:
                values = tuple(sorted(set(entry["values"]) | set(_with_parents(entry.get("declared", [])))))
            found[name] = TagSpec(name, entry["type"], entry.get("name_zh"), entry.get("name_en"), values)
        return found

    @cached_property
    def universe(self) -> BitMap:
        return BitMap(range(self.users))

    @cached_property
    def user_ids(self) -> pa.Array:
        """The dictionary: ``user_ids[dense_id]``."""
        return pq.read_table(self.path / USERS_FILE).column("user_id").combine_chunks()

    def entry(self, tag: str) -> dict[str, Any]:
        try:
            found: dict[str, Any] = self.meta["tags"][tag]
        except KeyError:
            raise NotFoundError(
                f"no tag '{tag}' in the audience index.{did_you_mean(tag, self.meta['tags'])}"
            ) from None
        return found

    def _read(self, location: list[int]) -> BitMap:
        if self._blob is None:
            with open(self.path / BITMAPS_FILE, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                self._blob = mmap.mmap(handle.fileno(), size, access=mmap.ACCESS_READ) if size else None
        if self._blob is None or location[1] == 0:
            return BitMap()
        offset, length = location[0], location[1]
        return BitMap.deserialize(self._blob[offset : offset + length])

    def null(self, tag: str) -> BitMap:
        """Users for whom ``tag`` is null."""
        key = (tag, "\0null")
        if key not in self._bitmaps:
            self._bitmaps[key] = self._read(self.entry(tag)["null"])
        return self._bitmaps[key]

    def not_null(self, tag: str) -> BitMap:
        key = (tag, "\0not_null")
        if key not in self._bitmaps:
            self._bitmaps[key] = self.universe - self.null(tag)
        return self._bitmaps[key]

    def value(self, tag: str, value: str) -> BitMap:
        """Users whose boolean / enum / hierarchical tag has ``value`` (a parent path covers its children)."""
        key = (tag, value)
        if key not in self._bitmaps:
            location = self.entry(tag).get("values", {}).get(value)
            self._bitmaps[key] = self._read(location) if location is not None else BitMap()
        return self._bitmaps[key]

    def value_counts(self, tag: str) -> dict[str, int]:
        """Members per value of a boolean or enum tag, as stored (parents included)."""
        return {value: location[2] for value, location in self.entry(tag).get("values", {}).items()}

    def numbers(self, tag: str) -> tuple[npt.NDArray[Any], IdArray]:
        """(values, ids) of a numeric tag, sorted by value then id; nulls left out."""
        if tag not in self._numbers:
            entry = self.entry(tag)
            if entry.get("storage") != "sorted":
                raise AudienceError(f"tag '{tag}' is {entry['type']}, not a number.")
            folder = self.path / NUMBERS_DIR
            values = np.load(folder / f"{tag}.values.npy", mmap_mode="r")
            ids = np.load(folder / f"{tag}.ids.npy", mmap_mode="r")
            self._numbers[tag] = (values, ids)
        return self._numbers[tag]

    def number_values(self, tag: str, values: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """Stored numbers as the tag's values (decimals scaled back to floats)."""
        scale = self.entry(tag).get("scale")
        return values / 10**scale if scale is not None else values

    def match(self, tag: str, op: str, value: Any = None) -> BitMap:
        """Users for whom ``tag op value`` is true (SQL semantics: a null tag never matches)."""
        if op not in OPS:
            raise AudienceError(f"unknown operator {op!r}; use one of {', '.join(OPS)}.")
        if op == "is null":
            return self.null(tag)
        if op == "is not null":
            return self.not_null(tag)
        entry = self.entry(tag)
        if entry.get("storage") == "sorted":
            return self._match_number(tag, op, value)
        if entry["type"] == "boolean":
            value = _bool_key(value)
            if op == "in":
                value = tuple(_bool_key(v) for v in value)
        if op == "=":
            return self.value(tag, value)
        if op == "!=":
            return self.not_null(tag) - self.value(tag, value)
        if op == "in":
            maps = [self.value(tag, item) for item in value]
            return BitMap.union(*maps) if len(maps) > 1 else BitMap(maps[0])
        raise AudienceError(f"'{op}' compares numbers; tag '{tag}' is {entry['type']}.")

    def _match_number(self, tag: str, op: str, value: Any) -> BitMap:
        values, ids = self.numbers(tag)
        scale = self.entry(tag).get("scale")
        exact = values.dtype.kind == "i"

        def span(op: str, target: Scalar) -> tuple[int, int]:
            return _span(values, op, target, exact=exact, scale=scale)

        if op == "between":
            low, high = value
            return self._positions(tag, [(span(">=", low)[0], span("<=", high)[1])])
        if op == "in":
            return self._positions(tag, [span("=", item) for item in value])
        if op == "!=":
            return self.not_null(tag) - self._match_number(tag, "=", value)
        return self._positions(tag, [span(op, value)])

    def _positions(self, tag: str, spans: list[tuple[int, int]]) -> BitMap:
        """The ids at positions ``[begin, end)`` of the sorted arrays, for each span.

        The core of a wide span is the difference of two stored prefix bitmaps
        (ids at positions before ``k * PREFIX_EVERY * bucket_size``); what is
        left at each end is whole buckets from their stored bitmaps, and only the
        ids at the ragged ends (less than a bucket each) are sorted into a new
        bitmap. So no range costs a sort of more than two buckets' ids.
        """
        _, ids = self.numbers(tag)
        entry = self.entry(tag)
        size = int(entry["bucket_size"])
        unit = size * PREFIX_EVERY
        merged: list[list[int]] = []
        for begin, end in sorted(span for span in spans if span[0] < span[1]):
            if merged and begin <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([begin, end])
        parts: list[BitMap] = []
        loose: list[npt.NDArray[Any]] = []
        for begin, end in merged:
            low, high = -(-begin // unit), end // unit  # prefix blocks wholly inside [begin, end)
            pieces = [(begin, end)]
            if low < high:
                parts.append(self._prefix(tag, high, len(ids)) - self._prefix(tag, low, len(ids)))
                pieces = [(begin, low * unit), (high * unit, end)]
            for piece_begin, piece_end in pieces:
                first, last = -(-piece_begin // size), piece_end // size  # whole buckets inside
                if first >= last:
                    loose.append(ids[piece_begin:piece_end])
                    continue
                loose.extend([ids[piece_begin : first * size], ids[last * size : piece_end]])
                parts.extend(self._cached(tag, f"bucket{b}", entry["buckets"][b]) for b in range(first, last))
        edges = [piece for piece in loose if len(piece)]
        if edges:
            parts.append(bitmap_of(np.sort(np.concatenate(edges))))
        if not parts:
            return BitMap()
        return BitMap.union(*parts) if len(parts) > 1 else BitMap(parts[0])

    def _prefix(self, tag: str, block: int, count: int) -> BitMap:
        """Ids at the first ``block * PREFIX_EVERY * bucket_size`` positions of a number tag."""
        if block == 0:
            return BitMap()
        prefixes = self.entry(tag)["prefixes"]
        if block > len(prefixes):  # the whole array: every user with a value
            return self.not_null(tag)
        return self._cached(tag, f"prefix{block}", prefixes[block - 1])

    def _cached(self, tag: str, name: str, location: list[int]) -> BitMap:
        key = (tag, "\0" + name)
        if key not in self._bitmaps:
            self._bitmaps[key] = self._read(location)
        return self._bitmaps[key]

    def close(self) -> None:
        if self._blob is not None:
            self._blob.close()
            self._blob = None


def _bool_key(value: Any) -> str:
    return "true" if value is True else "false" if value is False else str(value)


def _span(
    values: npt.NDArray[Any], op: str, target: Scalar, *, exact: bool, scale: int | None
) -> tuple[int, int]:
    """Positions [begin, end) of the sorted ``values`` for which ``value op target`` holds."""
    if isinstance(target, bool) or not isinstance(target, int | float):
        raise AudienceError(f"a number is needed, got {target!r}.")
    size = len(values)
    if exact:
        # int64 storage (integers; decimals unscaled): compare with the exact threshold.
        threshold = Decimal(str(target)) * (Decimal(10) ** (scale or 0))
        ceil = int(threshold.to_integral_value(ROUND_CEILING))
        floor = int(threshold.to_integral_value(ROUND_FLOOR))
        if op == ">=":
            return int(np.searchsorted(values, ceil, "left")), size
        if op == ">":
            return int(np.searchsorted(values, floor, "right")), size
        if op == "<=":
            return 0, int(np.searchsorted(values, floor, "right"))
        if op == "<":
            return 0, int(np.searchsorted(values, ceil, "left"))
        if ceil != floor:
            return 0, 0
        return int(np.searchsorted(values, ceil, "left")), int(np.searchsorted(values, ceil, "right"))
    point = float(target)
    if op == ">=":
        return int(np.searchsorted(values, point, "left")), size
    if op == ">":
        return int(np.searchsorted(values, point, "right")), size
    if op == "<=":
        return 0, int(np.searchsorted(values, point, "right"))
    if op == "<":
        return 0, int(np.searchsorted(values, point, "left"))
    return int(np.searchsorted(values, point, "left")), int(np.searchsorted(values, point, "right"))


def _with_parents(values: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for value in values:
        parts = value.split("/")
        found.update("/".join(parts[:depth]) for depth in range(1, len(parts) + 1))
    return found


def open_index(snapshot_dir: str | Path, *, build: bool = True) -> SnapshotIndex:
    """The index of a snapshot folder.

    With ``build`` (the default), a missing index is built first, and an index of an
    older format is rebuilt and swapped in (both atomically: the new one is
    complete before it takes the name ``index``).
    """
    from huaxiang.audience.build import build_index  # build imports this module

    folder = Path(snapshot_dir)
    target = folder / INDEX_DIR
    if (target / INDEX_FILE).is_file():
        meta = json.loads((target / INDEX_FILE).read_text(encoding="utf-8"))
        if meta.get("format") == FORMAT_VERSION or not build:
            return SnapshotIndex(target)
        fresh = Path(tempfile.mkdtemp(prefix=".index.new-", dir=folder))
        fresh.rmdir()
        build_index(folder, fresh)
        stale = Path(tempfile.mkdtemp(prefix=".index.old-", dir=folder))
        stale.rmdir()
        os.replace(target, stale)
        os.replace(fresh, target)
        shutil.rmtree(stale, ignore_errors=True)
        return SnapshotIndex(target)
    if not build:
        raise NotFoundError(f"snapshot {folder} has no audience index ({target}).")
    try:
        build_index(folder, target)
    except AudienceError:
        if not (target / INDEX_FILE).is_file():  # not a concurrent builder that got there first
            raise
    return SnapshotIndex(target)
