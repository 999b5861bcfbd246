"""Everything a scene page, an entry decision or a recommendation needs, precomputed per snapshot.

:class:`SceneModel` is made once per served snapshot (a few set-based queries and NumPy
arrays: product and content scene strengths, popularity, discounts, co-occurrence, users'
histories and scene scores); a request is then array arithmetic over one user's rows.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow.parquet as pq

from huaxiang.errors import ConfigError, HuaxiangError, NotFoundError, RequestError
from huaxiang.history import Snapshot, find_snapshot
from huaxiang.recs.data import DataSettings, FloatArray, IntArray, ShopData, load_shop_data
from huaxiang.recs.recommend import Recommender, RecsWeights, check_k, snapshot_cutoff
from huaxiang.scenes import pages as page_rules
from huaxiang.scenes.pages import COMPONENTS, FORMULA, PageDefinition, PageFile, Weights, Widget
from huaxiang.scenes.tagging import Tagged, load_rules, strengths, summary, uploaded_lists

#: ``members(definition) -> user ids``: how the model evaluates a page's audience.
AudienceMembers = Callable[[str], set[str]]


@dataclass
class ContentData:
    """The content table as arrays: ids, titles, kinds, linked products, popularity."""

    ids: list[str]
    titles: list[str | None]
    kinds: list[str | None]
    linked: list[IntArray]
    popularity: FloatArray
    own_scenes: list[list[str]]


class SceneModel:
    """Scene strengths, pages, entries and recommendations over one snapshot of a workspace.

    Parameters
    ----------
    workspace
        The workspace folder.
    snapshot
        The snapshot served (its date is the cutoff: what happened before its midnight).
    audience_members
        Evaluates a page's audience definition to user ids (default: an
        :class:`~huaxiang.audience.AudienceEngine` over the snapshot, made on first use).
    """

    def __init__(
        self,
        workspace: str | Path,
        snapshot: Snapshot,
        *,
        audience_members: AudienceMembers | None = None,
        data_settings: DataSettings | None = None,
        recs_weights: RecsWeights | None = None,
    ) -> None:
        started = time.perf_counter()
        self.workspace = Path(workspace)
        self.snapshot = snapshot
        self.as_of: dt.date = snapshot.as_of
        self.data: ShopData = load_shop_data(
            self.workspace / "data", snapshot_cutoff(self.as_of), settings=data_settings
        )
        self.recommender = Recommender(self.data, recs_weights)
        self.pages = page_rules.load_pages(self.workspace)
        rules = load_rules(self.workspace)
        listed = uploaded_lists(self.workspace, self.data.item_ids)
        data = self.data
        own = self._own_scene_tags()
        texts = data.item_names
        self.product_tags = strengths(
            data.item_ids,
            own,
            data.item_levels,
            [data.brands[b] if b >= 0 else None for b in data.item_brand],
            texts,
            rules,
            listed,
        )
        self.product_strength: dict[str, FloatArray] = {}
        for scene, tagged in self.product_tags.items():
            dense = np.zeros(data.items, np.float64)
            for found in tagged.values():
                dense[data.item_rows[found.key]] = found.strength
            self.product_strength[scene] = dense
        self.content = self._load_content()
        self.content_tags = strengths(
            self.content.ids, self.content.own_scenes, None, None, self.content.titles, rules
        )
        self._load_user_scenes()
        self.half_score, self.threshold = self._scene_curve()
        self._audience_members = audience_members
        self._engine: Any = None
        self._members: dict[str, set[str] | ConfigError] = {}
        self._lock = threading.Lock()
        self._category_items: dict[str, IntArray] = {}
        self.load_seconds = round(time.perf_counter() - started, 3)

    # ------------------------------------------------------------------ loading

    def _own_scene_tags(self) -> list[list[str]]:
        path = self.workspace / "data" / "products.parquet"
        own: list[list[str]] = [[] for _ in self.data.item_ids]
        if path.is_file() and "scene_tags" in pq.read_schema(path).names:
            table = pq.read_table(path, columns=["product_id", "scene_tags"])
            for product, scenes in zip(
                table.column("product_id").to_pylist(), table.column("scene_tags").to_pylist(), strict=True
            ):
                row = self.data.item_rows.get(product)
                if row is not None and scenes:
                    own[row] = [s for s in scenes if s]
        return own

    def _load_content(self) -> ContentData:
        path = self.workspace / "data" / "content.parquet"
        if not path.is_file():
            return ContentData([], [], [], [], np.empty(0), [])
        names = set(pq.read_schema(path).names)
        table = pq.read_table(path).to_pylist()
        ids = [str(row["content_id"]) for row in table]
        linked = [
            np.array(
                [self.data.item_rows[p] for p in (row.get("product_ids") or []) if p in self.data.item_rows],
                np.int64,
            )
            for row in table
        ]
        views = np.zeros(len(ids), np.float64)
        events = self.workspace / "data" / "events.parquet"
        if ids and events.is_file() and "content_id" in pq.read_schema(events).names:
            cutoff = snapshot_cutoff(self.as_of)
            since = cutoff - dt.timedelta(days=self.data.settings.popularity_days)
            quoted = str(events).replace("'", "''")
            con = duckdb.connect()
            try:
                counts = dict(
                    con.execute(
                        f"SELECT content_id, count(*) FROM read_parquet('{quoted}') "
                        "WHERE content_id IS NOT NULL AND event_time >= ? AND event_time < ? GROUP BY 1",
                        [since, cutoff],
                    ).fetchall()
                )
            finally:
                con.close()
            positions = {key: row for row, key in enumerate(ids)}
            for key, count in counts.items():
                if key in positions:
                    views[positions[key]] = count
        top = views.max() if len(views) else 0.0
        popularity = np.log1p(views) / np.log1p(top) if top > 0 else np.zeros(len(ids))
        return ContentData(
            ids=ids,
            titles=[row.get("title") for row in table],
            kinds=[row.get("kind") for row in table],
            linked=linked,
            popularity=popularity,
            own_scenes=[list(row.get("scene_tags") or []) if "scene_tags" in names else [] for row in table],
        )

    def _load_user_scenes(self) -> None:
        """The snapshot's user ids and every ``scene_<slug>_score`` / ``scene_<slug>`` tag."""
        schema = pq.read_schema(self.snapshot.tags_path)
        columns = [
            name
            for name in schema.names
            if name.startswith("scene_") and (name.endswith("_score") or f"{name}_score" in schema.names)
        ]
        table = pq.read_table(self.snapshot.tags_path, columns=["user_id", *columns])
        self.user_index: dict[str, int] = {
            str(user): row for row, user in enumerate(table.column("user_id").to_pylist())
        }
        self.scene_probability: dict[str, FloatArray] = {}
        self.scene_holds: dict[str, np.ndarray] = {}
        for name in columns:
            values = table.column(name)
            if name.endswith("_score"):
                scene = name[len("scene_") : -len("_score")]
                self.scene_probability[scene] = np.nan_to_num(
                    np.asarray(values.cast("float64").to_numpy(zero_copy_only=False), np.float64)
                )
            else:
                scene = name[len("scene_") :]
                self.scene_holds[scene] = np.asarray(
                    values.fill_null(False).to_numpy(zero_copy_only=False), np.bool_
                )

    # ------------------------------------------------------------------ users

    def require_user(self, user_id: str, *, realtime: bool = False) -> None:
        """A user of the snapshot, with history, or (``realtime``) with real-time events; else a 404."""
        if user_id not in self.user_index and user_id not in self.data.user_rows and not realtime:
            raise NotFoundError(
                f"no user '{user_id}' in the snapshot of {self.as_of} ({len(self.user_index):,} users) "
                "and no real-time events for them; user ids are case-sensitive."
            )

    def probability(self, user_id: str, scene: str, increment: float = 0.0) -> float:
        """The user's scene probability: the snapshot's ``scene_<s>_score``, moved by a real-time
        score ``increment`` (events since the snapshot, undecayed) along the tag's own curve
        ``p = 1 − 2^(−score / half_score)``."""
        row = self.user_index.get(user_id)
        values = self.scene_probability.get(scene)
        found = float(values[row]) if row is not None and values is not None else 0.0
        if increment > 0:
            score = -self.half_score * math.log2(1.0 - found) if found < 1.0 else math.inf
            found = 1.0 - 0.5 ** ((score + increment) / self.half_score)
        return found

    def holds(self, user_id: str, scene: str, increment: float = 0.0) -> bool:
        """The snapshot's ``scene_<s>`` tag, or a real-time probability at its threshold or above."""
        row = self.user_index.get(user_id)
        values = self.scene_holds.get(scene)
        if row is not None and values is not None and bool(values[row]):
            return True
        return increment > 0 and self.probability(user_id, scene, increment) >= self.threshold

    def _scene_curve(self) -> tuple[float, float]:
        """``(half_score, threshold)`` of the catalog's scene tag (the standard's 8 and 0.5 without one)."""
        from huaxiang.catalog import load_catalog

        if (self.workspace / "tags").is_dir():
            try:
                for tag in load_catalog(self.workspace / "tags"):
                    if tag.scene is not None:
                        # Without a threshold the catalog makes no scene_<s> tag for anyone to hold.
                        threshold = tag.scene.threshold
                        return float(tag.scene.half_score), math.inf if threshold is None else threshold
            except ConfigError:
                pass  # a broken catalog is reported by build; pages fall back to the standard curve
        return 8.0, 0.5

    # ------------------------------------------------------------------ pages

    def page_file(self, scene: str) -> PageFile:
        found = self.pages.get(scene)
        if found is None:
            raise NotFoundError(
                page_rules.unknown_scene(
                    scene, [s for s, p in self.pages.items() if not isinstance(p, ConfigError)]
                )
            )
        if isinstance(found, ConfigError):
            raise found
        return found

    def page(self, scene: str, user_id: str, realtime: Mapping[str, float] | None = None) -> dict[str, Any]:
        """The page of ``scene`` as the user sees it: widgets, their items, scores and components.

        ``realtime`` holds the user's real-time scene score increments by scene (the service's
        ``rt_scene_<s>_increment`` tags); they move the scene probability (:meth:`probability`).
        """
        started = time.perf_counter()
        page = self.page_file(scene).page
        increment = float((realtime or {}).get(scene, 0.0))
        self.require_user(user_id, realtime=realtime is not None and increment > 0)
        category, brand = self.data.affinities(user_id)
        probability = self.probability(user_id, scene, increment)
        taken: set[str] = set()
        widgets = [
            self._widget(page, widget, user_id, category, brand, probability, taken)
            for widget in page.widgets
        ]
        return {
            "scene": page.scene,
            "name_zh": page.name_zh,
            "name_en": page.name_en,
            "user_id": user_id,
            "as_of": self.as_of.isoformat(),
            "scene_probability": round(probability, 6),
            "realtime_increment": increment,
            "holds_scene_tag": self.holds(user_id, scene, increment),
            "formula": FORMULA,
            "weights": page.weights.model_dump(),
            "widgets": widgets,
            "milliseconds": round((time.perf_counter() - started) * 1000, 3),
        }

    def _widget(
        self,
        page: PageDefinition,
        widget: Widget,
        user_id: str,
        category: FloatArray,
        brand: FloatArray,
        probability: float,
        taken: set[str],
    ) -> dict[str, Any]:
        weights = page.weights_of(widget)
        base = {
            "id": widget.id,
            "kind": widget.kind,
            "title_zh": widget.title_zh,
            "title_en": widget.title_en,
            "weights": weights.model_dump(),
        }
        if widget.kind == "coupons":
            return {**base, "items": self._coupons(widget, weights, category, brand, probability, taken)}
        if widget.kind == "content":
            return {
                **base,
                "items": self._content(page.scene, widget, weights, category, brand, probability, taken),
            }
        candidates, strength = self._product_candidates(page.scene, widget)
        data = self.data
        parts = {
            "scene_match": strength,
            "popularity": data.popularity[candidates],
            "discount": data.discount[candidates],
            "category_affinity": category[candidates],
            "brand_affinity": brand[candidates],
            "scene_interest": probability * strength,
        }
        score = page_rules.scores(weights, parts)
        keys = [data.item_ids[i] for i in candidates]
        brands = [data.brands[b] if b >= 0 else None for b in data.item_brand[candidates]]
        chosen = page_rules.ranked(
            keys,
            score,
            parts["popularity"],
            brands,
            size=widget.size,
            max_per_brand=widget.max_per_brand,
            taken=taken,
        )
        items = []
        for rank, position in enumerate(chosen, start=1):
            item = int(candidates[position])
            items.append(
                {
                    "rank": rank,
                    **data.item_summary(item),
                    "score": round(float(score[position]), 6),
                    "components": {name: round(float(parts[name][position]), 6) for name in COMPONENTS},
                    "recent_views": int(data.recent_views[item]),
                    "recent_units": int(data.recent_units[item]),
                }
            )
        return {**base, "candidates": len(candidates), "items": items}

    def _product_candidates(self, scene: str, widget: Widget) -> tuple[IntArray, FloatArray]:
        data = self.data
        strength = self.product_strength.get(scene, np.zeros(data.items, np.float64))
        if widget.products:
            missing = [p for p in widget.products if p not in data.item_rows]
            if missing:
                raise ConfigError(
                    f"the page of scene '{scene}', widget '{widget.id}', lists products that are not in the "
                    f"products table: {', '.join(missing[:10])}."
                )
            listed = np.array(sorted({data.item_rows[p] for p in widget.products}), np.int64)
            return listed, np.ones(len(listed), np.float64)
        scene_products = np.flatnonzero(strength >= max(widget.min_strength, 1e-12))
        if widget.kind == "promoted":
            chosen = scene_products[data.discount[scene_products] >= widget.min_discount]
        elif widget.kind == "hot":
            chosen = page_rules.share_of(scene_products, data.popularity, widget.hot_share, top=True)
        elif widget.kind == "long_tail":
            chosen = page_rules.share_of(scene_products, data.popularity, widget.long_tail_share, top=False)
        else:
            chosen = scene_products
        chosen = np.sort(chosen)
        return chosen, strength[chosen]

    def _coupons(
        self,
        widget: Widget,
        weights: Weights,
        category: FloatArray,
        brand: FloatArray,
        probability: float,
        taken: set[str],
    ) -> list[dict[str, Any]]:
        data = self.data
        brand_codes = {name: code for code, name in enumerate(data.brands)}
        parts: dict[str, list[float]] = {name: [] for name in COMPONENTS}
        for coupon in widget.coupons:
            in_category = np.zeros(0, np.int64)
            if coupon.category is not None:
                in_category = self._in_category(coupon.category)
            code = brand_codes.get(coupon.brand) if coupon.brand is not None else None
            parts["scene_match"].append(1.0)
            parts["popularity"].append(0.0)
            parts["discount"].append(min(1.0, coupon.amount / coupon.threshold))
            parts["category_affinity"].append(float(category[in_category].max()) if len(in_category) else 0.0)
            parts["brand_affinity"].append(
                float(brand[np.flatnonzero(data.item_brand == code)].max()) if code is not None else 0.0
            )
            parts["scene_interest"].append(probability)
        arrays = {name: np.array(values, np.float64) for name, values in parts.items()}
        score = page_rules.scores(weights, arrays)
        keys = [f"coupon:{c.id}" for c in widget.coupons]
        chosen = page_rules.ranked(
            keys,
            score,
            arrays["popularity"],
            [c.brand for c in widget.coupons],
            size=widget.size,
            max_per_brand=widget.max_per_brand,
            taken=taken,
        )
        return [
            {
                "rank": rank,
                "coupon_id": widget.coupons[p].id,
                "name_zh": widget.coupons[p].name_zh,
                "name_en": widget.coupons[p].name_en,
                "threshold": widget.coupons[p].threshold,
                "amount": widget.coupons[p].amount,
                "category": widget.coupons[p].category,
                "brand": widget.coupons[p].brand,
                "score": round(float(score[p]), 6),
                "components": {name: round(float(arrays[name][p]), 6) for name in COMPONENTS},
            }
            for rank, p in enumerate(chosen, start=1)
        ]

    def _in_category(self, name: str) -> IntArray:
        """Products with ``name`` at any category level (cached per name)."""
        found = self._category_items.get(name)
        if found is None:
            levels = self.data.item_levels
            found = np.array([i for i, names in enumerate(levels) if name in names], np.int64)
            self._category_items[name] = found
        return found

    def _content(
        self,
        scene: str,
        widget: Widget,
        weights: Weights,
        category: FloatArray,
        brand: FloatArray,
        probability: float,
        taken: set[str],
    ) -> list[dict[str, Any]]:
        content = self.content
        tagged = self.content_tags.get(scene, {})
        rows = [
            row
            for row, key in enumerate(content.ids)
            if key in tagged and tagged[key].strength >= max(widget.min_strength, 1e-12)
        ]
        strength = np.array([tagged[content.ids[r]].strength for r in rows], np.float64)

        def best(values: FloatArray, row: int) -> float:
            linked = content.linked[row]
            return float(values[linked].max()) if len(linked) else 0.0

        arrays = {
            "scene_match": strength,
            "popularity": content.popularity[rows] if rows else np.zeros(0),
            "discount": np.zeros(len(rows)),
            "category_affinity": np.array([best(category, r) for r in rows], np.float64),
            "brand_affinity": np.array([best(brand, r) for r in rows], np.float64),
            "scene_interest": probability * strength,
        }
        score = page_rules.scores(weights, arrays)
        keys = [f"content:{content.ids[r]}" for r in rows]
        chosen = page_rules.ranked(
            keys,
            score,
            arrays["popularity"],
            [None] * len(rows),
            size=widget.size,
            max_per_brand=widget.max_per_brand,
            taken=taken,
        )
        return [
            {
                "rank": rank,
                "content_id": content.ids[rows[p]],
                "title": content.titles[rows[p]],
                "kind": content.kinds[rows[p]],
                "product_ids": [self.data.item_ids[i] for i in content.linked[rows[p]]],
                "score": round(float(score[p]), 6),
                "components": {name: round(float(arrays[name][p]), 6) for name in COMPONENTS},
            }
            for rank, p in enumerate(chosen, start=1)
        ]

    # ------------------------------------------------------------------ audiences

    def audience(self, page: PageDefinition) -> set[str]:
        """The user ids of the page's audience (evaluated once per snapshot)."""
        if page.audience is None:
            return set()
        with self._lock:
            found = self._members.get(page.scene)
            if found is None:
                try:
                    found = self._evaluate(page.audience)
                except HuaxiangError as error:  # an unknown tag or saved audience, a bad expression
                    found = ConfigError(f"the audience of the page of scene '{page.scene}': {error}")
                self._members[page.scene] = found
        if isinstance(found, ConfigError):
            raise found
        return found

    def _evaluate(self, definition: str) -> set[str]:
        if self._audience_members is not None:
            return self._audience_members(definition)
        if self._engine is None:
            from huaxiang.audience import AudienceEngine

            self._engine = AudienceEngine(self.workspace, self.as_of)
        engine = self._engine
        return set(engine.user_ids(engine.members(definition)))

    # ------------------------------------------------------------------ recommendations

    def recommendations(self, user_id: str, k: int = 10) -> dict[str, Any]:
        """The user's top ``k`` products (:mod:`huaxiang.recs.recommend`) as plain data."""
        started = time.perf_counter()
        check_k(k)
        self.require_user(user_id)
        found = self.recommender.recommend(user_id, k)
        history = self.recommender.has_history(user_id)
        return {
            "user_id": user_id,
            "as_of": self.as_of.isoformat(),
            "k": k,
            "strategy": "personal"
            if history
            else ("declared_preferences" if self.data.declared.get(user_id) else "popularity"),
            "items": self.recommender.describe(found),
            "milliseconds": round((time.perf_counter() - started) * 1000, 3),
        }

    def tagging_summary(self) -> dict[str, dict[str, int]]:
        """Products per scene by winning source (own tags, rules, uploaded lists)."""
        return summary(self.product_tags)

    def tagged_products(self, scene: str) -> list[Tagged]:
        return sorted(self.product_tags.get(scene, {}).values(), key=lambda t: (-t.strength, t.key))

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None


def model_for_workspace(workspace: str | Path, as_of: dt.date | None = None) -> SceneModel:
    """A :class:`SceneModel` over a workspace's snapshot (the latest by default); not cached."""
    snapshot = find_snapshot(Path(workspace), as_of)
    return SceneModel(workspace, snapshot)


def check_user_k(k: Any) -> int:
    """``k`` from a request: a whole number 1..200 (400 otherwise)."""
    if isinstance(k, str):
        try:
            k = int(k)
        except ValueError:
            raise RequestError(f"k must be a whole number, got {k!r}.") from None
    return check_k(k)
