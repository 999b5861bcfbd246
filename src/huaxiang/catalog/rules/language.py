"""The rule language as data: value kinds, the allowed sqlglot classes, function names.

The allow-list is keyed by exact sqlglot expression classes (not subclasses, not
function names): ``exp.Floor`` is allowed, a class sqlglot adds tomorrow is not.
Functions sqlglot does not know arrive as ``exp.Anonymous`` and are allowed only
when named in :data:`STATISTICS`.
"""

from __future__ import annotations

import re
from typing import Literal

from sqlglot import exp

STATISTICS = ("mean", "median", "quantile", "min_of", "max_of", "share")
"""Population statistics, called like functions; parsed as plain (anonymous) calls."""

ValueKind = Literal["boolean", "string", "number"]
"""The type of a rule's value: boolean tags; enum and hierarchical enum -> string; integer,
number and probability -> number."""

Kind = Literal["boolean", "string", "number", "null"]
"""A node's type while checking: a value kind, or "null" for a bare NULL."""

FUNCTIONS: dict[type[exp.Expr], str] = {
    exp.Abs: "abs",
    exp.Ceil: "ceil",
    exp.Coalesce: "coalesce",
    exp.Exp: "exp",
    exp.Floor: "floor",
    exp.Greatest: "greatest",
    exp.Least: "least",
    exp.Length: "length",
    exp.Ln: "ln",
    exp.Lower: "lower",
    exp.Nullif: "nullif",
    exp.Pow: "power",
    exp.Round: "round",
    exp.Sqrt: "sqrt",
    exp.Upper: "upper",
}
"""Scalar functions a rule may call, by the sqlglot class the parser builds for them."""

COMPARISONS: dict[type[exp.Expr], str] = {
    exp.EQ: "=",
    exp.NEQ: "<>",
    exp.LT: "<",
    exp.LTE: "<=",
    exp.GT: ">",
    exp.GTE: ">=",
}
ARITHMETIC: dict[type[exp.Expr], str] = {exp.Add: "+", exp.Sub: "-", exp.Mul: "*", exp.Div: "/"}
LOGIC: dict[type[exp.Expr], str] = {exp.And: "AND", exp.Or: "OR"}

# Arguments each allowed class may carry (set, non-empty, not False). The parser sets
# Least/Greatest.ignore_nulls and Coalesce.is_nvl/is_null for the synonyms it maps.
ALLOWED_ARGS: dict[type[exp.Expr], frozenset[str]] = {
    exp.Column: frozenset({"this", "table", "db", "catalog"}),  # qualified names: refused by name
    exp.Literal: frozenset({"this", "is_string"}),
    exp.Boolean: frozenset({"this"}),
    exp.Null: frozenset(),
    exp.Paren: frozenset({"this"}),
    exp.Not: frozenset({"this"}),
    exp.Neg: frozenset({"this"}),
    exp.Between: frozenset({"this", "low", "high"}),
    exp.In: frozenset({"this", "expressions", "query"}),  # subqueries: refused by name
    exp.Is: frozenset({"this", "expression"}),
    exp.Like: frozenset({"this", "expression", "negate"}),
    exp.Case: frozenset({"this", "ifs", "default"}),
    exp.If: frozenset({"this", "true"}),
    exp.Anonymous: frozenset({"this", "expressions"}),
    exp.Round: frozenset({"this", "decimals"}),
    exp.Pow: frozenset({"this", "expression"}),
    exp.Nullif: frozenset({"this", "expression"}),
    exp.Least: frozenset({"this", "expressions", "ignore_nulls"}),
    exp.Greatest: frozenset({"this", "expressions", "ignore_nulls"}),
    exp.Coalesce: frozenset({"this", "expressions", "is_nvl", "is_null"}),
    **{cls: frozenset({"this", "expression"}) for cls in (*COMPARISONS, *ARITHMETIC, *LOGIC)},
}
for _cls in (exp.Abs, exp.Ceil, exp.Exp, exp.Floor, exp.Length, exp.Ln, exp.Lower, exp.Sqrt, exp.Upper):
    ALLOWED_ARGS[_cls] = frozenset({"this"})

# Functions people reach for that the language spells differently.
INSTEAD: dict[str, str] = {
    "avg": "mean(x) for the population mean",
    "average": "mean(x) for the population mean",
    "count": "share(cond) for the fraction of users where cond holds",
    "sum": "a metric tag (a rule sees one user at a time)",
    "min": "least(a, b) for one user, or min_of(x) for the population",
    "max": "greatest(a, b) for one user, or max_of(x) for the population",
    "percentile_cont": "quantile(x, q)",
    "quantile_cont": "quantile(x, q)",
    "log": "ln(x)",
    "isnull": "x IS NULL",
    "log10": "ln(x) / ln(10)",
    "if": "CASE WHEN ... THEN ... ELSE ... END",
    "iif": "CASE WHEN ... THEN ... ELSE ... END",
    "substring": "LIKE 'prefix%'",
    "substr": "LIKE 'prefix%'",
    "trunc": "floor(x) or ceil(x)",
    "concat": "a comparison of each part",
}


def allowed_function_names() -> list[str]:
    """Every function name a rule may call, scalar functions first."""
    return sorted(FUNCTIONS.values()) + list(STATISTICS)


def number_value(node: exp.Literal) -> int | float:
    """The Python value of a numeric literal (an int when written without '.' or 'e')."""
    text = node.this
    return int(text) if re.fullmatch(r"\d+", text) else float(text)


def literal_number(node: exp.Expr) -> int | float | None:
    """The value of a number written as a literal, possibly signed or in parentheses."""
    if isinstance(node, exp.Paren):
        return literal_number(node.this)
    if isinstance(node, exp.Neg):
        inner = literal_number(node.this)
        return None if inner is None else -inner
    if isinstance(node, exp.Literal) and not node.is_string:
        return number_value(node)
    return None


def function_name(node: exp.Expr) -> str:
    """The name a function call is written with (canonical for sqlglot's known functions)."""
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    if type(node) in FUNCTIONS:
        return FUNCTIONS[type(node)]
    return node.sql_name().lower() if isinstance(node, exp.Func) else node.key
