"""The sample shop's catalogue: products, content, search keywords and samplers over them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from huaxiang.datasets.sample.arrow import list_array, money_array, pad_ids, table_from_columns
from huaxiang.datasets.sample.reference import (
    LEAVES,
    SCENE_KEYWORDS,
    SCENES,
    TOP_CATEGORIES,
    VARIANTS,
)
from huaxiang.datasets.sample.sampling import GroupSampler

SCENE_SLUGS: tuple[str, ...] = tuple(SCENES)
N_TOP = len(TOP_CATEGORIES)
#: Brands whose products are made a little more popular so the seed examples
#: ("favorited 蓝月亮 detergent", "viewed Dyson hair dryers") have many users.
FEATURED_BRANDS: dict[str, float] = {"蓝月亮": 3.0, "戴森": 2.5}
CONTENT_KINDS: tuple[str, ...] = ("article", "video", "live", "image")
CONTENT_KIND_WEIGHTS = np.array([0.45, 0.35, 0.15, 0.05])
CONTENT_PER_SCENE: dict[str, int] = {
    "outing": 30, "new_mother": 15, "digital_geek": 15, "home_cooking": 15,
}


@dataclass(frozen=True)
class Catalog:
    """Products and content as numpy arrays (for drawing) and Arrow tables (for writing)."""

    products: pa.Table
    content: pa.Table
    product_ids: pa.Array
    content_ids: pa.Array
    keywords: pa.Array
    product_top: np.ndarray
    product_price_cents: np.ndarray
    product_extra_units: np.ndarray
    product_scenes: np.ndarray  # bool, products x scenes
    product_keyword_leaf: np.ndarray
    product_keyword_brand: np.ndarray
    scene_keyword_start: np.ndarray
    scene_keyword_count: np.ndarray
    #: Groups 0..N_TOP-1 are top categories, N_TOP + s is scene ``s``.
    popular_products: GroupSampler
    premium_products: GroupSampler
    content_by_group: GroupSampler

    @property
    def outing_group(self) -> int:
        """Sampler group of the outing scene."""
        return N_TOP + SCENE_SLUGS.index("outing")


def _round_price(raw: np.ndarray) -> np.ndarray:
    """Shop-like prices in cents: 2999.00 above 100 yuan, 88.90 below."""
    high = np.round(raw / 10.0) * 1000 - 100
    low = np.maximum(np.round(raw) * 100 - 10, 90)
    return np.where(raw >= 100, high, low).astype(np.int64)


def build_catalog(rng: np.random.Generator) -> Catalog:
    """Draw the catalogue (about 1,000 products and 250 content items) from the reference data."""
    top_index = {top.name: i for i, top in enumerate(TOP_CATEGORIES)}
    rows: dict[str, list] = {k: [] for k in (
        "name", "l1", "l2", "l3", "brand", "shop", "top", "leaf", "price", "scenes", "popularity",
        "brand_rank",
    )}
    for leaf_number, leaf in enumerate(LEAVES):
        n_brands = len(leaf.brands)
        for brand_rank, brand in enumerate(leaf.brands):
            n_variants = int(rng.integers(2, 6))
            fractions = np.sort((brand_rank + rng.random(n_variants)) / n_brands)
            prices = _round_price(leaf.price_low * (leaf.price_high / leaf.price_low) ** fractions)
            variant_names = [VARIANTS[int(f * (len(VARIANTS) - 0.01))] for f in fractions]
            for variant_number, (price, variant) in enumerate(zip(prices, variant_names,
                                                                  strict=True)):
                shop_draw = rng.random()
                if shop_draw < 0.6:
                    shop = f"{brand}官方旗舰店"
                elif shop_draw < 0.85:
                    shop = "平台自营"
                else:
                    shop = f"{leaf.l1}优选专营店"
                has_scene = bool(leaf.scenes) and rng.random() < leaf.scene_share
                rows["name"].append(f"{brand} {leaf.l3} {variant} {variant_number + 1}号")
                rows["l1"].append(leaf.l1)
                rows["l2"].append(leaf.l2)
                rows["l3"].append(leaf.l3)
                rows["brand"].append(brand)
                rows["shop"].append(shop)
                rows["top"].append(top_index[leaf.l1])
                rows["leaf"].append(leaf_number)
                rows["price"].append(int(price))
                rows["scenes"].append(list(leaf.scenes) if has_scene else [])
                rows["popularity"].append(
                    float(rng.lognormal(0.0, 0.8)) * FEATURED_BRANDS.get(brand, 1.0)
                )
                rows["brand_rank"].append(brand_rank)
    n_products = len(rows["name"])
    product_ids = pad_ids("P", np.arange(1, n_products + 1), 6)
    price_cents = np.array(rows["price"], dtype=np.int64)
    product_top = np.array(rows["top"], dtype=np.int16)
    scenes = np.array([[s in tags for s in SCENE_SLUGS] for tags in rows["scenes"]], dtype=bool)
    popularity = np.array(rows["popularity"])
    products = table_from_columns("products", {
        "product_id": product_ids,
        "name": pa.array(rows["name"], pa.string()),
        "category_l1": pa.array(rows["l1"], pa.string()),
        "category_l2": pa.array(rows["l2"], pa.string()),
        "category_l3": pa.array(rows["l3"], pa.string()),
        "brand": pa.array(rows["brand"], pa.string()),
        "shop": pa.array(rows["shop"], pa.string()),
        "price": money_array(price_cents),
        "scene_tags": pa.array(rows["scenes"], pa.list_(pa.string())),
    })

    # Search keywords: the leaf name, brand + leaf, and scene words.
    vocabulary: dict[str, int] = {}

    def keyword_id(word: str) -> int:
        return vocabulary.setdefault(word, len(vocabulary))

    keyword_leaf = np.array([keyword_id(l3) for l3 in rows["l3"]], dtype=np.int32)
    keyword_brand = np.array(
        [keyword_id(f"{b}{l3}") for b, l3 in zip(rows["brand"], rows["l3"], strict=True)],
        dtype=np.int32,
    )
    scene_start, scene_count = [], []
    for slug in SCENE_SLUGS:
        ids = [keyword_id(w) for w in SCENE_KEYWORDS[slug]]
        scene_start.append(ids[0])
        scene_count.append(len(ids))

    groups = _product_groups(product_top, scenes)
    mass_weight = popularity * (price_cents / 100.0) ** -0.3
    premium_weight = popularity * (price_cents / 100.0) ** 0.8
    content, content_groups = _build_content(rng, rows, product_ids, product_top, scenes, groups)
    return Catalog(
        products=products,
        content=content,
        product_ids=product_ids,
        content_ids=content.column("content_id").combine_chunks(),
        keywords=pa.array(list(vocabulary), pa.string()),
        product_top=product_top,
        product_price_cents=price_cents,
        product_extra_units=np.array(
            [TOP_CATEGORIES[t].extra_units for t in product_top], dtype=np.float64
        ),
        product_scenes=scenes,
        product_keyword_leaf=keyword_leaf,
        product_keyword_brand=keyword_brand,
        scene_keyword_start=np.array(scene_start, dtype=np.int32),
        scene_keyword_count=np.array(scene_count, dtype=np.int32),
        popular_products=GroupSampler(groups, [mass_weight[g] for g in groups]),
        premium_products=GroupSampler(groups, [premium_weight[g] for g in groups]),
        content_by_group=content_groups,
    )


def _product_groups(product_top: np.ndarray, scenes: np.ndarray) -> list[np.ndarray]:
    """Member products of each sampler group: top categories, then scenes."""
    by_top = [np.flatnonzero(product_top == t) for t in range(N_TOP)]
    by_scene = [np.flatnonzero(scenes[:, s]) for s in range(len(SCENE_SLUGS))]
    return by_top + by_scene


def _build_content(
    rng: np.random.Generator,
    rows: dict[str, list],
    product_ids: pa.Array,
    product_top: np.ndarray,
    scenes: np.ndarray,
    groups: list[np.ndarray],
) -> tuple[pa.Table, GroupSampler]:
    """Two pieces of content per leaf category plus scene guides, each linking products."""
    titles: list[str] = []
    kinds: list[str] = []
    linked: list[np.ndarray] = []
    leaf_of_product = np.array(rows["leaf"])
    for leaf_number, leaf in enumerate(LEAVES):
        members = np.flatnonzero(leaf_of_product == leaf_number)
        for _ in range(2):
            kind = CONTENT_KINDS[int(rng.choice(len(CONTENT_KINDS), p=CONTENT_KIND_WEIGHTS))]
            chosen = np.sort(rng.choice(members, size=min(len(members), int(rng.integers(2, 5))),
                                        replace=False))
            brand = rows["brand"][int(chosen[0])]
            titles.append({
                "article": f"{leaf.l3}怎么选？一篇讲清楚",
                "video": f"{brand}{leaf.l3}开箱测评",
                "live": f"{brand}官方直播间：{leaf.l3}专场",
                "image": f"{leaf.l3}种草图集",
            }[kind])
            kinds.append(kind)
            linked.append(chosen)
    for scene_number, slug in enumerate(SCENE_SLUGS):
        members = groups[N_TOP + scene_number]
        for number in range(CONTENT_PER_SCENE[slug]):
            kind = CONTENT_KINDS[int(rng.choice(len(CONTENT_KINDS), p=CONTENT_KIND_WEIGHTS))]
            chosen = np.sort(rng.choice(members, size=int(rng.integers(3, 6)), replace=False))
            leaves = "、".join(dict.fromkeys(rows["l3"][int(p)] for p in chosen))
            titles.append(f"{SCENES[slug]}必备清单 第{number + 1}期：{leaves}")
            kinds.append(kind)
            linked.append(chosen)
    content_scenes = np.array([scenes[chosen].any(axis=0) for chosen in linked])
    n_content = len(titles)
    content_ids = pad_ids("C", np.arange(1, n_content + 1), 5)
    scene_lists = [[SCENE_SLUGS[s] for s in np.flatnonzero(row)] for row in content_scenes]
    product_counts = np.array([len(chosen) for chosen in linked])
    flat_products = np.concatenate(linked)
    content = table_from_columns("content", {
        "content_id": content_ids,
        "kind": pa.array(kinds, pa.string()),
        "title": pa.array(titles, pa.string()),
        "scene_tags": pa.array(scene_lists, pa.list_(pa.string())),
        "product_ids": list_array(product_counts, product_ids.take(pa.array(flat_products))),
    })
    # Content is shown next to its first product's top category and to its scenes.
    content_top = np.array([product_top[chosen[0]] for chosen in linked])
    shown_with = [np.flatnonzero(content_top == t) for t in range(N_TOP)]
    shown_with += [np.flatnonzero(content_scenes[:, s]) for s in range(len(SCENE_SLUGS))]
    return content, GroupSampler(shown_with, [np.ones(len(m)) for m in shown_with])
