"""Cut points for a numeric tag of a snapshot: ``huaxiang bins suggest`` (SPEC item 8, seed 002).

:func:`suggest_bins` fits :class:`huaxiang.segment.cuts.CutPointSuggester` on the
tag's values in a snapshot ("values with similar counts fall together"), counts
the users per bin, checks that each cut separates a chosen trait (a boolean tag:
its rate and the two-proportion z; a numeric tag: its mean and Welch's t), and
writes a ``bins`` tag the analyst can paste into ``tags/``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from huaxiang.catalog.makers import BinsSpec, format_bound
from huaxiang.errors import RequestError
from huaxiang.history import NUMERIC_TYPES, FloatArray, Snapshot, find_snapshot, finite, numbers
from huaxiang.segment.cuts import CutPointSuggester

#: |statistic| above this: the cut separates the trait (two-sided 5 % level).
SEPARATES_AT = 1.96


@dataclass(frozen=True)
class BinRow:
    """One bin of a suggestion: its label (as the engine writes it), bounds, users and trait."""

    label: str
    low: float | None
    high: float | None
    users: int
    share: float
    trait: float | None = None
    """The trait's rate (boolean trait) or mean (numeric trait) among the bin's users."""


@dataclass(frozen=True)
class CutCheck:
    """Does the cut at ``edge`` separate the trait? ``statistic`` is z (boolean trait: pooled
    two-proportion test) or t (numeric trait: Welch); it separates when |statistic| > 1.96."""

    edge: float
    users_below: int
    users_above: int
    trait_below: float | None
    trait_above: float | None
    statistic: float | None

    @property
    def separates(self) -> bool:
        return self.statistic is not None and abs(self.statistic) > SEPARATES_AT


@dataclass(frozen=True)
class BinsSuggestion:
    """Cut points suggested for ``tag`` on the snapshot of ``as_of`` (see :func:`suggest_bins`)."""

    tag: str
    as_of: dt.date
    k: int
    method: str
    scale: str
    positive: bool
    edges: list[float]
    bins: list[BinRow]
    users: int
    nulls: int
    trait: str | None = None
    trait_measure: str | None = None
    """``rate`` (boolean trait) or ``mean`` (numeric trait)."""
    statistic: str | None = None
    """``z`` or ``t``."""
    checks: list[CutCheck] = field(default_factory=list)
    snippet: str = ""
    """A ``bins`` tag to paste into ``tags/*.yaml``."""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["as_of"] = self.as_of.isoformat()
        data["checks"] = [{**asdict(c), "separates": c.separates} for c in self.checks]
        return finite(data)


def suggest_bins(
    workspace_dir: str | Path,
    tag: str,
    *,
    k: int = 5,
    as_of: dt.date | None = None,
    trait: str | None = None,
    positive: bool = False,
    method: str = "levels",
    scale: str = "log1p",
    min_share: float = 0.02,
) -> BinsSuggestion:
    """Suggest up to ``k − 1`` cut points for numeric ``tag`` from a snapshot, and check them.

    Parameters
    ----------
    workspace_dir
        The workspace folder.
    tag
        A numeric tag (integer, number, probability) of the snapshot.
    k
        Bins wanted (:class:`~huaxiang.segment.cuts.CutPointSuggester`; rounding can give fewer).
    as_of
        The snapshot's date; the latest snapshot by default.
    trait
        A boolean or numeric tag of the same snapshot: its rate or mean per bin, and
        for each cut whether it separates the trait.
    positive
        Fit on the values above 0 only and add 0 as the first edge, so that 0 (e.g.
        no spend) is a bin of its own, as seed 002 does for non-buyers.
    method, scale, min_share
        Passed to :class:`~huaxiang.segment.cuts.CutPointSuggester`.

    Bins, counts and checks cover every user with a value, with the edges of the
    snippet (right-closed bins, as the engine cuts them).
    """
    snapshot = find_snapshot(workspace_dir, as_of)
    snapshot.require_tag(tag)
    kind = snapshot.tag_type(tag)
    if kind not in NUMERIC_TYPES:
        numeric = [name for name in snapshot.tags if snapshot.tag_type(name) in NUMERIC_TYPES]
        raise RequestError(
            f"bins need a numeric tag; '{tag}' is {kind}. Numeric tags in snapshot {snapshot.as_of}: "
            f"{', '.join(numeric) or 'none'}."
        )
    trait_kind = None
    if trait is not None:
        snapshot.require_tag(trait)
        trait_kind = snapshot.tag_type(trait)
        if trait_kind != "boolean" and trait_kind not in NUMERIC_TYPES:
            raise RequestError(
                f"a trait is a boolean or numeric tag; '{trait}' is {trait_kind}. "
                "Write a boolean rule tag for one value of it (e.g. rule: \"x = 'a'\")."
            )
    table = snapshot.read(*dict.fromkeys([tag, *([trait] if trait else [])]))
    column = table.column(tag)
    values = numbers(column)
    fitted = values[values > 0] if positive else values
    if fitted.size == 0:
        what = "above 0 " if positive else ""
        raise RequestError(f"tag '{tag}' has no value {what}in snapshot {snapshot.as_of}; nothing to cut.")
    suggester = CutPointSuggester(k=k, min_share=min_share, scale=scale, method=method).fit(fitted)
    edges = sorted({0.0, *suggester.edges_}) if positive else list(suggester.edges_)
    if not edges:
        raise RequestError(
            f"tag '{tag}' takes a single value ({format_bound(float(fitted[0]))}) in snapshot "
            f"{snapshot.as_of}: there is no cut to suggest."
        )
    labels = BinsSpec(of=tag, edges=edges).bin_labels() or []
    index = np.searchsorted(np.asarray(edges), values, side="left")
    counts = np.bincount(index, minlength=len(edges) + 1)

    trait_values: FloatArray | None = None
    mask = np.ones(values.size, dtype=bool)
    if trait is not None:
        valid = pc.is_valid(column)
        raw_trait = pc.filter(table.column(trait), valid)
        mask = np.asarray(pc.is_valid(raw_trait).to_numpy(zero_copy_only=False), dtype=bool)
        trait_values = np.asarray(pc.cast(raw_trait, pa.float64()).to_numpy(zero_copy_only=False),
                                  dtype=np.float64)
    bounds = [None, *edges, None]
    bins: list[BinRow] = []
    for position, label in enumerate(labels):
        in_bin = index == position
        measure = None
        if trait_values is not None:
            chosen = trait_values[in_bin & mask]
            measure = float(chosen.mean()) if chosen.size else None
        bins.append(BinRow(label, bounds[position], bounds[position + 1], int(counts[position]),
                           float(counts[position]) / values.size, measure))
    checks: list[CutCheck] = []
    if trait_values is not None:
        checks = _checks(values[mask], trait_values[mask], edges, boolean=trait_kind == "boolean")
    suggestion = BinsSuggestion(
        tag=tag,
        as_of=snapshot.as_of,
        k=k,
        method=method,
        scale=scale,
        positive=positive,
        edges=edges,
        bins=bins,
        users=int(values.size),
        nulls=column.null_count,
        trait=trait,
        trait_measure=None if trait is None else ("rate" if trait_kind == "boolean" else "mean"),
        statistic=None if trait is None else ("z" if trait_kind == "boolean" else "t"),
        checks=checks,
    )
    return _with_snippet(suggestion, snapshot)


def _checks(
    values: FloatArray, trait: FloatArray, edges: Sequence[float], *, boolean: bool
) -> list[CutCheck]:
    if boolean:
        report = CutPointSuggester().separation(values, trait.astype(bool), edges)
        return [
            CutCheck(float(r["edge"]), int(r["n_below"]), int(r["n_above"]), _number(r["trait_rate_below"]),
                     _number(r["trait_rate_above"]), _number(r["z"]))
            for r in report
        ]
    checks: list[CutCheck] = []
    for edge in edges:
        below, above = trait[values <= edge], trait[values > edge]
        checks.append(CutCheck(float(edge), int(below.size), int(above.size),
                               float(below.mean()) if below.size else None,
                               float(above.mean()) if above.size else None, welch_t(below, above)))
    return checks


def welch_t(below: FloatArray, above: FloatArray) -> float | None:
    """Welch's t of ``mean(above) − mean(below)``; ``None`` when a side has fewer than 2 values
    or both are constant."""
    if below.size < 2 or above.size < 2:
        return None
    spread = below.var(ddof=1) / below.size + above.var(ddof=1) / above.size
    if spread <= 0:
        return None
    return float((above.mean() - below.mean()) / math.sqrt(spread))


def _number(value: float | int) -> float | None:
    return float(value) if math.isfinite(value) else None


def _with_snippet(suggestion: BinsSuggestion, snapshot: Snapshot) -> BinsSuggestion:
    definition = snapshot.definition(suggestion.tag)
    edges = [int(e) if float(e).is_integer() else float(e) for e in suggestion.edges]
    tag = {
        "id": f"{suggestion.tag}_band",
        "name_zh": f"{definition.get('name_zh', suggestion.tag)}分档",
        "name_en": f"{definition.get('name_en', suggestion.tag)}, band",
        "category": definition.get("category", "custom"),
        "type": "enum",
        "description": (
            f"Cut points suggested by 'huaxiang bins suggest' on the snapshot of {suggestion.as_of} "
            f"(k={suggestion.k}, method {suggestion.method}, scale {suggestion.scale}"
            + (", fitted on values above 0" if suggestion.positive else "") + ")."
        ),
        "bins": {"of": suggestion.tag, "edges": edges},
    }
    text = yaml.safe_dump([tag], allow_unicode=True, sort_keys=False, default_flow_style=None, width=100)
    return dataclasses.replace(suggestion, snippet=text)
