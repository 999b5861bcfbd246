"""The tag rule language: parse, check, compile to Ibis and run on DuckDB."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlglot import exp

from huaxiang.catalog import Rule, compile_rule, parse_rule
from huaxiang.catalog.rules import checker as check_module
from huaxiang.catalog.rules import compiler as compile_module
from huaxiang.catalog.rules import kind_of_tag_type
from huaxiang.catalog.rules.language import ALLOWED_ARGS, number_value
from huaxiang.errors import ConfigError, RuleError

# ---------------------------------------------------------------------------- data

KNOWN: dict[str, Any] = {
    "age": "number",
    "city_tier": "number",
    "child_probability": "number",
    "monetary_365d": "number",
    "frequency_365d": "number",
    "score": "number",
    "gender": "string",
    "finance_group": "string",
    "has_grade_stage": "boolean",
    "is_buyer": "boolean",
}

# Five users; NULLs on purpose. monetary_365d is DECIMAL(18,2), as money is stored.
USERS = pa.table(
    {
        "user_id": pa.array([1, 2, 3, 4, 5], pa.int64()),
        "age": pa.array([20, 30, None, 60, 40], pa.int64()),
        "city_tier": pa.array([1, 2, 3, None, 5], pa.int64()),
        "child_probability": pa.array([0.1, 0.8, 0.5, None, 0.9]),
        "monetary_365d": pa.array(
            [Decimal("100.00"), Decimal("0.00"), Decimal("50.50"), None, Decimal("300.00")],
            pa.decimal128(18, 2),
        ),
        "frequency_365d": pa.array([2, 0, 1, None, 3], pa.int64()),
        "score": pa.array([1.5, -2.0, 0.0, None, 4.0]),
        "gender": pa.array(["女", "男", None, "女", "男"]),
        "finance_group": pa.array(
            ["千禧一代/精英青年", "千禧一代/普通蓝领青年", "工薪/服务工薪", None, "家庭/中产家庭"]
        ),
        "has_grade_stage": pa.array([True, False, None, True, False]),
        "is_buyer": pa.array([True, False, True, None, True]),
    }
)


@pytest.fixture(scope="module")
def con() -> Any:
    return ibis.duckdb.connect()


@pytest.fixture(scope="module")
def users() -> ir.Table:
    return ibis.memtable(USERS)


def run(con: Any, table: ir.Table, value: ir.Value) -> list[Any]:
    """The value for each user, in user_id order."""
    result = con.to_pyarrow(table.select("user_id", value=value).order_by("user_id"))
    return result["value"].to_pylist()


def values(con: Any, table: ir.Table, text: str, known: Mapping[str, Any] = KNOWN) -> list[Any]:
    return run(con, table, compile_rule(parse_rule(text, known), table))


def message(text: str, known: Mapping[str, Any] = KNOWN, **options: Any) -> str:
    with pytest.raises(RuleError) as caught:
        parse_rule(text, known, **options)
    return str(caught.value)


# ---------------------------------------------------------------------------- the API


def test_parse_rule_returns_text_tree_references_and_kind() -> None:
    rule = parse_rule(
        "city_tier IN (1,2) AND age BETWEEN 26 AND 55 AND monetary_365d >= mean(monetary_365d, is_buyer)",
        KNOWN,
    )
    assert isinstance(rule, Rule)
    assert rule.kind == "boolean"
    assert rule.references == frozenset({"city_tier", "age", "monetary_365d", "is_buyer"})
    assert isinstance(rule.tree, exp.And)
    assert rule.text.startswith("city_tier IN (1,2)")
    value_rule = parse_rule("floor(monetary_365d / frequency_365d / 5) * 5", KNOWN)
    assert value_rule.kind == "number"
    assert parse_rule("lower(gender)", KNOWN).kind == "string"
    assert parse_rule("age > 18", KNOWN, expect="boolean").kind == "boolean"


def test_checker_compiler_and_allow_list_cover_the_same_classes() -> None:
    checked = set(check_module._HANDLERS)
    assert checked == set(compile_module._COMPILERS)
    assert checked == set(ALLOWED_ARGS) - {exp.If}  # WHEN branches live inside CASE only
    assert all(issubclass(cls, exp.Expr) for cls in checked)


def test_rule_errors_are_config_errors_with_position() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_rule("age > 1 AND\n  agee < 3", KNOWN)
    assert isinstance(caught.value, RuleError)
    assert (caught.value.line, caught.value.column) == (2, 3)
    assert caught.value.http_status == 400


def test_tag_types_map_to_value_kinds() -> None:
    assert [kind_of_tag_type(t) for t in ("boolean", "enum", "hierarchical_enum")] == [
        "boolean",
        "string",
        "string",
    ]
    assert {kind_of_tag_type(t) for t in ("integer", "number", "probability")} == {"number"}
    with pytest.raises(RuleError, match="unknown tag value type 'enmu'.*Did you mean 'enum'"):
        kind_of_tag_type("enmu")


# ---------------------------------------------------------------------------- allowed constructs

ALLOWED = [
    # literals and columns
    ("age", [20, 30, None, 60, 40]),
    ("1.5", [1.5] * 5),
    ("'男'", ["男"] * 5),
    ("TRUE", [True] * 5),
    ("has_grade_stage", [True, False, None, True, False]),
    # comparison
    ("age = 30", [False, True, None, False, False]),
    ("age != 30", [True, False, None, True, True]),
    ("age <> 30", [True, False, None, True, True]),
    ("age < 30", [True, False, None, False, False]),
    ("age <= 30", [True, True, None, False, False]),
    ("age > 30", [False, False, None, True, True]),
    ("age >= 30", [False, True, None, True, True]),
    ("gender = '女'", [True, False, None, True, False]),
    ("has_grade_stage = FALSE", [False, True, None, False, True]),
    ("monetary_365d = 50.5", [False, False, True, None, False]),
    # IN, NOT IN, BETWEEN
    ("city_tier IN (1, 2)", [True, True, False, None, False]),
    ("city_tier NOT IN (1, 2)", [False, False, True, None, True]),
    ("gender IN ('男')", [False, True, None, False, True]),
    ("age IN (city_tier * 20, 40)", [True, False, None, None, True]),
    ("age BETWEEN 26 AND 55", [False, True, None, False, True]),
    ("age NOT BETWEEN 26 AND 55", [True, False, None, True, False]),
    ("city_tier BETWEEN 3 AND 6", [False, False, True, None, True]),
    # IS NULL
    ("age IS NULL", [False, False, True, False, False]),
    ("age IS NOT NULL", [True, True, False, True, True]),
    # logic (three-valued)
    ("has_grade_stage AND age > 25", [False, False, None, True, False]),
    ("has_grade_stage OR age > 25", [True, True, None, True, True]),
    ("NOT has_grade_stage", [False, True, None, False, True]),
    ("NOT (age > 25)", [True, False, None, False, False]),
    ("(age > 25 OR gender = '女') AND NOT city_tier = 5", [True, True, None, None, False]),
    # arithmetic; decimals read as float; division by zero is NULL
    ("age + 1", [21, 31, None, 61, 41]),
    ("age - city_tier", [19, 28, None, None, 35]),
    ("age * 2", [40, 60, None, 120, 80]),
    ("age / 8", [2.5, 3.75, None, 7.5, 5.0]),
    ("monetary_365d / frequency_365d", [50.0, None, 50.5, None, 100.0]),
    ("-score", [-1.5, 2.0, -0.0, None, -4.0]),
    ("-(age - 50)", [30, 20, None, -10, 10]),
    ("(age + 10) * 2 - 1", [59, 79, None, 139, 99]),
    ("monetary_365d * 1.5", [150.0, 0.0, 75.75, None, 450.0]),
    # the purchasing-power band of the SPEC: 5-yuan intervals of spend per order
    ("floor(monetary_365d / frequency_365d / 5) * 5", [50, None, 50, None, 100]),
    # LIKE on hierarchical values
    ("finance_group LIKE '千禧一代/%'", [True, True, False, None, False]),
    ("finance_group NOT LIKE '千禧一代/%'", [False, False, True, None, True]),
    ("finance_group LIKE '%青年'", [True, True, False, None, False]),
    # CASE
    (
        "CASE WHEN age >= 56 THEN '银发' WHEN age <= 25 THEN '年轻' ELSE '其他' END",
        ["年轻", "其他", "其他", "银发", "其他"],
    ),
    ("CASE WHEN age > 25 THEN 1 END", [None, 1, None, 1, 1]),
    ("CASE gender WHEN '女' THEN 1 WHEN '男' THEN 2 ELSE 0 END", [1, 2, 0, 1, 2]),
    ("CASE WHEN has_grade_stage THEN NULL ELSE age END", [None, 30, None, None, 40]),
    # scalar functions
    ("abs(score)", [1.5, 2.0, 0.0, None, 4.0]),
    ("floor(score)", [1, -2, 0, None, 4]),
    ("ceil(score)", [2, -2, 0, None, 4]),
    ("ceiling(score)", [2, -2, 0, None, 4]),
    ("round(score)", [2, -2, 0, None, 4]),
    ("round(-score)", [-2, 2, 0, None, -4]),
    ("round(monetary_365d / 3, 1)", [33.3, 0.0, 16.8, None, 100.0]),
    ("round(age, -1)", [20, 30, None, 60, 40]),
    ("least(age, city_tier * 20)", [20, 30, 60, 60, 40]),
    ("greatest(age, city_tier * 20)", [20, 40, 60, 60, 100]),
    ("coalesce(age, 0)", [20, 30, 0, 60, 40]),
    ("coalesce(has_grade_stage, FALSE)", [True, False, False, True, False]),
    ("coalesce(gender, '未知')", ["女", "男", "未知", "女", "男"]),
    ("nullif(frequency_365d, 0)", [2, None, 1, None, 3]),
    ("nullif(gender, '男')", ["女", None, None, "女", None]),
    ("sqrt(score)", [math.sqrt(1.5), None, 0.0, None, 2.0]),
    ("ln(score)", [math.log(1.5), None, None, None, math.log(4.0)]),
    ("exp(score)", [math.exp(1.5), math.exp(-2.0), 1.0, None, math.exp(4.0)]),
    ("exp(score * 1000)", [None, 0.0, 1.0, None, None]),
    ("power(age, 2)", [400.0, 900.0, None, 3600.0, 1600.0]),
    ("pow(score, 0.5)", [math.sqrt(1.5), None, 0.0, None, 2.0]),
    ("power(score, -1)", [1 / 1.5, -0.5, None, None, 0.25]),
    ("lower(gender)", ["女", "男", None, "女", "男"]),
    ("upper('vip')", ["VIP"] * 5),
    ("length(finance_group)", [9, 11, 7, None, 7]),
    # quoted tag ids are tag ids
    ('"age" > 25', [False, True, None, True, True]),
]


@pytest.mark.parametrize(("text", "expected"), ALLOWED, ids=[text for text, _ in ALLOWED])
def test_allowed_construct(con: Any, users: ir.Table, text: str, expected: list[Any]) -> None:
    got = values(con, users, text)
    assert len(got) == len(expected)
    for value, want in zip(got, expected, strict=True):
        if isinstance(want, float) and value is not None:
            assert value == pytest.approx(want), (text, got)
        else:
            assert value == want, (text, got)


def test_strings_are_never_sql(con: Any, users: ir.Table) -> None:
    # A quote inside a string literal stays data: it reaches DuckDB as a bound value.
    hostile = "gender = 'x''; DROP TABLE users; --'"
    assert values(con, users, hostile) == [False, False, None, False, False]
    assert values(con, users, "gender = '女'") == [True, False, None, True, False]


# ---------------------------------------------------------------------------- NULL semantics


def test_null_tag_makes_a_comparison_null_not_false(con: Any, users: ir.Table) -> None:
    # Three-valued logic: user 3 has no age, so "age > 25" is unknown (NULL) ...
    assert values(con, users, "age > 25") == [False, True, None, True, True]
    # ... and so is its negation: NOT NULL is NULL, never true.
    assert values(con, users, "NOT (age > 25)") == [True, False, None, False, False]
    # FALSE AND NULL is FALSE, TRUE OR NULL is TRUE; otherwise NULL stays NULL.
    assert values(con, users, "FALSE AND age > 25")[2] is False
    assert values(con, users, "TRUE OR age > 25")[2] is True
    assert values(con, users, "TRUE AND age > 25")[2] is None


def test_null_condition_is_not_true_in_filters_and_cases(con: Any, users: ir.Table) -> None:
    for text in ("age > 25", "NOT (age > 25)"):
        condition = compile_rule(parse_rule(text, KNOWN, expect="boolean"), users)
        kept = con.to_pyarrow(users.filter(condition).select("user_id"))["user_id"].to_pylist()
        assert 3 not in kept
        labelled = run(con, users, ibis.cases((condition, "yes"), else_="no"))
        assert labelled[2] == "no"


def test_coalesce_turns_unknown_into_a_decision(con: Any, users: ir.Table) -> None:
    assert values(con, users, "coalesce(age > 25, FALSE)") == [False, True, False, True, True]
    assert values(con, users, "age > 25 OR age IS NULL") == [False, True, True, True, True]


# ---------------------------------------------------------------------------- statistics

# Hand-computed over USERS:
#   monetary_365d, all non-NULL: 100, 0, 50.5, 300      -> mean 112.625, median 75.25
#   ... of buyers (frequency > 0): 100, 50.5, 300         -> mean 150.1666..., median 100
#   score: 1.5, -2, 0, 4 -> min -2, max 4; where is_buyer (users 1, 3, 5): 1.5, 0, 4
#   share(has_grade_stage): 2 of 5 rows (NULL counts as not true); among age > 25 (users 2, 4, 5): 1 of 3
STATISTICS = [
    ("mean(monetary_365d)", 112.625),
    ("mean(monetary_365d, frequency_365d > 0)", 450.5 / 3),
    ("mean(monetary_365d, is_buyer)", 450.5 / 3),
    ("median(monetary_365d)", 75.25),
    ("median(monetary_365d, frequency_365d > 0)", 100.0),
    ("quantile(monetary_365d, 0.25)", 37.875),
    ("quantile(monetary_365d, 0.25, frequency_365d > 0)", 75.25),
    ("quantile(monetary_365d, 0)", 0.0),
    ("quantile(monetary_365d, 1)", 300.0),
    ("quantile(monetary_365d, 0.8, frequency_365d > 0)", 220.0),
    ("min_of(score)", -2.0),
    ("min_of(score, is_buyer)", 0.0),
    ("max_of(score)", 4.0),
    ("max_of(score, is_buyer AND score < 4)", 1.5),
    ("share(has_grade_stage)", 0.4),
    ("share(has_grade_stage, age > 25)", 1 / 3),
    ("share(age > 25)", 0.6),
    ("mean(monetary_365d / frequency_365d)", (50 + 50.5 + 100) / 3),
    ("mean(monetary_365d, age > 100)", None),
]


@pytest.mark.parametrize(("text", "expected"), STATISTICS, ids=[text for text, _ in STATISTICS])
def test_population_statistic(con: Any, users: ir.Table, text: str, expected: float | None) -> None:
    got = values(con, users, text)
    # One value, broadcast to every row.
    assert len(set(got)) == 1
    assert got[0] == (pytest.approx(expected) if expected is not None else None)


def test_statistic_in_a_condition_compiles_to_a_filtered_window(con: Any, users: ir.Table) -> None:
    rule = parse_rule("monetary_365d >= mean(monetary_365d, frequency_365d > 0)", KNOWN)
    condition = compile_rule(rule, users)
    assert run(con, users, condition) == [False, False, False, None, True]
    sql = ibis.to_sql(users.select(v=condition), dialect="duckdb")
    assert "FILTER(WHERE" in sql and "OVER (" in sql
    # As a filter Ibis makes it a scalar subquery; the population is still the whole table.
    kept = con.to_pyarrow(users.filter(condition).select("user_id"))["user_id"].to_pylist()
    assert kept == [5]


def test_statistic_is_over_all_rows_of_the_table_given(con: Any, users: ir.Table) -> None:
    buyers = users.filter(users.frequency_365d > 0)
    assert values(con, buyers, "mean(monetary_365d)") == [pytest.approx(450.5 / 3)] * 3


# ---------------------------------------------------------------------------- SPEC: ten target groups

TEN_GROUPS = [
    ("学生一族", "has_grade_stage AND age <= 25"),
    ("银发一族", "age >= 56"),
    ("都市家庭", "city_tier IN (1,2) AND child_probability >= 0.5"),
    ("小镇家庭", "city_tier BETWEEN 3 AND 6 AND child_probability >= 0.5"),
    ("都市Z世代", "city_tier IN (1,2) AND age <= 25"),
    (
        "都市中产",
        "city_tier IN (1,2) AND age BETWEEN 26 AND 55 AND monetary_365d >= mean(monetary_365d, is_buyer)",
    ),
    (
        "都市蓝领",
        "city_tier IN (1,2) AND age BETWEEN 26 AND 55 AND monetary_365d <  mean(monetary_365d, is_buyer)",
    ),
    ("小镇中年", "city_tier BETWEEN 3 AND 6 AND age >= 36 AND low_spend_pattern"),
    ("小镇青年", "city_tier BETWEEN 3 AND 6 AND age BETWEEN 16 AND 35 AND low_spend_pattern"),
    (
        "小镇中产",
        "city_tier BETWEEN 3 AND 6 AND frequency_365d > mean(frequency_365d, is_buyer) "
        "AND monetary_365d > mean(monetary_365d, is_buyer)",
    ),
]
LOW_SPEND = """
    (frequency_365d > mean(frequency_365d, is_buyer) AND monetary_365d <= mean(monetary_365d, is_buyer))
    OR (frequency_365d < mean(frequency_365d, is_buyer) AND monetary_365d < mean(monetary_365d, is_buyer))
