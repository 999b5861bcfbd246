"""The online store: one snapshot's tags in memory, swapped atomically when a new one lands.

A :class:`StoreSnapshot` holds the snapshot's ``tags.parquet`` as a few row-major NumPy
matrices, one per storage kind (booleans as int8, text as dictionary codes, integers,
floats), and a ``user_id`` → row map, so one user's tags are a handful of row slices:
tens of microseconds at a million users. :class:`OnlineStore` holds the current one
in a single attribute; a reader takes that reference once per request, so a swap
(assigning the attribute, atomic in Python) never mixes two snapshots in one answer,
and requests in flight finish on the snapshot they started with. A watcher thread
polls ``DIR/snapshots`` and loads a newly published snapshot (a new date, or the
same date rebuilt: its link points at a new version) before swapping it in.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from huaxiang.audience import AudienceEngine
from huaxiang.engine.snapshot import jsonable
from huaxiang.errors import NotFoundError
from huaxiang.history import Snapshot, list_snapshots
from huaxiang.profile import IMPUTED_BY, IMPUTED_SUFFIX

log = logging.getLogger(__name__)

_BOOL, _TEXT, _INT, _FLOAT, _OBJECT = range(5)
#: An old snapshot's audience engine is closed this long after it was swapped out.
RETIRE_AFTER_S = 60.0


@dataclass(frozen=True)
class TagInfo:
    """A tag as the catalog endpoint shows it: names, category, type, coverage, distribution."""

    id: str
    name_zh: str
    name_en: str
    category: str
    type: str
    coverage: float | None = None
    distribution: dict[str, Any] = field(default_factory=dict)
    values: list[dict[str, Any]] | None = None
    realtime: bool = False


class StoreSnapshot:
    """One snapshot's tags in memory, for lookups of one user at a time."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.as_of: dt.date = snapshot.as_of
        self.version = os.path.realpath(snapshot.path)
        self.loaded_at = dt.datetime.now(dt.UTC)
        started = time.perf_counter()
        table = pq.read_table(snapshot.tags_path)
        ids = table.column("user_id").to_pylist()
        self.rows: dict[str, int] = {user_id: row for row, user_id in enumerate(ids)}
        self.users = len(ids)
        self.tags: list[str] = [name for name in table.column_names if name != "user_id"]
        self._layout: list[tuple[str, int, int]] = []
        columns: dict[int, list[npt.NDArray[Any]]] = {kind: [] for kind in range(4)}
        masks: list[npt.NDArray[np.bool_]] = []
        self._dictionaries: list[list[Any]] = []
        self._objects: list[list[Any]] = []
        for name in self.tags:
            column = table.column(name)
            kind, position = self._add(column, columns, masks)
            self._layout.append((name, kind, position))
        size = (self.users, 0)
        self._bools = np.column_stack(columns[_BOOL]) if columns[_BOOL] else np.empty(size, np.int8)
        self._codes = np.column_stack(columns[_TEXT]) if columns[_TEXT] else np.empty(size, np.int32)
        self._ints = np.column_stack(columns[_INT]) if columns[_INT] else np.empty(size, np.int64)
        self._int_nulls = np.column_stack(masks) if masks else np.empty(size, np.bool_)
        self._floats = np.column_stack(columns[_FLOAT]) if columns[_FLOAT] else np.empty(size, np.float64)
        positions = {name: position for name, kind, position in self._layout if kind == _BOOL}
        self._imputed: list[tuple[str, int]] = []
        for name in self.tags:
            flag = (
                f"{name}{IMPUTED_SUFFIX}" if f"{name}{IMPUTED_SUFFIX}" in positions else IMPUTED_BY.get(name)
            )
            if flag is not None and flag in positions:
                self._imputed.append((name, positions[flag]))
        self.load_seconds = round(time.perf_counter() - started, 3)

    def _add(
        self,
        column: pa.ChunkedArray,
        columns: dict[int, list[npt.NDArray[Any]]],
        masks: list[npt.NDArray[np.bool_]],
    ) -> tuple[int, int]:
        kind = column.type
        if pa.types.is_boolean(kind):
            values = pc.if_else(column, 1, 0).cast(pa.int8()).fill_null(-1)
            columns[_BOOL].append(values.to_numpy())
            return _BOOL, len(columns[_BOOL]) - 1
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            encoded = pc.dictionary_encode(column).combine_chunks()
            codes = encoded.indices.cast(pa.int32()).fill_null(-1)
            columns[_TEXT].append(codes.to_numpy(zero_copy_only=False))
            self._dictionaries.append(encoded.dictionary.to_pylist())
            return _TEXT, len(columns[_TEXT]) - 1
        if pa.types.is_integer(kind):
            masks.append(column.is_null().to_numpy(zero_copy_only=False))
            columns[_INT].append(column.cast(pa.int64()).fill_null(0).to_numpy())
            return _INT, len(columns[_INT]) - 1
        if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
            values = column.cast(pa.float64()).fill_null(float("nan"))
            columns[_FLOAT].append(values.to_numpy())
            return _FLOAT, len(columns[_FLOAT]) - 1
        self._objects.append([jsonable(value) for value in column.to_pylist()])
        return _OBJECT, len(self._objects) - 1

    def __contains__(self, user_id: str) -> bool:
        return user_id in self.rows

    def lookup(self, user_id: str) -> tuple[dict[str, Any], list[str]] | None:
        """Every tag of the user (``None`` values where the user has none) and the imputed ones."""
        row = self.rows.get(user_id)
        if row is None:
            return None
        bools = self._bools[row].tolist()
        codes = self._codes[row].tolist()
        ints = self._ints[row].tolist()
        nulls = self._int_nulls[row].tolist()
        floats = self._floats[row].tolist()
        dictionaries, objects = self._dictionaries, self._objects
        tags: dict[str, Any] = {}
        for name, kind, at in self._layout:
            if kind == _BOOL:
                flag = bools[at]
                tags[name] = None if flag < 0 else flag == 1
            elif kind == _TEXT:
                code = codes[at]
                tags[name] = None if code < 0 else dictionaries[at][code]
            elif kind == _INT:
                tags[name] = None if nulls[at] else ints[at]
            elif kind == _FLOAT:
                number = floats[at]
                tags[name] = None if number != number else number
            else:
                tags[name] = objects[at][row]
        imputed = [name for name, at in self._imputed if bools[at] == 1]
        return tags, imputed

    @cached_property
    def catalog(self) -> dict[str, TagInfo]:
        """Every tag of the snapshot with its names, category, coverage and distribution (manifest)."""
        stats = self.snapshot.manifest.get("tags", {})
        found: dict[str, TagInfo] = {}
        for name in self.tags:
            meta = self.snapshot.definition(name)
            recorded = dict(stats.get(name, {}))
            coverage = recorded.pop("coverage", None)
            recorded.pop("type", None)
            found[name] = TagInfo(
                id=name,
                name_zh=meta.get("name_zh", name),
                name_en=meta.get("name_en", name),
                category=meta.get("category", "custom"),
                type=meta.get("type") or self.snapshot.tag_type(name),
                coverage=coverage,
                distribution=recorded,
                values=meta.get("values"),
            )
        return found

    def close(self) -> None:
        """Nothing to release: the tags are plain memory."""


