"""Audiences compiled to ClickHouse bitmap SQL, run in chdb: the same members as the bitmap index."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from typer.testing import CliRunner

from huaxiang.audience import AudienceEngine, DefinitionError, SnapshotIndex, check, evaluate
from huaxiang.audience.build import build_index_from_table
from huaxiang.audience.cli import audience_app
from huaxiang.audience.clickhouse import (
    bitmap_table_sql,
    parquet_source,
    quote_string,
    tag_table_sql,
    to_clickhouse,
)
from huaxiang.audience.definition import Node, TagSpec, parse
from huaxiang.audience.errors import AudienceError
from huaxiang.audience.strategies import audience_trees
from huaxiang.audience.synthetic import synthetic_snapshot

chdb_session = pytest.importorskip("chdb.session", reason="install huaxiang[clickhouse] (chdb)")

AS_OF = dt.date(2026, 10, 31)
MODES = ("wide", "bitmap")


@pytest.fixture(scope="session")
def chdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One chdb session for the run: chdb serves a single data path per process."""
    session = chdb_session.Session(str(tmp_path_factory.mktemp("chdb")))
    yield session
    session.close()


class ClickHouse:
    """One snapshot's tags in chdb, as the wide table and the bitmap table (in ``database``, if given)."""

    def __init__(self, session: Any, tags_path: Path, specs: dict[str, TagSpec], database: str = "") -> None:
        self.session = session
        prefix = f"{database}." if database else ""
        self.tables = {"table": f"{prefix}tags", "bitmap_table": f"{prefix}tag_bitmaps"}
        if database:
            session.query(f"CREATE DATABASE {database}")
        source = parquet_source(str(tags_path))
        statements = tag_table_sql(pq.read_schema(tags_path), specs, source, table=self.tables["table"])
        for statement in [*statements, *bitmap_table_sql(specs, **self.tables)]:
            session.query(statement)

    def rows(self, sql: str) -> list[Any]:
        table = self.session.query(sql, "ArrowTable")
        return list(table.column(0).to_pylist())

    def sql(self, definition: Any, specs: dict[str, TagSpec], **options: Any) -> str:
        return to_clickhouse(definition, specs, **self.tables, **options)


def members(engine: AudienceEngine, clickhouse: ClickHouse, text: Any, mode: str) -> list[int]:
    """Dense ids from ClickHouse, after checking size and ids against each other."""
    specs = engine.index.specs
    size = clickhouse.rows(clickhouse.sql(text, specs, mode=mode))
    ids = clickhouse.rows(clickhouse.sql(text, specs, mode=mode, output="ids"))
    assert size == [len(ids)]
    return ids


# ---------------------------------------------------------------------------- synthetic snapshot


@pytest.fixture(scope="module")
def synthetic(
    tmp_path_factory: pytest.TempPathFactory, chdb: Any
) -> Iterator[tuple[AudienceEngine, ClickHouse]]:
    root = tmp_path_factory.mktemp("synthetic")
    synthetic_snapshot(root, 5_000, seed=11)
    engine = AudienceEngine(root)
    yield engine, ClickHouse(chdb, engine.snapshot.tags_path, engine.index.specs)  # the default database
    engine.close()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "text",
    [
        "is_member AND city_tier IN (3, 4, 5, 6) AND (segment = 'vip' OR outing_score >= 0.5) "
        "AND NOT finance_group = '家庭' AND spend_365d >= 500",
        "NOT segment = 'vip'",  # users without a segment are in neither set
        "segment != 'vip' OR segment IS NULL",
        "NOT (is_member OR viewed_dyson_30d)",
        "finance_group IN ('千禧一代', '家庭/中产家庭') AND NOT margin < 0",
        "spend_365d BETWEEN 99.995 AND 500.01 OR spend_365d = 123.45",
        "segment = 'dormant'",  # declared, never seen: empty
        "NOT NOT (age > 40.5 AND city_tier IS NOT NULL)",
    ],
)
def test_synthetic_definitions_match_the_index(
    synthetic: tuple[AudienceEngine, ClickHouse], text: str, mode: str
) -> None:
    engine, clickhouse = synthetic
    assert members(engine, clickhouse, text, mode) == list(engine.members(text))


def test_random_trees_match_the_index_in_both_modes(synthetic: tuple[AudienceEngine, ClickHouse]) -> None:
    engine, clickhouse = synthetic
    names = [
        "is_member",
        "viewed_dyson_30d",
        "segment",
        "finance_group",
        "city_tier",
        "outing_score",
        "spend_365d",
        "margin",
    ]
    values = pq.read_table(engine.snapshot.tags_path, columns=names).to_pydict()
    values["spend_365d"] = [None if v is None else float(v) for v in values["spend_365d"]]

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(tree=audience_trees(engine.index.specs, values))
    def agree(tree: Node) -> None:
        expected = list(evaluate(check(tree, engine.index.specs), engine.index))
        for mode in MODES:
            assert members(engine, clickhouse, tree, mode) == expected

    agree()


