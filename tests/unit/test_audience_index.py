"""The bitmap index: building, exact matches with SQL null semantics, and parity with an Ibis filter."""

from __future__ import annotations

import decimal
import json
from pathlib import Path

import ibis
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from huaxiang.audience import (
    AudienceError,
    SnapshotIndex,
    build_index,
    build_index_from_table,
    check,
    evaluate,
    from_text,
    open_index,
    to_ibis,
)
from huaxiang.audience import build as build_module
from huaxiang.audience import index as index_module
from huaxiang.audience.definition import MAX_DEPTH, And, Condition, Node, Not, Or
from huaxiang.audience.synthetic import DEFINITIONS, synthetic_snapshot, synthetic_tags

D = decimal.Decimal
# Eight users, given out of user_id order on purpose; None is a null tag value.
ROWS = {
    "user_id": ["u8", "u1", "u2", "u3", "u4", "u5", "u6", "u7"],
    "vip": [True, True, False, None, True, False, None, False],
    "tier": [None, 1, 3, 3, 6, 2, 4, None],
    "stage": ["new", "active", "churned", None, "active", "new", "churned", "active"],
    "group": [
        "家庭/中产家庭",
        "千禧一代/精英青年",
        "千禧一代/有为青年",
        None,
        "其他人群",
        "家庭",
        "千禧一代/精英青年",
        None,
    ],
    "score": [0.5, 0.9, None, 0.5, 0.1, 0.95, 0.5, float("nan")],
    "spend": [D("10.50"), D("0.00"), None, D("99.99"), D("10.50"), D("250.00"), D("-3.25"), None],
}
TYPES = {
    "vip": "boolean",
    "tier": "integer",
    "stage": "enum",
    "group": "hierarchical_enum",
    "score": "probability",
    "spend": "number",
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> SnapshotIndex:
    table = pa.table(
        {
            **{k: v for k, v in ROWS.items() if k != "spend"},
            "spend": pa.array(ROWS["spend"], pa.decimal128(18, 2)),
        }
    )
    definitions = {name: {"type": kind} for name, kind in TYPES.items()}
    definitions["stage"]["values"] = [{"value": v} for v in ("new", "active", "churned", "dormant")]
    target = tmp_path_factory.mktemp("tiny") / "index"
    report = build_index_from_table(table, target, definitions=definitions, as_of="2026-10-31")
    assert (report.users, report.tags, report.skipped) == (8, 6, {})
    return SnapshotIndex(target)


def members(index: SnapshotIndex, text: str) -> list[str]:
    node = check(from_text(text), index.specs)
    found = evaluate(node, index)
    return [index.user_ids[i].as_py() for i in found]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("vip", ["u1", "u4", "u8"]),
        ("vip = false", ["u2", "u5", "u7"]),
        ("NOT vip", ["u2", "u5", "u7"]),  # u3, u6 have no value: NOT unknown is unknown
        ("vip IS NULL", ["u3", "u6"]),
        ("tier IN (3, 4)", ["u2", "u3", "u6"]),
        ("tier != 3", ["u1", "u4", "u5", "u6"]),  # nulls (u7, u8) are never != anything
        ("NOT tier = 3", ["u1", "u4", "u5", "u6"]),
        ("tier BETWEEN 2 AND 4", ["u2", "u3", "u5", "u6"]),
        ("tier > 2.5", ["u2", "u3", "u4", "u6"]),
        ("tier <= 2.5", ["u1", "u5"]),
        ("tier = 2.5", []),
        ("stage = 'dormant'", []),  # declared by the catalog, held by nobody
        ("stage != 'active'", ["u2", "u5", "u6", "u8"]),
        ("group = '千禧一代'", ["u1", "u2", "u6"]),  # a parent is the union of its children
        ("group = '家庭'", ["u5", "u8"]),  # a parent that is also a value of its own
        ("group != '千禧一代'", ["u4", "u5", "u8"]),
        ("group IN ('千禧一代/精英青年', '其他人群')", ["u1", "u4", "u6"]),
        ("score >= 0.5", ["u1", "u3", "u5", "u6", "u8"]),  # NaN (u7) counts as null
        ("score IS NULL", ["u2", "u7"]),
        ("score = 0.5", ["u3", "u6", "u8"]),
        ("score < 0.5", ["u4"]),
        ("spend >= 10.5", ["u3", "u4", "u5", "u8"]),
        ("spend > 10.5", ["u3", "u5"]),
        ("spend = 10.5", ["u4", "u8"]),
        ("spend = 10.505", []),
        ("spend < 0", ["u6"]),
        ("spend BETWEEN 0 AND 10.499", ["u1"]),
        ("spend IS NOT NULL AND NOT spend > 0", ["u1", "u6"]),
        ("vip OR tier = 3", ["u1", "u2", "u3", "u4", "u8"]),
        ("NOT (vip OR tier = 3)", ["u5"]),  # u6, u7: false OR unknown = unknown
        ("NOT (vip AND tier >= 3)", ["u1", "u2", "u5", "u7"]),  # u7: false AND unknown = false
        ("NOT NOT vip", ["u1", "u4", "u8"]),
    ],
)
def test_matches_follow_sql_semantics(tiny: SnapshotIndex, text: str, expected: list[str]) -> None:
    assert members(tiny, text) == expected