class Generation:
    """What the service serves from one snapshot: its in-memory tags and its audience engine."""

    def __init__(self, tags: StoreSnapshot, workspace: Path, database_url: str | None) -> None:
        self.tags = tags
        self.workspace = workspace
        self.database_url = database_url
        self.audience_lock = threading.Lock()
        self._engine: AudienceEngine | None = None

    @property
    def as_of(self) -> dt.date:
        return self.tags.as_of

    def audiences(self) -> AudienceEngine:
        """The snapshot's audience engine (made on first use; hold :attr:`audience_lock` while using it)."""
        if self._engine is None:
            self._engine = AudienceEngine(self.workspace, self.as_of, database_url=self.database_url)
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None


class OnlineStore:
    """The current :class:`Generation`, and the watcher that swaps in newly published snapshots."""

    def __init__(
        self, workspace: Path, *, database_url: str | None = None, watch_interval_s: float = 1.0
    ) -> None:
        self.workspace = Path(workspace)
        self.database_url = database_url
        self.watch_interval_s = watch_interval_s
        self._current: Generation | None = None
        self._retired: list[tuple[float, Generation]] = []
        self._swap_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.swaps = 0
        self.listeners: list[Callable[[Generation], None]] = []
        self.last_error: str | None = None

    @property
    def served(self) -> Generation | None:
        """The generation being served, or ``None`` before any snapshot is loaded."""
        return self._current

    @property
    def current(self) -> Generation:
        """The generation being served (one attribute read: take it once per request)."""
        found = self._current
        if found is None:
            raise NotFoundError(
                "no snapshot is loaded: build one with "
                f"'huaxiang build -w {self.workspace} --as-of YYYY-MM-DD'; "
                "the service picks it up within a second."
            )
        return found

    def _latest(self) -> Snapshot | None:
        snapshots = list_snapshots(self.workspace)
        return snapshots[-1] if snapshots else None

    def refresh(self) -> bool:
        """Load the latest snapshot if it is not the one served; whether a swap happened."""
        with self._swap_lock:
            latest = self._latest()
            if latest is None:
                return False
            current = self._current
            if current is not None and (current.as_of, current.tags.version) == (
                latest.as_of,
                os.path.realpath(latest.path),
            ):
                return False
            generation = Generation(StoreSnapshot(latest), self.workspace, self.database_url)
            self._current = generation  # the swap: one reference
            # Millions of long-lived objects (the id map, dictionaries): keep them out of the
            # garbage collector's full passes, which otherwise pause lookups for tens of ms.
            gc.collect()
            gc.freeze()
            pa.default_memory_pool().release_unused()  # the Parquet table read for the load
            self.swaps += 1
            if current is not None:
                self._retired.append((time.monotonic(), current))
            for listener in self.listeners:
                listener(generation)
            log.info("serving snapshot %s (%s users)", generation.as_of, generation.tags.users)
            return True

    def _retire(self) -> None:
        now = time.monotonic()
        keep: list[tuple[float, Generation]] = []
        for retired_at, generation in self._retired:
            if now - retired_at >= RETIRE_AFTER_S:
                with generation.audience_lock:
                    generation.close()
            else:
                keep.append((retired_at, generation))
        self._retired = keep

    def start(self) -> None:
        """Load the latest snapshot (if any) and start watching for new ones."""
        self.refresh()
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="huaxiang-store-watch", daemon=True)
            self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(self.watch_interval_s):
            try:
                self.refresh()
                self.last_error = None
                self._retire()
            except Exception as error:  # keep serving the previous snapshot, and say why in /health
                self.last_error = f"{type(error).__name__}: {error}"
                log.exception("could not load the latest snapshot; still serving the previous one")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        for _, generation in self._retired:
            generation.close()
        self._retired = []
        if self._current is not None:
            self._current.close()
