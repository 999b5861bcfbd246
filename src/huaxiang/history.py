"""History: the dated snapshots of a workspace and what changed between two of them.

Snapshots are files (``DIR/snapshots/YYYY-MM-DD/tags.parquet`` + ``manifest.json``,
:mod:`huaxiang.engine.snapshot`), so everything here reads them with PyArrow, one
or two tag columns at a time, and computes with NumPy: no engine is needed.

- :func:`list_snapshots` / :func:`find_snapshot`: the published snapshots, or one by date.
- :func:`diff`: between two dates, the migration matrix of one enum tag, the
  coverage and distribution drift (PSI) of every tag, and the AIPL flow rates.

Cut points suggested from a snapshot are in :mod:`huaxiang.bins`.

``docs/history-and-cli.md`` explains the statistics and their thresholds.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from huaxiang.engine.snapshot import MANIFEST_FILE, SNAPSHOTS_DIR, TAGS_FILE, read_manifest
from huaxiang.errors import NotFoundError, RequestError, did_you_mean

#: Tag types whose values are categories (a migration matrix, PSI over the values).
CATEGORICAL_TYPES = ("enum", "hierarchical_enum", "boolean")
#: Tag types whose values are numbers (PSI over deciles, mean and median).
NUMERIC_TYPES = ("integer", "number", "probability")
#: PSI above this: watch the tag; above :data:`PSI_SHIFT`: its distribution has shifted.
PSI_WATCH = 0.1
PSI_SHIFT = 0.25
#: Shares below this count as this in the PSI, so that a value absent at one date stays finite.
PSI_FLOOR = 1e-4
#: How many of the largest share changes a categorical drift lists.
SHARE_CHANGES = 3
#: The AIPL stages in order, and the flow rates reported between two dates.
AIPL_TAG = "aipl_stage"
AIPL_STAGES = ("awareness", "interest", "purchase", "loyalty")
AIPL_FLOWS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("A→I", "awareness", ("interest",)),
    ("I→P", "interest", ("purchase",)),
    ("P→L", "purchase", ("loyalty",)),
    ("A→P", "awareness", ("purchase", "loyalty")),
)
#: Labels of the migration matrix for a null value and for users absent at one date.
NONE_LABEL = "(none)"
NEW_LABEL = "(new)"
GONE_LABEL = "(gone)"

FloatArray = npt.NDArray[np.float64]


# ---------------------------------------------------------------------------- snapshots


@dataclass(frozen=True)
class Snapshot:
    """One published snapshot: its date and folder (``DIR/snapshots/YYYY-MM-DD``)."""

    as_of: dt.date
    path: Path

    @property
    def tags_path(self) -> Path:
        return self.path / TAGS_FILE

    @cached_property
    def manifest(self) -> dict[str, Any]:
        return read_manifest(self.path)

    @cached_property
    def schema(self) -> pa.Schema:
        return pq.read_schema(self.tags_path)

    @property
    def tags(self) -> list[str]:
        """Tag columns in the snapshot, in build order."""
        return [name for name in self.schema.names if name != "user_id"]

    @property
    def users(self) -> int:
        return int(pq.read_metadata(self.tags_path).num_rows)

    def definition(self, tag: str) -> dict[str, Any]:
        """What the manifest recorded of ``tag`` (names, type ...); ``{}`` for older manifests.

        Tags a template made (``scene_outing`` ...) are under ``generated``.
        """
        recorded = self.manifest.get("definitions", {})
        found: dict[str, Any] = recorded.get(tag) or self.manifest.get("generated", {}).get(tag, {})
        return found

    def tag_type(self, tag: str) -> str:
        """The tag's type (``enum``, ``integer`` ...): recorded in the manifest, else read off the column."""
        recorded = self.definition(tag).get("type")
        if isinstance(recorded, str):
            return recorded
        kind = self.schema.field(tag).type
        if pa.types.is_boolean(kind):
            return "boolean"
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            return "enum"
        if pa.types.is_integer(kind):
            return "integer"
        if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
            return "number"
        return str(kind)

    def column(self, tag: str) -> pa.ChunkedArray:
        return pq.read_table(self.tags_path, columns=[tag]).column(0)

    def read(self, *tags: str) -> pa.Table:
        return pq.read_table(self.tags_path, columns=["user_id", *tags])

    def require_tag(self, tag: str) -> None:
        """A clear error when ``tag`` is not a column of this snapshot."""
        if tag not in self.tags:
            raise NotFoundError(
                f"no tag '{tag}' in snapshot {self.as_of}.{did_you_mean(tag, self.tags)} "
                f"It has {len(self.tags)} tags (see {self.path / MANIFEST_FILE}; a tag the build "
                "skipped is listed there with its reason)."
            )