def test_dictionary_follows_user_id_order(tiny: SnapshotIndex) -> None:
    assert tiny.user_ids.to_pylist() == ["u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8"]
    assert tiny.value_counts("group") == {
        "其他人群": 1,
        "千禧一代": 3,
        "千禧一代/有为青年": 1,
        "千禧一代/精英青年": 2,
        "家庭": 2,
        "家庭/中产家庭": 1,
    }
    assert tiny.specs["stage"].values == ("active", "churned", "dormant", "new")


def test_index_is_read_lazily(tmp_path: Path) -> None:
    folder = synthetic_snapshot(tmp_path, 200)
    index = open_index(folder)
    assert index._bitmaps == {} and index._numbers == {} and index._blob is None
    index.match("segment", "=", "vip")
    assert set(index._bitmaps) == {("segment", "vip")}
    assert index._numbers == {}
    index.close()


def test_build_is_atomic_and_refuses_to_overwrite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = synthetic_snapshot(tmp_path, 50)

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(build_module, "_write_index", broken)
    with pytest.raises(OSError, match="disk full"):
        build_index(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "tags.parquet"]
    monkeypatch.undo()
    report = build_index(folder)
    assert report.path == folder / "index" and report.users == 50 and report.tags == 9
    assert sorted(p.name for p in report.path.iterdir()) == [
        "bitmaps.bin",
        "index.json",
        "numbers",
        "users.parquet",
    ]
    with pytest.raises(AudienceError, match="already exists; remove it to rebuild the index"):
        build_index(folder)


def test_bad_tables_are_refused(tmp_path: Path) -> None:
    with pytest.raises(AudienceError, match="duplicate user_id"):
        build_index_from_table(pa.table({"user_id": ["a", "a"], "x": [1, 2]}), tmp_path / "a")
    with pytest.raises(AudienceError, match="no user_id column"):
        build_index_from_table(pa.table({"x": [1, 2]}), tmp_path / "b")
    report = build_index_from_table(
        pa.table({"user_id": ["a", "b"], "xs": pa.array([[1], [2]]), "t": pa.array(["1", "2"])}),
        tmp_path / "c",
        definitions={"t": {"type": "integer"}},
    )
    assert report.skipped == {
        "xs": "column type list<item: int64> cannot be indexed",
        "t": "tag type integer but column type string",
    }
    assert not list(tmp_path.glob(".*tmp*"))


# ---------------------------------------------------------------------------- parity (hypothesis)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[SnapshotIndex, ibis.Table, pa.Table]:
    folder = synthetic_snapshot(tmp_path_factory.mktemp("syn"), 300, seed=11)
    index = open_index(folder)
    con = ibis.duckdb.connect()
    table = con.read_parquet(folder / "tags.parquet")
    return index, table, pq.read_table(folder / "tags.parquet")


def _condition(tags: pa.Table) -> st.SearchStrategy[Node]:
    def values_of(name: str) -> list[object]:
        seen = [v for v in tags.column(name).to_pylist() if v is not None]
        return sorted(set(seen), key=str)

    strategies: list[st.SearchStrategy[Node]] = []
    for name, definition in DEFINITIONS.items():
        kind = definition["type"]
        null_ops = st.sampled_from(["is null", "is not null"]).map(lambda op, n=name: Condition(n, op))
        strategies.append(null_ops)
        if kind == "boolean":
            strategies.append(
                st.tuples(st.sampled_from(["=", "!="]), st.booleans()).map(lambda p, n=name: Condition(n, *p))
            )
        elif kind in ("enum", "hierarchical_enum"):
            pool = [v["value"] for v in definition["values"]]
            if kind == "hierarchical_enum":
                pool += ["千禧一代", "家庭"]
            one = st.sampled_from(pool)
            strategies.append(
                st.tuples(st.sampled_from(["=", "!="]), one).map(lambda p, n=name: Condition(n, *p))
            )
            strategies.append(
                st.lists(one, min_size=1, max_size=3).map(lambda vs, n=name: Condition(n, "in", tuple(vs)))
            )
        else:
            seen = [float(v) for v in values_of(name)]
            number = st.one_of(
                st.sampled_from(seen),
                st.floats(min(seen) - 1, max(seen) + 1, allow_nan=False).map(lambda x: round(x, 3)),
            )
            if kind == "integer":
                number = st.one_of(st.sampled_from([int(v) for v in seen]), number)
            if kind == "probability":
                number = number.map(lambda x: min(max(x, 0.0), 1.0))
            strategies.append(
                st.tuples(st.sampled_from(["=", "!=", ">=", "<=", ">", "<"]), number).map(
                    lambda p, n=name: Condition(n, *p)
                )
            )
            strategies.append(
                st.tuples(number, number).map(lambda p, n=name: Condition(n, "between", (min(p), max(p))))
            )
            strategies.append(
                st.lists(number, min_size=1, max_size=3).map(lambda vs, n=name: Condition(n, "in", tuple(vs)))
            )
    return st.one_of(strategies)


