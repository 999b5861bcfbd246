"""The tag catalog as the console shows it: a searchable list, and one tag in full.

:func:`tag_list` lists the tags of a snapshot (built or skipped, and those a template made)
with names, category, type and coverage, filtered by a search text and a category.
:func:`tag_detail` gives one tag: its definition (the YAML of ``tags/*.yaml``, its maker and
rule texts, where it is written), inputs, coverage, value distribution (counts per value for
enums and booleans, a histogram for numbers), drift since the previous snapshot (PSI, as
:func:`huaxiang.history.diff` computes it) and the tags that read it (the catalog's dependency graph).

The snapshot's manifest says what was built; the workspace's ``tags/`` say how. A merchant's
category limits are the caller's business (see :func:`find_tag`, which is cheap).
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from huaxiang.catalog import Catalog
from huaxiang.catalog.loader import load_catalog
from huaxiang.catalog.model import CATEGORY_LABELS_ZH, Category
from huaxiang.errors import HuaxiangError, NotFoundError, RequestError, did_you_mean
from huaxiang.history import (
    CATEGORICAL_TYPES,
    NUMERIC_TYPES,
    Snapshot,
    TagDrift,
    find_snapshot,
    list_snapshots,
    numbers,
    tag_drift,
)

#: Bins of a number tag's histogram (integers with a narrower range get one bin per value).
HISTOGRAM_BINS = 20


def category_names(category: str) -> tuple[str, str]:
    """``("品牌/店铺", "brand / shop")``: a category's Chinese and English names."""
    try:
        zh = CATEGORY_LABELS_ZH[Category(category)]
    except ValueError:
        zh = category
    return zh, category.replace("_", " / " if category == "brand_shop" else " ")


def categories() -> list[str]:
    """Every category, in SPEC order."""
    return [category.value for category in Category]


def check_category(category: str) -> str:
    known = categories()
    if category not in known:
        raise RequestError(
            f"unknown category {category!r}.{did_you_mean(category, known)} Categories: {', '.join(known)}."
        )
    return category


# ---------------------------------------------------------------------------- the catalog, cached

_catalogs: dict[Path, tuple[tuple[tuple[str, int, int], ...], Catalog]] = {}
_lock = threading.Lock()


def workspace_catalog(workspace_dir: str | Path) -> Catalog:
    """The workspace's ``tags/`` loaded and checked, reloaded only when a file changed."""
    folder = Path(workspace_dir) / "tags"
    stamp = tuple(
        (path.name, path.stat().st_mtime_ns, path.stat().st_size) for path in sorted(folder.glob("*.yaml"))
    )
    with _lock:
        cached = _catalogs.get(folder)
        if cached is not None and cached[0] == stamp:
            return cached[1]
    catalog = load_catalog(folder)
    with _lock:
        _catalogs[folder] = (stamp, catalog)
    return catalog


# ---------------------------------------------------------------------------- the list


@dataclass(frozen=True)
class TagEntry:
    """A tag of the list: what the snapshot's manifest records of it."""

    id: str
    name_zh: str
    name_en: str
    category: str
    type: str
    coverage: float | None
    """Non-null share in the snapshot; ``None`` when the tag was skipped."""
    skipped: str | None = None
    """Why the build skipped it, if it did."""
    template: str | None = None
    """The template that made it (``scene_strength`` ...), for generated tags."""


@dataclass(frozen=True)
class TagList:
    as_of: dt.date
    users: int
    tags: list[TagEntry]
    total: int
    """Tags before the search and category filter (within the allowed categories)."""
    counts: dict[str, int] = field(default_factory=dict)
    """Tags per category (within the allowed categories, before the filters)."""


def _recorded(snapshot: Snapshot) -> dict[str, dict[str, Any]]:
    """Every tag the manifest describes: catalog tags (built or skipped), then generated ones."""
    manifest = snapshot.manifest
    found: dict[str, dict[str, Any]] = dict(manifest.get("definitions", {}))
    for tag, definition in manifest.get("generated", {}).items():
        found.setdefault(tag, definition)
    return found


def _entry(snapshot: Snapshot, tag: str, definition: dict[str, Any], skipped: dict[str, str]) -> TagEntry:
    stats = snapshot.manifest.get("tags", {}).get(tag)
    return TagEntry(
        id=tag,
        name_zh=str(definition.get("name_zh") or tag),
        name_en=str(definition.get("name_en") or tag),
        category=str(definition.get("category") or "custom"),
        type=str(definition.get("type") or (snapshot.tag_type(tag) if tag in snapshot.tags else "?")),
        coverage=float(stats["coverage"]) if stats and stats.get("coverage") is not None else None,
        skipped=skipped.get(tag) if tag not in snapshot.tags else None,
        template=definition.get("template"),
    )


def _matches(entry: TagEntry, query: str) -> bool:
    words = query.casefold().split()
    haystack = f"{entry.id} {entry.name_zh} {entry.name_en}".casefold()
    return all(word in haystack for word in words)


