"""How users move between segments, and the value groups: the data of the console's segments page.

- :func:`migration` — the migration matrix of lifecycle stage, RFM class or value layer
  between two snapshots (as :func:`huaxiang.history.diff` computes it), with how many stayed and moved.
- :func:`value_groups` — the value groups' report (:func:`huaxiang.groups.group_report`:
  sizes, ARPU and its monotonicity, distinguishing feature values with lift), or ``None``
  when the snapshot has no ``value_group_15``. The report recomputes the groups' features
  from the workspace data, so it is kept per snapshot version and data version.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huaxiang.analysis.charts import ChartLang, special_label, text, value_labels
from huaxiang.errors import RequestError, did_you_mean
from huaxiang.history import Migration, find_snapshot, list_snapshots, migration_matrix
from huaxiang.segment.group_report import GroupReport

#: The tags whose migration the segments page draws: lifecycle, RFM class, value layer.
MIGRATION_TAGS: tuple[str, ...] = ("lifecycle_stage", "rfm_class", "value_layer_name")
VALUE_GROUP_TAG = "value_group_15"
_LAYER_NAME = re.compile(r"^(L\d+) (\S+) (.+)$")


@dataclass(frozen=True)
class MigrationView:
    """Where the users of each value of ``tag`` at ``before`` are at ``after``."""

    tag: str
    before: dt.date
    after: dt.date
    definition: dict[str, Any]
    migration: Migration
    users_before: int
    users_after: int

    @property
    def stayed(self) -> int:
        """Users with the same value at both dates."""
        m = self.migration
        return sum(m.count(value, value) for value in m.rows if value in m.columns)

    @property
    def moved(self) -> int:
        """Users present at both dates whose value changed (``(none)`` counts as a value)."""
        m = self.migration
        common = sum(
            m.count(row, column)
            for row in m.rows
            for column in m.columns
            if row != "(new)" and column != "(gone)"
        )
        return common - self.stayed

    def labels(self, lang: ChartLang) -> dict[str, str]:
        """Names of the values in ``lang`` (the value layer's bilingual names are split)."""
        labels = value_labels(self.definition, lang)
        for value in {*self.migration.rows, *self.migration.columns}:
            if value in labels:
                continue
            match = _LAYER_NAME.match(value)
            if match is not None and lang != "both":
                labels[value] = f"{match.group(1)} {match.group(2) if lang == 'zh' else match.group(3)}"
            elif value.startswith("("):
                labels[value] = special_label(value, lang)
        return labels

    def title(self, lang: ChartLang) -> str:
        name = text(
            lang,
            str(self.definition.get("name_zh") or self.tag),
            str(self.definition.get("name_en") or self.tag),
        )
        return f"{name} " + text(lang, "迁移", "migration") + f" {self.before} → {self.after}"


def default_dates(workspace_dir: str | Path) -> tuple[dt.date, dt.date] | None:
    """The two latest snapshots (earlier, later), or ``None`` with fewer than two."""
    snapshots = list_snapshots(workspace_dir)
    if len(snapshots) < 2:
        return None
    return snapshots[-2].as_of, snapshots[-1].as_of


def migration(workspace_dir: str | Path, before: dt.date, after: dt.date, tag: str) -> MigrationView:
    """The migration of ``tag`` (one of :data:`MIGRATION_TAGS`) from ``before`` to ``after``.

    Raises
    ------
    RequestError
        ``before`` is not before ``after``, or ``tag`` is not one of :data:`MIGRATION_TAGS`.
    NotFoundError
        A date has no snapshot, or the tag is missing at a date.
    """
    if tag not in MIGRATION_TAGS:
        raise RequestError(
            f"the segments page draws the migration of {', '.join(MIGRATION_TAGS)}; got '{tag}'."
            f"{did_you_mean(tag, MIGRATION_TAGS)}"
        )
    if before >= after:
        raise RequestError(
            f"the first snapshot ({before}) must be before the second ({after}); pick an earlier 'from' date."
        )
    matrix = migration_matrix(workspace_dir, before, after, tag)
    first, second = find_snapshot(workspace_dir, before), find_snapshot(workspace_dir, after)
    return MigrationView(
        tag=tag,
        before=first.as_of,
        after=second.as_of,
        definition=second.definition(tag),
        migration=matrix,
        users_before=first.users,
        users_after=second.users,
    )


#: Value-group reports kept in memory (one per snapshot and data version).
CACHED_REPORTS = 8
_groups: dict[tuple[str, str, int], GroupReport] = {}
_lock = threading.Lock()


def value_groups(workspace_dir: str | Path, as_of: dt.date | None = None) -> GroupReport | None:
    """The report of ``value_group_15`` in the snapshot of ``as_of``; ``None`` when it was not built.

    Cached per snapshot version and data version (the report reads the workspace data).
    """
    from huaxiang.groups import group_report

    root = Path(workspace_dir)
    snapshot = find_snapshot(root, as_of)
    if VALUE_GROUP_TAG not in snapshot.tags:
        return None
    key = (
        os.path.realpath(snapshot.path),
        os.path.realpath(root / "data"),
        snapshot.tags_path.stat().st_mtime_ns,
    )
    with _lock:
        cached = _groups.get(key)
    if cached is not None:
        return cached
    report = group_report(root, snapshot.as_of, tag=VALUE_GROUP_TAG)
    with _lock:
        _groups[key] = report
        while len(_groups) > CACHED_REPORTS:  # the oldest first (dicts keep insertion order)
            _groups.pop(next(iter(_groups)))
    return report


__all__ = ["MIGRATION_TAGS", "MigrationView", "default_dates", "migration", "value_groups"]
