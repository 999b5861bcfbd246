"""Scene strength (场景强度): exact decayed scores, the probability, templates, errors, the sample shop."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from importlib import resources
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from huaxiang.catalog import load_catalog
from huaxiang.engine import build
from huaxiang.engine.compile import compile_catalog
from huaxiang.errors import CatalogError, ConfigError
from huaxiang.segment.scene import scene_probability, scene_strength, scene_words
from huaxiang.workspace import Workspace, install_standard_catalog

AS_OF = dt.date(2026, 7, 1)
TS = pa.timestamp("us")
WEIGHTS = {"search": 1.0, "view": 1.0, "favorite": 2.0, "cart": 4.0}


def ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def decay(age_days: float, half_life: float = 7.0) -> float:
    return float(0.5 ** (age_days / half_life))


def probability(score: float, half_score: float) -> float:
    return 1 - 2 ** (-score / half_score)


PRODUCTS = pa.table(
    {
        "product_id": ["p_tent", "p_mat", "p_beer1", "p_beer2", "p_milk", "p_pen"],
        "name": ["帐篷", "野餐垫", "啤酒", "啤酒", "奶粉", "笔"],
        "category_l1": ["户外", "户外", "酒水", "酒水", "母婴", "文具"],
        "category_l3": ["帐篷", "野餐垫", "啤酒", "啤酒", "婴幼儿奶粉", "笔"],
        "scene_tags": [["outing"], ["outing", "new-mother"], ["outing"], [], ["new-mother"], None],
    },
    schema=pa.schema([
        ("product_id", pa.string()), ("name", pa.string()), ("category_l1", pa.string()),
        ("category_l3", pa.string()), ("scene_tags", pa.list_(pa.string())),
    ]),
)
CONTENT = pa.table(
    {"content_id": ["c_trip", "c_news"], "scene_tags": [["outing"], []]},
    schema=pa.schema([("content_id", pa.string()), ("scene_tags", pa.list_(pa.string()))]),
)
# (user, time, type, product, keyword, content)
EVENT_ROWS: list[tuple[str, str, str, str | None, str | None, str | None]] = [
    # a: three outing events at ages 7, 1 and 14 days; the mat is new-mother too.
    ("a", "2026-06-24 00:00", "view", "p_tent", None, None),
    ("a", "2026-06-30 00:00", "favorite", "p_tent", None, None),
    ("a", "2026-06-17 00:00", "cart", "p_mat", None, None),
    # b: nothing that counts: a product without scenes, an unweighted type, outside the
    # 90-day window, on the as-of date itself, a product with an empty scene list.
    ("b", "2026-06-30 12:00", "view", "p_pen", None, None),
    ("b", "2026-06-30 12:00", "click", "p_tent", None, None),
    ("b", "2026-03-01 12:00", "cart", "p_tent", None, None),
    ("b", "2026-07-01 00:00", "cart", "p_tent", None, None),
    ("b", "2026-06-30 12:00", "view", "p_beer2", None, None),
    # c: exactly at the threshold: two favorites at age 7 -> 1 + 1 = 2 = half_score, p = 0.5.
    ("c", "2026-06-24 00:00", "favorite", "p_tent", None, None),
    ("c", "2026-06-24 00:00", "favorite", "p_mat", None, None),
    # d: just below: a favorite and a view at age 7 -> 1.5.
    ("d", "2026-06-24 00:00", "favorite", "p_tent", None, None),
    ("d", "2026-06-24 00:00", "view", "p_tent", None, None),
    # e: searches at age 3.5: brand + leaf (contains 帐篷, a leaf all outing), a scene word,
    # both words at once (counts once), and 啤酒 (a leaf only partly outing: no).
    ("e", "2026-06-27 12:00", "search", None, "北山狼帐篷", None),
    ("e", "2026-06-27 12:00", "search", None, "露营装备清单", None),
    ("e", "2026-06-27 13:00", "search", None, "露营帐篷", None),
    ("e", "2026-06-27 12:00", "search", None, "啤酒", None),
    # f: a content view at age 0.5 days.
    ("f", "2026-06-30 12:00", "view", None, None, "c_trip"),
    ("f", "2026-06-30 12:00", "view", None, None, "c_news"),
    # h (not in users): a view of the tent inside the trip article counts once, through the
    # product; a search that names a product counts through it, not through its keyword.
    ("h", "2026-06-24 00:00", "view", "p_tent", None, "c_trip"),
    ("h", "2026-06-24 00:00", "search", "p_pen", "露营", None),
]
EVENTS = pa.table(
    {
        "user_id": [r[0] for r in EVENT_ROWS],
        "event_time": [ts(r[1]) for r in EVENT_ROWS],
        "event_type": [r[2] for r in EVENT_ROWS],
        "product_id": [r[3] for r in EVENT_ROWS],
        "keyword": [r[4] for r in EVENT_ROWS],
        "content_id": [r[5] for r in EVENT_ROWS],
    },
    schema=pa.schema([
        ("user_id", pa.string()), ("event_time", TS), ("event_type", pa.string()),
        ("product_id", pa.string()), ("keyword", pa.string()), ("content_id", pa.string()),
    ]),
)
USERS = pa.table({"user_id": ["a", "b", "c", "d", "e", "f", "g"]})

EXPECTED_OUTING = {
    "a": 1 * decay(7) + 2 * decay(1) + 4 * decay(14),
    "c": 2.0,
    "d": 1.5,
    "e": 2 * decay(3.5) + decay(3.5 - 1 / 24),  # two searches at 12:00, one at 13:00
    "f": decay(0.5),
    "h": 0.5,
}


#: Scores are summed in whole billionths (exact on every engine): each contribution is within
#: half a billionth of its exact value, so a few events' score is within 1e-8 of the exact sum.
SUMMED_IN_UNITS = 1e-8


def strengths(**options: Any) -> dict[tuple[str, str], dict[str, Any]]:
    options.setdefault("weights", WEIGHTS)
    options.setdefault("half_score", 2.0)
    options.setdefault("content", ibis.memtable(CONTENT))
    options.setdefault("keywords", {"outing": ["露营"]})
    table = scene_strength(ibis.memtable(EVENTS), ibis.memtable(PRODUCTS), AS_OF, **options)
    return {(row["user_id"], row["scene"]): row for row in table.to_pyarrow().to_pylist()}


# ---------------------------------------------------------------------------- the computation


def test_decayed_scores_are_exact_per_user_and_scene() -> None:
    rows = strengths()
    outing = {user: row["score"] for (user, scene), row in rows.items() if scene == "outing"}
    assert outing.keys() == EXPECTED_OUTING.keys()  # b and g have nothing that counts
    for user, score in EXPECTED_OUTING.items():
        assert outing[user] == pytest.approx(score, abs=SUMMED_IN_UNITS), user
    assert rows[("e", "outing")]["scene_events"] == 3
    # The mat carries new-mother too: a's cart at age 14 and c's favorite at age 7.
    mother = {user: row["score"] for (user, scene), row in rows.items() if scene == "new-mother"}
    assert mother == {"a": pytest.approx(4 * decay(14)), "c": pytest.approx(1.0)}


def test_probability_is_half_at_half_score_and_exact_at_the_threshold() -> None:
    rows = strengths()
    assert rows[("c", "outing")]["probability"] == 0.5
    assert rows[("d", "outing")]["probability"] == pytest.approx(probability(1.5, 2.0))
    assert rows[("a", "outing")]["probability"] == pytest.approx(probability(EXPECTED_OUTING["a"], 2.0))
    values = ibis.memtable({"score": [0.0, 2.0, 4.0, 6.0]})
    got = values.select(p=scene_probability(values.score, 2.0)).to_pyarrow().column("p").to_pylist()
    assert got == [0.0, 0.5, 0.75, 0.875]


def test_window_half_life_and_restriction_to_scenes() -> None:
    # A 7-day window drops a's cart (age 14); a 14-day half-life halves slower.
    rows = strengths(window_days=7, half_life_days=14.0, scenes=["outing"])
    assert {scene for _, scene in rows} == {"outing"}
    expected = 1 * decay(7, 14) + 2 * decay(1, 14)
    assert rows[("a", "outing")]["score"] == pytest.approx(expected, abs=SUMMED_IN_UNITS)
    # All history: b's March cart (age 121.5 days) counts.
    everything = strengths(window_days=None)
    assert everything[("b", "outing")]["score"] == pytest.approx(4 * decay(121.5), abs=SUMMED_IN_UNITS)


def test_searches_count_by_keyword_and_leaf_categories() -> None:
    words = scene_words(ibis.memtable(PRODUCTS), {"outing": ["露营"]})
    assert words is not None
    pairs = sorted((row["scene"], row["word"]) for row in words.to_pyarrow().to_pylist())
    # 啤酒 is not a word: one of its products carries no scene.
    assert pairs == [
        ("new-mother", "婴幼儿奶粉"), ("new-mother", "野餐垫"),
        ("outing", "帐篷"), ("outing", "野餐垫"), ("outing", "露营"),
    ]
    assert ("e", "outing") not in strengths(keywords=None, search_categories=False)
    only_leaves = strengths(keywords=None)
    assert only_leaves[("e", "outing")]["scene_events"] == 2  # 北山狼帐篷, 露营帐篷
    assert scene_words(ibis.memtable(PRODUCTS), None, search_categories=False) is None


def test_without_content_table_content_views_do_not_count() -> None:
    assert ("f", "outing") not in strengths(content=None)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"weights": {}}, "needs a weight for at least one event type"),
        ({"weights": {"view": 0.0}}, "weight of 'view' must be positive, got 0.0"),
        ({"half_life_days": 0.0}, "half_life_days must be positive, got 0.0"),
        ({"half_score": -1.0}, "half_score must be positive, got -1.0"),
        ({"window_days": 0}, "window_days must be at least 1, got 0"),
    ],
)
def test_bad_parameters_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        strengths(**options)


# ---------------------------------------------------------------------------- the catalog and the build

TEMPLATE = """
- id: scene_strength
  name_zh: 场景强度
  name_en: Scene strength
  category: category_scene
  type: boolean
  scene:
    name: "*"
    weights: {search: 1, view: 1, favorite: 2, cart: 4}
    window: 90d
    half_score: 2
    threshold: 0.5
    keywords: {outing: [露营]}
    labels:
      outing: 郊游
      郊游: {id: outing_zh, name_en: Outing (Chinese slug)}
