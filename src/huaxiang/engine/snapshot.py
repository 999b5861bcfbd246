"""Snapshots: ``DIR/snapshots/YYYY-MM-DD/`` with ``tags.parquet`` and ``manifest.json``.

A snapshot is written into a fresh version folder and published by swapping a
symbolic link (:func:`huaxiang.storage.publishing`): readers see the previous
snapshot or the new one, never half of one, and a failed build leaves the
previous snapshot in place. Rebuilding a date replaces its snapshot.

``tags.parquet``: ``user_id`` and one column per built tag (build order), one
row per user, ordered by ``user_id``; the same data and catalog give the same file.

``manifest.json``: ``as_of``, ``catalog_hash``, ``engine``,
``rows`` (``users`` in the snapshot; ``tables``: rows of each canonical table
before ``as_of``), ``tags`` (per built tag: type, coverage = non-null share, and
:func:`column_stats`), ``skipped`` (tag and reason), ``models`` (one-row details
of the model makers, e.g. ``lifecycle.thresholds``), ``lifecycle_thresholds``
(when a lifecycle tag was built), ``definitions`` (every catalog tag, built or
skipped: definition ``hash``, ``type``, ``category``, names, the tags it
``reads`` and its canonical ``inputs``), ``generated`` (the same for tags a template
made), ``partial`` (rule tags built without some optional tags) and ``empty_columns``
(canonical columns without any value, treated as absent). The same data and catalog
give the same manifest, byte for byte.

``index/``: the audience bitmap index (:mod:`huaxiang.audience`), built from the
same table in the same atomic step.

``build.json``: what differs between two builds of the same snapshot: ``built_at``
and ``timings`` (seconds per step).

Test hook (for tests only, never set it in production): when the environment
variable ``HUAXIANG_TEST_PAUSE_BEFORE_PUBLISH`` names a file, :func:`write_snapshot`
creates that file once both files are written into the unpublished version
folder, then waits (up to 10 minutes) instead of publishing, so a test can kill
the build at the most delicate moment deterministically
(``tests/unit/test_build_kill.py``).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from huaxiang.storage import publishing

SNAPSHOTS_DIR = "snapshots"
TAGS_FILE = "tags.parquet"
MANIFEST_FILE = "manifest.json"
RUN_FILE = "build.json"
#: Test-only hook: the file to create before pausing instead of publishing (see the module doc).
PAUSE_ENV = "HUAXIANG_TEST_PAUSE_BEFORE_PUBLISH"
#: How many of the most frequent values the manifest lists for enum and boolean tags.
TOP_VALUES = 10


def snapshot_path(workspace_dir: Path, as_of: dt.date) -> Path:
    """Where the snapshot of ``as_of`` is published: ``DIR/snapshots/YYYY-MM-DD``."""
    return Path(workspace_dir) / SNAPSHOTS_DIR / as_of.isoformat()


def write_snapshot(
    target: Path,
    tags: pa.Table,
    manifest: dict[str, Any],
    run: dict[str, Any] | None = None,
    *,
    also: Callable[[Path], None] | None = None,
) -> Path:
    """Write ``tags.parquet``, ``manifest.json`` and ``build.json``; publish them atomically at ``target``.

    ``also`` writes more into the unpublished folder first (the audience index), so it
    is published in the same step or not at all.
    """
    with publishing(target) as folder:
        pq.write_table(tags, folder / TAGS_FILE)
        if also is not None:
            also(folder)
        for name, content in ((MANIFEST_FILE, manifest), (RUN_FILE, run)):
            if content is not None:
                text = json.dumps(content, ensure_ascii=False, indent=2, sort_keys=False)
                (folder / name).write_text(text + "\n", encoding="utf-8")
        _pause_for_tests()
    return target


def _pause_for_tests() -> None:
    """The test hook of the module doc: signal through a file, then wait to be killed."""
    signal_file = os.environ.get(PAUSE_ENV)
    if not signal_file:
        return
    Path(signal_file).write_text(str(os.getpid()), encoding="utf-8")
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        time.sleep(0.05)
    raise TimeoutError(f"{PAUSE_ENV} is set and nothing killed the build within 10 minutes.")


def read_manifest(target: Path) -> dict[str, Any]:
    """The manifest of the snapshot at ``target``."""
    data: dict[str, Any] = json.loads((target / MANIFEST_FILE).read_text(encoding="utf-8"))
    return data


def column_stats(column: pa.ChunkedArray) -> dict[str, Any]:
    """Coverage (non-null share) and value distribution of one tag column.

    Booleans and text: ``top`` (up to :data:`TOP_VALUES` values with counts, most
    frequent first, ties by value) and ``distinct``; numbers: ``min``, ``max`` and
    ``mean``; lists: coverage only.
    """
    rows = len(column)
    non_null = rows - column.null_count
    stats: dict[str, Any] = {
        "type": str(column.type),
        "non_null": non_null,
        "coverage": round(non_null / rows, 6) if rows else 0.0,
    }
    kind = column.type
    if pa.types.is_boolean(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind):
        counts = pc.value_counts(column.drop_null()).to_pylist()
        pairs = sorted(
            ((item["values"], item["counts"]) for item in counts), key=lambda p: (-p[1], str(p[0]))
        )
        stats["distinct"] = len(pairs)
        stats["top"] = [{"value": value, "count": count} for value, count in pairs[:TOP_VALUES]]
    elif pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        values = column.drop_null()
        if pa.types.is_decimal(kind):
            values = pc.cast(values, pa.float64())
        if len(values):
            stats["min"] = jsonable(pc.min(values).as_py())
            stats["max"] = jsonable(pc.max(values).as_py())
            stats["mean"] = jsonable(pc.mean(values).as_py())
        else:
            stats.update(min=None, max=None, mean=None)
    return stats


def jsonable(value: Any) -> Any:
    """``value`` as JSON data: decimals and dates as numbers and ISO text, NaN as null."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value
