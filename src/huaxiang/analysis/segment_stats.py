"""The numbers behind the segment charts of the report and the console's overview.

Per snapshot, as Ibis aggregates over its ``tags.parquet`` (only small tables come back):
users and ARPU per lifecycle stage and RFM class, the RFM heatmap's cells, the value grid,
the AIPL stage counts; and, against the previous snapshot, the AIPL flow rates. ARPU is the
mean 365-day spend of valid orders (``monetary_365d``), 0 for users without one.
The figures are drawn by :mod:`huaxiang.analysis.charts`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ibis

from huaxiang.analysis.charts import ChartLang, RfmCells, ValueGrid, value_grid_from_layers, value_labels
from huaxiang.history import (
    AIPL_STAGES,
    AIPL_TAG,
    AiplFlows,
    Snapshot,
    aipl_flows,
    find_snapshot,
    list_snapshots,
)

ARPU_TAG = "monetary_365d"
LIFECYCLE_TAG = "lifecycle_stage"
RFM_TAG = "rfm_class"
VALUE_GROUP_TAG = "value_group_15"
RFM_SCORES = ("rfm_r_score", "rfm_f_score")
VALUE_LAYER_TAGS = ("value_layer", "value_layer_name")


def by_segment(tags: Any, tag: str) -> list[dict[str, Any]]:
    """Users and ARPU (mean 365-day spend, 0 without a valid order) per value of ``tag``, by value.

    ``tags``: the snapshot's ``tags.parquet`` as an Ibis table; users with no value are left out.
    """
    spend = tags[ARPU_TAG].cast("float64").fill_null(0.0) if ARPU_TAG in tags.columns else ibis.literal(0.0)
    members = tags.select(segment=tags[tag].cast("string"), spend=spend).filter(ibis._.segment.notnull())
    grouped = members.group_by("segment").aggregate(users=members.count(), arpu=members.spend.mean())
    rows: list[dict[str, Any]] = grouped.order_by("segment").to_pyarrow().to_pylist()
    return rows


def rfm_cells(tags: Any) -> RfmCells:
    """Users and ARPU per (F score, R score) of the users with both scores."""
    scored = tags.filter(tags.rfm_r_score.notnull() & tags.rfm_f_score.notnull()).select(
        r=tags.rfm_r_score, f=tags.rfm_f_score, spend=tags[ARPU_TAG].cast("float64")
    )
    cells = (
        scored.group_by(["r", "f"])
        .aggregate(users=scored.count(), arpu=scored.spend.mean())
        .to_pyarrow()
        .to_pylist()
    )
    users = [[0] * 5 for _ in range(5)]
    arpu = [[0.0] * 5 for _ in range(5)]
    for cell in cells:
        users[int(cell["f"]) - 1][int(cell["r"]) - 1] = int(cell["users"])
        arpu[int(cell["f"]) - 1][int(cell["r"]) - 1] = round(float(cell["arpu"] or 0.0), 2)
    return RfmCells(users=users, arpu=arpu)


def value_grid(tags: Any) -> ValueGrid:
    """Users per value-grid cell (historical spend × recency) from ``value_layer_name``."""
    layers = tags.select(layer=tags.value_layer, name=tags.value_layer_name)
    rows = (
        layers.group_by(["layer", "name"])
        .aggregate(users=layers.count())
        .order_by("layer")
        .to_pyarrow()
        .to_pylist()
    )
    return value_grid_from_layers(rows)


@dataclass(frozen=True)
class SegmentSizes:
    """Users and ARPU per value of an enum tag, in the tag's declared order (others after)."""

    tag: str
    definition: dict[str, Any]
    """What the manifest recorded of the tag (names, type, declared values)."""
    rows: list[dict[str, Any]]
    """``{"segment", "users", "arpu"}`` per value."""

    @property
    def order(self) -> list[str]:
        return [str(row["segment"]) for row in self.rows]

    def labels(self, lang: ChartLang) -> dict[str, str]:
        """The values' names in ``lang`` (declared names; a value without one shows as itself)."""
        return value_labels(self.definition, lang)

    def row(self, segment: str) -> dict[str, Any]:
        for row in self.rows:
            if row["segment"] == segment:
                return row
        raise KeyError(f"no segment {segment!r} of {self.tag}")


