"""Personal recommendations (个性化推荐, seed 004): affinity plus item co-occurrence, popularity as fallback.

For a user with history, every candidate product ``i`` gets

    score(u, i) = w_cooccurrence · C(u, i) + w_repeat · R(u, i) + w_category · A_cat(u, i)
                + w_brand · A_brand(u, i) + w_popularity · P(i)

- ``C``: co-occurrence with what the user viewed, favorited, carted and bought:
  ``Σ_j weight(u, j) · sim(j, i)`` over the user's products ``j`` (cosine similarity of
  :mod:`huaxiang.recs.data`), divided by its largest value among the candidates (0..1);
- ``R``: the user's own interaction weight on ``i`` divided by the user's largest (0..1):
  a product viewed or carted and not bought is a fair thing to show again;
- ``A_cat``, ``A_brand``: the user's category and brand affinity (1 for the favourite);
- ``P``: popularity (0..1).

Candidates are the co-occurrence neighbours of the user's 30 strongest products, the
user's own products, the 50 most popular products of the user's three strongest
categories and the most popular products overall. Products the user bought are
excluded. A user with no history (cold start) gets the most popular products of the
categories declared at sign-up (``users.declared_preferences``, matched at any category
level) first, then the most popular overall: ``score = 2 + P`` in a declared category,
``P`` otherwise.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from huaxiang.errors import ConfigError, RequestError
from huaxiang.recs.data import DataSettings, FloatArray, IntArray, ShopData, load_shop_data

MAX_K = 200
HISTORY_FOR_NEIGHBOURS = 30
TOP_CATEGORIES = 3
CATEGORY_CANDIDATES = 50


@dataclass(frozen=True)
class RecsWeights:
    """The weights of the score (module doc); the defaults were chosen on the sample shop."""

    cooccurrence: float = 1.0
    repeat: float = 0.6
    category: float = 0.5
    brand: float = 0.3
    popularity: float = 0.2

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not value >= 0:
                raise ConfigError(f"recommendation weight {name} must be 0 or more, got {value}.")


@dataclass(frozen=True)
class Recommendation:
    """One recommended product, with its score and the parts of it."""

    product_id: str
    score: float
    reason: str
    components: dict[str, float] = field(default_factory=dict)


def check_k(k: int) -> int:
    """``k`` between 1 and :data:`MAX_K`, or a 400 that says so."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise RequestError(f"k must be a whole number from 1 to {MAX_K}, got {k!r}.")
    return k