"""
EXPLICIT = """
- id: scene_outing
  name_zh: 郊游
  name_en: Outing
  category: category_scene
  type: boolean
  scene: {name: outing, weights: {search: 1, view: 1, favorite: 2, cart: 4}, half_score: 2, threshold: 0.6,
          keywords: [露营]}
- id: outing_fan
  name_zh: 郊游爱好者
  name_en: Outing fan
  category: custom
  type: boolean
  rule: "scene_outing AND scene_outing_prob > 0.65"
- id: scene_outing_prob
  name_zh: 郊游概率
  name_en: Outing probability
  category: category_scene
  type: probability
  scene: {name: outing, weights: {search: 1, view: 1, favorite: 2, cart: 4}, half_score: 2, keywords: [露营]}
"""


def workspace(root: Path, catalog: str, products: pa.Table = PRODUCTS) -> Path:
    (root / "data").mkdir(parents=True)
    (root / "tags").mkdir()
    tables = {"users": USERS, "events": EVENTS, "products": products, "content": CONTENT}
    for name, table in tables.items():
        pq.write_table(table, root / "data" / f"{name}.parquet")
    (root / "tags" / "scenes.yaml").write_text(catalog, encoding="utf-8")
    return root


def snapshot_rows(path: Path) -> dict[str, dict[str, Any]]:
    return {row["user_id"]: row for row in pq.read_table(path / "tags.parquet").to_pylist()}


def test_template_makes_a_pair_of_tags_per_scene_in_the_data(tmp_path: Path) -> None:
    products = PRODUCTS.set_column(
        4, "scene_tags",
        pa.array([["outing", "郊游"], ["outing", "new-mother"], ["outing"], [], ["new-mother"], None],
                 pa.list_(pa.string())),
    )
    root = workspace(tmp_path, TEMPLATE, products)
    result = build(root, AS_OF)

    scene_tags = ["scene_new_mother_score", "scene_new_mother", "scene_outing_score", "scene_outing",
                  "scene_outing_zh_score", "scene_outing_zh"]
    assert result.built == scene_tags
    assert result.skipped == {}
    rows = snapshot_rows(result.path)
    users = ["a", "b", "c", "d", "e", "f", "g"]
    expected = [probability(EXPECTED_OUTING.get(user, 0.0), 2.0) for user in users]
    assert [rows[u]["scene_outing_score"] for u in users] == pytest.approx(expected, abs=SUMMED_IN_UNITS)
    assert [rows[u]["scene_outing"] for u in users] == [True, False, True, False, True, False, False]
    assert rows["c"]["scene_new_mother_score"] == pytest.approx(probability(1.0, 2.0))
    assert rows["b"]["scene_new_mother_score"] == 0.0  # no events: 0, never NULL
    # 郊游 (only on the tent) gets its id from the labels.
    assert rows["c"]["scene_outing_zh_score"] == pytest.approx(probability(1.0, 2.0))

    again = build(root, AS_OF)  # the same data and catalog give the same file
    assert (again.path / "tags.parquet").read_bytes() == (result.path / "tags.parquet").read_bytes()
    manifest = result.manifest
    top = manifest["tags"]["scene_outing"]["top"]
    assert top == [{"value": False, "count": 4}, {"value": True, "count": 3}]
    assert manifest["tags"]["scene_outing_score"]["coverage"] == 1.0
    plan = manifest["models"]["scene.scene_strength"]
    assert [(p["scene"], p["name_zh"], p["name_en"], p["score_tag"], p["flag_tag"]) for p in plan] == [
        ("new-mother", "new-mother", "New mother", "scene_new_mother_score", "scene_new_mother"),
        ("outing", "郊游", "Outing", "scene_outing_score", "scene_outing"),
        ("郊游", "郊游", "Outing (Chinese slug)", "scene_outing_zh_score", "scene_outing_zh"),
    ]


def test_compiled_template_describes_the_tags_it_made(tmp_path: Path) -> None:
    catalog = load_catalog(write_tags(tmp_path, TEMPLATE))
    tables = {"users": ibis.memtable(USERS), "events": ibis.memtable(EVENTS),
              "products": ibis.memtable(PRODUCTS), "content": ibis.memtable(CONTENT)}
    compiled = compile_catalog(catalog, tables, AS_OF)
    assert compiled.built == [
        "scene_new_mother_score", "scene_new_mother", "scene_outing_score", "scene_outing"
    ]
    assert compiled.generated["scene_outing_score"] == {
        "template": "scene_strength",
        "scene": "outing",
        "hash": catalog["scene_strength"].definition_hash,
        "type": "probability",
        "category": "category_scene",
        "name_zh": "郊游场景概率",
        "name_en": "Outing probability",
        "reads": [],
        "inputs": list(catalog.inputs("scene_strength")),
    }
    assert compiled.generated["scene_new_mother"]["name_en"] == "New mother"
    values = compiled.wide.order_by("user_id").to_pyarrow().column("scene_outing").to_pylist()
    assert values == [True, False, True, False, True, False, False]


def test_a_scene_value_without_an_id_is_skipped_with_its_reason(tmp_path: Path) -> None:
    products = PRODUCTS.set_column(
        4, "scene_tags", pa.array([["郊游"], [], [], [], ["new_mother"], None], pa.list_(pa.string()))
    )
    without_id = TEMPLATE.replace("      郊游: {id: outing_zh, name_en: Outing (Chinese slug)}\n", "")
    root = workspace(tmp_path, without_id, products)
    result = build(root, AS_OF)
    # outing comes from the content, new_mother from the milk; 郊游 has no id.
    assert result.built == [
        "scene_new_mother_score", "scene_new_mother", "scene_outing_score", "scene_outing"
    ]
    assert result.skipped == {
        "scene_strength:郊游": "scene '郊游' (products/content scene_tags) cannot form a tag id; "
        "give it one in scene.labels, e.g. {郊游: {id: outing, name_zh: 郊游}}"
    }
    notes = {row["scene"]: row["note"] for row in result.manifest["models"]["scene.scene_strength"]}
    assert notes == {"new_mother": None, "outing": None, "郊游": result.skipped["scene_strength:郊游"]}


def test_explicit_scene_tags_win_over_the_template_and_rules_read_them(tmp_path: Path) -> None:
    root = workspace(tmp_path, EXPLICIT + TEMPLATE)
    result = build(root, AS_OF)
    # The catalog defines scene_outing: the template makes only scene_outing_score for outing.
    assert "scene_outing" in result.built and result.built.count("scene_outing") == 1
    assert {"scene_outing_score", "scene_new_mother", "scene_new_mother_score"} <= set(result.built)
    rows = snapshot_rows(result.path)
    users = ["a", "b", "c", "d", "e", "f", "g"]
    # Explicit threshold 0.6: a (p = 0.6826) holds it; c (p = 0.5) and e (p = 0.5211) no longer do.
    assert probability(EXPECTED_OUTING["a"], 2.0) == pytest.approx(0.6826, abs=1e-4)
    assert probability(EXPECTED_OUTING["e"], 2.0) == pytest.approx(0.5211, abs=1e-4)
    assert [rows[u]["scene_outing"] for u in users] == [True, False, False, False, False, False, False]
    assert [rows[u]["scene_outing_prob"] for u in users] == pytest.approx(
        [rows[u]["scene_outing_score"] for u in users], rel=1e-12
    )
    assert [rows[u]["outing_fan"] for u in users] == [True, False, False, False, False, False, False]


def test_a_second_template_makes_no_tag_twice(tmp_path: Path) -> None:
    second = TEMPLATE.replace("id: scene_strength", "id: scene_again").replace("0.5", "0.9")
    result = build(workspace(tmp_path, TEMPLATE + second), AS_OF)
    assert result.built == [
        "scene_new_mother_score", "scene_new_mother", "scene_outing_score", "scene_outing"
    ]
    assert result.skipped == {
        "scene_again": "every scene in the data has both its tags already (catalog or another template)"
    }
    notes = {row["scene"]: row["note"] for row in result.manifest["models"]["scene.scene_again"]}
    assert notes == dict.fromkeys(
        ("new-mother", "outing"), "both tags are defined already (in the catalog or by another template)"
    )


def test_missing_scene_tags_skip_scene_tags_with_the_input_named(tmp_path: Path) -> None:
    root = workspace(tmp_path, EXPLICIT + TEMPLATE, PRODUCTS.drop_columns(["scene_tags"]))
    result = build(root, AS_OF)
    reason = "missing input: column products.scene_tags"
    assert result.skipped == {
        "scene_outing": reason,
        "scene_outing_prob": reason,
        "scene_strength": reason,
        "outing_fan": "depends on skipped tag scene_outing, scene_outing_prob",
    }
    assert result.built == []


def test_a_template_with_no_scene_in_the_data_is_skipped(tmp_path: Path) -> None:
    empty = PRODUCTS.set_column(4, "scene_tags", pa.array([[], [], [], [], [], None], pa.list_(pa.string())))
    root = workspace(tmp_path, TEMPLATE, empty)
    no_scenes = CONTENT.set_column(1, "scene_tags", pa.array([[], []], pa.list_(pa.string())))
    pq.write_table(no_scenes, root / "data" / "content.parquet")
    result = build(root, AS_OF)
    assert result.built == []
    assert result.skipped == {
        "scene_strength": "no scene in the data: products.scene_tags and content.scene_tags are empty"
    }
    # Content alone carrying a scene is enough: f's view of the trip article counts.
    pq.write_table(CONTENT, root / "data" / "content.parquet")
    result = build(root, AS_OF)
    assert result.built == ["scene_outing_score", "scene_outing"]
    expected = probability(decay(0.5), 2.0)
    assert snapshot_rows(result.path)["f"]["scene_outing_score"] == pytest.approx(expected)


def write_tags(tmp_path: Path, text: str) -> Path:
    (tmp_path / "tags").mkdir()
    (tmp_path / "tags" / "t.yaml").write_text(text, encoding="utf-8")
    return tmp_path / "tags"


HEAD = "  name_zh: 郊游\n  name_en: Outing\n  category: category_scene\n"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            '  type: probability\n  scene: {name: "*", weights: {view: 1}}\n',
            'tags/t.yaml:5: tag x: type: a scene template (name: "*") has type boolean and a threshold: it '
            "makes scene_<slug> (boolean) and scene_<slug>_score (probability) for every scene in the data",
        ),
        (
            "  type: probability\n  scene: {name: outing, weights: {view: 1}, threshold: 0.5}\n",
            "tags/t.yaml:6: tag x: scene.threshold: scene.threshold applies to boolean scene tags; a "
            "probability tag holds the probability itself (remove threshold, or make the tag boolean)",
        ),
        (
            "  type: probability\n  scene: {name: outing, weights: {view: 1}, labels: {outing: 郊游}}\n",
            'tags/t.yaml:6: tag x: scene.labels: labels name the tags of a template (name: "*"); this tag '
            "is scene 'outing' and has its own name_zh and name_en",
        ),
        (
            "  type: probability\n  scene: {name: outing, weights: {view: 1}, keywords: {camping: [露营]}}\n",
            "tags/t.yaml:6: tag x: scene.keywords: keywords are given for scene 'camping', but this tag "
            "measures 'outing'",
        ),
        (
            '  type: boolean\n  scene: {name: "*", weights: {view: 1}, threshold: 0.5, keywords: [露营]}\n',
            'tags/t.yaml:6: tag x: scene.keywords: a template (name "*") gives keywords per scene: '
            "{outing: [露营, 野餐], ...}",
        ),
        (
            "  type: probability\n  scene: {name: Outing, weights: {view: 1}}\n",
            "tags/t.yaml:6: tag x: scene.name: scene name must be a lower-case slug such as outing, or \"*\" "
            "for every scene in the data, got 'Outing'",
        ),
        (
            "  type: probability\n  scene: {name: outing, weights: {view: 1}, half_score: 0}\n",
            "tags/t.yaml:6: tag x: scene.half_score: Input should be greater than 0",
        ),
        (
            '  type: boolean\n  scene: {name: "*", weights: {view: 1}, threshold: 0.5, '
            "labels: {outing: {id: Outing}}}\n",
            "tags/t.yaml:6: tag x: scene.labels.outing.id: scene id must be snake_case such as outing, "
            "got 'Outing'",
        ),
    ],
)
def test_bad_scene_definitions_fail_with_the_field_named(tmp_path: Path, body: str, message: str) -> None:
    tags = write_tags(tmp_path, "- id: x\n" + HEAD + body)
    with pytest.raises(CatalogError) as caught:
        load_catalog(tags)
    assert str(caught.value).rstrip(".") == message.rstrip(".")


# ---------------------------------------------------------------------------- the sample shop


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, dict[str, dict[str, Any]], Any]:
    root = tmp_path_factory.mktemp("scene_sample")
    shop = Workspace.create_sample(root, users=2000, seed=7)
    shop.ingest()
    tags = shop.path / "tags"
    install_standard_catalog(tags)
    for path in tags.glob("*.yaml"):
        if path.name != "scenes.yaml":
            path.unlink()
    result = shop.build(dt.date(2026, 11, 1))
    truth = pq.read_table(shop.path / "sources" / "truth.parquet").to_pylist()
    return shop, {row["user_id"]: row for row in truth}, result


def test_sample_shop_recovers_the_planted_outing_lovers(
    sample: tuple[Workspace, dict[str, dict[str, Any]], Any],
) -> None:
    shop, truth, result = sample
    planted = json.loads((shop.path / "sources" / "planted.json").read_text(encoding="utf-8"))
    assert set(planted["scenes"]) == {"outing", "new_mother", "digital_geek", "home_cooking"}
    for slug in planted["scenes"]:
        assert f"scene_{slug}_score" in result.built and f"scene_{slug}" in result.built
    rows = snapshot_rows(result.path)
    lovers = {user for user, row in truth.items() if row["outing_lover"]}
    flagged = {user for user, row in rows.items() if row["scene_outing"]}
    base_rate = len(lovers) / len(rows)
    assert 0.05 < base_rate < 0.2
    # Only users who acted in the 90-day window can show a scene: recall is measured among them.
    events = pq.read_table(shop.table_path("events"), columns=["user_id", "event_time"]).to_pylist()
    start = dt.datetime(2026, 8, 3)
    active = {row["user_id"] for row in events if row["event_time"] >= start}
    precision = len(flagged & lovers) / len(flagged)
    recall_active = len(flagged & lovers) / len(lovers & active)
    assert precision >= 0.6 and precision > 5 * base_rate  # about 0.7 against a base rate of 0.1
    assert recall_active >= 0.45
    # The push list of the seed: the top 100 by probability is dominated by outing lovers.
    ranked = sorted(rows, key=lambda user: (-rows[user]["scene_outing_score"], user))
    top = ranked[:100]
    assert sum(user in lovers for user in top) >= 60
    # Names from the labels reach the manifest.
    plan = {row["scene"]: row for row in result.manifest["models"]["scene.scene_strength"]}
    assert plan["outing"]["name_zh"] == "郊游"
    assert math.isclose(result.manifest["tags"]["scene_outing"]["coverage"], 1.0)


# ---------------------------------------------------------------------------- the docs


def test_examples_in_the_behaviour_docs_load_and_match_the_standard_files(tmp_path: Path) -> None:
    text = (Path(__file__).parents[2] / "docs" / "standard-behaviour.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.DOTALL)
    catalog = load_catalog(write_tags(tmp_path, "\n".join(blocks)))
    packaged = load_catalog(Path(str(resources.files("huaxiang.templates").joinpath("tags"))))
    # The documented standard definitions are the packaged ones.
    spec, shipped = catalog["scene_strength"].scene, packaged["scene_strength"].scene
    assert spec is not None and shipped is not None and spec.is_template
    assert (spec.weights, spec.half_life_days, spec.days, spec.half_score, spec.threshold) == (
        shipped.weights, shipped.half_life_days, shipped.days, shipped.half_score, shipped.threshold
    )
    assert catalog["aipl_stage"].values == packaged["aipl_stage"].values
    for tag_id in ("fav_bluemoon_detergent_30d", "carted_7d", "purchased_7d"):
        assert catalog[tag_id].action == packaged[tag_id].action, tag_id
    assert catalog["cart_abandoner_7d"].rule == packaged["cart_abandoner_7d"].rule
