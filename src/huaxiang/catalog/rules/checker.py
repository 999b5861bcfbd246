"""Checking a rule tree: every node allowed (see ``language``), every type right.

A node of a class outside the allow-list is refused with a message that names
it and says what to do. The checker also infers a kind for every node; the
compiler reads those kinds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlglot import exp

from huaxiang.catalog.rules.language import (
    ALLOWED_ARGS,
    ARITHMETIC,
    COMPARISONS,
    FUNCTIONS,
    INSTEAD,
    LOGIC,
    STATISTICS,
    Kind,
    ValueKind,
    allowed_function_names,
    function_name,
    literal_number,
    number_value,
)
from huaxiang.catalog.rules.syntax import RuleText
from huaxiang.errors import RuleError, did_you_mean

_ARTICLE: dict[str, str] = {
    "number": "a number",
    "string": "a string",
    "boolean": "a boolean (true/false)",
    "null": "NULL",
}
_QUANTILE_HINT = "e.g. quantile(monetary_365d, 0.8)"
_EXAMPLES = {"quantile": "quantile(monetary_365d, 0.8)", "share": "share(frequency_365d > 0)"}


@dataclass(frozen=True)
class Checked:
    """The outcome of checking a tree: its kind, the tags it reads and each node's kind."""

    kind: Kind
    references: frozenset[str]
    kinds: dict[int, Kind]
    """``id(node) -> kind`` for every node that yields a value."""


def check(tree: exp.Expr, source: RuleText, known: Mapping[str, ValueKind]) -> Checked:
    """Check ``tree`` against the allow-list and the tag kinds in ``known``; raise RuleError."""
    checker = _Checker(source, known)
    try:
        kind = checker.kind(tree)
    except RecursionError:
        raise RuleError(
            f"{source.origin}: the rule is nested too deeply. Split it into helper tags."
        ) from None
    return Checked(kind, frozenset(checker.references), checker.kinds)


