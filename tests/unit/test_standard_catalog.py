"""The standard catalog shipped in ``huaxiang/templates/tags``: loads, is installed by init, builds.

Values are checked against hand computations made with DuckDB straight from the
ingested Parquet files of the sample shop.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
from decimal import ROUND_FLOOR, Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from huaxiang.catalog import load_catalog
from huaxiang.engine import BuildResult
from huaxiang.segment import LIFECYCLE_STAGES, RFM_CLASSES
from huaxiang.segment.clv import INSTALL_HINT
from huaxiang.workspace import Workspace, install_standard_catalog

AS_OF = dt.date(2026, 11, 1)
HAS_CLV_EXTRA = importlib.util.find_spec("pymc_marketing") is not None
Built = tuple[Workspace, BuildResult, dict[str, dict[str, Any]]]
"""The sample workspace, its build and the snapshot rows by user id."""
STANDARD_FILES: dict[str, list[str]] = {
    "rfm.yaml": [
        "recency_days", "frequency_365d", "monetary_365d", "aov_365d", "rfm_r_score", "rfm_f_score",
        "rfm_m_score", "rfm_score", "rfm_class", "rfm_cell", "rfm_playbook",
    ],
    "lifecycle.yaml": [
        "lifecycle_stage",
    ],
    "value.yaml": [
        "value_layer", "value_layer_name", "value_layer_strategy",
    ],
    "purchasing_power.yaml": [
        "purchasing_power_band", "purchasing_power_level",
    ],
    "demographics.yaml": [
        "age", "age_band", "age_imputed", "age_source", "city_tier", "city_tier_imputed",
        "city_tier_source", "gender", "marital_status", "education", "member_level", "child_probability",
        "has_grade_stage",
    ],
    "groups.yaml": [
        "target_group_10", "finance_group_14", "circle_group", "circle_benefit",
    ],
    "aipl.yaml": [
        "aipl_stage",
    ],
    "scenes.yaml": [
        "scene_strength",
    ],
    "brand.yaml": [
        "brand_bluemoon_core", "brand_bluemoon_intent", "brand_bluemoon_competitor",
        "brand_bluemoon_potential",
    ],
    "actions.yaml": [
        "fav_bluemoon_detergent_30d", "viewed_dyson_hair_dryer_30d", "fav_dyson_hair_dryer_30d",
        "viewed_and_faved_dyson_hair_dryer_30d", "carted_7d", "purchased_7d", "cart_abandoner_7d",
        "frequent_viewer_7d",
    ],
    "categories.yaml": [
        "cross_category_count", "single_category", "pet_share", "pet_tgi", "baby_share", "baby_tgi",
        "local_life_share", "local_life_tgi", "value_share", "value_tgi", "premium_share", "premium_tgi",
        "pet_every_quarter", "health_every_quarter", "health_pet_every_quarter", "browse_not_buy_category",
        "browse_not_buy_top_category",
    ],
    "promo_style.yaml": [
        "promo_order_share", "promo_sensitive", "coupon_order_share", "style_promo_driven",
        "style_quality_driven", "style_value_for_money",
    ],
    "traits.yaml": [
        "trait_impulsive", "trait_price_comparer", "trait_hesitant", "trait_shopaholic",
    ],
    "value_groups.yaml": [
        "value_group_15", "value_group_15_name",
    ],
    "clv.yaml": [
        "clv_p_alive", "clv_purchases_180d", "clv_spend_180d",
    ],
}
"""The standard files and their tags, with the ids other tools rely on (issue 3)."""
FILES = set(STANDARD_FILES)
STANDARD_TAGS = {tag for tags in STANDARD_FILES.values() for tag in tags}
#: Tags the scene template makes on the sample shop (its products carry four scenes).
SCENE_TAGS = {f"scene_{name}{suffix}" for name in ("outing", "new_mother", "digital_geek", "home_cooking")
              for suffix in ("", "_score")}


def packaged_tags() -> Path:
    folder = resources.files("huaxiang.templates").joinpath("tags")
    return Path(str(folder))


def test_packaged_catalog_loads_with_every_standard_tag_described() -> None:
    catalog = load_catalog(packaged_tags())

    assert set(catalog.order) == STANDARD_TAGS
    for tag_id in catalog.order:
        tag = catalog[tag_id]
        assert tag.name_zh and tag.name_en and tag.description, tag_id
    assert [v.value for v in catalog["rfm_class"].values or []] == list(RFM_CLASSES.values())
    assert [v.value for v in catalog["lifecycle_stage"].values or []] == list(LIFECYCLE_STAGES)
    assert catalog["value_layer"].type == "integer"
    assert catalog["rfm_class"].model is not None and catalog["rfm_class"].model.name == "rfm"
    assert catalog["value_layer"].model is not None and catalog["value_layer"].model.name == "value_grid"


def test_each_file_holds_its_tags_in_order() -> None:
    catalog = load_catalog(packaged_tags())
    by_file: dict[str, list[str]] = {}
    for tag_id in catalog.tags:  # definition order
        by_file.setdefault(catalog.locations[tag_id].file.removeprefix("tags/"), []).append(tag_id)
    assert by_file == STANDARD_FILES


def test_docs_list_every_standard_file_and_tag() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "tags.md").read_text(encoding="utf-8")
    section = docs[docs.index("## The standard catalog"):]
    for name, tags in STANDARD_FILES.items():
        row = next(line for line in section.splitlines() if line.startswith(f"| `{name}` |"))
        listed = row.split(" | ")[1]
        assert [tag for tag in tags if f"`{tag}`" in listed] == tags, name


def test_init_installs_the_standard_catalog_and_keeps_existing_files(tmp_path: Path) -> None:
    workspace = Workspace.init(tmp_path / "shop")
    tags = workspace.path / "tags"

    assert {p.name for p in tags.glob("*.yaml")} == FILES
    assert set(workspace.catalog().order) == STANDARD_TAGS

    edited = (tags / "rfm.yaml").read_text(encoding="utf-8") + "# my edits\n"
    (tags / "rfm.yaml").write_text(edited, encoding="utf-8")
    (tags / "value.yaml").unlink()
    Workspace.init(workspace.path, force=True)
    assert (tags / "rfm.yaml").read_text(encoding="utf-8") == edited
    assert (tags / "value.yaml").is_file()
    assert install_standard_catalog(tags) == []


def test_init_without_standard_tags_leaves_tags_empty(tmp_path: Path) -> None:
    workspace = Workspace.init(tmp_path / "bare", standard_tags=False)
    assert list((workspace.path / "tags").glob("*.yaml")) == []


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("standard")
    workspace = Workspace.create_sample(root, users=1500, seed=5)
    workspace.ingest()
    install_standard_catalog(workspace.path / "tags")
    result = workspace.build(AS_OF)
    rows = pq.read_table(result.path / "tags.parquet").to_pylist()
    return workspace, result, {row["user_id"]: row for row in rows}


def orders_sql(workspace: Workspace, window: bool) -> str:
    """Valid orders before the as-of date (optionally in the 365-day window), per user, by DuckDB."""
    start = AS_OF - dt.timedelta(days=365)
    window_filter = f"AND order_time >= TIMESTAMP '{start} 00:00:00'" if window else ""
    return f"""
        SELECT user_id, count(*) AS n, sum(amount) AS spend
        FROM read_parquet('{workspace.table_path("orders")}')
        WHERE NOT coalesce(is_after_sale, false)
          AND order_time < TIMESTAMP '{AS_OF} 00:00:00' {window_filter}
        GROUP BY user_id
    """


def test_every_standard_tag_is_built_on_the_sample_shop(built: Built) -> None:
    _, result, rows = built
    # The CLV tags need the optional extra huaxiang[clv]; without it they are skipped, saying so.
    reason = f"missing input: {INSTALL_HINT}"
    without_clv = {} if HAS_CLV_EXTRA else dict.fromkeys(STANDARD_FILES["clv.yaml"], reason)
    assert result.skipped == without_clv
    assert set(result.built) == STANDARD_TAGS - {"scene_strength"} - set(without_clv) | SCENE_TAGS
    generated = result.manifest["generated"]
    assert set(generated) == SCENE_TAGS
    assert generated["scene_outing"]["type"] == "boolean"
    assert generated["scene_outing_score"]["type"] == "probability"
    assert len(rows) == result.rows > 1000


def test_rfm_class_is_null_exactly_for_users_without_a_valid_order_in_the_window(
    built: Built,
) -> None:
    workspace, _, rows = built
    buyers = {row[0] for row in duckdb.sql(orders_sql(workspace, window=True)).fetchall()}
    no_class = {user for user, row in rows.items() if row["rfm_class"] is None}

    assert no_class == set(rows) - buyers
    assert no_class and buyers & set(rows)
    assert {row["rfm_class"] for row in rows.values()} - {None} <= set(RFM_CLASSES.values())
    for user in no_class:
        assert rows[user]["frequency_365d"] == 0
        assert rows[user]["purchasing_power_band"] is None
        assert rows[user]["purchasing_power_level"] is None


def test_lifecycle_stage_is_one_of_the_six(built: Built) -> None:
    _, _, rows = built
    stages = {row["lifecycle_stage"] for row in rows.values()}
    assert stages <= set(LIFECYCLE_STAGES)
    assert len(stages) >= 4


def test_value_layer_is_zero_exactly_for_non_buyers(
    built: Built,
) -> None:
    workspace, _, rows = built
    buyers = {row[0] for row in duckdb.sql(orders_sql(workspace, window=False)).fetchall()}
    zero = {user for user, row in rows.items() if row["value_layer"] == 0}

    assert zero == set(rows) - buyers
    assert all(0 <= row["value_layer"] <= 20 for row in rows.values())
    assert all(row["value_layer_name"] and row["value_layer_strategy"] for row in rows.values())


def test_purchasing_power_band_matches_a_hand_computation(
    built: Built,
) -> None:
    workspace, _, rows = built
    per_user = {
        user: (count, spend)
        for user, count, spend in duckdb.sql(orders_sql(workspace, window=True)).fetchall()
        if user in rows
    }
    checked = 0
    for user in sorted(per_user)[:: max(1, len(per_user) // 40)]:
        count, spend = per_user[user]
        aov = Decimal(spend) / count
        low = (aov / 5).to_integral_value(rounding=ROUND_FLOOR) * 5
        assert rows[user]["purchasing_power_band"] == f"{low}-{low + 5}", user
        assert rows[user]["frequency_365d"] == count
        checked += 1
    assert checked >= 30


def test_purchasing_power_level_splits_buyers_in_terciles(
    built: Built,
) -> None:
    _, _, rows = built
    buyers = [row for row in rows.values() if row["frequency_365d"] > 0]
    levels = {level: [row["aov_365d"] for row in buyers if row["purchasing_power_level"] == level]
              for level in ("低", "中", "高")}
    assert sum(len(v) for v in levels.values()) == len(buyers)
    for values in levels.values():
        assert abs(len(values) - len(buyers) / 3) <= len(buyers) * 0.05
    assert max(levels["低"]) <= min(levels["中"])
    assert max(levels["中"]) <= min(levels["高"])


def test_built_enum_values_are_among_the_declared_values(built: Built) -> None:
    workspace, result, rows = built
    catalog = workspace.catalog()
    made = [tag_id for tag_id in result.built if tag_id in catalog.tags]  # not the scene template's
    declared = {tag_id: catalog[tag_id].values for tag_id in made if catalog[tag_id].values}
    assert {"rfm_class", "rfm_playbook", "lifecycle_stage", "purchasing_power_level"} <= set(declared)
    for tag_id, values in declared.items():
        allowed = {v.value for v in values or []}
        seen = {row[tag_id] for row in rows.values()} - {None}
        assert seen and seen <= allowed, tag_id


def test_value_grid_maker_is_registered_and_takes_custom_edges(built: Built, tmp_path: Path) -> None:
    from huaxiang.engine import MODEL_MAKERS, build

    maker = MODEL_MAKERS["value_grid"]
    assert set(maker.params) == {"spend_edges", "recency_edges"}
    assert "orders.amount" in maker.needs

    workspace, _, rows = built
    (tmp_path / "grid.yaml").write_text(
        """
- id: small_grid_layer
  name_zh: 小网格
  name_en: Small grid
  category: custom
  type: integer
  model: {name: value_grid, params: {column: value_layer, spend_edges: [0, 500], recency_edges: [30]}}
""",
        encoding="utf-8",
    )
    result = build(workspace.path, dt.date(2026, 10, 1), catalog=load_catalog(tmp_path))
    layers = pq.read_table(result.path / "tags.parquet").column("small_grid_layer").to_pylist()
    assert result.built == ["small_grid_layer"]
    assert set(layers) <= {0, 1, 2, 3, 4} and len(set(layers)) >= 3
