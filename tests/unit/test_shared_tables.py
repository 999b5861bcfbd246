"""Tables shared by the makers of one build (``ModelContext.shared``): computed once, materialised once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.parquet as pq

from huaxiang.engine.registry import BuildSettings, ModelContext, ModelOutput, SharedTables


def test_a_shared_table_is_made_and_materialised_once_per_build() -> None:
    made: list[str] = []
    materialised: list[ir.Table] = []

    def materialise(table: ir.Table) -> ir.Table:
        materialised.append(table)
        return table

    def make() -> ir.Table:
        made.append("x")
        return ibis.memtable({"user_id": ["a"]})

    shared, other = SharedTables(materialise), SharedTables(materialise)
    tables: dict[str, ir.Table] = {}
    first = ModelContext(tables, dt.date(2026, 1, 1), BuildSettings(), shared)
    second = ModelContext(tables, dt.date(2026, 1, 1), BuildSettings(), shared)
    assert first.shared.get("t", make) is second.shared.get("t", make)
    assert made == ["x"] and len(materialised) == 1
    # Another build has its own tables.
    other.get("t", make)
    assert made == ["x", "x"]


def test_one_build_makes_a_shared_table_once(tmp_path: Path) -> None:
    """Through the compiler: the makers of one build share its tables; a second build makes its own."""
    from huaxiang.engine import build, model_maker, registry

    made: list[str] = []

    def shared_users(context: ModelContext) -> ir.Table:
        def make() -> ir.Table:
            made.append("users")
            return context.tables["users"].select("user_id")

        return context.shared.get("users", make)

    for name in ("shared_a", "shared_b"):

        @model_maker(name, needs=("users.user_id",))
        def maker(context: ModelContext, params: Mapping[str, Any]) -> ModelOutput:
            return ModelOutput(shared_users(context).mutate(flag=ibis.literal(True)))

    try:
        root = tmp_path / "shop"
        (root / "data").mkdir(parents=True)
        pq.write_table(pa.table({"user_id": ["u1", "u2"]}), root / "data" / "users.parquet")
        (root / "tags").mkdir()
        (root / "tags" / "t.yaml").write_text(
            "- {id: a, name_zh: 甲, name_en: A, category: custom, type: boolean, "
            "model: {name: shared_a, params: {column: flag}}}\n"
            "- {id: b, name_zh: 乙, name_en: B, category: custom, type: boolean, "
            "model: {name: shared_b, params: {column: flag}}}\n",
            encoding="utf-8",
        )
        build(root, dt.date(2026, 1, 1))
        assert made == ["users"]
        build(root, dt.date(2026, 1, 2))
        assert made == ["users", "users"]
    finally:
        for name in ("shared_a", "shared_b"):
            registry.MODEL_MAKERS.pop(name, None)


def test_without_materialise_the_expression_is_kept() -> None:
    shared = SharedTables()
    table = ibis.memtable({"user_id": ["a"]})
    assert shared.get("t", lambda: table) is table
    assert ModelContext({}, dt.date(2026, 1, 1)).shared.tables == {}