class _Checker:
    def __init__(self, source: RuleText, known: Mapping[str, ValueKind]) -> None:
        self.source = source
        self.known = known
        self.kinds: dict[int, Kind] = {}
        self.references: set[str] = set()
        self.statistic: str | None = None  # name of the statistic being checked

    # ------------------------------------------------------------------ helpers

    def fail(self, what: str, node: exp.Expr, detail: str = ".") -> RuleError:
        return self.source.error(what, node=node, detail=detail)

    def type_error(self, node: exp.Expr, problem: str, hint: str = "") -> RuleError:
        return self.fail(f'type error in "{self.source.excerpt(node)}"', node, f": {problem}.{hint}")

    def kind(self, node: exp.Expr | None) -> Kind:
        if node is None:  # pragma: no cover - the parser fills required arguments
            raise RuleError(f"{self.source.origin}: incomplete rule.")
        handler = _HANDLERS.get(type(node))
        if handler is None:
            raise self.refuse(node)
        allowed = ALLOWED_ARGS[type(node)]
        extra = [key for key, value in node.args.items() if value not in (None, False, [], "")]
        extra = [key for key in extra if key not in allowed]
        if extra and type(node) in FUNCTIONS:
            raise self.fail(
                f'too many arguments in "{self.source.excerpt(node)}"',
                node,
                f". See docs/rules.md for what {function_name(node)}() takes.",
            )
        if extra:
            raise self.fail(
                f'unsupported form "{self.source.excerpt(node)}"',
                node,
                ". See docs/rules.md for the operators and functions a rule may use.",
            )
        kind = handler(self, node)
        self.kinds[id(node)] = kind
        return kind

    def need(self, node: exp.Expr, allowed: Kind, parent: exp.Expr, role: str) -> Kind:
        """Check ``node`` yields ``allowed`` (or NULL); raise a type error naming ``role``."""
        kind = self.kind(node)
        if kind not in (allowed, "null"):
            problem = f"{role} needs {_ARTICLE[allowed]}, but {self.source.excerpt(node)} is {_ARTICLE[kind]}"
            raise self.type_error(parent, problem)
        return kind

    def same(self, nodes: list[exp.Expr], parent: exp.Expr, role: str) -> Kind:
        """Kind shared by ``nodes`` (NULLs aside), or a type error."""
        found: Kind = "null"
        first: exp.Expr | None = None
        for node in nodes:
            kind = self.kind(node)
            if kind == "null":
                continue
            if first is None:
                found, first = kind, node
            elif kind != found:
                raise self.type_error(
                    parent,
                    f"{role} must all have the same type, but {self.source.excerpt(first)} is "
                    f"{_ARTICLE[found]} and {self.source.excerpt(node)} is {_ARTICLE[kind]}",
                )
        return found

    def no_null(self, node: exp.Expr, parent: exp.Expr, operator: str) -> None:
        if isinstance(node, exp.Null) or (isinstance(node, exp.Paren) and isinstance(node.this, exp.Null)):
            raise self.fail(
                f'{operator} with NULL in "{self.source.excerpt(parent)}"',
                parent,
                ": it is never true. Use IS NULL or IS NOT NULL to test for a missing value.",
            )

    # ------------------------------------------------------------------ refusals

    def refuse(self, node: exp.Expr) -> RuleError:
        text = self.source.excerpt(node)
        if isinstance(node, exp.Subquery | exp.Exists) or (isinstance(node, exp.Query)):
            return self.fail(
                f'subqueries are not allowed: "{text}"',
                node,
                ". A rule reads the tags of one user; for population figures use mean, median, "
                "quantile, min_of, max_of or share.",
            )
        if isinstance(node, exp.Star):
            return self.fail("'*' is not allowed", node, ". Name each tag by its id.")
        if isinstance(node, exp.Window):
            return self.fail(
                f'window functions are not allowed: "{text}"',
                node,
                ". For population figures use mean, median, quantile, min_of, max_of or share.",
            )
        if isinstance(node, exp.Alias):
            alias = node.args.get("alias")
            return self.source.error(
                f'unexpected {str(node.alias)!r} after "{self.source.excerpt(node.this)}"',
                node=alias if isinstance(alias, exp.Expr) else node,
                detail=". A rule is a single expression: check for a missing operator, or for full-width "
                "punctuation such as ，！（）.",
            )
        if isinstance(node, exp.Placeholder | exp.Parameter):
            return self.fail(f"parameters are not allowed: {text!r}", node, ". Write the value itself.")
        if isinstance(node, exp.Cast):
            return self.fail(
                f'type casts are not allowed: "{text}"',
                node,
                ". Tags already have a type; compare like with like.",
            )
        if isinstance(node, exp.Func) and not isinstance(node, exp.Binary):
            name = function_name(node)
            instead = INSTEAD.get(name)
            suggestion = (
                f" Use {instead} instead." if instead else did_you_mean(name, allowed_function_names())
            )
            kind = "aggregate function" if isinstance(node, exp.AggFunc) else "function"
            return self.fail(
                f"{kind} '{name}' is not allowed",
                node,
                f".{suggestion} Allowed functions: {', '.join(sorted(FUNCTIONS.values()))}; "
                f"statistics: {', '.join(STATISTICS)}.",
            )
        return self.fail(
            f'"{text}" is not allowed in a rule',
            node,
            ". See docs/rules.md for the operators and functions a rule may use.",
        )

    # ------------------------------------------------------------------ leaves

    def column(self, node: exp.Column) -> Kind:
        if isinstance(node.this, exp.Star):
            raise self.refuse(node.this)
        if any(node.args.get(part) for part in ("table", "db", "catalog")):
            raise self.fail(
                f"qualified name {node.sql()!r} is not allowed",
                node,
                f". Refer to a tag by its id alone, e.g. {node.name}.",
            )
        name = str(node.name)
        if name not in self.known:
            folded = [tag for tag in self.known if tag.casefold() == name.casefold()]
            hint = f" Did you mean '{folded[0]}'?" if folded else did_you_mean(name, self.known)
            if not hint:
                hint = " Check the spelling, or define the tag in the catalog first."
            if node.this.args.get("quoted"):
                hint += " Text values take single quotes: 'like this'."
            raise self.fail(f"unknown tag '{name}'", node, f".{hint}")
        self.references.add(name)
        return self.known[name]

    def literal(self, node: exp.Literal) -> Kind:
        if node.is_string:
            return "string"
        value = number_value(node)
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(f"number {node.this} is out of range", node)
        if isinstance(value, int) and value >= 2**63:
            raise self.fail(f"number {node.this} is too large", node, ". Integers must be below 2^63.")
        return "number"

    def boolean(self, node: exp.Boolean) -> Kind:
        return "boolean"

    def null(self, node: exp.Null) -> Kind:
        return "null"

    def paren(self, node: exp.Paren) -> Kind:
        return self.kind(node.this)

    # ------------------------------------------------------------------ operators

    def negative(self, node: exp.Neg) -> Kind:
        self.need(node.this, "number", node, "unary '-'")
        return "number"

    def arithmetic(self, node: exp.Binary) -> Kind:
        operator = ARITHMETIC[type(node)]
        self.need(node.this, "number", node, f"'{operator}'")
        self.need(node.expression, "number", node, f"'{operator}'")
        return "number"

    def logic(self, node: exp.Binary) -> Kind:
        operator = LOGIC[type(node)]
        self.need(node.this, "boolean", node, operator)
        self.need(node.expression, "boolean", node, operator)
        return "boolean"

    def negation(self, node: exp.Not) -> Kind:
        kind = self.kind(node.this)
        if kind not in ("boolean", "null"):
            raise self.type_error(
                node,
                f"NOT needs a condition, but {self.source.excerpt(node.this)} is {_ARTICLE[kind]}",
                " Write a comparison, e.g. NOT (age > 30), or test for a missing value with IS NULL.",
            )
        return "boolean"

    def comparison(self, node: exp.Binary) -> Kind:
        operator = COMPARISONS[type(node)]
        left, right = node.this, node.expression
        left_kind, right_kind = self.kind(left), self.kind(right)
        self.no_null(left, node, "comparison")
        self.no_null(right, node, "comparison")
        if left_kind != right_kind and "null" not in (left_kind, right_kind):
            hint = ""
            if {left_kind, right_kind} == {"number", "string"}:
                hint = " Write numbers without quotes (age > 30) and text in single quotes (gender = '女')."
            raise self.type_error(
                node, f"cannot compare {_ARTICLE[left_kind]} with {_ARTICLE[right_kind]}", hint
            )
        if operator not in ("=", "<>") and left_kind != "number":
            side = left if left_kind != "null" else right
            hint = (
                " Text has no order here: list the values instead, e.g. education IN ('本科', '硕士')."
                if left_kind == "string"
                else ""
            )
            raise self.type_error(
                node,
                f"'{operator}' compares numbers, but {self.source.excerpt(side)} is {_ARTICLE[left_kind]}",
                hint,
            )
        return "boolean"

    def between(self, node: exp.Between) -> Kind:
        for part in ("this", "low", "high"):
            self.need(node.args[part], "number", node, "BETWEEN")
            self.no_null(node.args[part], node, "BETWEEN")
        return "boolean"

    def membership(self, node: exp.In) -> Kind:
        if node.args.get("query") is not None:
            raise self.refuse(node.args["query"])
        values = node.expressions
        if not values or any(node.args.get(key) for key in ("unnest", "field", "is_global")):
            raise self.fail(
                f'unsupported form "{self.source.excerpt(node)}"',
                node,
                ". Write IN with a list of values in parentheses, e.g. city_tier IN (1, 2).",
            )
        self.no_null(node.this, node, "IN")
        for value in values:
            self.no_null(value, node, "IN")
        self.same([node.this, *values], node, "IN and its values")
        return "boolean"

    def is_null(self, node: exp.Is) -> Kind:
        if not isinstance(node.expression, exp.Null):
            raise self.fail(
                f'"{self.source.excerpt(node)}" is not allowed',
                node,
                ". Only IS NULL and IS NOT NULL are: for a boolean tag write the tag (or NOT tag); "
                "coalesce(tag, FALSE) counts a missing value as false.",
            )
        self.kind(node.this)
        self.kinds[id(node.expression)] = "null"
        return "boolean"

    def like(self, node: exp.Like) -> Kind:
        self.need(node.this, "string", node, "LIKE")
        pattern = node.expression
        if not (isinstance(pattern, exp.Literal) and pattern.is_string):
            raise self.fail(
                f'LIKE needs a quoted pattern in "{self.source.excerpt(node)}"',
                node,
                ", e.g. finance_group LIKE '千禧一代/%'.",
            )
        self.kind(pattern)
        return "boolean"

    def case(self, node: exp.Case) -> Kind:
        subject = node.args.get("this")
        results: list[exp.Expr] = []
        for branch in node.args["ifs"]:
            if branch.args.get("false") is not None:  # pragma: no cover - CASE never sets it
                raise self.fail(f'unsupported form "{self.source.excerpt(node)}"', node)
            if subject is None:
                self.need(branch.this, "boolean", node, "WHEN")
            else:
                self.no_null(branch.this, node, "CASE comparison")
                self.same([subject, branch.this], node, "CASE and its WHEN values")
            results.append(branch.args["true"])
        if node.args.get("default") is not None:
            results.append(node.args["default"])
        kind = self.same(results, node, "THEN and ELSE values")
        if kind == "null":
            raise self.fail(f'"{self.source.excerpt(node)}" only gives NULL', node)
        return kind

    # ------------------------------------------------------------------ functions

    def arguments(self, node: exp.Expr, count: int | None) -> list[exp.Expr]:
        """The arguments of a call in order; ``count=None`` for a variadic one (at least one)."""
        if count is None:
            args = [node.this, *node.expressions]
        else:
            args = [node.this, node.args.get("expression")][:count]
        args = [arg for arg in args if arg is not None]
        if not args or (count is not None and len(args) != count):
            need = "at least one argument" if count is None else f"{count} argument{'s' * (count > 1)}"
            raise self.fail(f"{function_name(node)}() needs {need}", node)
        return args

    def math(self, node: exp.Expr) -> Kind:
        (value,) = self.arguments(node, 1)
        self.need(value, "number", node, f"{function_name(node)}()")
        return "number"

    def round_(self, node: exp.Round) -> Kind:
        (value,) = self.arguments(node, 1)
        self.need(value, "number", node, "round()")
        digits = node.args.get("decimals")
        if digits is not None:
            places = literal_number(digits)
            if not isinstance(places, int) or not -18 <= places <= 18:
                raise self.fail(
                    f'round() needs a whole number of decimal places in "{self.source.excerpt(node)}"',
                    node,
                    ", e.g. round(x, 2).",
                )
            self.kind(digits)
        return "number"

    def power(self, node: exp.Pow) -> Kind:
        for value in self.arguments(node, 2):
            self.need(value, "number", node, "power()")
        return "number"

    def extreme(self, node: exp.Expr) -> Kind:
        for value in self.arguments(node, None):
            self.need(value, "number", node, f"{function_name(node)}()")
        return "number"

    def coalesce(self, node: exp.Coalesce) -> Kind:
        kind = self.same(self.arguments(node, None), node, "coalesce() arguments")
        if kind == "null":
            raise self.fail(f'"{self.source.excerpt(node)}" only gives NULL', node)
        return kind

    def nullif(self, node: exp.Nullif) -> Kind:
        kind = self.same(self.arguments(node, 2), node, "nullif() arguments")
        if kind == "null":
            raise self.fail(f'"{self.source.excerpt(node)}" only gives NULL', node)
        return kind

    def text(self, node: exp.Expr) -> Kind:
        (value,) = self.arguments(node, 1)
        self.need(value, "string", node, f"{function_name(node)}()")
        return "number" if isinstance(node, exp.Length) else "string"

    def anonymous(self, node: exp.Anonymous) -> Kind:
        name = function_name(node)
        if name not in STATISTICS:
            raise self.refuse(node)
        if self.statistic is not None:
            raise self.fail(
                f"{name}() inside {self.statistic}() is not allowed",
                node,
                ". Statistics cannot be nested: make the inner one a tag of its own.",
            )
        args = list(node.expressions)
        low, high = (2, 3) if name == "quantile" else (1, 2)
        if not low <= len(args) <= high:
            usage = {
                "quantile": "quantile(x, q) or quantile(x, q, filter)",
                "share": "share(condition) or share(condition, filter)",
            }.get(name, f"{name}(x) or {name}(x, filter)")
            raise self.fail(
                f"{name}() takes {low} or {high} arguments, got {len(args)}", node, f". Write {usage}."
            )
        self.statistic = name
        try:
            value = args.pop(0)
            if name == "share":
                self.need(value, "boolean", node, "share()")
            else:
                self.need(value, "number", node, f"{name}()")
            if value.find(exp.Column) is None:
                raise self.fail(
                    f'the first argument of {name}() must use a tag in "{self.source.excerpt(node)}"',
                    node,
                    f", e.g. {_EXAMPLES.get(name, name + '(monetary_365d)')}.",
                )
            if name == "quantile":
                self.quantile_level(args.pop(0), node)
            if args:
                self.need(args[0], "boolean", node, f"the filter of {name}()")
        finally:
            self.statistic = None
        return "number"

    def quantile_level(self, level: exp.Expr, node: exp.Expr) -> None:
        value = literal_number(level)
        if value is None:
            raise self.fail(
                f'the level of quantile() must be a number written out in "{self.source.excerpt(node)}"',
                level,
                f". Write a fraction, {_QUANTILE_HINT}.",
            )
        if not 0 <= value <= 1:
            raise self.fail(
                f"the level of quantile() must be between 0 and 1, got {value}",
                level,
                f". Write a fraction, {_QUANTILE_HINT} for the 80th percentile.",
            )
        self.kind(level)


