"""Cut points from data (SPEC item 8, seed 002): suggest bin edges from a distribution, then check them.

Seed 002 draws the histogram of users' historical spend and cuts it where the
head count changes level, so that "values with similar counts fall together";
it then checks that a cut separates a user trait (e.g. cross-category buying).
``CutPointSuggester`` does the first, ``CutPointSuggester.separation`` the second.
Fitting works on in-memory numbers (NumPy, PyArrow); ``column_values`` pulls a
column out of an Ibis table. ``docs/segments.md`` explains the method.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import ibis.expr.types as ir
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from huaxiang.errors import ConfigError, NotFittedError

FloatArray = npt.NDArray[np.float64]

#: Mantissas of "nice" numbers: edges are rounded to 1, 2, 3 or 5 × 10^n (3 keeps seed 002's 3000).
NICE_MANTISSAS = (1.0, 2.0, 3.0, 5.0)
SCALES = ("log1p", "linear")
METHODS = ("levels", "breaks")
#: Weight of an empty bar for method "breaks": nearly nothing, enough to put a cut mid-gap.
_EMPTY_BAR_WEIGHT = 1e-3


def column_values(table: ir.Table, column: str) -> FloatArray:
    """Execute ``table[column]`` on the table's own backend and return it as float64, NULLs dropped.

    DECIMAL money becomes float64 here: fine for choosing cut points, which are
    rounded anyway; the value grid itself compares exact DECIMALs.
    """
    if column not in table.columns:
        raise ConfigError(
            f"column_values: column '{column}' is not in the table. Columns: {', '.join(table.columns)}."
        )
    array = table.select(column).to_pyarrow().column(0)
    return _as_float_array(array, "values")


def _as_float_array(values: Any, name: str) -> FloatArray:
    if isinstance(values, pa.ChunkedArray | pa.Array):
        values = pc.drop_null(pc.cast(values, pa.float64())).to_numpy(zero_copy_only=False)
    array = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(array)):
        raise ConfigError(f"CutPointSuggester: {name} must be finite numbers (no NaN or infinity).")
    return array


def nice_number(value: float) -> float:
    """The number ±m × 10^n, m in ``NICE_MANTISSAS``, closest to ``value`` on a log scale (0 stays 0)."""
    if value == 0:
        return 0.0
    if value < 0:
        return -nice_number(-value)
    exponent = math.floor(math.log10(value))
    candidates = [m * 10.0**e for e in (exponent - 1, exponent, exponent + 1) for m in NICE_MANTISSAS]
    best = min(candidates, key=lambda c: (abs(math.log(c / value)), c))
    return float(f"{best:.12g}")


def _segment(
    levels: FloatArray, weights: FloatArray, counts: FloatArray, segments: int, min_count: float
) -> list[int] | None:
    """Optimal split of ``levels`` into ``segments`` contiguous runs (Fisher / Jenks by dynamic
    programming) minimising the total weighted within-run sum of squares; every run holds at
    least ``min_count`` values. Returns the run starts after the first, or None when infeasible."""
    n = len(levels)
    w = np.concatenate([[0.0], np.cumsum(weights)])
    s1 = np.concatenate([[0.0], np.cumsum(weights * levels)])
    s2 = np.concatenate([[0.0], np.cumsum(weights * levels**2)])
    c = np.concatenate([[0.0], np.cumsum(counts)])
    starts = np.arange(n + 1)

    def cost(i: npt.NDArray[np.int_], j: int) -> FloatArray:
        """Sum of squares of runs [i, j) for an array of starts i < j; inf where too small."""
        weight = w[j] - w[i]
        total = s1[j] - s1[i]
        sse = (s2[j] - s2[i]) - total**2 / weight
        return np.where(c[j] - c[i] >= min_count, sse, np.inf)

    best = np.full((segments + 1, n + 1), np.inf)
    back = np.zeros((segments + 1, n + 1), dtype=np.int64)
    best[0, 0] = 0.0
    for m in range(1, segments + 1):
        for j in range(m, n + 1):
            i = starts[m - 1 : j]
            total = best[m - 1, i] + cost(i, j)
            pick = int(np.argmin(total))
            best[m, j] = total[pick]
            back[m, j] = i[pick]
    if not np.isfinite(best[segments, n]):
        return None
    cuts: list[int] = []
    j = n
    for m in range(segments, 1, -1):
        j = int(back[m, j])
        cuts.append(j)
    return sorted(cuts)


class CutPointSuggester:
    """Suggest up to ``k - 1`` cut points where a distribution's head count changes level.

    Parameters
    ----------
    k
        Number of bins wanted (so at most ``k - 1`` edges); at least 2.
    min_share
        Smallest share of the values a bin may hold, in ``[0, 1 / k]``.
    scale
        ``"log1p"`` (default, for skewed money: values must be ``> -1``) or
        ``"linear"``: the axis the histogram is drawn on.
    resolution
        Number of equal-width histogram bars on that axis (at least ``2 * k``).
    nice
        Round each edge to the closest 1, 2, 3 or 5 × 10^n (on a log scale);
        ``False`` keeps the raw histogram boundaries.
    method
        ``"levels"`` (default, seed 002): runs of bars with similar head counts.
        ``"breaks"``: natural breaks (Fisher / Jenks) of the values on the axis,
        which puts cuts in the gaps between clusters.

    Attributes
    ----------
    edges_
        Suggested cut points, strictly increasing; bins are right-closed
        ``(-inf, e1], (e1, e2], ..., (e_last, inf)``. Rounding can merge two cuts,
        and a ``min_share`` too large for ``k`` bins gives fewer, so there may be
        fewer than ``k - 1``.
    raw_edges_
        The cut points before rounding (histogram bar boundaries).
    counts_
        Number of fitted values in each bin of ``edges_`` (``len(edges_) + 1``).
    n_values_
        Number of values fitted.
    """

    #: Declared constraints, checked in ``fit``: (type, lowest, highest) or allowed values.
    _parameter_constraints: dict[str, tuple[Any, ...]] = {
        "k": (int, 2, 100),
        "min_share": (float, 0.0, 0.5),
        "scale": SCALES,
        "method": METHODS,
        "resolution": (int, 4, 10_000),
        "nice": (bool,),
    }

    def __init__(
        self,
        k: int = 5,
        min_share: float = 0.02,
        scale: str = "log1p",
        resolution: int = 120,
        nice: bool = True,
        method: str = "levels",
    ) -> None:
        self.k = k
        self.min_share = min_share
        self.scale = scale
        self.resolution = resolution
        self.nice = nice
        self.method = method

    def __repr__(self) -> str:
        return (
            f"CutPointSuggester(k={self.k!r}, min_share={self.min_share!r}, scale={self.scale!r}, "
            f"resolution={self.resolution!r}, nice={self.nice!r}, method={self.method!r})"
        )

    def _validate_params(self) -> None:
        for name, constraint in self._parameter_constraints.items():
            value = getattr(self, name)
            if name in ("scale", "method"):
                if value not in constraint:
                    raise ConfigError(
                        f"CutPointSuggester: {name} must be one of {', '.join(constraint)}, got {value!r}."
                    )
                continue
            kind = constraint[0]
            numeric_ok = kind is float and isinstance(value, int | float) and not isinstance(value, bool)
            kind_ok = numeric_ok or (
                isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
            )
            if not kind_ok:
                raise ConfigError(
                    f"CutPointSuggester: {name} must be {kind.__name__}, "
                    f"got {value!r} ({type(value).__name__})."
                )
            if len(constraint) == 3 and not constraint[1] <= value <= constraint[2]:
                raise ConfigError(
                    f"CutPointSuggester: {name} must be between {constraint[1]} and {constraint[2]}, "
                    f"got {value!r}."
                )
        if self.min_share * self.k > 1:
            raise ConfigError(
                f"CutPointSuggester: min_share × k must be at most 1 (each of k={self.k} bins holds "
                f"min_share of the values), got min_share={self.min_share!r}."
            )
        if self.resolution < 2 * self.k:
            raise ConfigError(
                f"CutPointSuggester: resolution must be at least 2 × k = {2 * self.k}, got {self.resolution}."
            )

    def fit(self, values: Any) -> CutPointSuggester:
        """Learn ``edges_`` from ``values`` (NumPy array, list, PyArrow array; NULLs dropped)."""
        self._validate_params()
        data = _as_float_array(values, "values")
        if data.size == 0:
            raise ConfigError("CutPointSuggester: cannot fit on no values.")
        if self.scale == "log1p" and np.any(data <= -1):
            raise ConfigError("CutPointSuggester: scale 'log1p' needs values > -1; use scale='linear'.")
        axis = np.log1p(data) if self.scale == "log1p" else data
        low, high = float(axis.min()), float(axis.max())
        raw: list[float] = []
        if high > low:
            counts, bounds = np.histogram(axis, bins=self.resolution, range=(low, high))
            heads = counts.astype(np.float64)
            if self.method == "levels":
                # Level of a bar = log of its head count (a tail bar of 50 users differs from one
                # of 2,000 as much as 2,000 from 80,000); every bar weighs the same, as every dot
                # does in the seed's scatter plot, so a long sparse tail is a level of its own.
                levels, weights = np.log1p(heads), np.ones_like(heads)
            else:
                # Natural breaks of the values themselves: bar centres weighted by head count.
                levels, weights = (bounds[:-1] + bounds[1:]) / 2, heads + _EMPTY_BAR_WEIGHT
            min_count = self.min_share * data.size
            for segments in range(self.k, 1, -1):
                cuts = _segment(levels, weights, heads, segments, min_count)
                if cuts is not None:
                    break
            else:
                cuts = []
            boundaries = bounds[cuts]
            raw = [float(np.expm1(b)) if self.scale == "log1p" else float(b) for b in boundaries]
        edges = sorted({nice_number(e) for e in raw}) if self.nice else raw
        self.raw_edges_ = raw
        self.edges_ = edges
        self.counts_ = self._bin_counts(data, self.edges_)
        self.n_values_ = int(data.size)
        return self

    @staticmethod
    def _bin_counts(data: FloatArray, edges: Sequence[float]) -> list[int]:
        # searchsorted(side="left") gives how many edges lie strictly below a value: right-closed bins.
        index = np.searchsorted(np.asarray(edges, dtype=np.float64), data, side="left")
        return [int(n) for n in np.bincount(index, minlength=len(edges) + 1)]

    def _check_fitted(self) -> None:
        if not hasattr(self, "edges_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet; call fit(values) first.")

    def transform(self, values: Any) -> npt.NDArray[np.int64]:
        """Bin index of each value: 0 for ``<= edges_[0]`` ... ``len(edges_)`` above the last edge."""
        self._check_fitted()
        data = _as_float_array(values, "values")
        return np.searchsorted(np.asarray(self.edges_, dtype=np.float64), data, side="left").astype(np.int64)

    def separation(
        self, values: Any, trait: Any, edges: Sequence[float] | None = None
    ) -> list[dict[str, float | int]]:
        """For each cut, the share of users with ``trait`` at or below it and above it.

        ``z`` is the pooled two-proportion z statistic ``(p_above − p_below) /
        sqrt(p (1 − p) (1/n_below + 1/n_above))``; ``|z| > 1.96`` means the cut separates
        the trait at the 5 % level. NaN when one side is empty or the trait is constant.
        ``edges`` defaults to ``edges_`` (pass others, e.g. seed 002's, to check them).
        """
        if edges is None:
            self._check_fitted()
            edges = self.edges_
        data = _as_float_array(values, "values")
        flags = np.asarray(trait, dtype=bool).ravel()
        if flags.shape != data.shape:
            raise ConfigError(
                f"CutPointSuggester.separation: trait has {flags.size} values, values has {data.size}."
            )
        report: list[dict[str, float | int]] = []
        for edge in edges:
            below = data <= edge
            n_below, n_above = int(below.sum()), int((~below).sum())
            hits_below, hits_above = int(flags[below].sum()), int(flags[~below].sum())
            rate_below = hits_below / n_below if n_below else math.nan
            rate_above = hits_above / n_above if n_above else math.nan
            z = math.nan
            if n_below and n_above:
                pooled = (hits_below + hits_above) / (n_below + n_above)
                variance = pooled * (1 - pooled) * (1 / n_below + 1 / n_above)
                if variance > 0:
                    z = (rate_above - rate_below) / math.sqrt(variance)
            report.append(
                {
                    "edge": float(edge),
                    "n_below": n_below,
                    "n_above": n_above,
                    "trait_rate_below": rate_below,
                    "trait_rate_above": rate_above,
                    "z": z,
                }
            )
        return report