def tag_list(
    workspace_dir: str | Path,
    as_of: dt.date | None = None,
    *,
    query: str | None = None,
    category: str | None = None,
    allowed: frozenset[str] | set[str] | None = None,
) -> TagList:
    """The tags of the snapshot of ``as_of`` (default: the latest), filtered.

    Parameters
    ----------
    query
        Words that must all appear in the tag's id, Chinese or English name (case ignored).
    category
        Only this category (one of :func:`categories`).
    allowed
        The categories the caller may see (a merchant's); ``None``: all.
    """
    snapshot = find_snapshot(workspace_dir, as_of)
    if category:
        check_category(category)
    skipped = {str(item["tag"]): str(item["reason"]) for item in snapshot.manifest.get("skipped", [])}
    entries = [_entry(snapshot, tag, definition, skipped) for tag, definition in _recorded(snapshot).items()]
    for tag in snapshot.tags:  # a column an older manifest did not describe
        if tag not in {entry.id for entry in entries}:
            entries.append(_entry(snapshot, tag, {}, skipped))
    if allowed is not None:
        entries = [entry for entry in entries if entry.category in allowed]
    counts: dict[str, int] = {}
    for entry in entries:
        counts[entry.category] = counts.get(entry.category, 0) + 1
    total = len(entries)
    if category:
        entries = [entry for entry in entries if entry.category == category]
    if query and query.strip():
        entries = [entry for entry in entries if _matches(entry, query)]
    rank = {name: index for index, name in enumerate(categories())}
    entries.sort(key=lambda entry: rank.get(entry.category, len(rank)))
    return TagList(as_of=snapshot.as_of, users=snapshot.users, tags=entries, total=total, counts=counts)


# ---------------------------------------------------------------------------- one tag


def find_tag(workspace_dir: str | Path, tag: str, as_of: dt.date | None = None) -> TagEntry:
    """One tag of the snapshot's manifest (cheap: no column is read); 404 with a "did you mean"."""
    snapshot = find_snapshot(workspace_dir, as_of)
    recorded = _recorded(snapshot)
    skipped = {str(item["tag"]): str(item["reason"]) for item in snapshot.manifest.get("skipped", [])}
    if tag in recorded:
        return _entry(snapshot, tag, recorded[tag], skipped)
    if tag in snapshot.tags:
        return _entry(snapshot, tag, {}, skipped)
    hint = did_you_mean(tag, [*recorded, *snapshot.tags])
    raise NotFoundError(
        f"no tag '{tag}' in the snapshot of {snapshot.as_of}.{hint} The tag catalog lists the tags there are."
    )


@dataclass(frozen=True)
class Distribution:
    """A tag's values in the snapshot.

    Categorical tags: ``values`` (value, label-free) with ``counts``, in declared order then
    by count. Number tags: a histogram (``edges``, ``counts[i]`` in ``[edges[i], edges[i+1])``,
    the last bin closed) and ``min``, ``max``, ``mean``, ``median``.
    """

    kind: str
    """``categorical``, ``numeric`` or ``other`` (no distribution: lists ...)."""
    users: int
    non_null: int
    values: list[str] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    edges: list[float] = field(default_factory=list)
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    median: float | None = None

    @property
    def coverage(self) -> float | None:
        return self.non_null / self.users if self.users else None


def histogram_edges(values: np.ndarray[Any, Any], integer: bool) -> np.ndarray[Any, Any]:
    """Bin edges: one bin per value for integers spanning at most :data:`HISTOGRAM_BINS` values,
    else :data:`HISTOGRAM_BINS` equal bins from the minimum to the maximum."""
    low, high = float(values.min()), float(values.max())
    if integer and high - low + 1 <= HISTOGRAM_BINS:
        return np.arange(low - 0.5, high + 1.5, 1.0)
    if low == high:
        return np.asarray([low - 0.5, high + 0.5])
    return np.histogram_bin_edges(values, bins=HISTOGRAM_BINS, range=(low, high))


def distribution(snapshot: Snapshot, tag: str, declared: list[str] | None = None) -> Distribution:
    """The value distribution of ``tag`` in ``snapshot`` (see :class:`Distribution`)."""
    snapshot.require_tag(tag)
    column = snapshot.column(tag)
    users, non_null = len(column), len(column) - column.null_count
    kind = snapshot.tag_type(tag)
    if kind in CATEGORICAL_TYPES and not pa.types.is_list(column.type):
        counted = {
            str(item["values"]).lower() if isinstance(item["values"], bool) else str(item["values"]): int(
                item["counts"]
            )
            for item in pc.value_counts(column.drop_null()).to_pylist()
        }
        order = [value for value in (declared or []) if value in counted]
        if kind == "boolean":
            order = [value for value in ("true", "false") if value in counted]
        order += sorted((v for v in counted if v not in order), key=lambda v: (-counted[v], v))
        return Distribution(
            "categorical", users, non_null, values=order, counts=[counted[value] for value in order]
        )
    if kind in NUMERIC_TYPES and not pa.types.is_list(column.type):
        values = numbers(column)
        if values.size == 0:
            return Distribution("numeric", users, non_null)
        edges = histogram_edges(values, pa.types.is_integer(column.type))
        counts, _ = np.histogram(values, bins=edges)
        return Distribution(
            "numeric",
            users,
            non_null,
            counts=[int(c) for c in counts],
            edges=[float(e) for e in edges],
            min=float(values.min()),
            max=float(values.max()),
            mean=float(values.mean()),
            median=float(np.median(values)),
        )
    return Distribution("other", users, non_null)