def list_snapshots(workspace_dir: str | Path) -> list[Snapshot]:
    """The complete published snapshots of the workspace, oldest first.

    Only ``snapshots/YYYY-MM-DD`` entries holding both ``tags.parquet`` and
    ``manifest.json`` count; unpublished version folders (``snapshots/.huaxiang``)
    and anything else are ignored.
    """
    folder = Path(workspace_dir) / SNAPSHOTS_DIR
    if not folder.is_dir():
        return []
    found: list[Snapshot] = []
    for entry in folder.iterdir():
        try:
            as_of = dt.date.fromisoformat(entry.name)
        except ValueError:
            continue
        if (
            entry.name == as_of.isoformat()
            and (entry / TAGS_FILE).is_file()
            and (entry / MANIFEST_FILE).is_file()
        ):
            found.append(Snapshot(as_of, entry))
    return sorted(found, key=lambda snapshot: snapshot.as_of)


def find_snapshot(workspace_dir: str | Path, as_of: dt.date | None = None) -> Snapshot:
    """The snapshot of ``as_of``, or the latest one; a clear error when there is none."""
    root = Path(workspace_dir)
    snapshots = list_snapshots(root)
    if not snapshots:
        raise NotFoundError(
            f"no snapshots in {root / SNAPSHOTS_DIR} yet; build one first with "
            f"'huaxiang build -w {root} --as-of YYYY-MM-DD'."
        )
    if as_of is None:
        return snapshots[-1]
    for snapshot in snapshots:
        if snapshot.as_of == as_of:
            return snapshot
    raise NotFoundError(
        f"no snapshot for {as_of} in {root / SNAPSHOTS_DIR}. "
        f"Snapshots: {', '.join(s.as_of.isoformat() for s in snapshots)}. "
        f"Build it with 'huaxiang build -w {root} --as-of {as_of}'."
    )


# ---------------------------------------------------------------------------- diff


@dataclass(frozen=True)
class Migration:
    """Where the users of each value at the first date are at the second.

    ``rows``: the first date's values (``(none)`` for null, ``(new)`` for users
    only in the second snapshot); ``columns``: the second date's (``(gone)`` for
    users only in the first). ``counts[i][j]`` users went from ``rows[i]`` to
    ``columns[j]``.
    """

    tag: str
    rows: list[str]
    columns: list[str]
    counts: list[list[int]]

    def row_total(self, row: str) -> int:
        return sum(self.counts[self.rows.index(row)])

    def count(self, row: str, column: str) -> int:
        return self.counts[self.rows.index(row)][self.columns.index(column)]

    def row_share(self, row: str, column: str) -> float:
        """Share of the row's users who are in ``column`` at the second date (0 for an empty row)."""
        total = self.row_total(row)
        return self.count(row, column) / total if total else 0.0

    def to_arrow(self) -> pa.Table:
        """The matrix in long form: ``from``, ``to``, ``users``, ``row_share`` (non-zero cells)."""
        cells = [
            (row, column, self.count(row, column), self.row_share(row, column))
            for row in self.rows
            for column in self.columns
            if self.count(row, column)
        ]
        return pa.table(
            {
                "from": [c[0] for c in cells],
                "to": [c[1] for c in cells],
                "users": pa.array([c[2] for c in cells], pa.int64()),
                "row_share": pa.array([c[3] for c in cells], pa.float64()),
            }
        )


@dataclass(frozen=True)
class ShareChange:
    """The share of one value among a tag's non-null values at both dates."""

    value: str
    before: float
    after: float

    @property
    def change(self) -> float:
        return self.after - self.before


