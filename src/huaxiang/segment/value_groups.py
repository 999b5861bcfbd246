"""The fifteen value groups (15大靶群): connected-component segmentation of the banded feature grid.

The seed's model (连通域分割): band each feature (:mod:`huaxiang.segment.value_features`),
form the grid of occupied cells, connect cells that are neighbours on one feature
and whose ARPU differs by less than a tolerance, take the connected components as
regions, merge or split them to the requested number of groups and order the
groups by ARPU as L0 (highest) .. L14.

Both segmenters here are fitted on the **grid**, never on per-user rows: users in
one cell share every feature, so a cell weighted by its users stands for them
exactly (k-means with ``sample_weight`` on the cells is k-means on the users).
They follow scikit-learn's conventions: parameters are stored by ``__init__``,
``fit(X, y, sample_weight)`` validates and returns ``self``, learned attributes
end in ``_``, and the result is deterministic (k-means takes ``random_state``).

``X`` holds one row per cell and one integer code per feature (the band's index
in its ordered levels, ``-1`` for unknown); ``y`` the cell's mean value (ARPU)
and ``sample_weight`` its users. :mod:`huaxiang.segment.value_group_fit` asks the
engine for the grid and joins the groups back onto the users.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from huaxiang.errors import ConfigError, MissingInputError, NotFittedError

#: Default number of groups (the seed's L0..L14).
N_GROUPS = 15
#: Format version of :meth:`ConnectedValueGroups.to_json`.
MODEL_FORMAT = 1


def group_labels(n_groups: int) -> list[str]:
    """``L0`` .. ``L{n-1}``: L0 is the group with the highest ARPU."""
    return [f"L{index}" for index in range(n_groups)]


def _check_grid(X: Any, y: Any, sample_weight: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    codes = np.asarray(X)
    if codes.ndim != 2 or codes.shape[0] == 0 or codes.shape[1] == 0:
        raise ValueError(f"X must be a non-empty 2-D array of band codes, got shape {codes.shape}.")
    if not np.issubdtype(codes.dtype, np.integer):
        raise ValueError(f"X holds band codes (integers, -1 for unknown), got {codes.dtype}.")
    values = np.asarray(y, dtype="float64")
    weights = np.asarray(sample_weight, dtype="float64")
    if values.shape != (codes.shape[0],) or weights.shape != (codes.shape[0],):
        raise ValueError(
            f"y and sample_weight need one value per cell ({codes.shape[0]}), got {values.shape} "
            f"and {weights.shape}."
        )
    if not np.all(np.isfinite(values)):
        raise ValueError("y (ARPU per cell) must be finite.")
    if not np.all(weights > 0):
        raise ValueError("sample_weight (users per cell) must be positive.")
    return codes.astype("int64"), values, weights


def _check_groups(n_groups: Any, cells: int) -> int:
    if isinstance(n_groups, bool) or not isinstance(n_groups, int | np.integer) or n_groups < 2:
        raise ConfigError(f"n_groups must be a whole number of at least 2, got {n_groups!r}.")
    if cells < n_groups:
        raise MissingInputError(
            f"only {cells} occupied cells for {n_groups} groups: too few users or features; "
            "ask for fewer groups (n_groups) or build on more data."
        )
    return int(n_groups)


def neighbour_pairs(X: np.ndarray, nominal: Sequence[int] = ()) -> np.ndarray:
    """Pairs ``(i, j)``, ``i < j``, of cells that differ in exactly one feature by one step.

    On an ordinal feature the codes must be adjacent (``|a - b| = 1``); on a nominal
    one any two codes are neighbours; ``-1`` (unknown) neighbours every code.
    """
    n_cells, n_features = X.shape
    index = np.arange(n_cells)
    found: list[np.ndarray] = []
    for feature in range(n_features):
        others = np.delete(X, feature, axis=1)
        # Cells sharing every other feature form a block; the block key is its row in ``keys``.
        _, block = np.unique(others, axis=0, return_inverse=True)
        frame = pd.DataFrame({"block": block.ravel(), "code": X[:, feature], "cell": index})
        pairs = frame.merge(frame, on="block", suffixes=("_a", "_b"))
        pairs = pairs[pairs.cell_a < pairs.cell_b]
        a, b = pairs.code_a.to_numpy(), pairs.code_b.to_numpy()
        if feature in nominal:
            keep = a != b
        else:
            keep = (np.abs(a - b) == 1) | ((a == -1) != (b == -1))
        found.append(pairs.loc[keep, ["cell_a", "cell_b"]].to_numpy())
    if not found:
        return np.empty((0, 2), dtype="int64")
    return np.unique(np.vstack(found), axis=0).astype("int64")


def encode_cells(codes: np.ndarray, levels: Sequence[int], nominal: Sequence[int]) -> np.ndarray:
    """Band codes as points: ordinal codes scaled to [0, 1], nominal ones one-hot, unknown in the middle."""
    if len(levels) != codes.shape[1]:
        raise ConfigError(
            f"levels gives {len(levels)} features, X has {codes.shape[1]}: one count of bands each."
        )
    columns: list[np.ndarray] = []
    for feature, count in enumerate(levels):
        code = codes[:, feature]
        if feature in nominal:
            for level in range(count):
                columns.append(np.where(code == -1, 1.0 / max(count, 1), (code == level).astype(float)))
        else:
            columns.append(np.where(code == -1, 0.5, code / max(count - 1, 1)))
    return np.column_stack(columns)


def _order_by_value(
    raw: np.ndarray, values: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Relabel groups 0.. by descending ARPU (ties: more users, then the smaller old label)."""
    labels = np.unique(raw)
    users = np.array([weights[raw == label].sum() for label in labels])
    arpu = np.array([(values * weights)[raw == label].sum() for label in labels]) / users
    order = sorted(range(len(labels)), key=lambda k: (-arpu[k], -users[k], labels[k]))
    new = np.empty(labels.max() + 1, dtype="int64")
    for rank, k in enumerate(order):
        new[labels[k]] = rank
    return new[raw], arpu[order]