class Recommender:
    """Ranks products for a user from a :class:`ShopData` (made once, used for many users)."""

    def __init__(self, data: ShopData, weights: RecsWeights | None = None) -> None:
        self.data = data
        self.weights = weights or RecsWeights()

    def has_history(self, user_id: str) -> bool:
        return user_id in self.data.user_rows

    def recommend(self, user_id: str, k: int = 10) -> list[Recommendation]:
        """The ``k`` best products for the user (bought ones excluded), best first."""
        check_k(k)
        data = self.data
        items, weights, bought = data.history(user_id)
        if len(items) == 0:
            return self._cold_start(user_id, k)
        candidates = self._candidates(items, weights, k)
        candidates = candidates[~np.isin(candidates, items[bought])]
        if len(candidates) == 0:
            return []
        category, brand = data.affinities(user_id)
        cooccurrence = np.zeros(data.items, np.float64)
        strongest = np.argsort(-weights, kind="stable")[:HISTORY_FOR_NEIGHBOURS]
        for position in strongest:
            neighbours, similarity = data.neighbours(int(items[position]))
            np.add.at(cooccurrence, neighbours, weights[position] * similarity)
        repeat = np.zeros(data.items, np.float64)
        repeat[items] = weights / weights.max()
        parts = {
            "cooccurrence": _scaled(cooccurrence[candidates]),
            "repeat": repeat[candidates],
            "category": category[candidates],
            "brand": brand[candidates],
            "popularity": data.popularity[candidates],
        }
        w = self.weights
        score = (
            w.cooccurrence * parts["cooccurrence"]
            + w.repeat * parts["repeat"]
            + w.category * parts["category"]
            + w.brand * parts["brand"]
            + w.popularity * parts["popularity"]
        )
        return self._top(candidates, score, parts, k)

    def popular(self, user_id: str, k: int = 10) -> list[Recommendation]:
        """The baseline: the most popular products the user has not bought."""
        check_k(k)
        items, _, bought = self.data.history(user_id)
        owned = set(items[bought].tolist())
        found: list[Recommendation] = []
        for item in self.data.by_popularity:
            if int(item) in owned:
                continue
            found.append(self._item(int(item), float(self.data.popularity[item]), "popularity", {}))
            if len(found) == k:
                break
        return found

    def _candidates(self, items: IntArray, weights: FloatArray, k: int) -> IntArray:
        data = self.data
        parts: list[IntArray] = [items, data.by_popularity[: max(3 * k, 30)]]
        strongest = np.argsort(-weights, kind="stable")[:HISTORY_FOR_NEIGHBOURS]
        parts += [data.neighbours(int(items[p]))[0] for p in strongest]
        codes = data.item_category[items]
        known = codes >= 0
        if known.any():
            totals = np.bincount(codes[known], weights=weights[known])
            for code in np.argsort(-totals, kind="stable")[:TOP_CATEGORIES]:
                if totals[code] > 0:
                    parts.append(
                        data.category_top.get(int(code), np.empty(0, np.int64))[:CATEGORY_CANDIDATES]
                    )
        return np.unique(np.concatenate(parts))

    def _cold_start(self, user_id: str, k: int) -> list[Recommendation]:
        data = self.data
        declared = data.declared_mask(user_id)
        if not declared.any():
            return [
                self._item(
                    int(i), float(data.popularity[i]), "popularity", {"popularity": float(data.popularity[i])}
                )
                for i in data.by_popularity[:k]
            ]
        candidates = np.unique(np.concatenate([np.flatnonzero(declared), data.by_popularity[:k]]))
        parts = {
            "declared": declared[candidates].astype(np.float64),
            "popularity": data.popularity[candidates],
        }
        return self._top(candidates, 2 * parts["declared"] + parts["popularity"], parts, k, cold=True)

    def _top(
        self,
        candidates: IntArray,
        score: FloatArray,
        parts: dict[str, FloatArray],
        k: int,
        *,
        cold: bool = False,
    ) -> list[Recommendation]:
        # Best score first; ties by popularity, then product id (deterministic).
        order = np.lexsort((candidates, -self.data.popularity[candidates], -score))[:k]
        found = []
        for position in order:
            components = {name: round(float(values[position]), 6) for name, values in parts.items()}
            if cold:
                reason = "declared_preference" if components["declared"] > 0 else "popularity"
            else:
                reason = max(
                    ("cooccurrence", "repeat", "category", "brand", "popularity"),
                    key=lambda name: getattr(self.weights, name) * components[name],
                )
            found.append(self._item(int(candidates[position]), float(score[position]), reason, components))
        return found

    def _item(self, item: int, score: float, reason: str, components: dict[str, float]) -> Recommendation:
        return Recommendation(self.data.item_ids[item], round(score, 6), reason, components)

    def describe(self, recommendations: list[Recommendation]) -> list[dict[str, Any]]:
        """The recommendations as plain data with each product's name, brand, category and price."""
        rows = []
        for rank, found in enumerate(recommendations, start=1):
            item = self.data.item_rows[found.product_id]
            rows.append(
                {
                    "rank": rank,
                    **self.data.item_summary(item),
                    "score": found.score,
                    "reason": found.reason,
                    "components": found.components,
                }
            )
        return rows


def _scaled(values: FloatArray) -> FloatArray:
    top = values.max() if len(values) else 0.0
    return values / top if top > 0 else values


def snapshot_cutoff(as_of: dt.date) -> dt.datetime:
    """Snapshots count what happened before midnight at the start of the as-of date."""
    return dt.datetime.combine(as_of, dt.time())


def build_recommender(
    workspace: str | Path,
    as_of: dt.date,
    *,
    weights: RecsWeights | None = None,
    settings: DataSettings | None = None,
) -> Recommender:
    """A recommender over a workspace's data as of a snapshot date (events before its midnight)."""
    data = load_shop_data(Path(workspace) / "data", snapshot_cutoff(as_of), settings=settings)
    return Recommender(data, weights)
