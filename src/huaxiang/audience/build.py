"""Building the bitmap index of a snapshot (the layout is described in :mod:`huaxiang.audience.index`).

:func:`build_index` reads a published snapshot folder; :func:`build_index_from_table`
takes the tags table the snapshot's publish step is writing. Both write into a
temporary sibling folder and rename it into place, so a failed build leaves nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyroaring import BitMap

from huaxiang.audience import index as layout
from huaxiang.audience.errors import AudienceError
from huaxiang.audience.index import (
    BITMAPS_FILE,
    BUCKETS,
    FORMAT_VERSION,
    INDEX_DIR,
    INDEX_FILE,
    NUMBER_TYPES,
    NUMBERS_DIR,
    USERS_FILE,
    bitmap_of,
)
from huaxiang.errors import NotFoundError

if TYPE_CHECKING:
    from huaxiang.catalog import Catalog

#: Columns prepared at once (sorted, bitmaps made) while the previous ones are written.
PREPARE_THREADS = 2


@dataclass
class IndexReport:
    """What :func:`build_index` wrote: the folder, tags indexed, skipped columns, size and time."""

    path: Path
    users: int
    tags: int
    skipped: dict[str, str] = field(default_factory=dict)
    bytes: int = 0
    seconds: float = 0.0


def build_index(
    snapshot_dir: str | Path,
    target: str | Path | None = None,
    *,
    catalog: Catalog | None = None,
) -> IndexReport:
    """Build the index of the snapshot in ``snapshot_dir`` (its ``tags.parquet`` and ``manifest.json``).

    ``target`` is the folder to create (default ``snapshot_dir/index``); it must not
    exist. The index is written into a temporary sibling and renamed into place, so
    a failed build leaves nothing behind. Tag types, names and declared values come
    from ``catalog`` when given, else from the manifest's ``definitions``, else
    from the column types.
    """
    folder = Path(snapshot_dir)
    tags_path = folder / "tags.parquet"
    if not tags_path.is_file():
        raise NotFoundError(f"{folder} holds no tags.parquet; build the snapshot first ('huaxiang build').")
    manifest: dict[str, Any] = {}
    if (folder / "manifest.json").is_file():
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    table = pq.read_table(tags_path)
    return build_index_from_table(
        table,
        Path(target) if target is not None else folder / INDEX_DIR,
        catalog=catalog,
        # Tags a template made (scene_outing_score ...) are recorded under "generated".
        definitions={**manifest.get("generated", {}), **manifest.get("definitions", {})},
        as_of=manifest.get("as_of"),
    )


def build_index_from_table(
    tags: pa.Table,
    target: str | Path,
    *,
    catalog: Catalog | None = None,
    definitions: Mapping[str, Mapping[str, Any]] | None = None,
    as_of: str | None = None,
) -> IndexReport:
    """Build the index of a tags table (``user_id`` + a column per tag) into the new folder ``target``.

    The snapshot's publish step calls this with the table it is writing and a
    folder inside the unpublished snapshot; ``definitions`` are the manifest's
    ``definitions`` and ``generated`` entries (type, names, values per tag id).
    See :func:`build_index` for the rest.
    """
    started = time.perf_counter()
    target = Path(target)
    if target.exists():
        raise AudienceError(f"{target} already exists; remove it to rebuild the index.")
    if "user_id" not in tags.column_names:
        raise AudienceError("the tags table has no user_id column.")
    user_ids = tags.column("user_id")
    if user_ids.null_count:
        raise AudienceError("the tags table has users without a user_id.")
    if len(tags) >= 2**32 - 1:
        raise AudienceError(f"{len(tags):,} users do not fit uint32 dense ids.")
    # A build hands over its table sorted by user_id: strictly increasing ids are sorted and
    # distinct, checked in one pass instead of a sort and a distinct count.
    if not _strictly_increasing(user_ids):
        order = pc.sort_indices(tags, sort_keys=[("user_id", "ascending")])
        tags = tags.take(order)
        if pc.count_distinct(tags.column("user_id")).as_py() != len(tags):
            raise AudienceError("the tags table has duplicate user_id values; one row per user is required.")

    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        report = _write_index(tags, work, catalog, definitions or {}, as_of)
        os.replace(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    report.path = target
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _strictly_increasing(values: pa.ChunkedArray) -> bool:
    if len(values) < 2:
        return True
    values = values.combine_chunks()
    return bool(pc.all(pc.less(values.slice(0, len(values) - 1), values.slice(1))).as_py())


@dataclass
class _Prepared:
    """One column's index data, computed off the writer thread (numpy sorts release the GIL)."""

    entry: dict[str, Any]
    bitmaps: dict[str, BitMap] = field(default_factory=dict)
    null: BitMap = field(default_factory=BitMap)
    sorted_values: npt.NDArray[Any] | None = None
    sorted_ids: npt.NDArray[np.uint32] | None = None