@dataclass(frozen=True)
class TagDetail:
    """Everything the tag's page shows (see the module doc)."""

    entry: TagEntry
    as_of: dt.date
    definition_yaml: str | None
    """The tag as written in ``tags/*.yaml`` (normalised), or ``None`` if no longer in the catalog."""
    maker: str | None
    """How its value is made: ``metric``, ``rule``, ``bins``, ``action``, ``scene``, ``declared`` or
    ``model``."""
    location: str | None
    """``tags/FILE.yaml:LINE`` (for a generated tag: its template's)."""
    rules: list[tuple[str, str]]
    """The rule texts: (``expr`` | ``when`` | ``where``, text)."""
    description: str | None
    values: list[dict[str, Any]]
    """Declared values with their names (enum tags)."""
    inputs: list[str]
    """Canonical inputs (``table.column``) the tag reads itself."""
    reads: list[str]
    """Tags it reads."""
    dependents: list[str]
    """Tags that read it directly (build order)."""
    dependents_all: list[str]
    """Tags that read it directly or through others."""
    distribution: Distribution | None
    """``None`` when the tag was skipped in this snapshot."""
    previous: dt.date | None
    drift: TagDrift | None
    """Against the previous snapshot (``None`` without one, or when the tag is in neither)."""

    def labels(self) -> dict[str, tuple[str | None, str | None]]:
        return {str(v["value"]): (v.get("name_zh"), v.get("name_en")) for v in self.values}


def tag_detail(workspace_dir: str | Path, tag: str, as_of: dt.date | None = None) -> TagDetail:
    """One tag of the snapshot of ``as_of`` (default: the latest) in full.

    Raises
    ------
    NotFoundError
        No such snapshot, or no such tag in it (with a "did you mean").
    """
    root = Path(workspace_dir)
    snapshot = find_snapshot(root, as_of)
    entry = find_tag(root, tag, snapshot.as_of)
    recorded = _recorded(snapshot).get(tag, {})
    try:
        catalog: Catalog | None = workspace_catalog(root)
    except (HuaxiangError, OSError):  # the catalog does not load now: show what the snapshot knows
        catalog = None
    source = tag if catalog is not None and tag in catalog.tags else recorded.get("template")
    definition_yaml = maker = location = description = None
    rules: list[tuple[str, str]] = []
    values = list(recorded.get("values") or [])
    inputs = [str(i) for i in recorded.get("inputs") or []]
    reads = [str(r) for r in recorded.get("reads") or []]
    if catalog is not None and source and source in catalog.tags:
        definition = catalog[source]
        definition_yaml = yaml.safe_dump(
            definition.normalised(), allow_unicode=True, sort_keys=False, width=100
        )
        maker = definition.maker
        location = str(catalog.locations[source]) if source in catalog.locations else None
        description = definition.description
        found = catalog.rules.get(source)
        if found is not None:
            rules = [("expr", found.expr.text)] if found.expr else []
            rules += [("when", case.text) for case in found.cases]
            rules += [("where", found.where.text)] if found.where else []
        if source == tag:
            values = [v.model_dump(exclude_none=True) for v in definition.values or []] or values
            inputs = list(catalog.inputs(tag))
            reads = sorted(catalog.dependencies.get(tag, frozenset()))
    if catalog is not None and tag in catalog.tags:
        dependents = catalog.dependents(tag)
        dependents_all = catalog.dependents(tag, transitive=True)
    else:  # a generated tag: who reads it, by the manifest
        dependents = [other for other, d in _recorded(snapshot).items() if tag in (d.get("reads") or [])]
        dependents_all = dependents
    declared = [str(v["value"]) for v in values]
    shown = distribution(snapshot, tag, declared) if tag in snapshot.tags else None
    earlier = [s for s in list_snapshots(root) if s.as_of < snapshot.as_of]
    previous = earlier[-1] if earlier else None
    drift = tag_drift(root, previous.as_of, snapshot.as_of, tag) if previous is not None else None
    return TagDetail(
        entry=entry,
        as_of=snapshot.as_of,
        definition_yaml=definition_yaml,
        maker=maker,
        location=location,
        rules=rules,
        description=description,
        values=values,
        inputs=inputs,
        reads=reads,
        dependents=dependents,
        dependents_all=dependents_all,
        distribution=shown,
        previous=previous.as_of if previous else None,
        drift=drift,
    )


__all__ = [
    "Distribution",
    "TagDetail",
    "TagEntry",
    "TagList",
    "categories",
    "category_names",
    "distribution",
    "find_tag",
    "tag_detail",
    "tag_list",
    "workspace_catalog",
]