def segment_sizes(snapshot: Snapshot, tags: Any, tag: str) -> SegmentSizes:
    """:func:`by_segment` of ``tag`` with the manifest's definition, in the declared order."""
    definition = snapshot.definition(tag)
    declared = [str(item["value"]) for item in definition.get("values") or []]
    rank = {value: index for index, value in enumerate(declared)}
    rows = sorted(by_segment(tags, tag), key=lambda r: (rank.get(r["segment"], len(rank)), r["segment"]))
    for row in rows:
        row["users"] = int(row["users"])
        row["arpu"] = round(float(row["arpu"] or 0.0), 2)
    return SegmentSizes(tag=tag, definition=definition, rows=rows)


@dataclass(frozen=True)
class ShopSegments:
    """The overview's segment charts of one snapshot; ``None`` where the snapshot lacks the tags."""

    as_of: dt.date
    previous: dt.date | None
    """The snapshot the AIPL flows are measured from (the one before ``as_of``), if any."""
    users: int
    lifecycle: SegmentSizes | None
    rfm: SegmentSizes | None
    rfm_cells: RfmCells | None
    value_grid: ValueGrid | None
    aipl_counts: dict[str, int] | None
    aipl_flows: AiplFlows | None


def previous_snapshot(root: Path, snapshot: Snapshot) -> Snapshot | None:
    """The latest snapshot before ``snapshot``, if any."""
    earlier = [found for found in list_snapshots(root) if found.as_of < snapshot.as_of]
    return earlier[-1] if earlier else None


def shop_segments(workspace_dir: str | Path, as_of: dt.date | None = None) -> ShopSegments:
    """Lifecycle and RFM sizes with ARPU, the RFM heatmap, the value grid and AIPL of a snapshot.

    The AIPL flow rates are measured from the previous snapshot when there is one (and
    both have ``aipl_stage``).
    """
    root = Path(workspace_dir)
    snapshot = find_snapshot(root, as_of)
    previous = previous_snapshot(root, snapshot)
    con = ibis.duckdb.connect()
    try:
        tags = con.read_parquet(snapshot.tags_path)
        columns = set(tags.columns)
        users = int(tags.count().to_pyarrow().as_py())
        lifecycle = segment_sizes(snapshot, tags, LIFECYCLE_TAG) if LIFECYCLE_TAG in columns else None
        rfm = segment_sizes(snapshot, tags, RFM_TAG) if RFM_TAG in columns else None
        cells = rfm_cells(tags) if {*RFM_SCORES, ARPU_TAG} <= columns else None
        grid = value_grid(tags) if set(VALUE_LAYER_TAGS) <= columns else None
        counts = None
        if AIPL_TAG in columns:
            found = {row["segment"]: int(row["users"]) for row in by_segment(tags, AIPL_TAG)}
            counts = {stage: found.get(stage, 0) for stage in AIPL_STAGES}
    finally:
        con.disconnect()
    flows = None
    if previous is not None and counts is not None:
        flows = aipl_flows(root, previous.as_of, snapshot.as_of)
    return ShopSegments(
        as_of=snapshot.as_of,
        previous=previous.as_of if previous else None,
        users=users,
        lifecycle=lifecycle,
        rfm=rfm,
        rfm_cells=cells,
        value_grid=grid,
        aipl_counts=counts,
        aipl_flows=flows,
    )


__all__ = [
    "SegmentSizes",
    "ShopSegments",
    "by_segment",
    "previous_snapshot",
    "rfm_cells",
    "segment_sizes",
    "shop_segments",
    "value_grid",
]
