"""Offline evaluation of the recommender against the popularity baseline, by a time split.

The events of the first ``train_days`` days (from the first event's day, or ``start``)
train: the :class:`~huaxiang.recs.recommend.Recommender` is built from them alone. The
next ``test_days`` days test: a user's *relevant* products are those the user viewed,
clicked, favorited, carted or bought in the test days, less those bought in training
(both recommenders exclude them). Every user with at least one relevant product is
scored:

- **hit rate@k**: share of users with at least one relevant product in their top k;
- **recall@k**: mean over users of (relevant products in the top k) / (relevant products);
- **coverage**: distinct products recommended to anyone / products seen in training.

Two protocols are reported: ``all`` (every relevant product) and ``new`` (only the
products the user had not touched in training: what discovery looks like).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from huaxiang.errors import RequestError, WorkspaceError
from huaxiang.recs.data import DataSettings, load_shop_data
from huaxiang.recs.recommend import Recommender, RecsWeights, check_k


@dataclass(frozen=True)
class Scores:
    """Metrics of one recommender under one protocol."""

    hit_rate: float
    recall: float
    coverage: float


@dataclass(frozen=True)
class RecsEvaluation:
    """The result of :func:`evaluate_recs`."""

    train_start: str
    cutoff: str
    test_end: str
    k: int
    users_tested: dict[str, int]
    train_items: int
    model: dict[str, Scores]
    popularity: dict[str, Scores]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_markdown(self) -> str:
        rows = [
            f"| protocol | users | recommender hit@{self.k} | popularity hit@{self.k} | recommender "
            f"recall@{self.k} | popularity recall@{self.k} | recommender coverage | popularity coverage |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for protocol, model in self.model.items():
            base = self.popularity[protocol]
            rows.append(
                f"| {protocol} | {self.users_tested[protocol]:,} "
                f"| {model.hit_rate:.3f} | {base.hit_rate:.3f} "
                f"| {model.recall:.3f} | {base.recall:.3f} | {model.coverage:.3f} | {base.coverage:.3f} |"
            )
        return "\n".join(rows)


def evaluate_recs(
    workspace: str | Path,
    *,
    train_days: int = 7,
    test_days: int = 2,
    k: int = 10,
    start: dt.date | None = None,
    weights: RecsWeights | None = None,
    settings: DataSettings | None = None,
) -> RecsEvaluation:
    """Train on the first ``train_days`` days of events, test on the next ``test_days`` (module doc)."""
    check_k(k)
    for name, value in (("train_days", train_days), ("test_days", test_days)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise RequestError(f"{name} must be a whole number of days, at least 1; got {value!r}.")
    began = time.perf_counter()
    data_dir = Path(workspace) / "data"
    events = data_dir / "events.parquet"
    if not events.is_file():
        raise WorkspaceError(
            f"no events in {Path(workspace)}: run 'huaxiang ingest -w {workspace}' first "
            "(the evaluation splits the events by time)."
        )
    path = str(events).replace("'", "''")
    con = duckdb.connect()
    try:
        first, last = con.sql(
            f"SELECT min(event_time), max(event_time) FROM read_parquet('{path}')"
        ).fetchone()  # type: ignore[misc]
        if first is None:
            raise WorkspaceError(f"the events table of {workspace} is empty; nothing to evaluate.")
        begin = dt.datetime.combine(start or first.date(), dt.time())
        cutoff = begin + dt.timedelta(days=train_days)
        end = cutoff + dt.timedelta(days=test_days)
        if cutoff > last:
            raise RequestError(
                f"the events end on {last:%Y-%m-%d}, before the test days that would start on "
                f"{cutoff:%Y-%m-%d}; use fewer --train-days (the events start on {first:%Y-%m-%d})."
            )
        data = load_shop_data(data_dir, cutoff, settings=settings, start=begin)
        settings = data.settings
        kinds = "', '".join(settings.event_weights)
        test = con.sql(
            f"""SELECT user_id, list(DISTINCT product_id) FROM read_parquet('{path}')
            WHERE event_time >= TIMESTAMP '{cutoff.isoformat(sep=" ")}'
              AND event_time < TIMESTAMP '{end.isoformat(sep=" ")}'
              AND product_id IS NOT NULL AND user_id IS NOT NULL AND event_type IN ('{kinds}')
            GROUP BY 1 ORDER BY 1"""
        ).fetchall()
    finally:
        con.close()
    recommender = Recommender(data, weights)
    hits: dict[str, dict[str, list[float]]] = {
        name: {"all": [], "new": []} for name in ("model", "popularity")
    }
    recalls: dict[str, dict[str, list[float]]] = {
        name: {"all": [], "new": []} for name in ("model", "popularity")
    }
    shown: dict[str, dict[str, set[str]]] = {
        name: {"all": set(), "new": set()} for name in ("model", "popularity")
    }
    for user_id, products in test:
        items, _, bought = data.history(user_id)
        owned = {data.item_ids[i] for i in items[bought]}
        touched = {data.item_ids[i] for i in items}
        relevant = {"all": set(products) - owned, "new": set(products) - touched}
        lists = {
            "model": [r.product_id for r in recommender.recommend(user_id, k)],
            "popularity": [r.product_id for r in recommender.popular(user_id, k)],
        }
        for protocol, wanted in relevant.items():
            if not wanted:
                continue
            for name, found in lists.items():
                hit = len(wanted.intersection(found))
                hits[name][protocol].append(1.0 if hit else 0.0)
                recalls[name][protocol].append(hit / len(wanted))
                shown[name][protocol].update(found)
    items_trained = max(1, len(np.unique(data.history_item)))

    def scores(name: str) -> dict[str, Scores]:
        return {
            protocol: Scores(
                hit_rate=round(_mean(hits[name][protocol]), 4),
                recall=round(_mean(recalls[name][protocol]), 4),
                coverage=round(len(shown[name][protocol]) / items_trained, 4),
            )
            for protocol in ("all", "new")
        }

    return RecsEvaluation(
        train_start=begin.date().isoformat(),
        cutoff=cutoff.date().isoformat(),
        test_end=(end - dt.timedelta(days=1)).date().isoformat(),
        k=k,
        users_tested={protocol: len(hits["model"][protocol]) for protocol in ("all", "new")},
        train_items=items_trained,
        model=scores("model"),
        popularity=scores("popularity"),
        seconds=round(time.perf_counter() - began, 2),
    )


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0