def test_user_ids_output(synthetic: tuple[AudienceEngine, ClickHouse]) -> None:
    engine, clickhouse = synthetic
    text = "segment = 'vip' AND NOT is_member"
    for mode in MODES:
        sql = to_clickhouse(text, engine.index.specs, mode=mode, output="user_ids")  # type: ignore[arg-type]
        assert clickhouse.rows(sql) == engine.user_ids(engine.members(text))


def test_saved_audiences_are_inlined_or_refused(synthetic: tuple[AudienceEngine, ClickHouse]) -> None:
    engine, clickhouse = synthetic
    specs = engine.index.specs
    text = "in_audience('vips') AND NOT in_audience('members')"
    with pytest.raises(DefinitionError, match=r"in_audience\('vips'\) cannot be compiled to ClickHouse SQL"):
        to_clickhouse(text, specs)
    saved = {"vips": "segment = 'vip'", "members": {"tag": "is_member", "op": "=", "value": True}}
    expected = list(engine.members("segment = 'vip' AND NOT is_member"))
    assert clickhouse.rows(to_clickhouse(text, specs, audiences=saved, output="ids")) == expected
    with pytest.raises(DefinitionError, match="no saved audience 'vip'. Did you mean 'vips'"):
        to_clickhouse("in_audience('vip')", specs, audiences=saved)
    circle = {"a": "in_audience('b')", "b": "segment = 'vip' OR in_audience('a')"}
    with pytest.raises(DefinitionError, match="in a circle: a -> b -> a"):
        to_clickhouse("in_audience('a')", specs, audiences=circle)


def test_bad_definitions_and_names_are_refused(synthetic: tuple[AudienceEngine, ClickHouse]) -> None:
    specs = synthetic[0].index.specs
    with pytest.raises(DefinitionError, match="unknown tag 'segmnt'. Did you mean 'segment'"):
        to_clickhouse("segmnt = 'vip'", specs)
    with pytest.raises(DefinitionError, match="takes a number, got text '3'"):
        to_clickhouse("city_tier = '3'", specs)
    with pytest.raises(DefinitionError, match="'>' compares numbers, but tag 'segment'"):
        to_clickhouse("segment > 'vip'", specs)
    with pytest.raises(DefinitionError, match="never takes the value 'vip; DROP TABLE tags'"):
        to_clickhouse("segment = 'vip; DROP TABLE tags'", specs)
    with pytest.raises(AudienceError, match="table name 'tags; DROP TABLE x' is not an identifier"):
        to_clickhouse("is_member", specs, table="tags; DROP TABLE x")
    with pytest.raises(AudienceError, match="bitmap table name 'a.b.c'"):
        to_clickhouse("is_member", specs, bitmap_table="a.b.c")
    with pytest.raises(AudienceError, match="unknown mode 'bitmaps'; use one of wide, bitmap. Did you mean"):
        to_clickhouse("is_member", specs, mode="bitmaps")  # type: ignore[arg-type]
    with pytest.raises(AudienceError, match="unknown output 'count'"):
        to_clickhouse("is_member", specs, output="count")  # type: ignore[arg-type]


