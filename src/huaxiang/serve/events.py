"""Real-time events: a durable append-only log, real-time tags derived from it, and the nightly fold.

**The log.** ``DIR/.huaxiang/events/YYYY-MM-DD.jsonl`` (one segment per UTC day of
receipt), one JSON object a line. :meth:`EventLog.append` writes a whole batch with
one ``write`` under an exclusive ``flock`` (several service processes share the
log), then ``fsync``s before returning, so an acknowledged event survives ``kill -9``
and a power cut. A line torn by a crash mid-write never belongs to an acknowledged
batch; readers skip it and the next writer starts on a fresh line.

**Real-time tags.** :class:`EventFeed` reads the log from where it stopped (every
``events_tail_s`` seconds, and at once after its own appends, so a lookup in the
process that took the event sees it immediately and other processes within the
tail interval) and keeps, per user, the events it needs: action counts in the last N
minutes or hours (``rt_cart_1h``), "carted in the last hour and not bought"
(``rt_cart_not_bought_1h``), scene-score increments since the snapshot
(``rt_scene_<slug>_increment``: the scene weights of the catalog, without decay) and
the last visit time (``rt_last_visit_time``, any event counts as a visit). On
start it replays the whole log, so restarts lose nothing.

**The fold.** :func:`fold` appends the events not folded yet to the canonical
``DIR/data/events.parquet``, publishing a new version of ``data/`` with the byte
offsets folded so far recorded inside it (``events_folded.json``): both change in
one atomic swap, so a fold killed half-way folds nothing and a fold run twice folds
each event once. A later ``huaxiang ingest`` replaces ``data/`` and its offsets, and
the next fold adds the retained log again. Run it as ``huaxiang events fold -w DIR``
between ingest and build; it deletes folded segments older than the retention.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq

from huaxiang.errors import RequestError, did_you_mean
from huaxiang.model.schema import EVENT_TYPES
from huaxiang.serve.settings import Settings, duration_seconds
from huaxiang.storage import publishing

EVENTS_DIR = Path(".huaxiang") / "events"
FOLDED_FILE = "events_folded.json"
#: An event may be stamped at most this far in the future (clock skew between systems).
MAX_FUTURE_S = 300
_TEXT_FIELDS = ("product_id", "keyword", "content_id")
_MAX_TEXT = 256


def normalise(raw: Mapping[str, Any], zone: ZoneInfo, now: float, where: str = "event") -> dict[str, Any]:
    """One event as the log stores it (``time`` in epoch seconds), or a 422 naming the field.

    ``event_time`` is ISO 8601; without an offset it is the workspace's local time; missing, it is now.
    """
    unknown = set(raw) - {"user_id", "event_type", "event_time", *_TEXT_FIELDS}
    if unknown:
        raise _invalid(
            f"{where}: unknown field {sorted(unknown)[0]!r}; an event has user_id, event_type, "
            f"event_time, {', '.join(_TEXT_FIELDS)}."
        )
    user_id = raw.get("user_id")
    if not isinstance(user_id, str) or not user_id or len(user_id) > 128:
        raise _invalid(f"{where}.user_id: give the user's id as text of 1-128 characters.")
    kind = raw.get("event_type")
    if kind not in EVENT_TYPES:
        hint = did_you_mean(str(kind), EVENT_TYPES)
        raise _invalid(
            f"{where}.event_type: {kind!r} is not an event type.{hint} Types: {', '.join(EVENT_TYPES)}."
        )
    event: dict[str, Any] = {"user_id": user_id, "event_type": kind}
    stamp = raw.get("event_time")
    if stamp is None:
        event["time"] = now
    else:
        if isinstance(stamp, dt.datetime):
            moment = stamp
        else:
            try:
                moment = dt.datetime.fromisoformat(str(stamp))
            except ValueError:
                raise _invalid(
                    f"{where}.event_time: {stamp!r} is not an ISO time, e.g. 2026-11-23T15:04:05+08:00."
                ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=zone)
        event["time"] = moment.timestamp()
        if event["time"] > now + MAX_FUTURE_S:
            raise _invalid(
                f"{where}.event_time: {stamp} is in the future; send the time the action happened."
            )
    for name in _TEXT_FIELDS:
        value = raw.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > _MAX_TEXT):
            raise _invalid(f"{where}.{name}: give text of at most {_MAX_TEXT} characters, or leave it out.")
        event[name] = value
    return event


def _invalid(message: str) -> RequestError:
    error = RequestError(message)
    error.http_status = 422
    return error


class EventLog:
    """The append-only, fsync'ed event log of a workspace."""

    def __init__(self, workspace: Path) -> None:
        self.folder = Path(workspace) / EVENTS_DIR
        self.folder.mkdir(parents=True, exist_ok=True)

    def segment(self, when: float) -> Path:
        return self.folder / f"{dt.datetime.fromtimestamp(when, dt.UTC):%Y-%m-%d}.jsonl"

    def segments(self) -> list[Path]:
        return sorted(self.folder.glob("*.jsonl"))

    def append(self, events: Iterable[dict[str, Any]]) -> int:
        """Append events (already normalised) durably; returns when they are on disk."""
        received = time.time()
        lines = [
            json.dumps({"id": uuid.uuid4().hex, "received": received, **event}, ensure_ascii=False)
            for event in events
        ]
        if not lines:
            return 0
        data = ("\n".join(lines) + "\n").encode("utf-8")
        path = self.segment(received)
        created = not path.exists()
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data  # a torn line from a killed writer: start afresh
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            directory = os.open(self.folder, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        return len(lines)

    @staticmethod
    def read(path: Path, offset: int) -> tuple[list[dict[str, Any]], int]:
        """Complete lines of ``path`` from byte ``offset``: the events and the offset after them."""
        try:
            with open(path, "rb") as handle:
                handle.seek(offset)
                data = handle.read()
        except FileNotFoundError:
            return [], offset
        end = data.rfind(b"\n") + 1
        events: list[dict[str, Any]] = []
        for line in data[:end].splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue  # a torn line left by a killed writer (never acknowledged)
            if isinstance(item, dict) and "user_id" in item and "time" in item:
                events.append(item)
        return events, offset + end


@dataclass
class _UserEvents:
    events: list[tuple[float, str, str | None]] = field(default_factory=list)
    last_visit: float | None = None


class EventFeed:
    """Real-time tags of every user, kept up to date from the event log."""

    def __init__(
        self,
        settings: Settings,
        zone: ZoneInfo,
        *,
        scene_weights: Mapping[str, float] | None = None,
        scenes_of: Mapping[str, tuple[str, ...]] | None = None,
        snapshot_start: float | None = None,
    ) -> None:
        self.log = EventLog(settings.workspace)
        self.zone = zone
        self.windows = {
            kind: [(window, duration_seconds(window)) for window in windows]
            for kind, windows in settings.action_windows.items()
        }
        self.cart_window = (
            settings.cart_not_bought_window,
            duration_seconds(settings.cart_not_bought_window),
        )
        self.scene_weights = dict(scene_weights or {})
        self.scenes_of = dict(scenes_of or {})
        self.scenes = sorted({scene for scenes in self.scenes_of.values() for scene in scenes})
        self.snapshot_start = snapshot_start
        self.retention_s = max(
            [seconds for windows in self.windows.values() for _, seconds in windows] + [self.cart_window[1]]
        )
        self.tail_s = settings.events_tail_s
        self._users: dict[str, _UserEvents] = {}
        self._empty = self._tags_of(None, 0.0)  # what a user without events gets (the common case)
        self._offsets: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.applied = 0

    def start(self) -> None:
        """Replay the log, then follow it in a background thread."""
        self.catch_up()
        if self._thread is None:
            self._thread = threading.Thread(target=self._follow, name="huaxiang-events", daemon=True)
            self._thread.start()

    def _follow(self) -> None:
        while not self._stop.wait(self.tail_s):
            self.catch_up()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def ingest(self, raw_events: list[Mapping[str, Any]]) -> int:
        """Check, log durably, and apply a batch (all or nothing); how many were accepted."""
        now = time.time()
        events = [normalise(item, self.zone, now, f"events[{i}]") for i, item in enumerate(raw_events)]
        count = self.log.append(events)
        self.catch_up()
        return count

    def catch_up(self) -> int:
        """Apply what the log holds beyond what was read; how many events were applied."""
        with self._lock:
            applied = 0
            for path in self.log.segments():
                events, offset = self.log.read(path, self._offsets.get(path.name, 0))
                self._offsets[path.name] = offset
                for event in events:
                    self._apply(event)
                applied += len(events)
            self.applied += applied
            return applied

    def _keep_after(self, now: float) -> float:
        horizon = now - self.retention_s
        if self.scene_weights and self.snapshot_start is not None:
            horizon = min(horizon, self.snapshot_start)
        return horizon

    def _apply(self, event: dict[str, Any]) -> None:
        moment = float(event["time"])
        state = self._users.get(event["user_id"])
        if state is None:
            state = self._users[event["user_id"]] = _UserEvents()
        if state.last_visit is None or moment > state.last_visit:
            state.last_visit = moment
        if moment < self._keep_after(time.time()):
            return
        state.events.append((moment, event["event_type"], event.get("product_id") or event.get("content_id")))
        if len(state.events) > 64:
            horizon = self._keep_after(time.time())
            state.events = [item for item in state.events if item[0] >= horizon]

    def set_snapshot_start(self, start: float) -> None:
        """Scene increments count events from ``start`` (midnight of the served snapshot's date)."""
        self.snapshot_start = start

    def has(self, user_id: str) -> bool:
        return user_id in self._users

    def tags(self, user_id: str, now: float | None = None) -> dict[str, Any]:
        """The user's real-time tags at ``now`` (zeros and nulls for a user without events)."""
        state = self._users.get(user_id)
        if state is None:
            return dict(self._empty)
        return self._tags_of(state, time.time() if now is None else now)

    def _tags_of(self, state: _UserEvents | None, now: float) -> dict[str, Any]:
        events = list(state.events) if state is not None else []
        result: dict[str, Any] = {
            "rt_last_visit_time": (
                dt.datetime.fromtimestamp(state.last_visit, self.zone).replace(tzinfo=None).isoformat()
                if state is not None and state.last_visit is not None
                else None
            )
        }
        for kind, windows in self.windows.items():
            for window, seconds in windows:
                start = now - seconds
                result[f"rt_{kind}_{window}"] = sum(
                    1 for t, k, _ in events if k == kind and start <= t <= now
                )
        window, seconds = self.cart_window
        start = now - seconds
        carts = [(t, item) for t, k, item in events if k == "cart" and start <= t <= now]
        bought = [(t, item) for t, k, item in events if k == "purchase"]
        result[f"rt_cart_not_bought_{window}"] = any(
            not any(p_time >= c_time and (p_item is None or p_item == c_item) for p_time, p_item in bought)
            for c_time, c_item in carts
        )
        since = self.snapshot_start if self.snapshot_start is not None else float("-inf")
        increments = dict.fromkeys(self.scenes, 0.0)
        for moment, kind, item in events:
            weight = self.scene_weights.get(kind)
            if weight and moment >= since and item is not None:
                for scene in self.scenes_of.get(item, ()):
                    increments[scene] += weight
        for scene, value in increments.items():
            result[f"rt_scene_{scene}_increment"] = value
        return result

    def catalog(self) -> list[tuple[str, str, str, str, str]]:
        """(id, name_zh, name_en, category, type) of every real-time tag."""
        found = [("rt_last_visit_time", "最近访问时间", "Last visit time", "action", "timestamp")]
        for kind, windows in self.windows.items():
            for window, _ in windows:
                found.append(
                    (
                        f"rt_{kind}_{window}",
                        f"近{window}{kind}次数",
                        f"{kind} events in the last {window}",
                        "action",
                        "integer",
                    )
                )
        window = self.cart_window[0]
        found.append(
            (
                f"rt_cart_not_bought_{window}",
                f"近{window}加购未购买",
                f"Added to cart in the last {window} and not bought",
                "action",
                "boolean",
            )
        )
        for scene in self.scenes:
            found.append(
                (
                    f"rt_scene_{scene}_increment",
                    f"{scene}场景得分增量",
                    f"{scene} scene-score increment since the snapshot",
                    "category_scene",
                    "number",
                )
            )
        return found


def scene_config(workspace: Path) -> tuple[dict[str, float], dict[str, tuple[str, ...]]]:
    """The scene weights of the catalog's scene tag and the scenes of each product and content item."""
    from huaxiang.catalog import load_catalog

    weights: dict[str, float] = {}
    if (workspace / "tags").is_dir():
        for tag in load_catalog(workspace / "tags"):
            if tag.scene is not None:
                weights = dict(tag.scene.weights)
                break
    scenes_of: dict[str, tuple[str, ...]] = {}
    for table, key in (("products", "product_id"), ("content", "content_id")):
        path = workspace / "data" / f"{table}.parquet"
        if weights and path.is_file() and "scene_tags" in pq.read_schema(path).names:
            rows = pq.read_table(path, columns=[key, "scene_tags"]).to_pylist()
            scenes_of.update({row[key]: tuple(row["scene_tags"]) for row in rows if row["scene_tags"]})
    return weights, scenes_of


# ---------------------------------------------------------------------------- fold


@dataclass(frozen=True)
class FoldResult:
    """What a fold did: events appended to ``data/events.parquet``, segments deleted."""

    folded: int
    events_total: int
    deleted_segments: list[str]


def fold(workspace: str | Path, *, retention_days: int = 7, zone: ZoneInfo | None = None) -> FoldResult:
    """Append the logged events not folded yet to the canonical events (one atomic publication)."""
    from huaxiang.config import load_config

    root = Path(workspace)
    zone = zone or ZoneInfo(load_config(root).timezone)
    data = root / "data"
    if not (data / "events.parquet").is_file() and not (data / "users.parquet").is_file():
        raise RequestError(
            f"{data} holds no ingested tables; run 'huaxiang ingest -w {root}' before folding."
        )
    log = EventLog(root)
    folded_path = data / FOLDED_FILE
    offsets: dict[str, int] = json.loads(folded_path.read_text("utf-8")) if folded_path.is_file() else {}
    new: list[dict[str, Any]] = []
    for path in log.segments():
        events, offset = log.read(path, offsets.get(path.name, 0))
        offsets[path.name] = offset
        new.extend(events)
    deleted = _expired(log, offsets, retention_days)
    if not new:
        for path in deleted:
            path.unlink(missing_ok=True)
        return FoldResult(0, _rows(data / "events.parquet"), [p.name for p in deleted])
    products: set[str] = set()
    if (data / "products.parquet").is_file():
        products = set(pq.read_table(data / "products.parquet", columns=["product_id"]).column(0).to_pylist())
    old = pq.read_table(data / "events.parquet") if (data / "events.parquet").is_file() else None
    schema = old.schema if old is not None else _EVENTS_SCHEMA
    rows = {
        "user_id": [e["user_id"] for e in new],
        "event_time": [dt.datetime.fromtimestamp(e["time"], zone).replace(tzinfo=None) for e in new],
        "event_type": [e["event_type"] for e in new],
        "product_id": [e.get("product_id") for e in new],
        "keyword": [e.get("keyword") for e in new],
        "content_id": [e.get("content_id") for e in new],
        "is_orphan": [e.get("product_id") is not None and e["product_id"] not in products for e in new],
    }
    added = pa.table({name: rows.get(name, [None] * len(new)) for name in schema.names}).cast(schema)
    table = pa.concat_tables([old, added]) if old is not None else added
    current = data.resolve()
    with publishing(data) as folder:
        for entry in current.iterdir():
            if entry.name not in ("events.parquet", FOLDED_FILE):
                _link_tree(entry, folder / entry.name)
        pq.write_table(table, folder / "events.parquet")
        (folder / FOLDED_FILE).write_text(json.dumps(offsets, indent=2) + "\n", encoding="utf-8")
    for path in deleted:
        path.unlink(missing_ok=True)
    return FoldResult(len(new), table.num_rows, [p.name for p in deleted])


_EVENTS_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("event_time", pa.timestamp("us")),
        ("event_type", pa.string()),
        ("product_id", pa.string()),
        ("keyword", pa.string()),
        ("content_id", pa.string()),
        ("is_orphan", pa.bool_()),
    ]
)


def _rows(path: Path) -> int:
    return int(pq.read_metadata(path).num_rows) if path.is_file() else 0


def _expired(log: EventLog, offsets: Mapping[str, int], retention_days: int) -> list[Path]:
    cutoff = (dt.datetime.now(dt.UTC) - dt.timedelta(days=retention_days)).date()
    found = []
    for path in log.segments():
        try:
            day = dt.date.fromisoformat(path.stem)
        except ValueError:
            continue
        if day < cutoff and offsets.get(path.name, -1) >= path.stat().st_size:
            found.append(path)
    return found


def _link_tree(source: Path, target: Path) -> None:
    """Hard-link a file (copy when links are impossible) or a folder of files into a new version."""
    if source.is_dir():
        target.mkdir()
        for entry in source.iterdir():
            _link_tree(entry, target / entry.name)
        return
    try:
        os.link(source, target)
    except OSError:
        import shutil

        shutil.copy2(source, target)
