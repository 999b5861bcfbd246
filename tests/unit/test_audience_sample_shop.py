"""Audiences on a real build of the sample shop: the index agrees with an Ibis filter over tags.parquet."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import ibis
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings

from huaxiang.audience import AudienceEngine, check, evaluate, to_ibis
from huaxiang.audience.definition import Node
from huaxiang.audience.strategies import audience_trees
from huaxiang.workspace import Workspace

pytestmark = pytest.mark.slow

AS_OF = dt.date(2026, 10, 31)
SPEC_EXAMPLE = (
    "purchasing_power_level = '高' AND city_tier IN (3, 4, 5, 6) AND viewed_dyson_hair_dryer_30d "
    "AND fav_dyson_hair_dryer_30d AND style_promo_driven AND trait_impulsive"
)
# Tags of every type the standard catalog has, for the random trees.
TREE_TAGS = (
    "rfm_class",
    "lifecycle_stage",
    "finance_group_14",
    "purchasing_power_level",
    "city_tier",
    "age",
    "monetary_365d",
    "scene_outing_score",
    "style_promo_driven",
    "trait_impulsive",
    "viewed_dyson_hair_dryer_30d",
)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> AudienceEngine:
    root = tmp_path_factory.mktemp("shop")
    workspace = Workspace.create_sample(root, users=2_000, seed=7)
    workspace.ingest()
    workspace.build(AS_OF)
    engine = AudienceEngine(root, AS_OF)
    yield engine
    engine.close()


@pytest.mark.parametrize(
    "text",
    [
        SPEC_EXAMPLE,
        "rfm_class = '重要价值客户' AND city_tier IN (3, 4, 5, 6) AND NOT lifecycle_stage = 'churned'",
        "finance_group_14 = '千禧一代' OR finance_group_14 != '家庭'",
        "monetary_365d BETWEEN 500 AND 2000.5 AND NOT scene_outing_score < 0.2",
        "purchasing_power_level IS NULL OR age > 40 OR NOT (trait_impulsive AND city_tier <= 2)",
    ],
)
def test_index_and_ibis_agree_on_the_sample_shop(shop: AudienceEngine, text: str) -> None:
    assert shop.user_ids(shop.members(text)) == shop.ibis_user_ids(text)


def test_index_knows_the_catalog(shop: AudienceEngine) -> None:
    specs = shop.index.specs
    assert specs["finance_group_14"].type == "hierarchical_enum"
    assert "千禧一代" in specs["finance_group_14"].values
    assert specs["rfm_class"].values == (
        "一般价值客户",
        "一般保持客户",
        "一般发展客户",
        "一般挽留客户",
        "重要价值客户",
        "重要保持客户",
        "重要发展客户",
        "重要挽留客户",
    )
    assert {name: spec.type for name, spec in specs.items()} == {
        name: shop.snapshot.tag_type(name) for name in shop.snapshot.tags
    }
    assert (shop.snapshot.path / "index" / "index.json").is_file()


@pytest.fixture(scope="module")
def duckdb_table(shop: AudienceEngine) -> ibis.Table:
    return ibis.duckdb.connect().read_parquet(shop.snapshot.tags_path)


def test_random_trees_agree_on_the_sample_shop(shop: AudienceEngine, duckdb_table: ibis.Table) -> None:
    tags = pq.read_table(shop.snapshot.tags_path, columns=list(TREE_TAGS)).to_pydict()
    hierarchical = frozenset({"finance_group_14"})

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(tree=audience_trees(shop.index.specs, tags))
    def agree(tree: Node) -> None:
        node = check(tree, shop.index.specs)
        from_bitmaps = shop.user_ids(evaluate(node, shop.index))
        expr = to_ibis(node, duckdb_table, hierarchical=hierarchical)
        from_sql = duckdb_table.filter(expr).select("user_id").order_by("user_id").to_pyarrow()
        assert from_bitmaps == from_sql.column(0).to_pylist()

    agree()


def test_exports_land_in_the_workspace(shop: AudienceEngine) -> None:
    result = shop.export("lifecycle_stage = 'active'", "active.csv")
    assert result.path == Path(shop.workspace_dir) / "exports" / "active.csv"
    assert result.rows == len(shop.members("lifecycle_stage = 'active'")) > 0


def test_index_from_the_catalog_matches_the_manifest(shop: AudienceEngine, tmp_path: Path) -> None:
    from huaxiang.audience import SnapshotIndex, build_index

    catalog = Workspace(shop.workspace_dir).catalog()
    report = build_index(shop.snapshot.path, tmp_path / "index", catalog=catalog)
    assert report.skipped == {}
    from_catalog = SnapshotIndex(report.path)
    assert from_catalog.specs == shop.index.specs
    assert from_catalog.user_ids.equals(shop.index.user_ids)


def test_every_definition_in_the_docs_checks_against_the_sample_shop(shop: AudienceEngine) -> None:
    import re

    docs = (Path(__file__).parents[2] / "docs" / "audiences.md").read_text(encoding="utf-8")
    commands = re.findall(r"\$ huaxiang audience .*?(?=\n(?:\$|[^ \n])|\n```)", docs, re.S)
    found = [text for command in commands for text in re.findall(r'"([^"]+)"', command)]
    found = [" ".join(text.split()) for text in found if text != "SPEC example"]
    assert len(found) >= 8
    for text in found:
        if text.startswith("@"):
            continue
        shop.definition(text)  # raises on an unknown tag or a value the tag never takes
    assert " ".join(SPEC_EXAMPLE.split()) in found
