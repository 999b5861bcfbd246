"""Recommendations: the score, co-occurrence, exclusion of bought products, cold start, evaluation."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from huaxiang.errors import RequestError, WorkspaceError
from huaxiang.recs import (
    DataSettings,
    Recommender,
    RecsWeights,
    Scores,
    evaluate_recs,
    load_shop_data,
)

CUTOFF = dt.datetime(2026, 3, 10)
DAY = dt.timedelta(days=1)


def _write(
    root: Path, events: list[tuple[str, str, str, dt.datetime]], *, declared: dict[str, list[str]]
) -> Path:
    data = root / "data"
    data.mkdir(parents=True)
    pq.write_table(
        pa.table(
            {
                "user_id": [e[0] for e in events],
                "event_time": pa.array([e[3] for e in events], pa.timestamp("us")),
                "event_type": [e[2] for e in events],
                "product_id": [e[1] for e in events],
            }
        ),
        data / "events.parquet",
    )
    products = {
        # id: (category_l1, category_l3, brand, price)
        "tent": ("户外", "帐篷", "骆驼", 300),
        "mat": ("户外", "野餐垫", "北山狼", 50),
        "stove": ("户外", "烧烤炉", "骆驼", 200),
        "milk": ("母婴", "奶粉", "飞鹤", 200),
        "diaper": ("母婴", "纸尿裤", "好奇", 100),
        "phone": ("3C数码", "手机", "华为", 5000),
        "soap": ("家庭清洁", "洗衣液", "蓝月亮", 30),
    }
    pq.write_table(
        pa.table(
            {
                "product_id": list(products),
                "category_l1": [v[0] for v in products.values()],
                "category_l3": [v[1] for v in products.values()],
                "brand": [v[2] for v in products.values()],
                "price": pa.array([Decimal(v[3]) for v in products.values()], pa.decimal128(18, 2)),
            }
        ),
        data / "products.parquet",
    )
    users = sorted({e[0] for e in events} | set(declared) | {"nobody"})
    pq.write_table(
        pa.table(
            {
                "user_id": users,
                "declared_preferences": pa.array([declared.get(u) for u in users], pa.list_(pa.string())),
            }
        ),
        data / "users.parquet",
    )
    return root


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    t = CUTOFF - 5 * DAY
    events = [
        # Many users view tent and mat together: they co-occur.
        *[(f"camper{i}", "tent", "view", t) for i in range(6)],
        *[(f"camper{i}", "mat", "view", t + dt.timedelta(hours=1)) for i in range(6)],
        ("camper0", "stove", "cart", t),
        # Soap is the most popular product by far.
        *[(f"cleaner{i}", "soap", "view", t) for i in range(20)],
        *[(f"cleaner{i}", "soap", "purchase", t) for i in range(10)],
        # alice viewed and bought the tent: the mat should come first, the tent never.
        ("alice", "tent", "view", t),
        ("alice", "tent", "purchase", t + DAY),
        # An event after the cutoff never counts.
        ("alice", "phone", "view", CUTOFF + DAY),
        *[(f"late{i}", "phone", "view", CUTOFF + DAY) for i in range(50)],
        ("mom", "milk", "view", t),
    ]
    return _write(tmp_path / "shop", events, declared={"newbie": ["母婴"]})


def test_cooccurrence_ranks_the_companion_first_and_bought_products_are_excluded(shop: Path) -> None:
    data = load_shop_data(shop / "data", CUTOFF)
    recommender = Recommender(data)
    found = recommender.recommend("alice", 5)
    ids = [r.product_id for r in found]
    assert ids[0] == "mat" and found[0].reason == "cooccurrence"
    assert "tent" not in ids  # bought
    assert "phone" not in ids  # only seen after the cutoff
    weights = RecsWeights()
    for item in found:
        parts = item.components
        expected = sum(getattr(weights, name) * parts[name] for name in parts)
        assert item.score == pytest.approx(expected, abs=1e-5)
    assert [r.score for r in found] == sorted((r.score for r in found), reverse=True)


def test_popularity_and_weights_change_the_order(shop: Path) -> None:
    data = load_shop_data(shop / "data", CUTOFF)
    assert data.item_ids[int(data.by_popularity[0])] == "soap"
    only_popularity = Recommender(
        data, RecsWeights(cooccurrence=0, repeat=0, category=0, brand=0, popularity=1)
    )
    assert only_popularity.recommend("alice", 1)[0].product_id == "soap"
    assert [r.product_id for r in Recommender(data).popular("cleaner0", 2)] == ["tent", "mat"]  # soap bought


def test_cold_start_uses_declared_preferences_then_popularity(shop: Path) -> None:
    recommender = Recommender(load_shop_data(shop / "data", CUTOFF))
    declared = recommender.recommend("newbie", 3)
    assert {r.product_id for r in declared[:2]} == {"milk", "diaper"}
    assert (
        declared[0].reason == "declared_preference" and declared[0].product_id == "milk"
    )  # milk more popular
    assert declared[2].reason == "popularity"
    assert [r.product_id for r in recommender.recommend("nobody", 2)] == ["soap", "tent"]


def test_bad_k_and_bad_settings_are_clear_errors(shop: Path) -> None:
    recommender = Recommender(load_shop_data(shop / "data", CUTOFF))
    for k in (0, -1, 201, True):
        with pytest.raises(RequestError, match="k must be a whole number from 1 to 200"):
            recommender.recommend("alice", k)
    with pytest.raises(ValueError, match="must be 0 or more"):
        RecsWeights(cooccurrence=-1)
    with pytest.raises(ValueError, match="needs a weight for 'purchase'"):
        load_shop_data(shop / "data", CUTOFF, settings=DataSettings(event_weights={"view": 1.0}))
    with pytest.raises(WorkspaceError, match="no events table"):
        load_shop_data(shop / "nowhere", CUTOFF)


def test_evaluation_splits_by_time_and_scores_against_popularity(tmp_path: Path) -> None:
    start = dt.datetime(2026, 1, 1)
    events = []
    for i in range(20):  # a crowd makes the phone the most popular product, then leaves
        events += [
            (f"crowd{i}", "phone", "view", start + dt.timedelta(days=i % 7, hours=h)) for h in range(3)
        ]
    for i in range(30):
        # Training: everyone views the tent, a third also the mat; test (day 8): everyone views the mat.
        events.append((f"u{i}", "tent", "view", start + dt.timedelta(days=i % 7, hours=1)))
        if i % 3 == 0:
            events.append((f"u{i}", "mat", "view", start + dt.timedelta(days=i % 7, hours=2)))
        events.append((f"u{i}", "mat", "view", start + dt.timedelta(days=7, hours=5)))
    events.append(("u0", "stove", "view", start + dt.timedelta(days=9)))  # after the test days
    shop = _write(tmp_path / "shop", events, declared={})
    result = evaluate_recs(shop, train_days=7, test_days=1, k=2)
    assert (result.train_start, result.cutoff, result.test_end) == ("2026-01-01", "2026-01-08", "2026-01-08")
    assert result.users_tested == {"all": 30, "new": 20}
    assert result.train_items == 3
    # Popularity shows the phone and the tent; the recommender the tent and its companion, the mat.
    assert result.popularity["all"] == Scores(hit_rate=0.0, recall=0.0, coverage=round(2 / 3, 4))
    assert result.model["all"] == Scores(hit_rate=1.0, recall=1.0, coverage=round(2 / 3, 4))
    assert result.model["new"].hit_rate == 1.0 and result.popularity["new"].hit_rate == 0.0
    assert "| all | 30 | 1.000 | 0.000 |" in result.to_markdown()
    with pytest.raises(RequestError, match="use fewer --train-days"):
        evaluate_recs(shop, train_days=10, test_days=1)
    with pytest.raises(RequestError, match="train_days must be a whole number"):
        evaluate_recs(shop, train_days=0)