@dataclass(frozen=True)
class TagDrift:
    """How one tag changed between the two dates.

    ``status``: ``both``, ``added`` (only at the second date) or ``removed``.
    ``kind``: ``categorical``, ``numeric`` or ``other`` (coverage only: list values, or a tag
    whose type changed between the dates; ``type`` then reads ``integer→enum``).
    ``psi`` is ``None`` when it cannot be computed (a side has no value, or the
    tag is in one snapshot only); ``flag`` is ``stable``, ``watch`` (PSI > 0.1),
    ``shift`` (PSI > 0.25) or ``-`` without a PSI.
    """

    tag: str
    type: str
    kind: str
    status: str
    coverage_before: float | None
    coverage_after: float | None
    psi: float | None
    flag: str
    share_changes: list[ShareChange] = field(default_factory=list)
    mean_before: float | None = None
    mean_after: float | None = None
    median_before: float | None = None
    median_after: float | None = None

    @property
    def coverage_change(self) -> float | None:
        if self.coverage_before is None or self.coverage_after is None:
            return None
        return self.coverage_after - self.coverage_before


@dataclass(frozen=True)
class Flow:
    """One AIPL flow rate: of the users at ``stage`` at the first date (and present at the
    second), the share at one of ``to`` at the second date."""

    name: str
    stage: str
    to: tuple[str, ...]
    users: int
    moved: int

    @property
    def rate(self) -> float | None:
        return self.moved / self.users if self.users else None


@dataclass(frozen=True)
class AiplFlows:
    """Users per AIPL stage at both dates, and the flow rates A→I, I→P, P→L, A→P."""

    counts_before: dict[str, int]
    counts_after: dict[str, int]
    flows: list[Flow]


