"""Recommendations on the Taobao example: train on the first 7 days, test on the last 2.

The recommender must beat the popularity baseline on hit rate@10; the figures are
recorded in docs/benchmarks.md ("Recommendations").
"""

from __future__ import annotations

import pytest
from realdata import TAOBAO, Ingested

from huaxiang.recs import evaluate_recs

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not TAOBAO.is_file(), reason="needs ../shared/data/taobao_userbehavior"),
]


def test_the_recommender_beats_popularity_on_hit_rate_at_10(taobao: Ingested) -> None:
    result = evaluate_recs(taobao.root, train_days=7, test_days=2, k=10)
    assert (result.train_start, result.cutoff, result.test_end) == ("2017-11-25", "2017-12-02", "2017-12-03")
    assert result.users_tested["all"] > 800  # nearly all 815 users act in the last two days
    model, baseline = result.model["all"], result.popularity["all"]
    assert model.hit_rate > baseline.hit_rate
    assert model.hit_rate > 5 * baseline.hit_rate and model.recall > baseline.recall
    assert model.coverage > baseline.coverage