"""

# One user per group. Buyers are users 1-10: mean frequency 31 / 10 = 3.1, mean spend 4850 / 10 = 485.
# (user, tier, age, child probability, grade stage, orders, spend, expected group)
TARGET_USERS = [
    (1, 1, 19, 0.1, True, 2, 200, "学生一族"),
    (2, 3, 60, 0.2, False, 1, 100, "银发一族"),
    (3, 2, 35, 0.8, False, 4, 900, "都市家庭"),
    (4, 4, 33, 0.7, False, 2, 300, "小镇家庭"),
    (5, 1, 22, 0.1, False, 1, 50, "都市Z世代"),
    (6, 1, 40, 0.2, False, 5, 1500, "都市中产"),
    (7, 2, 30, 0.3, False, 3, 200, "都市蓝领"),
    (8, 5, 45, 0.1, False, 1, 100, "小镇中年"),  # both below the means
    (9, 3, 28, 0.2, False, 6, 300, "小镇青年"),  # more orders than the mean, spend at most the mean
    (10, 6, 50, 0.1, False, 6, 1200, "小镇中产"),  # both above the means: not low spend
    (11, None, 40, 0.9, False, 0, 0, "未识别"),  # no city tier: every tier condition is NULL
    (12, 1, None, None, None, 0, 0, "未识别"),  # no age, no child probability
]


def test_ten_target_groups_first_match_wins(con: Any) -> None:
    columns = list(zip(*TARGET_USERS, strict=True))
    table = ibis.memtable(
        pa.table(
            {
                "user_id": pa.array(columns[0], pa.int64()),
                "city_tier": pa.array(columns[1], pa.int64()),
                "age": pa.array(columns[2], pa.int64()),
                "child_probability": pa.array(columns[3], pa.float64()),
                "has_grade_stage": pa.array(columns[4], pa.bool_()),
                "frequency_365d": pa.array(columns[5], pa.int64()),
                "monetary_365d": pa.array([Decimal(v) for v in columns[6]], pa.decimal128(18, 2)),
            }
        )
    )
    table = table.mutate(is_buyer=table.frequency_365d > 0)
    # A helper tag is a rule like any other; later rules read it as a column.
    low_spend = parse_rule(LOW_SPEND, KNOWN, origin="tags/target.yaml:30 (tag low_spend_pattern)")
    table = table.mutate(low_spend_pattern=compile_rule(low_spend, table))
    known = {**KNOWN, "low_spend_pattern": "boolean"}
    branches = []
    for line, (group, condition) in enumerate(TEN_GROUPS, start=5):
        origin = f"tags/target.yaml:{line} (tag target_group_10, case {group})"
        rule = parse_rule(condition, known, origin=origin, expect="boolean")
        branches.append((compile_rule(rule, table), group))
    groups = run(con, table, ibis.cases(*branches, else_="未识别"))
    assert groups == [expected for *_, expected in TARGET_USERS]


# ---------------------------------------------------------------------------- refused, with exact messages

ORIGIN = "tags/rfm.yaml:12 (tag rfm_class, case 重要价值客户)"
FUNCTION_LIST = (
    " Allowed functions: abs, ceil, coalesce, exp, floor, greatest, least, length, ln, lower, nullif, "
    "power, round, sqrt, upper; statistics: mean, median, quantile, min_of, max_of, share."
)

REFUSED = [
    # unknown tags
    ("agee > 30", "rule: unknown tag 'agee' (line 1, column 1). Did you mean 'age'?"),
    ("AGE > 30", "rule: unknown tag 'AGE' (line 1, column 1). Did you mean 'age'?"),
    (
        "age > 18 AND\n  citytier IN (1, 2)",
        "rule: unknown tag 'citytier' (line 2, column 3). Did you mean 'city_tier'?",
    ),
    (
        "zodiac = 'x'",
        "rule: unknown tag 'zodiac' (line 1, column 1). "
        "Check the spelling, or define the tag in the catalog first.",
    ),
    (
        'gender = "女"',
        "rule: unknown tag '女' (line 1, column 10). Check the spelling, or define the tag in the "
        "catalog first. Text values take single quotes: 'like this'.",
    ),
    (
        "users.age > 30",
        "rule: qualified name 'users.age' is not allowed (line 1, column 1). "
        "Refer to a tag by its id alone, e.g. age.",
    ),
    # functions
    (
        "flor(score) > 1",
        "rule: function 'flor' is not allowed (line 1, column 1). Did you mean 'floor'?" + FUNCTION_LIST,
    ),
    (
        "mediam(age) > 1",
        "rule: function 'mediam' is not allowed (line 1, column 1). Did you mean 'median'?" + FUNCTION_LIST,
    ),
    (
        "regexp_matches(gender, 'x')",
        "rule: function 'regexp_matches' is not allowed (line 1, column 1)." + FUNCTION_LIST,
    ),
    (
        "age > avg(age)",
        "rule: aggregate function 'avg' is not allowed (line 1, column 7). "
        "Use mean(x) for the population mean instead." + FUNCTION_LIST,
    ),
    (
        "count(*) > 10",
        "rule: aggregate function 'count' is not allowed (line 1, column 1). "
        "Use share(cond) for the fraction of users where cond holds instead." + FUNCTION_LIST,
    ),
    (
        "log(score) > 1",
        "rule: function 'log' is not allowed (line 1, column 1). Use ln(x) instead." + FUNCTION_LIST,
    ),
    (
        "if(has_grade_stage, 1, 0)",
        "rule: function 'if' is not allowed (line 1, column 1). "
        "Use CASE WHEN ... THEN ... ELSE ... END instead." + FUNCTION_LIST,
    ),
    # statements, subqueries, several statements
    (
        "SELECT age FROM users",
        "rule: SQL statements are not allowed: 'SELECT' (line 1, column 1). "
        "A rule is one expression over tags, such as age >= 18.",
    ),
    (
        "DROP TABLE users",
        "rule: SQL statements are not allowed: 'DROP' (line 1, column 1). "
        "A rule is one expression over tags, such as age >= 18.",
    ),
    (
        "1=1; DROP TABLE x",
        "rule: ';' is not allowed (line 1, column 4). A rule is one expression, not a list of "
        "statements: remove the ';' and anything after it.",
    ),
    (
        "age > 18;",
        "rule: ';' is not allowed (line 1, column 9). A rule is one expression, not a list of "
        "statements: remove the ';' and anything after it.",
    ),
    (
        "age > (SELECT avg(age) FROM users)",
        'rule: subqueries are not allowed: "(SELECT avg(age) FROM users)" (line 1, column 7). '
        "A rule reads the tags of one user; for population figures use mean, median, quantile, "
        "min_of, max_of or share.",
    ),
    (
        "age IN (SELECT age FROM vip)",
        'rule: subqueries are not allowed: "(SELECT age FROM vip)" (line 1, column 8). '
        "A rule reads the tags of one user; for population figures use mean, median, quantile, "
        "min_of, max_of or share.",
    ),
    (
        "EXISTS (SELECT 1)",
        'rule: subqueries are not allowed: "EXISTS (SELECT 1)" (line 1, column 1). '
        "A rule reads the tags of one user; for population figures use mean, median, quantile, "
        "min_of, max_of or share.",
    ),
    # star, windows
    ("*", "rule: '*' is not allowed (line 1, column 1). Name each tag by its id."),
    (
        "age > sum(age) OVER (PARTITION BY city_tier)",
        'rule: window functions are not allowed: "sum(age) OVER (PARTITION BY city_tier)" '
        "(line 1, column 7). For population figures use mean, median, quantile, min_of, max_of or share.",
    ),
    # comment tricks
    (
        "age > 18 -- AND city_tier = 1",
        "rule: comments are not allowed: '-- AND city_tier = 1' (line 1, column 10). "
        "Put notes in the tag's description instead.",
    ),
    (
        "age > 18 /* ; DROP TABLE users */ AND city_tier = 1",
        "rule: comments are not allowed: '/* ; DROP TABLE users */' (line 1, column 10). "
        "Put notes in the tag's description instead.",
    ),
    (
        "/*+ hint */ age > 18",
        "rule: comments are not allowed: '/*+ hint */' (line 1, column 1). "
        "Put notes in the tag's description instead.",
    ),
    # types
    (
        "age > 'abc'",
        "rule: type error in \"age > 'abc'\" (line 1, column 1): cannot compare a number with a string. "
        "Write numbers without quotes (age > 30) and text in single quotes (gender = '女').",
    ),
    (
        "gender = 1",
        'rule: type error in "gender = 1" (line 1, column 1): cannot compare a string with a number. '
        "Write numbers without quotes (age > 30) and text in single quotes (gender = '女').",
    ),
    (
        "has_grade_stage = 1",
        'rule: type error in "has_grade_stage = 1" (line 1, column 1): '
        "cannot compare a boolean (true/false) with a number.",
    ),
    (
        "gender + 1",
        "rule: type error in \"gender + 1\" (line 1, column 1): '+' needs a number, but gender is a string.",
    ),
    (
        "age > 1 AND upper(gender) * 2 > 3",
        "rule: type error in \"upper(gender) * 2\" (line 1, column 13): '*' needs a number, "
        "but upper(gender) is a string.",
    ),
    (
        "NOT age",
        'rule: type error in "NOT age" (line 1, column 1): NOT needs a condition, but age is a number. '
        "Write a comparison, e.g. NOT (age > 30), or test for a missing value with IS NULL.",
    ),
    (
        "age AND has_grade_stage",
        'rule: type error in "age AND has_grade_stage" (line 1, column 1): '
        "AND needs a boolean (true/false), but age is a number.",
    ),
    (
        "-gender",
        "rule: type error in \"-gender\" (line 1, column 1): "
        "unary '-' needs a number, but gender is a string.",
    ),
    (
        "gender > '男'",
        "rule: type error in \"gender > '男'\" (line 1, column 1): '>' compares numbers, but gender is a "
        "string. Text has no order here: list the values instead, e.g. education IN ('本科', '硕士').",
    ),
    (
        "age BETWEEN 18 AND '30'",
        "rule: type error in \"age BETWEEN 18 AND '30'\" (line 1, column 1): "
        "BETWEEN needs a number, but '30' is a string.",
    ),
    (
        "city_tier IN (1, '2')",
        "rule: type error in \"city_tier IN (1, '2')\" (line 1, column 1): IN and its values must all have "
        "the same type, but city_tier is a number and '2' is a string.",
    ),
    (
        "finance_group LIKE 1",
        'rule: LIKE needs a quoted pattern in "finance_group LIKE 1" (line 1, column 1), '
        "e.g. finance_group LIKE '千禧一代/%'.",
    ),
    (
        "age LIKE '1%'",
        "rule: type error in \"age LIKE '1%'\" (line 1, column 1): LIKE needs a string, but age is a number.",
    ),
    (
        "CASE WHEN age > 55 THEN '银发' ELSE 0 END",
        "rule: type error in \"CASE WHEN age > 55 THEN '银发' ELSE 0 END\" (line 1, column 1): "
        "THEN and ELSE values must all have the same type, but '银发' is a string and 0 is a number.",
    ),
    (
        "CASE WHEN age THEN 1 END",
        'rule: type error in "CASE WHEN age THEN 1 END" (line 1, column 1): '
        "WHEN needs a boolean (true/false), but age is a number.",
    ),
    (
        "lower(age) = 'a'",
        'rule: type error in "lower(age)" (line 1, column 1): lower() needs a string, but age is a number.',
    ),
    (
        "mean(gender) > 1",
        'rule: type error in "mean(gender)" (line 1, column 1): '
        "mean() needs a number, but gender is a string.",
    ),
    (
        "mean(age, age) > 1",
        'rule: type error in "mean(age, age)" (line 1, column 1): the filter of mean() needs a '
        "boolean (true/false), but age is a number.",
    ),
    # NULL comparisons, IS TRUE
    (
        "age = NULL",
        'rule: comparison with NULL in "age = NULL" (line 1, column 1): it is never true. '
        "Use IS NULL or IS NOT NULL to test for a missing value.",
    ),
    (
        "city_tier NOT IN (1, NULL)",
        'rule: IN with NULL in "city_tier NOT IN (1, NULL)" (line 1, column 1): it is never true. '
        "Use IS NULL or IS NOT NULL to test for a missing value.",
    ),
    (
        "has_grade_stage IS TRUE",
        'rule: "has_grade_stage IS TRUE" is not allowed (line 1, column 1). Only IS NULL and IS NOT NULL '
        "are: for a boolean tag write the tag (or NOT tag); coalesce(tag, FALSE) counts a missing value "
        "as false.",
    ),
    ("NULL", "rule: the rule only gives NULL (line 1, column 1). Write a condition or a value over tags."),
    (
        "age > 1 AND (NOT TRUE) + 1 > 0",
        'rule: type error in "(NOT TRUE) + 1" (line 1, column 13): '
        "'+' needs a number, but (NOT TRUE) is a boolean (true/false).",
    ),
    (
        "age = 1 OR\n   score = NULL",
        'rule: comparison with NULL in "score = NULL" (line 2, column 4): it is never true. '
        "Use IS NULL or IS NOT NULL to test for a missing value.",
    ),
    # statistics
    (
        "age > quantile(age, 1.5)",
        "rule: the level of quantile() must be between 0 and 1, got 1.5 (line 1, column 21). "
        "Write a fraction, e.g. quantile(monetary_365d, 0.8) for the 80th percentile.",
    ),
    (
        "age > quantile(age, -0.1)",
        "rule: the level of quantile() must be between 0 and 1, got -0.1 (line 1, column 21). "
        "Write a fraction, e.g. quantile(monetary_365d, 0.8) for the 80th percentile.",
    ),
    (
        "age > quantile(age, score)",
        'rule: the level of quantile() must be a number written out in "quantile(age, score)" '
        "(line 1, column 21). Write a fraction, e.g. quantile(monetary_365d, 0.8).",
    ),
    (
        "age > quantile(age)",
        "rule: quantile() takes 2 or 3 arguments, got 1 (line 1, column 7). "
        "Write quantile(x, q) or quantile(x, q, filter).",
    ),
    (
        "age > mean(age, is_buyer, is_buyer)",
        "rule: mean() takes 1 or 2 arguments, got 3 (line 1, column 7). Write mean(x) or mean(x, filter).",
    ),
    (
        "age > mean(age - mean(age))",
        "rule: mean() inside mean() is not allowed (line 1, column 18). "
        "Statistics cannot be nested: make the inner one a tag of its own.",
    ),
    (
        "median(1) > 0",
        'rule: the first argument of median() must use a tag in "median(1)" (line 1, column 1), '
        "e.g. median(monetary_365d).",
    ),
    # other SQL
    (
        "CAST(age AS TEXT) = '30'",
        'rule: type casts are not allowed: "CAST(age AS TEXT)" (line 1, column 1). '
        "Tags already have a type; compare like with like.",
    ),
    (
        "age % 2 = 0",
        'rule: "age % 2" is not allowed in a rule (line 1, column 1). '
        "See docs/rules.md for the operators and functions a rule may use.",
    ),
    (
        "gender || '性' = '女性'",
        "rule: \"gender || '性'\" is not allowed in a rule (line 1, column 1). "
        "See docs/rules.md for the operators and functions a rule may use.",
    ),
    (
        "floor(score, 1)",
        'rule: too many arguments in "floor(score, 1)" (line 1, column 1). '
        "See docs/rules.md for what floor() takes.",
    ),
    (
        "round(score, score)",
        'rule: round() needs a whole number of decimal places in "round(score, score)" (line 1, column 1), '
        "e.g. round(x, 2).",
    ),
    ("age > :threshold", "rule: parameters are not allowed: ':threshold'. Write the value itself."),
    (
        "age > 18 ！",
        "rule: full-width '！' is not allowed (line 1, column 10). "
        "Rules use half-width (半角) punctuation: write '!' instead.",
    ),
    (
        "city_tier IN （1, 2）",
        "rule: full-width '（' is not allowed (line 1, column 14). "
        "Rules use half-width (半角) punctuation: write '(' instead.",
    ),
    (
        "gender = ‘女’",
        "rule: full-width '‘' is not allowed (line 1, column 10). "
        "Rules use half-width (半角) punctuation: write \"'\" instead.",
    ),
    (
        "age > 18 AND gender",
        "rule: type error in \"age > 18 AND gender\" (line 1, column 1): "
        "AND needs a boolean (true/false), but gender is a string.",
    ),
    (
        "age > 18 gender",
        "rule: unexpected 'gender' after \"age > 18\" (line 1, column 10). A rule is a single expression: "
        "check for a missing operator, or for full-width punctuation such as ，！（）.",
    ),
    # empty text, syntax errors
    (
        "",
        "rule: the rule is empty. Write a condition such as age >= 18, or a value such as "
        "floor(monetary_365d / 5) * 5.",
    ),
    (
        "  \n ",
        "rule: the rule is empty. Write a condition such as age >= 18, or a value such as "
        "floor(monetary_365d / 5) * 5.",
    ),
    (
        "age >",
        "rule: syntax error: incomplete expression near '>' (line 1, column 5). "
        "Check operators, parentheses and quotes (see docs/rules.md).",
    ),
    (
        "(age > 1",
        "rule: syntax error: missing ')' near '1' (line 1, column 8). "
        "Check operators, parentheses and quotes (see docs/rules.md).",
    ),
    (
        "age > 1)",
        "rule: syntax error: unexpected token near ')' (line 1, column 8). "
        "Check operators, parentheses and quotes (see docs/rules.md).",
    ),
    (
        "age > 1\n  AND AND city_tier = 1",
        "rule: syntax error: incomplete expression near 'AND' "
        "(line 2, column 7). Check operators, parentheses and quotes (see docs/rules.md).",
    ),
    (
        "CASE WHEN age > 1 THEN 1",
        "rule: syntax error: CASE without END near '1' (line 1, column 24). "
        "Check operators, parentheses and quotes (see docs/rules.md).",
    ),
    (
        "abs(age, 1)",
        "rule: syntax error: too many arguments (2; at most 1) near ')' (line 1, column 11). "
        "Check operators, parentheses and quotes (see docs/rules.md).",
    ),
    (
        "gender = '女",
        "rule: unterminated string (line 1, column 10). Close it with a matching ' "
        "(single quotes for text, double quotes for tag ids).",
    ),
    (
        'gender = \'a\' AND "has_grade_stage',
        "rule: unterminated quoted tag id (line 1, column 18). Close it with a matching \" "
        "(single quotes for text, double quotes for tag ids).",
    ),
    (
        "age > 1 /* note",
        "rule: comments are not allowed: '/*' (line 1, column 9). "
        "Put notes in the tag's description instead.",
    ),
    (
        "a" * 10_001,
        "rule: the rule has 10001 characters; at most 10000 are allowed. Split it into helper tags.",
    ),
]


@pytest.mark.parametrize(("text", "expected"), REFUSED, ids=[text[:40] for text, _ in REFUSED])
def test_refused_with_exact_message(text: str, expected: str) -> None:
    assert message(text) == expected


def test_origin_prefixes_every_message() -> None:
    assert (
        message("agee > 30", origin=ORIGIN)
        == f"{ORIGIN}: unknown tag 'agee' (line 1, column 1). Did you mean 'age'?"
    )
    assert message("", origin=ORIGIN).startswith(f"{ORIGIN}: the rule is empty.")
    assert message("age >", origin=ORIGIN).startswith(f"{ORIGIN}: syntax error:")


def test_a_value_where_a_condition_is_expected() -> None:
    origin = "tags/target.yaml:7 (tag target_group_10, case 学生一族)"
    assert message("age + 1", origin=origin, expect="boolean") == (
        f'{origin}: expected a condition (true/false), but "age + 1" gives a number (line 1, column 1). '
        "Write a comparison, e.g. monetary_365d >= 1000."
    )
    assert message("gender", expect="boolean") == (
        'rule: expected a condition (true/false), but "gender" gives a string (line 1, column 1). '
        "Write a comparison, e.g. monetary_365d >= 1000."
    )
    assert message("age > 1", expect="number") == (
        'rule: expected a number, but "age > 1" gives a condition (true/false) (line 1, column 1).'
    )


def test_deep_nesting_is_refused_not_crashed() -> None:
    text = "(" * 3000 + "age" + ")" * 3000 + " > 1"
    assert message(text) == "rule: the rule is nested too deeply. Split it into helper tags."


def test_known_kinds_and_expect_are_validated() -> None:
    assert message("age > 1", {"age": "date"}) == (
        "rule: tag 'age' has kind 'date'; rules know boolean, string and number."
    )
    assert message("age > 1", expect="enum") == "rule: expect must be boolean, string or number, not 'enum'."


# ---------------------------------------------------------------------------- compile-time checks


def test_compile_needs_a_column_per_referenced_tag(users: ir.Table) -> None:
    rule = parse_rule("age > 1", {"age": "number"}, origin=ORIGIN)
    with pytest.raises(RuleError) as caught:
        compile_rule(rule, users.drop("age").rename(ages="user_id"))
    assert str(caught.value) == (
        f"{ORIGIN}: the table has no column for tag 'age'. Did you mean 'ages'? "
        "Build or load the tag before the rules that read it."
    )


def test_compile_checks_the_column_types_of_the_table(users: ir.Table) -> None:
    rule = parse_rule("city_tier IN (1, 2)", KNOWN, origin=ORIGIN)
    table = users.mutate(city_tier=users.city_tier.cast("string"))
    with pytest.raises(RuleError) as caught:
        compile_rule(rule, table)
    assert str(caught.value) == (
        f'{ORIGIN}: type error in "city_tier IN (1, 2)" (line 1, column 1): IN and its values must all have '
        "the same type, but city_tier is a string and 1 is a number. "
        "Column types in the table: city_tier string."
    )
    dated = users.mutate(age=ibis.date("2024-01-01"))
    with pytest.raises(RuleError, match="column 'age' has type date; rules read boolean, string and number"):
        compile_rule(parse_rule("age > 1", KNOWN, origin=ORIGIN), dated)


# ---------------------------------------------------------------------------- docs/rules.md runs

DOCS = Path(__file__).resolve().parents[2] / "docs" / "rules.md"
DOC_TAGS: dict[str, Any] = {
    **dict.fromkeys(("age", "city_tier", "child_probability", "member_level", "scene_outing"), "number"),
    **dict.fromkeys(("monetary_365d", "frequency_365d", "recency_days", "promo_order_share"), "number"),
    "purchasing_power_band": "number",
    **dict.fromkeys(("gender", "education", "finance_group_14"), "string"),
    **dict.fromkeys(("has_grade_stage", "is_buyer", "fav_bluemoon_detergent_30d"), "boolean"),
}


def _doc_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)\n```", DOCS.read_text(encoding="utf-8"), flags=re.S)


def test_docs_rule_examples_parse_and_run(con: Any) -> None:
    examples = _doc_blocks("rule")
    assert len(examples) >= 10
    samples = {
        "number": pa.array([1.0, 2.0, None, 0.0]),
        "string": pa.array(["本科", "千禧一代/精英青年", None, "女"]),
        "boolean": pa.array([True, False, None, True]),
    }
    columns = {tag: samples[kind] for tag, kind in DOC_TAGS.items()}
    table = ibis.memtable(pa.table({"user_id": pa.array(range(4), pa.int64()), **columns}))
    for text in examples:
        rule = parse_rule(text, DOC_TAGS, origin="docs/rules.md")
        assert len(run(con, table, compile_rule(rule, table))) == 4


def test_docs_error_examples_are_exact() -> None:
    examples = _doc_blocks("rule-error")
    assert len(examples) >= 10
    for block in examples:
        text, expected = block.split("\n---\n")
        assert message(text, DOC_TAGS) == expected


# ---------------------------------------------------------------------------- property: agrees with Python

PROPERTY_KNOWN: dict[str, Any] = {"a": "number", "b": "number", "p": "boolean"}

_NUMBER_LEAVES = st.sampled_from(["a", "b", "0", "1", "2", "0.5", "-1.5", "3"])
_CONDITION_LEAVES = st.sampled_from(["p", "NOT p", "TRUE", "FALSE", "a IS NULL", "b IS NOT NULL", "a > b"])
_COMPARE = st.sampled_from(["=", "<>", "<", "<=", ">", ">="])
_STAT_FILTERS = st.sampled_from(["", ", p", ", a > 0", ", b <= a", ", NOT p"])


def _numbers(depth: int) -> st.SearchStrategy[str]:
    if depth == 0:
        return _NUMBER_LEAVES
    sub = _numbers(depth - 1)
    return st.one_of(
        _NUMBER_LEAVES,
        st.tuples(sub, st.sampled_from(["+", "-", "*", "/"]), sub).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        sub.map(lambda s: f"-({s})"),
        st.tuples(st.sampled_from(["abs", "floor", "ceil", "round", "sqrt"]), sub).map(
            lambda t: f"{t[0]}({t[1]})"
        ),
        st.tuples(st.sampled_from(["least", "greatest", "coalesce", "nullif"]), sub, sub).map(
            lambda t: f"{t[0]}({t[1]}, {t[2]})"
        ),
        st.tuples(_conditions(depth - 1), sub, sub).map(
            lambda t: f"CASE WHEN {t[0]} THEN {t[1]} ELSE {t[2]} END"
        ),
        st.tuples(
            st.sampled_from(["mean", "median", "min_of", "max_of"]), st.sampled_from("ab"), _STAT_FILTERS
        ).map(lambda t: f"{t[0]}({t[1]}{t[2]})"),
        st.tuples(
            st.sampled_from("ab"), st.sampled_from(["0", "0.25", "0.5", "0.75", "1"]), _STAT_FILTERS
        ).map(lambda t: f"quantile({t[0]}, {t[1]}{t[2]})"),
        st.tuples(st.sampled_from(["p", "a > 0", "b < a"]), _STAT_FILTERS).map(
            lambda t: f"share({t[0]}{t[1]})"
        ),
    )


def _conditions(depth: int) -> st.SearchStrategy[str]:
    if depth == 0:
        return _CONDITION_LEAVES
    sub, numbers = _conditions(depth - 1), _numbers(depth - 1)
    return st.one_of(
        _CONDITION_LEAVES,
        st.tuples(numbers, _COMPARE, numbers).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(sub, st.sampled_from(["AND", "OR"]), sub).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        sub.map(lambda s: f"NOT ({s})"),
        st.tuples(numbers, numbers, numbers).map(lambda t: f"({t[0]} BETWEEN {t[1]} AND {t[2]})"),
        st.tuples(numbers, st.lists(numbers, min_size=1, max_size=3)).map(
            lambda t: f"({t[0]} IN ({', '.join(t[1])}))"
        ),
        st.tuples(numbers, st.lists(numbers, min_size=1, max_size=2)).map(
            lambda t: f"({t[0]} NOT IN ({', '.join(t[1])}))"
        ),
        numbers.map(lambda s: f"({s}) IS NULL"),
        st.tuples(sub, sub).map(lambda t: f"coalesce({t[0]}, {t[1]})"),
    )


_HALVES = st.none() | st.integers(-10, 10).map(lambda n: n / 2)
_ROWS = st.lists(
    st.tuples(st.none() | st.integers(-5, 5), _HALVES, st.none() | st.booleans()), min_size=1, max_size=6
)


def _and(left: bool | None, right: bool | None) -> bool | None:
    if left is False or right is False:
        return False
    return None if left is None or right is None else True


def _or(left: bool | None, right: bool | None) -> bool | None:
    if left is True or right is True:
        return True
    return None if left is None or right is None else False


def _round_half_away(value: float) -> int:
    return int(Decimal(value).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _quantile(sorted_values: list[float], level: float) -> float | None:
    if not sorted_values:
        return None
    position = level * (len(sorted_values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


_COMPARISONS: dict[type[exp.Expr], Any] = {
    exp.EQ: lambda x, y: x == y,
    exp.NEQ: lambda x, y: x != y,
    exp.LT: lambda x, y: x < y,
    exp.LTE: lambda x, y: x <= y,
    exp.GT: lambda x, y: x > y,
    exp.GTE: lambda x, y: x >= y,
}


def evaluate(node: exp.Expr, row: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> Any:
    """A pure-Python reading of the rule language (SQL three-valued logic), for one row."""

    def ev(child: exp.Expr) -> Any:
        return evaluate(child, row, rows)

    if isinstance(node, exp.Column):
        return row[node.name]
    if isinstance(node, exp.Literal):
        return node.this if node.is_string else number_value(node)
    if isinstance(node, exp.Boolean):
        return node.this
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Paren):
        return ev(node.this)
    if isinstance(node, exp.Not):
        inner = ev(node.this)
        return None if inner is None else not inner
    if isinstance(node, exp.And):
        return _and(ev(node.this), ev(node.expression))
    if isinstance(node, exp.Or):
        return _or(ev(node.this), ev(node.expression))
    if isinstance(node, exp.Neg):
        inner = ev(node.this)
        return None if inner is None else -inner
    if isinstance(node, exp.Add | exp.Sub | exp.Mul | exp.Div):
        left, right = ev(node.this), ev(node.expression)
        if left is None or right is None:
            return None
        if isinstance(node, exp.Add):
            return left + right
        if isinstance(node, exp.Sub):
            return left - right
        if isinstance(node, exp.Mul):
            return left * right
        return None if right == 0 else left / right
    if type(node) in _COMPARISONS:
        left, right = ev(node.this), ev(node.expression)
        return None if left is None or right is None else _COMPARISONS[type(node)](left, right)
    if isinstance(node, exp.Between):
        subject, low, high = ev(node.this), ev(node.args["low"]), ev(node.args["high"])
        above = None if subject is None or low is None else subject >= low
        below = None if subject is None or high is None else subject <= high
        return _and(above, below)
    if isinstance(node, exp.In):
        subject = ev(node.this)
        if subject is None:
            return None
        options = [ev(option) for option in node.expressions]
        if subject in [option for option in options if option is not None]:
            return True
        return None if None in options else False
    if isinstance(node, exp.Is):
        return ev(node.this) is None
    if isinstance(node, exp.Case):
        for branch in node.args["ifs"]:
            if ev(branch.this) is True:
                return ev(branch.args["true"])
        default = node.args.get("default")
        return ev(default) if default is not None else None
    if isinstance(node, exp.Coalesce | exp.Least | exp.Greatest):
        found = [value for value in (ev(arg) for arg in [node.this, *node.expressions]) if value is not None]
        if isinstance(node, exp.Coalesce):
            return found[0] if found else None
        if not found:
            return None
        return min(found) if isinstance(node, exp.Least) else max(found)
    if isinstance(node, exp.Nullif):
        left, right = ev(node.this), ev(node.expression)
        return None if left is not None and right is not None and left == right else left
    if isinstance(node, exp.Abs | exp.Floor | exp.Ceil | exp.Round | exp.Sqrt):
        inner = ev(node.this)
        if inner is None:
            return None
        if isinstance(node, exp.Abs):
            return abs(inner)
        if isinstance(node, exp.Floor):
            return math.floor(inner)
        if isinstance(node, exp.Ceil):
            return math.ceil(inner)
        if isinstance(node, exp.Round):
            return _round_half_away(inner)
        return None if inner < 0 else math.sqrt(inner)
    if isinstance(node, exp.Anonymous):
        name, args = node.name.lower(), list(node.expressions)
        subject = args.pop(0)
        level = float(number_value(args.pop(0))) if name == "quantile" else 0.0
        population = [other for other in rows if not args or evaluate(args[0], other, rows) is True]
        if name == "share":
            if not population:
                return None
            return sum(evaluate(subject, other, rows) is True for other in population) / len(population)
        found = sorted(v for v in (evaluate(subject, other, rows) for other in population) if v is not None)
        if not found:
            return None
        if name == "mean":
            return sum(found) / len(found)
        if name == "min_of":
            return found[0]
        if name == "max_of":
            return found[-1]
        return _quantile(found, 0.5 if name == "median" else level)
    raise AssertionError(f"no Python reading of {node.sql()}")


@settings(max_examples=100, deadline=None, database=None)
@given(text=st.one_of(_numbers(3), _conditions(3)), rows=_ROWS)
def test_compiled_rules_agree_with_a_python_evaluator(
    con: Any, text: str, rows: list[tuple[int | None, float | None, bool | None]]
) -> None:
    data = pa.table(
        {
            "user_id": pa.array(range(len(rows)), pa.int64()),
            "a": pa.array([row[0] for row in rows], pa.int64()),
            "b": pa.array([row[1] for row in rows], pa.float64()),
            "p": pa.array([row[2] for row in rows], pa.bool_()),
        }
    )
    table = ibis.memtable(data)
    rule = parse_rule(text, PROPERTY_KNOWN)
    got = run(con, table, compile_rule(rule, table))
    records = data.to_pylist()
    expected = [evaluate(rule.tree, record, records) for record in records]
    for value, want in zip(got, expected, strict=True):
        if want is None or isinstance(want, bool):
            assert value == want, (text, got, expected)
        else:
            assert value is not None and math.isclose(value, want, rel_tol=1e-9, abs_tol=1e-9), (
                text,
                got,
                expected,
            )
