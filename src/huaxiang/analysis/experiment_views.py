"""The saved experiments at a glance, and the tags an experiment's results can be broken down by.

:func:`experiment_summaries` lists every saved experiment with its audience (or campaign),
variants with their shares, control, touch date and window, whether it was assigned (and
the group sizes) and whether results were saved. :func:`segment_tags` gives the enum and
boolean tags a per-segment breakdown may use (those of the snapshot
:func:`huaxiang.analysis.metrics.segment_snapshot` would read). The results themselves are
:func:`huaxiang.analysis.metrics.experiment_results`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huaxiang.analysis.experiments import experiment_store
from huaxiang.history import CATEGORICAL_TYPES, list_snapshots

#: A tag with more values than this makes an unreadable per-segment chart; it is not offered.
MAX_SEGMENTS = 25


@dataclass(frozen=True)
class ExperimentSummary:
    name: str
    description: str | None
    source: str
    """``split`` (a salted split of an audience) or ``touches`` (a campaign already sent)."""
    audience: str
    """The audience definition, or ``campaign <id>`` for an experiment read from touches."""
    variants: list[tuple[str, float]]
    control: str
    touch_date: str
    window_days: int
    created_by: str
    created_at: dt.datetime
    assigned_as_of: str | None
    sizes: dict[str, int] | None
    results_saved: bool
    metrics: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        """``results`` (saved results), ``assigned`` or ``created``."""
        if self.results_saved:
            return "results"
        return "assigned" if self.sizes is not None else "created"


def experiment_summaries(
    workspace_dir: str | Path, *, database_url: str | None = None
) -> list[ExperimentSummary]:
    """Every saved experiment of the workspace's metadata database, by name."""
    root = Path(workspace_dir)
    store = experiment_store(root, database_url)
    try:
        found = [(saved, store.latest_result(saved.name) is not None) for saved in store.all()]
    finally:
        store.close()
    summaries = []
    for saved, has_results in found:
        definition: dict[str, Any] = saved.definition
        source = str(definition.get("source") or "split")
        audience = (
            f"campaign {definition.get('campaign_id')}"
            if source == "touches"
            else str(definition.get("audience"))
        )
        summaries.append(
            ExperimentSummary(
                name=saved.name,
                description=definition.get("description"),
                source=source,
                audience=audience,
                variants=[(str(v["name"]), float(v["ratio"])) for v in definition.get("variants", [])],
                control=str(definition.get("control") or "control"),
                touch_date=str(definition.get("touch_date")),
                window_days=int(definition.get("window_days") or 0),
                created_by=saved.created_by,
                created_at=saved.created_at,
                assigned_as_of=saved.assigned_as_of,
                sizes=saved.sizes,
                results_saved=has_results,
                metrics=[str(m) for m in definition.get("metrics", [])],
            )
        )
    return summaries


@dataclass(frozen=True)
class SegmentTag:
    id: str
    name_zh: str
    name_en: str


def segment_tags(workspace_dir: str | Path, touch_date: dt.date) -> tuple[dt.date | None, list[SegmentTag]]:
    """The snapshot a breakdown reads by default (the latest on or before the touch date, else the
    earliest) and its enum and boolean tags with at most :data:`MAX_SEGMENTS` values."""
    snapshots = list_snapshots(workspace_dir)
    if not snapshots:
        return None, []
    before = [s for s in snapshots if s.as_of <= touch_date]
    snapshot = before[-1] if before else snapshots[0]
    stats = snapshot.manifest.get("tags", {})
    found = []
    for tag in snapshot.tags:
        if snapshot.tag_type(tag) not in CATEGORICAL_TYPES:
            continue
        distinct = stats.get(tag, {}).get("distinct")
        if distinct is not None and not 0 < int(distinct) <= MAX_SEGMENTS:
            continue
        definition = snapshot.definition(tag)
        found.append(
            SegmentTag(tag, str(definition.get("name_zh") or tag), str(definition.get("name_en") or tag))
        )
    return snapshot.as_of, found


__all__ = ["ExperimentSummary", "SegmentTag", "experiment_summaries", "segment_tags"]
