"""Fitting value groups where the data is: the grid from the engine, the groups back by a join.

:func:`value_group_table` asks the engine for the banded features
(:mod:`huaxiang.segment.value_features`) and their grid of occupied cells, fits a
segmenter of :mod:`huaxiang.segment.value_groups` on the grid (:func:`fit_grid`) and
gives every user a group by joining a small cell → group table: only the grid (thousands
of rows, whatever the number of users) leaves the engine. :class:`FittedGrid` writes the
fitted model as JSON for the snapshot; :func:`adjusted_rand_index` compares two groupings
from a table of counts.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa

from huaxiang.errors import ConfigError
from huaxiang.segment.value_features import FEATURES, NOMINAL, ValueFeatures, value_features
from huaxiang.segment.value_groups import N_GROUPS, ConnectedValueGroups, KMeansValueGroups, group_labels


def adjusted_rand_index(counts: np.ndarray) -> float:
    """Adjusted Rand index from a contingency table of users (rows: one grouping, columns: the other).

    Equal to scikit-learn's ``adjusted_rand_score`` on the per-user labels, without the rows.
    """
    table = np.asarray(counts, dtype="float64")

    def pairs(x: np.ndarray) -> float:
        return float((x * (x - 1) / 2).sum())

    n = table.sum()
    index = pairs(table)
    rows, columns = pairs(table.sum(axis=1)), pairs(table.sum(axis=0))
    total = n * (n - 1) / 2
    expected = rows * columns / total if total else 0.0
    maximum = (rows + columns) / 2
    if maximum == expected:
        return 1.0
    return (index - expected) / (maximum - expected)


@dataclass(frozen=True)
class FittedGrid:
    """A segmenter fitted on a grid: cells (band labels), their users, value and group label."""

    cells: pd.DataFrame
    """One row per occupied cell: the feature columns (band labels), ``users``, ``value``, ``group``."""
    features: tuple[str, ...]
    levels: dict[str, list[str]]
    model: ConnectedValueGroups | KMeansValueGroups

    def artifact(self, extra: Mapping[str, Any]) -> bytes:
        """The model as JSON bytes: parameters, levels and the cell → group mapping (sorted, stable)."""
        body: dict[str, Any] = {
            "features": list(self.features),
            "levels": self.levels,
            **dict(extra),
            "model": self.model.to_dict()
            if isinstance(self.model, ConnectedValueGroups)
            else {
                "method": "kmeans",
                "random_state": self.model.random_state,
                "inertia": self.model.inertia_,
            },
            "mapping": [
                {**{name: row[name] for name in self.features}, "group": row["group"]}
                for row in self.cells.to_dict("records")
            ],
        }
        return (json.dumps(body, ensure_ascii=False, sort_keys=True, indent=1) + "\n").encode("utf-8")


def fit_grid(
    grid: pd.DataFrame,
    features: Sequence[str],
    levels: Mapping[str, Sequence[str]],
    nominal: Sequence[str],
    *,
    method: str = "connected",
    n_groups: int = N_GROUPS,
    tolerance: float | None = None,
    smoothing: float = 20.0,
    min_share: float = 0.01,
    max_share: float = 0.1,
    value_weight: float = 3.0,
    random_state: int = 0,
) -> FittedGrid:
    """Fit a value-group segmenter on the occupied cells ``grid`` (band labels, ``users``, ``value``).

    Parameters
    ----------
    grid
        One row per occupied cell: a text column per feature, ``users`` and ``value`` (summed).
    features
        The feature columns, in order.
    levels
        The known bands of each feature, in order (``unknown`` is coded -1).
    nominal
        The features whose bands have no order.
    method
        ``connected`` (connected components, the seed's model) or ``kmeans``.
    n_groups, tolerance, smoothing, min_share, max_share, value_weight, random_state
        See :class:`ConnectedValueGroups` and :class:`KMeansValueGroups`.
    """
    if method not in ("connected", "kmeans"):
        raise ConfigError(f"value groups: method must be connected or kmeans, got {method!r}.")
    cells = grid.sort_values(list(features), kind="stable").reset_index(drop=True)
    codes = np.column_stack(
        [
            cells[name].map({label: index for index, label in enumerate(levels[name])}).fillna(-1).to_numpy()
            for name in features
        ]
    ).astype("int64")
    weights = cells["users"].to_numpy(dtype="float64")
    values = cells["value"].to_numpy(dtype="float64") / weights
    nominal_index = tuple(index for index, name in enumerate(features) if name in nominal)
    counts = tuple(len(levels[name]) for name in features)
    model: ConnectedValueGroups | KMeansValueGroups
    if method == "connected":
        model = ConnectedValueGroups(
            n_groups, tolerance, smoothing, min_share, max_share, value_weight, counts, nominal_index
        )
    else:
        model = KMeansValueGroups(n_groups, counts, nominal_index, random_state)
    model.fit(codes, values, weights)
    labels = group_labels(int(n_groups))
    cells = cells.assign(group=[labels[index] for index in model.labels_.tolist()])
    return FittedGrid(cells, tuple(features), {name: list(levels[name]) for name in features}, model)


@dataclass(frozen=True)
class ValueGroups:
    """Value groups of every user: the Ibis table, the fitted grid and the features it used."""

    table: ir.Table
    """``user_id`` and ``value_group`` (``L0`` ..), one row per user."""
    fitted: FittedGrid
    features: ValueFeatures


def value_group_table(
    tables: Mapping[str, ir.Table],
    as_of: dt.date,
    *,
    method: str = "connected",
    n_groups: int = N_GROUPS,
    tolerance: float | None = None,
    smoothing: float = 20.0,
    min_share: float = 0.01,
    max_share: float = 0.1,
    value_weight: float = 3.0,
    random_state: int = 0,
    window_days: int = 365,
    bands: int = 4,
    features: Sequence[str] = FEATURES,
    materialise: Callable[[ir.Table], ir.Table] | None = None,
) -> ValueGroups:
    """Fit value groups on the grid the engine aggregates and assign every user by a join.

    Only the grid of occupied cells leaves the engine (thousands of rows, whatever the
    number of users); users get their group by joining a small cell → group table.
    Parameters are those of :func:`value_features` and :func:`fit_grid`; ``materialise``
    (the build's) keeps the per-user numbers in an engine table for the three queries.
    """
    found = value_features(
        tables, as_of, window_days=window_days, bands=bands, features=features, materialise=materialise
    )
    grid = found.grid().to_pyarrow().to_pandas()
    fitted = fit_grid(
        grid,
        found.present,
        found.levels,
        sorted(NOMINAL),
        method=method,
        n_groups=n_groups,
        tolerance=tolerance,
        smoothing=smoothing,
        min_share=min_share,
        max_share=max_share,
        value_weight=value_weight,
        random_state=random_state,
    )
    mapping = pa.Table.from_pandas(fitted.cells[[*found.present, "group"]], preserve_index=False)
    mapping = mapping.cast(pa.schema([(name, pa.string()) for name in mapping.column_names]))
    cells = ibis.memtable(mapping)
    joined = found.table.inner_join(cells, list(found.present))
    return ValueGroups(joined.select("user_id", value_group=joined.group), fitted, found)


__all__ = ["FittedGrid", "ValueGroups", "adjusted_rand_index", "fit_grid", "value_group_table"]
