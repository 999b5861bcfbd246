"""Scene pages on the sample shop: the outing page per user, the ranking rule, diversity, entries, tagging."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from serve_shop import AS_OF, copy_shop

from huaxiang.errors import ConfigError, NotFoundError
from huaxiang.history import find_snapshot
from huaxiang.scenes import SceneModel, entries, install_standard_pages, load_pages, load_rules, scene_page
from huaxiang.scenes.pages import COMPONENTS, Weights
from huaxiang.scenes.tagging import parse_scene_list, tag_products

PRODUCT_WIDGETS = ("promoted", "hot", "presale", "ordinary", "long_tail")


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_shop(tmp_path_factory, "scenes")


@pytest.fixture(scope="module")
def model(shop: Path) -> SceneModel:
    return SceneModel(shop, find_snapshot(shop, AS_OF))


def outing_scores(shop: Path) -> dict[str, tuple[float, bool]]:
    table = pq.read_table(
        shop / "snapshots" / AS_OF.isoformat() / "tags.parquet",
        columns=["user_id", "scene_outing_score", "scene_outing"],
    ).to_pylist()
    return {row["user_id"]: (row["scene_outing_score"] or 0.0, bool(row["scene_outing"])) for row in table}


def outing_lover(shop: Path) -> str:
    scores = outing_scores(shop)
    return max(scores, key=lambda user: (scores[user][0], user))


def outsider(shop: Path, model: SceneModel) -> str:
    """A user with outing probability 0 who never touched a category or brand of an outing product."""
    outing = np.flatnonzero(model.product_strength["outing"] > 0)
    for user, (probability, _) in sorted(outing_scores(shop).items()):
        category, brand = model.data.affinities(user)
        if probability == 0 and len(model.data.history(user)[0]) and not category[outing].any():
            if not brand[outing].any():
                return user
    raise AssertionError("the sample shop has no user outside the outing scene")


def check_widget_rule(page: dict[str, Any]) -> None:
    """Every widget: score = Σ weight × component, best first, brand cap, each item once a page."""
    seen: set[str] = set()
    for widget in page["widgets"]:
        weights = widget["weights"]
        scores = [item["score"] for item in widget["items"]]
        assert scores == sorted(scores, reverse=True), widget["id"]
        for item in widget["items"]:
            expected = sum(weights[name] * item["components"][name] for name in COMPONENTS)
            assert item["score"] == pytest.approx(expected, abs=1e-5)
            key = item.get("product_id") or item.get("coupon_id") or item.get("content_id")
            assert key not in seen
            seen.add(key)
        if widget["kind"] in PRODUCT_WIDGETS:
            assert max(Counter(i["brand"] for i in widget["items"]).values(), default=0) <= 2


def test_the_outing_page_of_an_outing_lover_differs_as_the_ranking_rule_says(
    shop: Path, model: SceneModel
) -> None:
    lover, other = outing_lover(shop), outsider(shop, model)
    scores = outing_scores(shop)
    assert scores[lover][0] > 0.9 and scores[lover][1] is True
    loved, plain = scene_page(model, "outing", lover), scene_page(model, "outing", other)
    assert loved["scene_probability"] == pytest.approx(scores[lover][0], abs=1e-6)
    assert plain["scene_probability"] == 0 and plain["holds_scene_tag"] is False
    check_widget_rule(loved)
    check_widget_rule(plain)
    # The outsider's page is the page for nobody: only scene match, popularity and discount count.
    for widget in plain["widgets"]:
        if widget["kind"] in PRODUCT_WIDGETS:
            for item in widget["items"]:
                parts = item["components"]
                assert parts["category_affinity"] == parts["brand_affinity"] == parts["scene_interest"] == 0
    # The lover's: scene interest is p × S for every product, and the order changes.
    by_widget = {w["id"]: w for w in loved["widgets"]}
    ordinary = by_widget["ordinary"]["items"]
    assert all(
        i["components"]["scene_interest"]
        == pytest.approx(loved["scene_probability"] * i["components"]["scene_match"], abs=1e-5)
        for i in ordinary
    )
    plain_ordinary = next(w for w in plain["widgets"] if w["id"] == "ordinary")["items"]
    assert [i["product_id"] for i in ordinary] != [i["product_id"] for i in plain_ordinary]
    # ... towards what the lover likes: the lover's affinity to the lover's page beats that to the plain page.
    category, brand = model.data.affinities(lover)
    rows = model.data.item_rows

    def liking(items: list[dict[str, Any]]) -> float:
        return float(np.mean([category[rows[i["product_id"]]] + brand[rows[i["product_id"]]] for i in items]))

    assert liking(ordinary) > liking(plain_ordinary)
    assert loved["widgets"][0]["items"] != plain["widgets"][0]["items"]


def test_weights_from_the_page_file_decide_the_order_and_brands_are_capped(
    tmp_path: Path, shop: Path
) -> None:
    root = tmp_path / "shop"
    shutil.copytree(shop, root, symlinks=True)
    (root / "scenes").mkdir(exist_ok=True)  # init installed the standard page there
    (root / "scenes" / "outing.yaml").write_text(
        """scene: outing
