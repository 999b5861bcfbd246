"""Checked sqlglot tree -> Ibis expression over the wide tag table.

Each node becomes an Ibis call; no SQL text is ever assembled. A few choices
make the result the same on every engine, whatever its own habits:

- ``a / b`` is ``a / NULLIF(b, 0)``: division by zero gives NULL (DuckDB would
  give infinity, PostgreSQL an error);
- ``sqrt`` of a negative and ``ln`` of a non-positive number give NULL (DuckDB
  raises), and ``exp`` / ``power`` results that are not finite numbers give NULL;
- decimal columns are read as float64: Ibis 12 mistypes some decimal arithmetic
  (``decimal * float`` fails on DuckDB, the mean of a decimal is truncated);
- statistics are Ibis reductions with ``where=``: in a projection Ibis makes
  them window aggregates over the whole table (``AVG(x) FILTER (WHERE ...) OVER
  ()``), in a filter scalar subqueries, so both broadcast one value to every row.
"""

from __future__ import annotations

from collections.abc import Callable

import ibis
import ibis.expr.types as ir
from sqlglot import exp

from huaxiang.catalog.rules.checker import Checked
from huaxiang.catalog.rules.language import ARITHMETIC, COMPARISONS, Kind, literal_number, number_value

_COMPARE: dict[str, Callable[[ir.Value, ir.Value], ir.Value]] = {
    "=": lambda a, b: a == b,
    "<>": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
_NULL_TYPES: dict[str, str] = {"number": "float64", "string": "string", "boolean": "boolean"}


def compile_tree(tree: exp.Expr, checked: Checked, table: ir.Table) -> ir.Value:
    """Compile a tree that ``check`` accepted (with ``checked`` its outcome) over ``table``."""
    return _Compiler(table, checked.kinds).value(tree, checked.kind)


class _Compiler:
    def __init__(self, table: ir.Table, kinds: dict[int, Kind]) -> None:
        self.table = table
        self.kinds = kinds

    def value(self, node: exp.Expr, want: Kind | None = None) -> ir.Value:
        """The Ibis value of ``node``; ``want`` types a bare NULL from its context."""
        return _COMPILERS[type(node)](self, node, want)

    def context(self, *nodes: exp.Expr) -> Kind | None:
        """The first non-NULL kind among ``nodes``: the type a NULL next to them takes."""
        for node in nodes:
            kind = self.kinds.get(id(node))
            if kind is not None and kind != "null":
                return kind
        return None

    # ------------------------------------------------------------------ leaves

    def column(self, node: exp.Column, want: Kind | None) -> ir.Value:
        column = self.table[str(node.name)]
        if column.type().is_decimal():
            return column.cast("float64")
        return column

    def literal(self, node: exp.Literal, want: Kind | None) -> ir.Value:
        if node.is_string:
            return ibis.literal(str(node.this), type="string")
        number = number_value(node)
        return ibis.literal(number, type="int64" if isinstance(number, int) else "float64")

    def boolean(self, node: exp.Boolean, want: Kind | None) -> ir.Value:
        return ibis.literal(bool(node.this), type="boolean")

    def null(self, node: exp.Null, want: Kind | None) -> ir.Value:
        dtype = _NULL_TYPES.get(want or "")
        return ibis.null(dtype) if dtype else ibis.null()

    def paren(self, node: exp.Paren, want: Kind | None) -> ir.Value:
        return self.value(node.this, want)

    # ------------------------------------------------------------------ operators

    def negative(self, node: exp.Neg, want: Kind | None) -> ir.Value:
        return -self.value(node.this, "number")

    def arithmetic(self, node: exp.Binary, want: Kind | None) -> ir.Value:
        left: ir.NumericValue = self.value(node.this, "number")
        right: ir.NumericValue = self.value(node.expression, "number")
        operator = ARITHMETIC[type(node)]
        if operator == "+":
            return left + right
        if operator == "-":
            return left - right
        if operator == "*":
            return left * right
        return left / right.nullif(0)

    def logic(self, node: exp.Binary, want: Kind | None) -> ir.Value:
        left: ir.BooleanValue = self.value(node.this, "boolean")
        right: ir.BooleanValue = self.value(node.expression, "boolean")
        return left & right if isinstance(node, exp.And) else left | right

    def negation(self, node: exp.Not, want: Kind | None) -> ir.Value:
        return ~self.value(node.this, "boolean")

    def comparison(self, node: exp.Binary, want: Kind | None) -> ir.Value:
        left = self.value(node.this, self.context(node.expression))
        right = self.value(node.expression, self.context(node.this))
        return _COMPARE[COMPARISONS[type(node)]](left, right)

    def between(self, node: exp.Between, want: Kind | None) -> ir.Value:
        subject: ir.NumericValue = self.value(node.this, "number")
        low, high = self.value(node.args["low"], "number"), self.value(node.args["high"], "number")
        return subject.between(low, high)

    def membership(self, node: exp.In, want: Kind | None) -> ir.Value:
        kind = self.context(node.this, *node.expressions)
        subject = self.value(node.this, kind)
        return subject.isin([self.value(value, kind) for value in node.expressions])

    def is_null(self, node: exp.Is, want: Kind | None) -> ir.Value:
        return self.value(node.this, self.context(node.this)).isnull()

    def like(self, node: exp.Like, want: Kind | None) -> ir.Value:
        subject: ir.StringValue = self.value(node.this, "string")
        matched = subject.like(str(node.expression.this))
        return ~matched if node.args.get("negate") else matched

    def case(self, node: exp.Case, want: Kind | None) -> ir.Value:
        kind = self.kinds[id(node)]
        subject = node.args.get("this")
        branches = []
        for branch in node.args["ifs"]:
            if subject is None:
                condition = self.value(branch.this, "boolean")
            else:
                compared = self.context(subject, branch.this)
                condition = self.value(subject, compared) == self.value(branch.this, compared)
            branches.append((condition, self.value(branch.args["true"], kind)))
        default = node.args.get("default")
        otherwise = self.value(default, kind) if default is not None else ibis.null(_NULL_TYPES[kind])
        return ibis.cases(*branches, else_=otherwise)

    # ------------------------------------------------------------------ functions

    def number(self, node: exp.Expr) -> ir.NumericValue:
        return self.value(node, "number")

    def math(self, node: exp.Expr, want: Kind | None) -> ir.Value:
        value = self.number(node.this)
        if isinstance(node, exp.Abs):
            return value.abs()
        if isinstance(node, exp.Floor):
            return value.floor()
        if isinstance(node, exp.Ceil):
            return value.ceil()
        if isinstance(node, exp.Sqrt):
            return ibis.cases((value >= 0, value)).sqrt()
        if isinstance(node, exp.Ln):
            return ibis.cases((value > 0, value)).ln()
        return _finite(value.exp())

    def round_(self, node: exp.Round, want: Kind | None) -> ir.Value:
        digits = node.args.get("decimals")
        places = literal_number(digits) if digits is not None else None
        value = self.number(node.this)
        return value.round() if places is None else value.round(int(places))

    def power(self, node: exp.Pow, want: Kind | None) -> ir.Value:
        base = self.number(node.this).cast("float64")
        exponent = self.number(node.expression).cast("float64")
        return _finite(base**exponent)

    def extreme(self, node: exp.Expr, want: Kind | None) -> ir.Value:
        values = [self.value(value, "number") for value in [node.this, *node.expressions]]
        return ibis.least(*values) if isinstance(node, exp.Least) else ibis.greatest(*values)

    def coalesce(self, node: exp.Coalesce, want: Kind | None) -> ir.Value:
        kind = self.kinds[id(node)]
        return ibis.coalesce(*[self.value(value, kind) for value in [node.this, *node.expressions]])

    def nullif(self, node: exp.Nullif, want: Kind | None) -> ir.Value:
        kind = self.kinds[id(node)]
        return self.value(node.this, kind).nullif(self.value(node.expression, kind))

    def text(self, node: exp.Expr, want: Kind | None) -> ir.Value:
        value: ir.StringValue = self.value(node.this, "string")
        if isinstance(node, exp.Lower):
            return value.lower()
        if isinstance(node, exp.Upper):
            return value.upper()
        return value.length()

    def statistic(self, node: exp.Anonymous, want: Kind | None) -> ir.Value:
        name = str(node.name).lower()
        args = list(node.expressions)
        subject = args.pop(0)
        level = literal_number(args.pop(0)) if name == "quantile" else None
        where = self.value(args[0], "boolean") if args else None
        if name == "share":
            holds: ir.BooleanValue = self.value(subject, "boolean")
            # NULL is not true: such rows count in the population, not as holding.
            return ibis.ifelse(holds.fill_null(False), 1.0, 0.0).mean(where=where)
        value: ir.NumericColumn = self.value(subject, "number")
        if name == "mean":
            return value.mean(where=where)
        if name == "median":
            return value.median(where=where)
        if name == "quantile":
            return value.quantile(float(level or 0), where=where)
        if name == "min_of":
            return value.min(where=where)
        return value.max(where=where)


def _finite(value: ir.FloatingValue) -> ir.Value:
    """``value`` where it is a finite number, NULL where it is infinite or NaN."""
    return ibis.cases((~(value.isnan() | value.isinf()), value))


_COMPILERS: dict[type[exp.Expr], Callable[..., ir.Value]] = {
    exp.Column: _Compiler.column,
    exp.Literal: _Compiler.literal,
    exp.Boolean: _Compiler.boolean,
    exp.Null: _Compiler.null,
    exp.Paren: _Compiler.paren,
    exp.Neg: _Compiler.negative,
    exp.Not: _Compiler.negation,
    exp.Between: _Compiler.between,
    exp.In: _Compiler.membership,
    exp.Is: _Compiler.is_null,
    exp.Like: _Compiler.like,
    exp.Case: _Compiler.case,
    exp.Anonymous: _Compiler.statistic,
    exp.Round: _Compiler.round_,
    exp.Pow: _Compiler.power,
    exp.Least: _Compiler.extreme,
    exp.Greatest: _Compiler.extreme,
    exp.Coalesce: _Compiler.coalesce,
    exp.Nullif: _Compiler.nullif,
    **dict.fromkeys(COMPARISONS, _Compiler.comparison),
    **dict.fromkeys(ARITHMETIC, _Compiler.arithmetic),
    **dict.fromkeys((exp.And, exp.Or), _Compiler.logic),
    **dict.fromkeys((exp.Abs, exp.Ceil, exp.Exp, exp.Floor, exp.Ln, exp.Sqrt), _Compiler.math),
    **dict.fromkeys((exp.Lower, exp.Upper, exp.Length), _Compiler.text),
}