class ConnectedValueGroups:
    """Connected-component value groups over the banded feature grid (the seed's 连通域分割).

    Cells that are neighbours on one feature and whose smoothed ARPU differs by less
    than ``tolerance`` are connected; the connected components are the first regions.
    Regions below ``min_share`` of the users then join their cheapest neighbour, and
    adjacent regions merge by least Ward cost (ARPU and bands) down to ``n_groups``;
    were there fewer regions, the one whose ARPU varies most is cut in two at its best
    ARPU threshold until there are enough. Groups are numbered by ARPU, highest first.

    Parameters
    ----------
    n_groups
        Groups to make (L0 .. L{n_groups - 1}).
    tolerance
        Two neighbouring cells are connected when their smoothed ARPU differs by less
        than ``tolerance`` × the population ARPU. ``None`` (default): the largest
        tolerance that leaves no region above ``max_share`` of the users.
    smoothing
        Users of prior weight pulling a cell's ARPU towards the population's before
        comparing (a cell of three users says little); 0 compares raw ARPU.
    min_share
        A group holds at least this share of the users: smaller regions are merged first.
    max_share
        With ``tolerance=None``: the largest share of users a connected region may hold.
    value_weight
        Weight of ARPU (in population standard deviations) against the bands (each in
        [0, 1]) in the Ward cost of merging two regions.
    levels
        Number of known bands of each feature (to scale the codes; default: from ``X``).
    nominal
        Indices of the features with unordered values (gender).

    Attributes
    ----------
    cells_ : ndarray of shape (n_cells, n_features)
        The fitted cells' band codes.
    labels_ : ndarray of shape (n_cells,)
        Group of each cell, 0 = L0 (highest ARPU).
    group_value_ : ndarray of shape (n_groups,)
        ARPU of each group, descending.
    group_users_ : ndarray of shape (n_groups,)
        Users of each group.
    tolerance_ : float
        The tolerance used (relative to the population ARPU).
    n_components_ : int
        Connected components before merging or splitting to ``n_groups``.
    merges_, splits_ : int
        How many merges and splits that took.
    """

    def __init__(
        self,
        n_groups: int = N_GROUPS,
        tolerance: float | None = None,
        smoothing: float = 20.0,
        min_share: float = 0.01,
        max_share: float = 0.1,
        value_weight: float = 3.0,
        levels: Sequence[int] = (),
        nominal: Sequence[int] = (),
    ) -> None:
        self.n_groups = n_groups
        self.tolerance = tolerance
        self.max_share = max_share
        self.smoothing = smoothing
        self.min_share = min_share
        self.value_weight = value_weight
        self.levels = levels
        self.nominal = nominal

    def fit(self, X: Any, y: Any, sample_weight: Any) -> ConnectedValueGroups:
        """Fit on the occupied cells ``X`` with their ARPU ``y`` and users ``sample_weight``."""
        codes, values, weights = _check_grid(X, y, sample_weight)
        n_groups = _check_groups(self.n_groups, len(codes))
        for name in ("tolerance", "smoothing", "min_share", "max_share", "value_weight"):
            number = getattr(self, name)
            if name == "tolerance" and number is None:
                continue
            if isinstance(number, bool) or not isinstance(number, int | float) or number < 0:
                raise ConfigError(f"{name} must be a number of at least 0, got {number!r}.")
        if self.min_share * n_groups > 1:
            raise ConfigError(
                f"min_share {self.min_share} leaves no room for {n_groups} groups; "
                f"it must be at most 1 / n_groups = {1 / n_groups:.4f}."
            )
        levels = self.levels or [int(max(codes[:, k].max(), 0)) + 1 for k in range(codes.shape[1])]
        total_users = float(weights.sum())
        mean = float((values * weights).sum()) / total_users
        scale = abs(mean) if mean else 1.0
        smoothed = (values * weights + self.smoothing * mean) / (weights + self.smoothing)
        pairs = neighbour_pairs(codes, tuple(self.nominal))
        gaps = np.abs(smoothed[pairs[:, 0]] - smoothed[pairs[:, 1]]) / scale
        if self.tolerance is None:
            self.tolerance_ = _largest_tolerance(pairs, gaps, weights, self.max_share * total_users)
        else:
            self.tolerance_ = float(self.tolerance)
        linked = pairs[gaps < self.tolerance_]
        graph = coo_matrix(
            (np.ones(len(linked)), (linked[:, 0], linked[:, 1])), shape=(len(codes), len(codes))
        )
        n_components, component = connected_components(graph, directed=False)
        # Ward on (ARPU in population standard deviations × value_weight, the bands): value leads,
        # the bands keep a group describable.
        spread = float(np.sqrt((weights * (values - mean) ** 2).sum() / total_users)) or 1.0
        points = np.column_stack(
            [self.value_weight * (values - mean) / spread, encode_cells(codes, levels, self.nominal)]
        )
        regions = _Regions(component, points, values, weights, pairs)
        merges = regions.merge_to(n_groups, self.min_share * total_users)
        splits = regions.split_to(n_groups, self.min_share * total_users)
        self.labels_, self.group_value_ = _order_by_value(regions.labels(), values, weights)
        self.group_users_ = np.bincount(self.labels_, weights=weights, minlength=n_groups)
        self.cells_ = codes
        self.n_components_ = int(n_components)
        self.merges_, self.splits_ = merges, splits
        self.population_value_ = mean
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "labels_"):
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(X, y, sample_weight) first."
            )

    def predict(self, X: Any) -> np.ndarray:
        """The group of each cell: the fitted cell's group, or the nearest fitted cell's (Hamming)."""
        self._check_fitted()
        return _predict_cells(self.cells_, self.labels_, self.group_users_, np.asarray(X, dtype="int64"))

    def to_dict(self) -> dict[str, Any]:
        """Parameters and the fitted cell → group mapping as JSON data."""
        self._check_fitted()
        return {
            "format": MODEL_FORMAT,
            "method": "connected_components",
            "params": {
                "n_groups": self.n_groups,
                "tolerance": self.tolerance,
                "smoothing": self.smoothing,
                "min_share": self.min_share,
                "max_share": self.max_share,
                "value_weight": self.value_weight,
                "levels": list(self.levels),
                "nominal": list(self.nominal),
            },
            "tolerance_used": self.tolerance_,
            "n_components": self.n_components_,
            "merges": self.merges_,
            "splits": self.splits_,
            "population_value": self.population_value_,
            "group_value": [float(v) for v in self.group_value_],
            "group_users": [int(v) for v in self.group_users_],
            "cells": self.cells_.tolist(),
            "labels": self.labels_.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConnectedValueGroups:
        """A fitted segmenter from :meth:`to_dict`'s data."""
        if data.get("format") != MODEL_FORMAT or data.get("method") != "connected_components":
            raise ConfigError(
                f"not a connected-component value-group model of format {MODEL_FORMAT}: "
                f"format={data.get('format')!r}, method={data.get('method')!r}."
            )
        params = data["params"]
        model = cls(
            params["n_groups"],
            params["tolerance"],
            params["smoothing"],
            params["min_share"],
            params["max_share"],
            params["value_weight"],
            tuple(params["levels"]),
            tuple(params["nominal"]),
        )
        model.tolerance_ = float(data["tolerance_used"])
        model.cells_ = np.asarray(data["cells"], dtype="int64")
        model.labels_ = np.asarray(data["labels"], dtype="int64")
        model.group_value_ = np.asarray(data["group_value"], dtype="float64")
        model.group_users_ = np.asarray(data["group_users"], dtype="float64")
        model.n_components_ = int(data["n_components"])
        model.merges_, model.splits_ = int(data["merges"]), int(data["splits"])
        model.population_value_ = float(data["population_value"])
        return model


def _predict_cells(cells: np.ndarray, labels: np.ndarray, users: np.ndarray, X: np.ndarray) -> np.ndarray:
    if X.ndim != 2 or X.shape[1] != cells.shape[1]:
        raise ValueError(f"X needs {cells.shape[1]} band codes per row, got shape {X.shape}.")
    known = {tuple(row): label for row, label in zip(cells.tolist(), labels.tolist(), strict=True)}
    found = np.empty(len(X), dtype="int64")
    for index, row in enumerate(X.tolist()):
        label = known.get(tuple(row))
        if label is None:
            distance = (cells != np.asarray(row)).sum(axis=1)
            nearest = np.flatnonzero(distance == distance.min())
            # Ties go to the group with more users, then the lower group: deterministic.
            label = min(labels[nearest].tolist(), key=lambda g: (-users[g], g))
        found[index] = label
    return found


def _largest_tolerance(pairs: np.ndarray, gaps: np.ndarray, weights: np.ndarray, max_users: float) -> float:
    """The largest tolerance whose connected components all hold at most ``max_users`` users.

    Pairs join in order of their ARPU gap (Kruskal with union-find); the first gap whose
    pair would make a component larger than ``max_users`` is the tolerance (a pair
    connects when its gap is strictly below it). Without such a pair: above every gap.
    """
    parent = np.arange(len(weights))
    size = weights.astype("float64").copy()

    def find(cell: int) -> int:
        while parent[cell] != cell:
            parent[cell] = parent[parent[cell]]
            cell = parent[cell]
        return cell

    order = np.lexsort((pairs[:, 1], pairs[:, 0], gaps))
    for edge in order.tolist():
        a, b = find(int(pairs[edge, 0])), find(int(pairs[edge, 1]))
        if a == b:
            continue
        if size[a] + size[b] > max_users:
            return float(gaps[edge])
        parent[b] = a
        size[a] += size[b]
    return float(gaps.max()) + 1.0 if len(gaps) else 0.0


class _Regions:
    """Regions of cells: merged along the neighbour graph (Ward cost), or split by ARPU.

    A region's profile is its users' mean of ``points`` (ARPU scaled, then the encoded
    bands); merging two regions costs ``n1 n2 / (n1 + n2) * |mean1 - mean2|²`` (Ward).
    """

    def __init__(
        self,
        component: np.ndarray,
        points: np.ndarray,
        values: np.ndarray,
        weights: np.ndarray,
        pairs: np.ndarray,
    ) -> None:
        self.member = component.astype("int64").copy()
        self.points = points
        self.values = values
        self.weights = weights
        self.pairs = pairs

    def labels(self) -> np.ndarray:
        _, dense = np.unique(self.member, return_inverse=True)
        return np.asarray(dense.ravel(), dtype="int64")

    def merge_to(self, n_groups: int, min_users: float) -> int:
        """Merge adjacent regions until ``n_groups`` remain, smallest-below-``min_users`` first; count merges.

        A region below ``min_users`` joins its cheapest neighbour; then the cheapest
        adjacent pair merges (Ward). Regions touching no other region join the
        cheapest region overall (only a grid of separate islands needs that).
        """
        regions = int(self.member.max()) + 1
        users = np.bincount(self.member, weights=self.weights, minlength=regions).astype("float64")
        sums = np.zeros((regions, self.points.shape[1]))
        np.add.at(sums, self.member, self.points * self.weights[:, None])
        alive = users > 0
        adjacent: dict[int, set[int]] = {region: set() for region in np.flatnonzero(alive).tolist()}
        a, b = self.member[self.pairs[:, 0]], self.member[self.pairs[:, 1]]
        for x, y in zip(a.tolist(), b.tolist(), strict=True):
            if x != y:
                adjacent[x].add(y)
                adjacent[y].add(x)
        parent = np.arange(regions)

        def costs(x: int, others: np.ndarray) -> np.ndarray:
            nx, ny = users[x], users[others]
            gap = sums[x] / nx - sums[others] / ny[:, None]
            return np.asarray(nx * ny / (nx + ny) * np.einsum("ij,ij->i", gap, gap))

        def join(x: int, y: int) -> None:
            """Region ``y`` into region ``x``."""
            users[x] += users[y]
            sums[x] += sums[y]
            users[y] = 0.0
            alive[y] = False
            parent[y] = x
            neighbours = (adjacent.pop(y) | adjacent[x]) - {x, y}
            adjacent[x] = neighbours
            for other in neighbours:
                adjacent[other].discard(y)
                adjacent[other].add(x)

        def cheapest(x: int) -> int:
            if adjacent[x]:
                others = np.array(sorted(adjacent[x]))
            else:
                others = np.flatnonzero(alive)
                others = others[others != x]
            return int(others[int(np.argmin(costs(x, others)))])  # argmin: the lowest id on a tie

        merges = 0
        count = int(alive.sum())
        small = [(users[r], r) for r in np.flatnonzero(alive & (users < min_users)).tolist()]
        heapq.heapify(small)
        while small and count > 1:
            size, x = heapq.heappop(small)
            if not alive[x] or users[x] != size:
                continue  # merged away, or grown since
            y = cheapest(x)
            keep, gone = min(x, y), max(x, y)
            join(keep, gone)
            merges += 1
            count -= 1
            if users[keep] < min_users:
                heapq.heappush(small, (users[keep], keep))

        def push(x: int) -> None:
            others = np.array(sorted(adjacent[x]), dtype="int64")
            if len(others):
                for other, value in zip(others.tolist(), costs(x, others).tolist(), strict=True):
                    heapq.heappush(heap, (value, min(x, other), max(x, other)))

        heap: list[tuple[float, int, int]] = []
        for x in sorted(adjacent):
            push(x)
        while count > n_groups:
            if heap:
                stale, x, y = heapq.heappop(heap)
                if not (alive[x] and alive[y]) or y not in adjacent[x]:
                    continue
                current = float(costs(x, np.array([y]))[0])
                if abs(stale - current) > 1e-9 * max(abs(current), 1e-12):
                    continue  # an entry from before one of the two regions grew
            else:  # separate islands: the cheapest pair of all
                ids = np.flatnonzero(alive).tolist()
                _, x, y = min((float(costs(p, np.array([q]))[0]), p, q) for p in ids for q in ids if p < q)
            join(x, y)
            merges += 1
            count -= 1
            push(x)

        def root(region: int) -> int:
            while parent[region] != region:
                region = int(parent[region])
            return region

        self.member = np.array([root(region) for region in self.member.tolist()], dtype="int64")
        return merges

    def split_to(self, n_groups: int, min_users: float = 0.0) -> int:
        """Split the region whose ARPU varies most at its best ARPU cut until ``n_groups``.

        Cuts leaving a part below ``min_users`` are taken only when there is no other.
        """
        splits = 0
        while len(np.unique(self.member)) < n_groups:
            best: tuple[bool, float, int, np.ndarray] | None = None
            for region in np.unique(self.member).tolist():
                cells = np.flatnonzero(self.member == region)
                if len(cells) < 2:
                    continue
                for floor in (min_users, 0.0):
                    gain, low = _best_cut(self.values[cells], self.weights[cells], floor)
                    if np.isfinite(gain):
                        break
                candidate = (floor == min_users, gain, region, cells[low])
                if best is None or candidate[:2] > best[:2]:
                    best = candidate
            if best is None:
                break  # every region is one cell; _check_groups makes this unreachable
            self.member[best[3]] = self.member.max() + 1
            splits += 1
        return splits


def _best_cut(values: np.ndarray, weights: np.ndarray, min_users: float = 0.0) -> tuple[float, np.ndarray]:
    """The weighted-SSE reduction of the best two-way cut of cells by ARPU, and the lower part.

    Cuts leaving fewer than ``min_users`` on a side are not considered (gain -inf if none is left).
    """
    order = np.lexsort((np.arange(len(values)), values))
    v, w = values[order], weights[order]
    cumulative_w, cumulative_a = np.cumsum(w), np.cumsum(w * v)
    total_w, total_a = cumulative_w[-1], cumulative_a[-1]
    left_w, left_a = cumulative_w[:-1], cumulative_a[:-1]
    right_w, right_a = total_w - left_w, total_a - left_a
    gain = left_a**2 / left_w + right_a**2 / right_w - total_a**2 / total_w
    gain = np.where((left_w >= min_users) & (right_w >= min_users), gain, -np.inf)
    cut = int(np.argmax(gain))
    return float(gain[cut]), order[: cut + 1]


class KMeansValueGroups:
    """k-means on the same banded features, for comparison (scikit-learn ``KMeans`` on the grid).

    Ordinal codes are scaled to [0, 1] per feature, nominal ones one-hot encoded and
    unknown placed at the feature's middle; each cell is weighted by its users, which
    is k-means over the users themselves. Groups are ordered by ARPU like L0..L14.

    Parameters
    ----------
    n_groups
        Clusters to make.
    levels
        Number of known bands of each feature (to scale the codes).
    nominal
        Indices of the unordered features.
    random_state
        Seed of the k-means initialisation (deterministic for a given seed).
    n_init
        k-means restarts (cheap: the grid is small).
    """

    def __init__(
        self,
        n_groups: int = N_GROUPS,
        levels: Sequence[int] = (),
        nominal: Sequence[int] = (),
        random_state: int = 0,
        n_init: int = 4,
    ) -> None:
        self.n_groups = n_groups
        self.levels = levels
        self.nominal = nominal
        self.random_state = random_state
        self.n_init = n_init

    def fit(self, X: Any, y: Any, sample_weight: Any) -> KMeansValueGroups:
        """Fit k-means on the cells weighted by their users; order the clusters by ARPU."""
        from sklearn.cluster import KMeans

        codes, values, weights = _check_grid(X, y, sample_weight)
        n_groups = _check_groups(self.n_groups, len(codes))
        model = KMeans(n_clusters=n_groups, n_init=self.n_init, random_state=self.random_state)
        raw = model.fit_predict(encode_cells(codes, self.levels, self.nominal), sample_weight=weights)
        self.labels_, self.group_value_ = _order_by_value(raw, values, weights)
        self.group_users_ = np.bincount(self.labels_, weights=weights, minlength=n_groups)
        self.cells_ = codes
        self.inertia_ = float(model.inertia_)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """The group of each cell (fitted cells; others by the nearest fitted cell)."""
        if not hasattr(self, "labels_"):
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(X, y, sample_weight) first."
            )
        return _predict_cells(self.cells_, self.labels_, self.group_users_, np.asarray(X, dtype="int64"))


__all__ = [
    "MODEL_FORMAT",
    "N_GROUPS",
    "ConnectedValueGroups",
    "KMeansValueGroups",
    "group_labels",
    "neighbour_pairs",
]