def _trees(tags: pa.Table) -> st.SearchStrategy[Node]:
    return st.recursive(
        _condition(tags),
        lambda children: st.one_of(
            st.lists(children, min_size=2, max_size=4).map(lambda xs: And(tuple(xs))),
            st.lists(children, min_size=2, max_size=4).map(lambda xs: Or(tuple(xs))),
            children.map(Not),
        ),
        max_leaves=12,
    )


def _depth(node: Node) -> int:
    if isinstance(node, And | Or):
        return 1 + max(_depth(item) for item in node.items)
    if isinstance(node, Not):
        return 1 + _depth(node.item)
    return 1


_SYNTHETIC_TAGS = synthetic_tags(300, seed=11)  # the same table the ``synthetic`` fixture writes


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=_trees(_SYNTHETIC_TAGS))
def test_bitmaps_match_an_ibis_filter_on_random_trees(
    synthetic: tuple[SnapshotIndex, ibis.Table, pa.Table], tree: Node
) -> None:
    index, table, _ = synthetic
    if _depth(tree) > MAX_DEPTH:
        return
    node = check(tree, index.specs)
    from_bitmaps = [index.user_ids[i].as_py() for i in evaluate(node, index)]
    hierarchical = frozenset({"finance_group"})
    expr = to_ibis(node, table, hierarchical=hierarchical)
    from_sql = table.filter(expr).select("user_id").order_by("user_id").to_pyarrow().column(0).to_pylist()
    assert from_bitmaps == from_sql


def test_synthetic_snapshot_matches_its_manifest(tmp_path: Path) -> None:
    folder = synthetic_snapshot(tmp_path, 1000)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    schema = pq.read_schema(folder / "tags.parquet")
    assert schema.names == ["user_id", *manifest["definitions"]]
    assert schema.field("spend_365d").type == pa.decimal128(18, 2)


def test_index_of_an_older_format_is_rebuilt(tmp_path: Path) -> None:
    folder = synthetic_snapshot(tmp_path, 100)
    build_index(folder)
    meta_path = folder / "index" / "index.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["format"] = 1
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(AudienceError, match="has format 1, this version reads"):
        SnapshotIndex(folder / "index")
    index = open_index(folder)
    assert index.meta["format"] == index_module.FORMAT_VERSION
    assert sorted(p.name for p in folder.iterdir()) == ["index", "manifest.json", "tags.parquet"]


@pytest.mark.parametrize(
    "text",
    [
        "age >= 30",
        "age < 30 OR age > 60",
        "age IN (20, 21, 22, 23, 40, 70)",
        "age BETWEEN 25 AND 45",
        "age != 33",
        "outing_score > 0.1",
        "outing_score BETWEEN 0.05 AND 0.95",
        "spend_365d >= 500.5 AND NOT spend_365d > 5000",
        "margin <= 0 OR margin IN (20.5, -3)",
        "city_tier IN (3, 4, 5, 6)",
        "age <= 69",
        "age > 16",
        "NOT age BETWEEN 17 AND 69",
    ],
)
def test_ranges_through_many_buckets_match_ibis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    monkeypatch.setattr(build_module, "bucket_size", lambda count: 7)  # 43 buckets of 7 ids for age
    monkeypatch.setattr(index_module, "PREFIX_EVERY", 4)  # and a prefix bitmap every 28 positions
    folder = synthetic_snapshot(tmp_path, 300, seed=11)
    index = open_index(folder)
    assert index.entry("age")["bucket_size"] == 7 and len(index.entry("age")["buckets"]) == 43
    assert len(index.entry("age")["prefixes"]) == 10
    node = check(from_text(text), index.specs)
    table = ibis.duckdb.connect().read_parquet(folder / "tags.parquet")
    expected = table.filter(to_ibis(node, table)).select("user_id").order_by("user_id").to_pyarrow()
    found = [index.user_ids[i].as_py() for i in evaluate(node, index)]
    assert found == expected.column(0).to_pylist()
    assert 0 < len(found) < 300


def test_results_are_the_callers_own(tiny: SnapshotIndex) -> None:
    for text in ("vip", "NOT NOT vip", "tier IS NULL"):
        node = check(from_text(text), tiny.specs)
        first = evaluate(node, tiny)
        first.clear()  # must not empty the index's cached bitmap
        assert len(evaluate(node, tiny)) > 0, text