_Handler = Callable[..., Kind]  # a _Checker method taking the node's own class

_HANDLERS: dict[type[exp.Expr], _Handler] = {
    exp.Column: _Checker.column,
    exp.Literal: _Checker.literal,
    exp.Boolean: _Checker.boolean,
    exp.Null: _Checker.null,
    exp.Paren: _Checker.paren,
    exp.Neg: _Checker.negative,
    exp.Not: _Checker.negation,
    exp.Between: _Checker.between,
    exp.In: _Checker.membership,
    exp.Is: _Checker.is_null,
    exp.Like: _Checker.like,
    exp.Case: _Checker.case,
    exp.Anonymous: _Checker.anonymous,
    exp.Round: _Checker.round_,
    exp.Pow: _Checker.power,
    exp.Least: _Checker.extreme,
    exp.Greatest: _Checker.extreme,
    exp.Coalesce: _Checker.coalesce,
    exp.Nullif: _Checker.nullif,
    **dict.fromkeys(COMPARISONS, _Checker.comparison),
    **dict.fromkeys(ARITHMETIC, _Checker.arithmetic),
    **dict.fromkeys(LOGIC, _Checker.logic),
    **dict.fromkeys((exp.Abs, exp.Ceil, exp.Exp, exp.Floor, exp.Ln, exp.Sqrt), _Checker.math),
    **dict.fromkeys((exp.Lower, exp.Upper, exp.Length), _Checker.text),
}