@dataclass(frozen=True)
class SnapshotDiff:
    """What changed between the snapshots of ``before`` and ``after`` (see :func:`diff`)."""

    before: dt.date
    after: dt.date
    users_before: int
    users_after: int
    users_common: int
    migration: Migration | None
    drift: list[TagDrift]
    aipl: AiplFlows | None

    @property
    def users_new(self) -> int:
        return self.users_after - self.users_common

    @property
    def users_gone(self) -> int:
        return self.users_before - self.users_common

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (what ``huaxiang diff --json`` prints)."""
        data: dict[str, Any] = {
            "before": self.before.isoformat(),
            "after": self.after.isoformat(),
            "users": {
                "before": self.users_before,
                "after": self.users_after,
                "common": self.users_common,
                "new": self.users_new,
                "gone": self.users_gone,
            },
            "migration": None,
            "drift": [],
            "aipl": None,
        }
        if self.migration is not None:
            data["migration"] = {
                **asdict(self.migration),
                "row_share": [
                    [self.migration.row_share(r, c) for c in self.migration.columns]
                    for r in self.migration.rows
                ],
            }
        for item in self.drift:
            entry = asdict(item)
            entry["coverage_change"] = item.coverage_change
            entry["share_changes"] = [{**asdict(s), "change": s.change} for s in item.share_changes]
            data["drift"].append(entry)
        if self.aipl is not None:
            data["aipl"] = {
                "counts_before": self.aipl.counts_before,
                "counts_after": self.aipl.counts_after,
                "flows": [{**asdict(f), "to": list(f.to), "rate": f.rate} for f in self.aipl.flows],
            }
        return finite(data)


def diff(
    workspace_dir: str | Path, before: dt.date, after: dt.date, *, tag: str | None = None
) -> SnapshotDiff:
    """Compare the snapshots of ``before`` and ``after``.

    Parameters
    ----------
    workspace_dir
        The workspace folder (snapshots in ``snapshots/``).
    before, after
        The two snapshot dates; both must have been built.
    tag
        An enum, hierarchical enum or boolean tag present at both dates: adds its
        migration matrix.

    Raises
    ------
    huaxiang.errors.NotFoundError
        A date has no snapshot (the message lists those there), or ``tag`` is in neither.
    huaxiang.errors.RequestError
        ``tag`` is not categorical (the message lists the tags that qualify).
    """
    first = find_snapshot(workspace_dir, before)
    second = find_snapshot(workspace_dir, after)
    migration = None
    if tag is not None:
        _check_matrix_tag(first, second, tag)
        migration = _migration(first, second, tag)
    ids_before = pq.read_table(first.tags_path, columns=["user_id"])
    ids_after = pq.read_table(second.tags_path, columns=["user_id"])
    common = int(
        pc.sum(pc.is_in(ids_before.column(0), value_set=ids_after.column(0).combine_chunks())).as_py() or 0
    )
    drift = [_drift(first, second, name) for name in _union(first.tags, second.tags)]
    aipl = None
    if AIPL_TAG in first.tags and AIPL_TAG in second.tags:
        aipl = _aipl(first, second)
    return SnapshotDiff(
        before=first.as_of,
        after=second.as_of,
        users_before=ids_before.num_rows,
        users_after=ids_after.num_rows,
        users_common=common,
        migration=migration,
        drift=drift,
        aipl=aipl,
    )


def tag_drift(workspace_dir: str | Path, before: dt.date, after: dt.date, tag: str) -> TagDrift | None:
    """One tag's coverage and distribution drift (PSI) between two snapshots, as :func:`diff`
    reports it, reading only that column; ``None`` when the tag is in neither snapshot."""
    first, second = find_snapshot(workspace_dir, before), find_snapshot(workspace_dir, after)
    if tag not in first.tags and tag not in second.tags:
        return None
    return _drift(first, second, tag)


def aipl_flows(workspace_dir: str | Path, before: dt.date, after: dt.date) -> AiplFlows | None:
    """The AIPL flow rates between two snapshots, as :func:`diff` reports them; ``None`` unless
    both snapshots have ``aipl_stage``."""
    first, second = find_snapshot(workspace_dir, before), find_snapshot(workspace_dir, after)
    if AIPL_TAG not in first.tags or AIPL_TAG not in second.tags:
        return None
    return _aipl(first, second)


def migration_matrix(workspace_dir: str | Path, before: dt.date, after: dt.date, tag: str) -> Migration:
    """The migration matrix of an enum or boolean ``tag`` between two snapshots (errors as
    :func:`diff`'s), reading only that column of each."""
    first, second = find_snapshot(workspace_dir, before), find_snapshot(workspace_dir, after)
    _check_matrix_tag(first, second, tag)
    return _migration(first, second, tag)


def _union(first: Sequence[str], second: Sequence[str]) -> list[str]:
    return [*first, *(name for name in second if name not in first)]


def _check_matrix_tag(first: Snapshot, second: Snapshot, tag: str) -> None:
    known = _union(first.tags, second.tags)
    if tag not in known:
        raise NotFoundError(
            f"no tag '{tag}' in the snapshots of {first.as_of} and {second.as_of}."
            f"{did_you_mean(tag, known) or ' Check the spelling (huaxiang tags list).'}"
        )
    for snapshot, other in ((first, second), (second, first)):
        if tag not in snapshot.tags:
            raise NotFoundError(
                f"tag '{tag}' is in the snapshot of {other.as_of} but not in that of {snapshot.as_of} "
                f"(skipped or not in the catalog then; see {snapshot.path / MANIFEST_FILE}). "
                "A migration matrix needs it at both dates."
            )
    kind = first.tag_type(tag)
    if second.tag_type(tag) != kind:
        raise RequestError(
            f"tag '{tag}' changed type between the snapshots ({kind} on {first.as_of}, "
            f"{second.tag_type(tag)} on {second.as_of}); a migration matrix needs the same values at "
            "both dates."
        )
    if kind not in CATEGORICAL_TYPES:
        qualify = [
            name for name in first.tags if name in second.tags and first.tag_type(name) in CATEGORICAL_TYPES
        ]
        raise RequestError(
            f"a migration matrix needs an enum or boolean tag; '{tag}' is {kind}. "
            f"Tags that qualify: {', '.join(qualify) or 'none'}. "
            "To follow a numeric tag, bin it first (a bins tag; see 'huaxiang bins suggest')."
        )


def _labels(snapshot: Snapshot, tag: str) -> pa.Table:
    """``user_id`` and the tag's value as text (``(none)`` for null)."""
    table = snapshot.read(tag)
    values = pc.cast(table.column(tag), pa.string())
    return pa.table({"user_id": table.column("user_id"), "value": pc.fill_null(values, NONE_LABEL)})


def _joined(first: Snapshot, second: Snapshot, tag: str) -> pa.Table:
    """Every user of either snapshot with ``before`` and ``after`` labels (``(new)`` / ``(gone)``)."""
    left = _labels(first, tag).rename_columns(["user_id", "before"])
    right = _labels(second, tag).rename_columns(["user_id", "after"])
    joined = left.join(right, keys="user_id", join_type="full outer")
    return pa.table(
        {
            "before": pc.fill_null(joined.column("before"), NEW_LABEL),
            "after": pc.fill_null(joined.column("after"), GONE_LABEL),
        }
    )


def _value_order(first: Snapshot, second: Snapshot, tag: str, seen: set[str]) -> list[str]:
    """Declared values first (in catalog order), then the others by text; null last."""
    declared: list[str] = []
    for snapshot in (second, first):
        for item in snapshot.definition(tag).get("values", []):
            if item["value"] not in declared:
                declared.append(item["value"])
    if first.tag_type(tag) == "boolean":
        declared = ["true", "false"]
    ordered = [value for value in declared if value in seen]
    ordered += sorted(seen - set(ordered) - {NONE_LABEL})
    if NONE_LABEL in seen:
        ordered.append(NONE_LABEL)
    return ordered


def _migration(first: Snapshot, second: Snapshot, tag: str) -> Migration:
    joined = _joined(first, second, tag)
    grouped = joined.group_by(["before", "after"]).aggregate([([], "count_all")])
    cells = {(row["before"], row["after"]): row["count_all"] for row in grouped.to_pylist()}
    values = {key[0] for key in cells if key[0] != NEW_LABEL}
    values |= {key[1] for key in cells if key[1] != GONE_LABEL}
    order = _value_order(first, second, tag, values)
    rows = [value for value in order if any(key[0] == value for key in cells)]
    columns = [value for value in order if any(key[1] == value for key in cells)]
    if any(key[0] == NEW_LABEL for key in cells):
        rows.append(NEW_LABEL)
    if any(key[1] == GONE_LABEL for key in cells):
        columns.append(GONE_LABEL)
    counts = [[int(cells.get((row, column), 0)) for column in columns] for row in rows]
    return Migration(tag=tag, rows=rows, columns=columns, counts=counts)


def psi(before: Sequence[float], after: Sequence[float]) -> float:
    """Population stability index of two distributions over the same bins (shares summing to 1).

    ``Σ (after − before) · ln(after / before)``, each share floored at :data:`PSI_FLOOR`.
    """
    total = 0.0
    for share_before, share_after in zip(before, after, strict=True):
        b, a = max(share_before, PSI_FLOOR), max(share_after, PSI_FLOOR)
        total += (a - b) * math.log(a / b)
    return total


def psi_flag(value: float | None) -> str:
    """``shift`` above :data:`PSI_SHIFT`, ``watch`` above :data:`PSI_WATCH`, else ``stable``."""
    if value is None:
        return "-"
    if value > PSI_SHIFT:
        return "shift"
    if value > PSI_WATCH:
        return "watch"
    return "stable"


def _coverage(column: pa.ChunkedArray) -> float | None:
    return (len(column) - column.null_count) / len(column) if len(column) else None


def numbers(column: pa.ChunkedArray) -> FloatArray:
    values = pc.drop_null(pc.cast(column, pa.float64()))
    return np.asarray(values.to_numpy(), dtype=np.float64)


def _shares(column: pa.ChunkedArray) -> dict[str, float]:
    values = pc.cast(column.drop_null(), pa.string())
    counts = {item["values"]: item["counts"] for item in pc.value_counts(values).to_pylist()}
    total = sum(counts.values())
    return {value: count / total for value, count in counts.items()} if total else {}


def decile_edges(values: FloatArray) -> FloatArray:
    """The distinct deciles of ``values`` (observed values: NumPy's ``inverted_cdf``)."""
    if values.size == 0:
        return np.asarray([], dtype=np.float64)
    return np.unique(np.quantile(values, np.arange(1, 10) / 10, method="inverted_cdf"))


def _binned_shares(values: FloatArray, edges: FloatArray) -> list[float]:
    """Shares of ``values`` in the right-closed bins ``(-inf, e1], ..., (e_last, inf)``."""
    index = np.searchsorted(edges, values, side="left")
    counts = np.bincount(index, minlength=len(edges) + 1)
    return [float(c) / values.size for c in counts]


def _drift(first: Snapshot, second: Snapshot, tag: str) -> TagDrift:
    in_first, in_second = tag in first.tags, tag in second.tags
    kind_name = (first if in_first else second).tag_type(tag)
    kind = (
        "categorical"
        if kind_name in CATEGORICAL_TYPES
        else ("numeric" if kind_name in NUMERIC_TYPES else "other")
    )
    if in_first and in_second and second.tag_type(tag) != kind_name:
        # The values are not comparable: coverage only.
        kind_name, kind = f"{kind_name}→{second.tag_type(tag)}", "other"
    before = first.column(tag) if in_first else None
    after = second.column(tag) if in_second else None
    status = "both" if in_first and in_second else ("removed" if in_first else "added")
    coverage_before = _coverage(before) if before is not None else None
    coverage_after = _coverage(after) if after is not None else None
    if before is None or after is None or kind == "other":
        return TagDrift(tag, kind_name, kind, status, coverage_before, coverage_after, None, "-")
    if kind == "categorical":
        shares_before, shares_after = _shares(before), _shares(after)
        if not shares_before or not shares_after:
            return TagDrift(tag, kind_name, kind, status, coverage_before, coverage_after, None, "-")
        values = sorted(set(shares_before) | set(shares_after))
        index = psi([shares_before.get(v, 0.0) for v in values], [shares_after.get(v, 0.0) for v in values])
        changes = [ShareChange(v, shares_before.get(v, 0.0), shares_after.get(v, 0.0)) for v in values]
        changes.sort(key=lambda c: (-abs(c.change), c.value))
        return TagDrift(
            tag,
            kind_name,
            kind,
            status,
            coverage_before,
            coverage_after,
            index,
            psi_flag(index),
            share_changes=changes[:SHARE_CHANGES],
        )
    numbers_before, numbers_after = numbers(before), numbers(after)
    value: float | None = None
    if numbers_before.size and numbers_after.size:
        edges = decile_edges(numbers_before)
        value = psi(_binned_shares(numbers_before, edges), _binned_shares(numbers_after, edges))
    return TagDrift(
        tag,
        kind_name,
        kind,
        status,
        coverage_before,
        coverage_after,
        value,
        psi_flag(value),
        mean_before=float(numbers_before.mean()) if numbers_before.size else None,
        mean_after=float(numbers_after.mean()) if numbers_after.size else None,
        median_before=float(np.median(numbers_before)) if numbers_before.size else None,
        median_after=float(np.median(numbers_after)) if numbers_after.size else None,
    )


def _aipl(first: Snapshot, second: Snapshot) -> AiplFlows:
    joined = _joined(first, second, AIPL_TAG)
    before, after = joined.column("before"), joined.column("after")

    def count(column: pa.ChunkedArray, stage: str) -> int:
        return int(pc.sum(pc.equal(column, stage)).as_py() or 0)

    # Users gone by the second date have no stage there: they are left out of the rates.
    present = pc.not_equal(after, GONE_LABEL)
    flows: list[Flow] = []
    for name, stage, to in AIPL_FLOWS:
        at_stage = pc.and_(pc.equal(before, stage), present)
        moved = pc.and_(at_stage, pc.is_in(after, value_set=pa.array(to)))
        flows.append(
            Flow(
                name=name,
                stage=stage,
                to=to,
                users=int(pc.sum(at_stage).as_py() or 0),
                moved=int(pc.sum(moved).as_py() or 0),
            )
        )
    return AiplFlows(
        counts_before={stage: count(before, stage) for stage in AIPL_STAGES},
        counts_after={stage: count(after, stage) for stage in AIPL_STAGES},
        flows=flows,
    )


def finite(value: Any) -> Any:
    """JSON-safe: NaN and infinities become ``None``, tuples lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value