name_zh: 只看人气
name_en: Popularity only
weights:
  {scene_match: 0, popularity: 1, discount: 0, category_affinity: 0, brand_affinity: 0, scene_interest: 0}
widgets:
  - {id: all, kind: ordinary, title_zh: 全部, size: 20, max_per_brand: 1, min_strength: 0.5}
  - {id: discounts, kind: ordinary, title_zh: 折扣, size: 5, weights: {popularity: 0, discount: 1}}
""",
        encoding="utf-8",
    )
    custom = SceneModel(root, find_snapshot(root, AS_OF))
    page = custom.page("outing", outing_lover(shop))
    check_widget_rule(page)
    everything, discounts = page["widgets"]
    data = custom.data
    strength = custom.product_strength["outing"]
    candidates = [int(i) for i in np.flatnonzero(strength >= 0.5)]
    # By popularity alone, one product per brand: the most popular product of each brand, in order.
    best_of_brand: dict[str, tuple[float, str]] = {}
    for i in candidates:
        key = (-float(data.popularity[i]), data.item_ids[i])
        brand = data.brands[int(data.item_brand[i])]
        best_of_brand[brand] = min(best_of_brand.get(brand, key), key)
    expected = [item for _, item in sorted(best_of_brand.values())][:20]
    assert [i["product_id"] for i in everything["items"]] == expected
    assert len({i["brand"] for i in everything["items"]}) == len(everything["items"])
    # The second widget overrides the page's weights: discount only, products of the first excluded.
    assert discounts["weights"] == {
        **Weights().model_dump(),
        **page["weights"],
        "popularity": 0,
        "discount": 1,
    }
    depths = [i["components"]["discount"] for i in discounts["items"]]
    assert depths == sorted(depths, reverse=True) and depths[0] > 0
    assert not {i["product_id"] for i in discounts["items"]} & set(expected)


def test_broken_page_files_are_named_with_file_line_and_field(tmp_path: Path) -> None:
    (tmp_path / "scenes").mkdir()
    (tmp_path / "scenes" / "picnic.yaml").write_text(
        "scene: picnic\nname_zh: 野餐\nwieghts: {}\nwidgets:\n  - {id: a, kind: hot, title_zh: 热}\n",
        encoding="utf-8",
    )
    (tmp_path / "scenes" / "rain.yaml").write_text(
        "scene: rain\nname_zh: 雨天\nwidgets:\n  - {id: a, kind: presale, title_zh: 预售}\n", encoding="utf-8"
    )
    (tmp_path / "scenes" / "snow.yaml").write_text(
        "scene: snow\nname_zh: 雪\nwidgets:\n  - {id: a, kind: hotest, title_zh: 热}\n", encoding="utf-8"
    )
    pages = load_pages(tmp_path)
    assert "outing" in pages and not isinstance(pages["outing"], ConfigError)  # the standard page
    assert str(pages["picnic"]) == (
        "picnic.yaml:3: wieghts: unknown field 'wieghts'. Allowed: scene, name_zh, name_en, enabled, "
        "audience, weights, widgets. Did you mean 'weights'?"
    )
    assert "rain.yaml:4: widgets[0]: a presale widget needs the products on presale" in str(pages["rain"])
    assert "snow.yaml:4: widgets[0].kind: got 'hotest'" in str(pages["snow"])


def test_entries_follow_the_scene_tag_the_audience_and_the_probability(shop: Path, model: SceneModel) -> None:
    scores = outing_scores(shop)
    lover = outing_lover(shop)
    found = entries(model, lover)["entries"]
    assert [e["scene"] for e in found] == ["outing"] and found[0]["holds_scene_tag"] is True
    assert entries(model, outsider(shop, model))["entries"] == []
    # The standard page's audience is scene_outing_score >= 0.3: some users see it without the tag.
    between = [u for u, (p, holds) in scores.items() if 0.3 <= p < 0.5 and not holds]
    assert between
    entry = entries(model, between[0])["entries"][0]
    assert entry["in_audience"] is True and entry["holds_scene_tag"] is False
    shown = {u for u in scores if entries(model, u)["entries"]}
    assert shown == {u for u, (p, holds) in scores.items() if holds or p >= 0.3}
    with pytest.raises(NotFoundError, match="no user 'nobody'"):
        entries(model, "nobody")


def test_entries_are_ordered_by_scene_probability(tmp_path: Path, shop: Path) -> None:
    root = tmp_path / "shop"
    shutil.copytree(shop, root, symlinks=True)
    (root / "scenes").mkdir(exist_ok=True)  # init installed the standard page there
    for scene in ("new_mother", "home_cooking", "digital_geek"):
        (root / "scenes" / f"{scene}.yaml").write_text(
            f"scene: {scene}\nname_zh: {scene}\naudience: 'scene_{scene}_score >= 0.01'\n"
            "widgets:\n  - {id: hot, kind: hot, title_zh: 热}\n",
            encoding="utf-8",
        )
    (root / "scenes" / "rainy.yaml").write_text(
        "scene: rainy\nname_zh: 雨天\naudience: 'scene_rainy_scor >= 0.3'\n"
        "widgets:\n  - {id: hot, kind: hot, title_zh: 热}\n",
        encoding="utf-8",
    )
    custom = SceneModel(root, find_snapshot(root, AS_OF))
    skipped = entries(custom, outing_lover(shop))["skipped"]
    assert [s["scene"] for s in skipped] == ["rainy"]
    assert skipped[0]["error"].startswith("the audience of the page of scene 'rainy': ")
    assert "scene_rainy_scor" in skipped[0]["error"]
    many = 0
    for user in list(custom.user_index)[:300]:
        found = entries(custom, user)["entries"]
        probabilities = [e["scene_probability"] for e in found]
        assert probabilities == sorted(probabilities, reverse=True)
        many += len(found) >= 2
    assert many > 0


def test_scene_tagging_sources_and_uploaded_lists(tmp_path: Path, shop: Path, model: SceneModel) -> None:
    tagged = model.product_tags["outing"]
    products = pq.read_table(shop / "data" / "products.parquet").to_pylist()
    own = {p["product_id"] for p in products if "outing" in (p["scene_tags"] or [])}
    assert {key for key, t in tagged.items() if t.source == "own"} == own
    assert all(tagged[key].strength == 1.0 for key in own)
    sunscreen = [
        p["product_id"] for p in products if p["category_l3"] == "防晒霜" and p["product_id"] not in own
    ]
    assert sunscreen and all((tagged[p].strength, tagged[p].source) == (0.4, "rule") for p in sunscreen)
    assert model.tagging_summary()["outing"]["rule"] == len(
        [t for t in tagged.values() if t.source == "rule"]
    )
    assert tag_products(shop) == model.product_tags  # the CLI's call, without a snapshot
    # An uploaded list: every bad row is reported with its line.
    text = (
        "product_id,scene,strength\nP000001,outing,0.8\nNOPE,outing,1\nP000002,Outing,1\nP000003,outing,2\n"
    )
    with pytest.raises(ConfigError) as caught:
        parse_scene_list(text, "list.csv", [p["product_id"] for p in products])
    assert str(caught.value) == (
        "list.csv: 3 bad row(s):\n"
        "line 3: product_id 'NOPE' is not in the products table.\n"
        "line 4: scene 'Outing' is not a slug (lower-case letters, digits and _, e.g. outing).\n"
        "line 5: strength 2 is outside (0, 1]."
    )
    with pytest.raises(ConfigError, match="line 1 must be the header 'product_id,scene'"):
        parse_scene_list("id,scene\n", "list.csv")
    root = tmp_path / "shop"
    shutil.copytree(shop, root, symlinks=True)
    (root / "scenes" / "lists").mkdir(parents=True)
    soap = next(p["product_id"] for p in products if p["category_l3"] == "洗衣液")
    (root / "scenes" / "lists" / "extra.csv").write_text(
        f"product_id,scene\n{soap},outing\n", encoding="utf-8"
    )
    listed = SceneModel(root, find_snapshot(root, AS_OF)).product_tags["outing"][soap]
    assert (listed.strength, listed.source) == (1.0, "list")


def test_unknown_scene_and_user_are_named(model: SceneModel, shop: Path) -> None:
    with pytest.raises(NotFoundError, match="no page is defined for scene 'outng'. Did you mean 'outing'?"):
        model.page("outng", outing_lover(shop))
    with pytest.raises(NotFoundError, match="no user 'U-none' in the snapshot of 2026-10-31"):
        model.page("outing", "U-none")


def test_the_standard_pages_install_into_a_workspace_and_read_the_same(tmp_path: Path) -> None:
    standard = load_pages(tmp_path)["outing"]
    assert not isinstance(standard, ConfigError) and standard.standard
    written = install_standard_pages(tmp_path)
    assert sorted(p.name for p in written) == ["outing.yaml", "rules.yaml"]
    installed = load_pages(tmp_path)["outing"]
    assert not isinstance(installed, ConfigError) and not installed.standard
    assert installed.page == standard.page
    assert load_rules(tmp_path) == load_rules(tmp_path / "elsewhere")
    (tmp_path / "scenes" / "outing.yaml").write_text("kept", encoding="utf-8")
    assert install_standard_pages(tmp_path) == []
    assert (tmp_path / "scenes" / "outing.yaml").read_text(encoding="utf-8") == "kept"


def test_real_time_increments_follow_the_scene_curve(shop: Path, model: SceneModel) -> None:
    assert (model.half_score, model.threshold) == (8.0, 0.5)  # the standard catalog's scene tag
    scores = outing_scores(shop)
    user = next(u for u, (p, _) in sorted(scores.items()) if 0.2 < p < 0.4)
    p = scores[user][0]
    score = -8 * np.log2(1 - p)
    assert model.probability(user, "outing", 4.0) == pytest.approx(1 - 0.5 ** ((score + 4) / 8))
    assert model.holds(user, "outing") is False and model.holds(user, "outing", 8.0) is True
    assert entries(model, user, {"outing": 8.0})["entries"][0]["holds_scene_tag"] is True
    # A user known only from real-time events may ask; one without any gets a 404.
    assert entries(model, "NEW-USER", {"outing": 8.0})["entries"][0]["scene_probability"] == 0.5
    with pytest.raises(NotFoundError, match="no real-time events"):
        entries(model, "NEW-USER", {"outing": 0.0})