def _prepare(column: pa.Array, tag_type: str, entry: dict[str, Any]) -> _Prepared:
    if tag_type in NUMBER_TYPES:
        values, valid = _numbers(column)
        ids = np.flatnonzero(valid).astype(np.uint32)
        kept = values[valid]
        order = _stable_order(kept)  # ties keep id order: sorted by (value, id)
        entry["storage"] = "sorted"
        entry["dtype"] = str(kept.dtype)
        if pa.types.is_decimal(column.type):
            entry["scale"] = column.type.scale
        return _Prepared(
            entry,
            null=bitmap_of(np.flatnonzero(~valid)),
            sorted_values=kept[order],
            sorted_ids=ids[order],
        )
    entry["storage"] = "bitmaps"
    return _Prepared(
        entry,
        bitmaps=_value_bitmaps(column, tag_type),
        null=bitmap_of(np.flatnonzero(_null_mask(column))),
    )


def _stable_order(values: npt.NDArray[Any]) -> npt.NDArray[np.intp]:
    """The stable sort order of ``values``; integers in a 16-bit range take numpy's radix sort."""
    if len(values) and np.issubdtype(values.dtype, np.integer):
        low, high = int(values.min()), int(values.max())
        if high - low < 2**16:
            return np.argsort((values - low).astype(np.uint16), kind="stable")
    return np.argsort(values, kind="stable")


def _write_index(
    tags: pa.Table,
    work: Path,
    catalog: Catalog | None,
    definitions: Mapping[str, Mapping[str, Any]],
    as_of: str | None,
) -> IndexReport:
    users = len(tags)
    pq.write_table(tags.select(["user_id"]), work / USERS_FILE)
    (work / NUMBERS_DIR).mkdir()
    meta_tags: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    jobs: list[tuple[str, pa.Array, str, dict[str, Any]]] = []
    for name in tags.column_names:
        if name == "user_id":
            continue
        column = tags.column(name).combine_chunks()
        described = _describe(name, column.type, catalog, definitions)
        if isinstance(described, str):
            skipped[name] = described
            continue
        tag_type, names, declared = described
        entry: dict[str, Any] = {"type": tag_type, **names}
        if tag_type not in NUMBER_TYPES:
            entry["declared"] = declared
        jobs.append((name, column, tag_type, entry))

    with open(work / BITMAPS_FILE, "wb") as out, ThreadPoolExecutor(max_workers=PREPARE_THREADS) as pool:

        def put(bitmap: BitMap) -> list[int]:
            data = bitmap.serialize()
            offset = out.tell()
            out.write(data)
            return [offset, len(data), len(bitmap)]

        # A few columns ahead at a time: their sorted arrays are held until written.
        for first in range(0, len(jobs), PREPARE_THREADS):
            batch = jobs[first : first + PREPARE_THREADS]
            futures = [pool.submit(_prepare, column, tag_type, entry) for _, column, tag_type, entry in batch]
            for (name, _, _, _), future in zip(batch, futures, strict=True):
                prepared = future.result()
                entry = prepared.entry
                if prepared.sorted_ids is not None and prepared.sorted_values is not None:
                    sorted_ids = prepared.sorted_ids
                    np.save(work / NUMBERS_DIR / f"{name}.values.npy", prepared.sorted_values)
                    np.save(work / NUMBERS_DIR / f"{name}.ids.npy", sorted_ids)
                    entry["null"] = put(prepared.null)
                    size = bucket_size(len(sorted_ids))
                    entry["bucket_size"] = size
                    entry["buckets"], entry["prefixes"] = [], []
                    running = BitMap()
                    for number, start in enumerate(range(0, len(sorted_ids), size), start=1):
                        bucket = bitmap_of(np.sort(sorted_ids[start : start + size]))
                        entry["buckets"].append(put(bucket))
                        running |= bucket
                        if number % layout.PREFIX_EVERY == 0 and start + size < len(sorted_ids):
                            entry["prefixes"].append(put(running))
                else:
                    entry["values"] = {value: put(bitmap) for value, bitmap in prepared.bitmaps.items()}
                    entry["null"] = put(prepared.null)
                meta_tags[name] = entry
    meta = {"format": FORMAT_VERSION, "as_of": as_of, "users": users, "tags": meta_tags, "skipped": skipped}
    # Compact: the offsets of a 1M-user index are megabytes of JSON, read by programs only.
    text = json.dumps(meta, ensure_ascii=False, separators=(",", ":"))
    (work / INDEX_FILE).write_text(text + "\n", encoding="utf-8")
    size = sum(path.stat().st_size for path in work.rglob("*") if path.is_file())
    return IndexReport(path=work, users=users, tags=len(meta_tags), skipped=skipped, bytes=size)