def test_the_cli_prints_runnable_sql(synthetic: tuple[AudienceEngine, ClickHouse]) -> None:
    engine, clickhouse = synthetic
    text = "segment IN ('vip', 'new') AND spend_365d >= 500"
    runner = CliRunner()
    expected = [len(engine.members(text))]
    for mode in MODES:
        args = ["sql", "-w", str(engine.workspace_dir), text, "--dialect", "clickhouse", "--mode", mode]
        result = runner.invoke(audience_app, args, env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        assert clickhouse.rows(result.output) == expected
    result = runner.invoke(audience_app, ["sql", "-w", str(engine.workspace_dir), "--ddl", text])
    assert result.exit_code == 0, result.output
    assert "CREATE TABLE `tag_bitmaps`" in result.output and "ENGINE = AggregatingMergeTree" in result.output
    result = runner.invoke(audience_app, ["sql", "-w", str(engine.workspace_dir), "--dialect", "doris", text])
    assert result.exit_code == 2 and "dialect 'doris'" in result.output
    result = runner.invoke(audience_app, ["sql", "-w", str(engine.workspace_dir), "in_audience('x')"])
    assert result.exit_code == 2 and "no saved audience 'x'" in result.output


# ---------------------------------------------------------------------------- escaping and NaN


WEIRD = [
    "it's",
    "back\\slash",
    "\\'",
    "end\\",
    "new\nline\ttab",
    "'; DROP TABLE tags; --",
    "百分之%_*",
    'double"quote',
    "`tick`",
]


@pytest.fixture(scope="module")
def weird(tmp_path_factory: pytest.TempPathFactory, chdb: Any) -> Iterator[tuple[SnapshotIndex, ClickHouse]]:
    root = tmp_path_factory.mktemp("weird")
    users = 400
    table = pa.table(
        {
            "user_id": [f"U{i:04d}" for i in range(users)],
            "label": [None if i % 11 == 0 else WEIRD[i % len(WEIRD)] for i in range(users)],
            "path": [None if i % 13 == 0 else ["a'b/c\\d", "a'b/x", "z\n/q"][i % 3] for i in range(users)],
            "score": [math.nan if i % 7 == 0 else None if i % 5 == 0 else (i % 17) / 4 for i in range(users)],
        }
    )
    tags_path = root / "tags.parquet"
    pq.write_table(table, tags_path)
    definitions = {
        "label": {"type": "enum"},
        "path": {"type": "hierarchical_enum"},
        "score": {"type": "number"},
    }
    build_index_from_table(table, root / "index", definitions=definitions)
    index = SnapshotIndex(root / "index")
    yield index, ClickHouse(chdb, tags_path, index.specs, database="weird")
    index.close()


@pytest.mark.parametrize("mode", MODES)
def test_strings_are_escaped(weird: tuple[SnapshotIndex, ClickHouse], mode: str) -> None:
    index, clickhouse = weird
    conditions = [
        *({"tag": "label", "op": "=", "value": value} for value in WEIRD),
        {"tag": "label", "op": "in", "value": WEIRD[:4]},
        {"not": {"tag": "label", "op": "!=", "value": WEIRD[5]}},
        {"tag": "path", "op": "=", "value": "a'b"},
        {"tag": "path", "op": "=", "value": "z\n"},
        {"not": {"tag": "path", "op": "in", "value": ["a'b/c\\d", "z\n/q"]}},
        {
            "or": [
                {"tag": "score", "op": ">", "value": 2},
                {"not": {"tag": "score", "op": "<=", "value": 1.25}},
            ]
        },
        {"not": {"tag": "score", "op": "=", "value": 0.5}},  # NaN counts as null, as in the index
        {"tag": "score", "op": "is null"},
    ]
    for condition in conditions:
        expected = list(evaluate(check(parse(condition), index.specs), index))
        sql = clickhouse.sql(condition, index.specs, mode=mode, output="ids")
        assert clickhouse.rows(sql) == expected, condition
        assert expected, condition  # each condition selects someone, so the check can fail


def test_quote_string() -> None:
    assert quote_string("it's \\ \n") == "'it\\'s \\\\ \\x0A'"


# ---------------------------------------------------------------------------- the sample shop


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory, chdb: Any) -> Iterator[tuple[AudienceEngine, ClickHouse]]:
    from huaxiang.workspace import Workspace

    root = tmp_path_factory.mktemp("shop")
    workspace = Workspace.create_sample(root, users=1_000, seed=7)
    workspace.ingest()
    workspace.build(AS_OF)
    engine = AudienceEngine(root, AS_OF)
    yield engine, ClickHouse(chdb, engine.snapshot.tags_path, engine.index.specs, database="shop")
    engine.close()


SHOP_TAGS = (
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
)


@pytest.mark.slow
def test_the_sample_shop_matches_the_index(shop: tuple[AudienceEngine, ClickHouse]) -> None:
    engine, clickhouse = shop
    fixed = [
        "rfm_class = '重要价值客户' AND city_tier IN (3, 4, 5, 6) AND NOT lifecycle_stage = 'churned'",
        "finance_group_14 = '千禧一代' OR finance_group_14 != '家庭'",
        "monetary_365d BETWEEN 500 AND 2000.5 AND NOT scene_outing_score < 0.2",
        "purchasing_power_level IS NULL OR age > 40 OR NOT (trait_impulsive AND city_tier <= 2)",
    ]
    for text in fixed:
        for mode in MODES:
            assert members(engine, clickhouse, text, mode) == list(engine.members(text)), (text, mode)
    values = pq.read_table(engine.snapshot.tags_path, columns=list(SHOP_TAGS)).to_pydict()
    for name in ("monetary_365d", "scene_outing_score"):
        values[name] = [None if v is None else float(v) for v in values[name]]

    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(tree=audience_trees(engine.index.specs, values))
    def agree(tree: Node) -> None:
        expected = list(evaluate(check(tree, engine.index.specs), engine.index))
        for mode in MODES:
            assert members(engine, clickhouse, tree, mode) == expected

    agree()
