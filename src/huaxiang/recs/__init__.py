"""Personal recommendations (个性化推荐): affinity and co-occurrence, popularity fallback, evaluation.

- :mod:`~huaxiang.recs.data`: items, histories, popularity, discounts and co-occurrence as arrays.
- :mod:`~huaxiang.recs.recommend`: :class:`Recommender` and its documented score.
- :mod:`~huaxiang.recs.evaluate`: the time-split evaluation against the popularity baseline.

See docs/scenes.md.
"""

from huaxiang.recs.data import DataSettings, ShopData, load_shop_data
from huaxiang.recs.evaluate import RecsEvaluation, Scores, evaluate_recs
from huaxiang.recs.recommend import (
    MAX_K,
    Recommendation,
    Recommender,
    RecsWeights,
    build_recommender,
    check_k,
    snapshot_cutoff,
)

__all__ = [
    "MAX_K",
    "DataSettings",
    "Recommendation",
    "Recommender",
    "RecsEvaluation",
    "RecsWeights",
    "Scores",
    "ShopData",
    "build_recommender",
    "check_k",
    "evaluate_recs",
    "load_shop_data",
    "snapshot_cutoff",
]