def _describe(
    name: str,
    kind: pa.DataType,
    catalog: Catalog | None,
    definitions: Mapping[str, Mapping[str, Any]],
) -> tuple[str, dict[str, str], list[str]] | str:
    """(type, names, declared values) of a column, or why it cannot be indexed."""
    tag_type: str | None = None
    names: dict[str, str] = {}
    declared: list[str] = []
    if catalog is not None and name in catalog.tags:
        tag = catalog.tags[name]
        tag_type, names = tag.type, {"name_zh": tag.name_zh, "name_en": tag.name_en}
        declared = [value.value for value in tag.values or []]
    elif name in definitions:
        recorded = definitions[name]
        tag_type = recorded.get("type")
        names = {key: recorded[key] for key in ("name_zh", "name_en") if recorded.get(key)}
        declared = [
            item["value"] if isinstance(item, dict) else str(item) for item in recorded.get("values") or []
        ]
    fits = {
        "boolean": pa.types.is_boolean(kind),
        "enum": pa.types.is_string(kind) or pa.types.is_large_string(kind),
        "number": pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind),
    }
    if tag_type is None:
        tag_type = next(
            (t for t, ok in (("boolean", fits["boolean"]), ("enum", fits["enum"])) if ok),
            "number" if fits["number"] else None,
        )
        if tag_type == "number" and pa.types.is_integer(kind):
            tag_type = "integer"
    if tag_type is None:
        return f"column type {kind} cannot be indexed"
    needed = {"boolean": "boolean", "enum": "enum", "hierarchical_enum": "enum"}.get(tag_type, "number")
    if not fits[needed]:
        return f"tag type {tag_type} but column type {kind}"
    return tag_type, names, declared


def _null_mask(column: pa.Array) -> npt.NDArray[np.bool_]:
    return np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)


def _numbers(column: pa.Array) -> tuple[npt.NDArray[Any], npt.NDArray[np.bool_]]:
    """Values (int64 for integers and unscaled decimals, float64 otherwise) and a validity mask."""
    valid = ~_null_mask(column)
    kind = column.type
    if pa.types.is_decimal(kind):
        floats = pc.cast(column, pa.float64()).fill_null(0).to_numpy()
        return np.rint(floats * 10**kind.scale).astype(np.int64), valid
    if pa.types.is_integer(kind):
        return column.fill_null(0).to_numpy().astype(np.int64), valid
    values = column.cast(pa.float64()).fill_null(0.0).to_numpy().astype(np.float64)
    return values, valid & ~np.isnan(values)


def _value_bitmaps(column: pa.Array, tag_type: str) -> dict[str, BitMap]:
    if tag_type == "boolean":
        values = np.asarray(column.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
        valid = ~_null_mask(column)
        return {
            "true": bitmap_of(np.flatnonzero(values & valid)),
            "false": bitmap_of(np.flatnonzero(~values & valid)),
        }
    encoded = pc.dictionary_encode(column)
    dictionary = encoded.dictionary.to_pylist()
    codes = encoded.indices.fill_null(-1).to_numpy().astype(np.int64)
    order = _stable_order(codes)
    counts = np.bincount(codes[codes >= 0], minlength=len(dictionary))
    starts = int(np.count_nonzero(codes < 0)) + np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    found: dict[str, BitMap] = {}
    for code, value in sorted(enumerate(dictionary), key=lambda pair: pair[1]):
        begin = int(starts[code])
        found[value] = bitmap_of(np.sort(order[begin : begin + int(counts[code])]))
    if tag_type == "hierarchical_enum":
        parents: dict[str, list[BitMap]] = {}
        for value, bitmap in found.items():
            parts = value.split("/")
            for depth in range(1, len(parts)):
                parents.setdefault("/".join(parts[:depth]), []).append(bitmap)
        for parent, children in parents.items():
            union = BitMap.union(*children) if len(children) > 1 else BitMap(children[0])
            found[parent] = union | found[parent] if parent in found else union
    return dict(sorted(found.items()))


def bucket_size(count: int) -> int:
    """Ids per bucket of a sorted number array: at most :data:`BUCKETS` buckets of at least 1,024 ids."""
    return max(1024, -(-count // BUCKETS))
