"""The tag rule language: SQL expressions over tags, checked and compiled to Ibis.

Analysts write a rule as one SQL expression (``city_tier IN (1, 2) AND age
BETWEEN 26 AND 55``); :func:`parse_rule` reads it with sqlglot and checks every
node against an allow-list of sqlglot classes and the kinds of the catalog's
tags; :func:`compile_rule` walks the same tree and builds Ibis expressions over
a wide table with one column per tag. No rule text ever reaches ``eval`` or an
SQL string. The language is described for analysts in docs/rules.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import ibis.expr.types as ir
from sqlglot import exp

from huaxiang.catalog.rules.checker import check
from huaxiang.catalog.rules.compiler import compile_tree
from huaxiang.catalog.rules.language import FUNCTIONS, STATISTICS, ValueKind, allowed_function_names
from huaxiang.catalog.rules.syntax import MAX_RULE_CHARS, RuleText
from huaxiang.errors import RuleError, did_you_mean

__all__ = [
    "FUNCTIONS",
    "MAX_RULE_CHARS",
    "STATISTICS",
    "TAG_TYPE_KINDS",
    "Rule",
    "RuleError",
    "ValueKind",
    "allowed_function_names",
    "compile_rule",
    "kind_of_tag_type",
    "parse_rule",
]

TAG_TYPE_KINDS: dict[str, ValueKind] = {
    "boolean": "boolean",
    "enum": "string",
    "hierarchical_enum": "string",
    "integer": "number",
    "number": "number",
    "probability": "number",
}
"""The value kind a rule sees for each tag value type of the catalog."""

_ARTICLE = {"boolean": "a condition (true/false)", "string": "a string", "number": "a number"}
_EXPECT_HINT = {
    "boolean": " Write a comparison, e.g. monetary_365d >= 1000.",
    "string": "",
    "number": "",
}


def kind_of_tag_type(tag_type: str) -> ValueKind:
    """The :data:`ValueKind` of a catalog value type (``enum`` -> ``"string"``, ...)."""
    try:
        return TAG_TYPE_KINDS[tag_type]
    except KeyError:
        raise RuleError(
            f"unknown tag value type {tag_type!r}; known: {', '.join(TAG_TYPE_KINDS)}."
            f"{did_you_mean(tag_type, TAG_TYPE_KINDS)}"
        ) from None


@dataclass(frozen=True)
class Rule:
    """A checked rule: its text, sqlglot tree, the tags it reads and the kind of its value."""

    text: str
    tree: exp.Expression
    references: frozenset[str]
    kind: ValueKind
    origin: str = field(default="rule", compare=False)
    """Where the rule was written; prefixes errors raised when it is compiled."""


def parse_rule(
    text: str,
    known: Mapping[str, ValueKind],
    *,
    origin: str = "rule",
    expect: ValueKind | None = None,
) -> Rule:
    """Parse and check a rule against the tags in ``known``.

    Parameters
    ----------
    text
        The rule, one SQL expression.
    known
        Tag id -> value kind of every tag the rule may read.
    origin
        Where the rule comes from, e.g. ``tags/rfm.yaml:12 (tag rfm_class, case
        重要价值客户)``; every error message starts with it.
    expect
        The kind the rule must give, e.g. ``"boolean"`` for a ``when:`` condition.

    Raises
    ------
    RuleError
        (a :class:`~huaxiang.errors.ConfigError`) naming the origin, the offending
        text, its line and column, and what to do.
    """
    for name, kind in known.items():
        if kind not in _ARTICLE:
            raise RuleError(
                f"{origin}: tag '{name}' has kind {kind!r}; rules know boolean, string and number."
            )
    if expect is not None and expect not in _ARTICLE:
        raise RuleError(f"{origin}: expect must be boolean, string or number, not {expect!r}.")
    source = RuleText(text, origin)
    tree = source.parse()
    checked = check(tree, source, known)
    if checked.kind == "null":
        raise source.error(
            "the rule only gives NULL",
            node=tree,
            detail=". Write a condition or a value over tags.",
        )
    if expect is not None and checked.kind != expect:
        raise source.error(
            f'expected {_ARTICLE[expect]}, but "{source.excerpt(tree)}" gives {_ARTICLE[checked.kind]}',
            node=tree,
            detail="." + _EXPECT_HINT[expect],
        )
    return Rule(text=text, tree=tree, references=checked.references, kind=checked.kind, origin=origin)


def compile_rule(rule: Rule, table: ir.Table) -> ir.Value:
    """Compile ``rule`` to an Ibis value over ``table`` (a column per referenced tag id).

    The rule is checked again against the column types of ``table``: a column
    that is missing, or whose type differs from what the catalog said, is an
    error naming the rule's origin. Statistics (``mean(x, filter)`` ...) are
    reductions over all rows of ``table``, broadcast to every row.
    """
    schema = table.schema()
    known: dict[str, ValueKind] = {}
    for name in sorted(rule.references):
        if name not in schema:
            raise RuleError(
                f"{rule.origin}: the table has no column for tag '{name}'.{did_you_mean(name, schema.names)}"
                " Build or load the tag before the rules that read it."
            )
        dtype = schema[name]
        if dtype.is_boolean():
            known[name] = "boolean"
        elif dtype.is_string():
            known[name] = "string"
        elif dtype.is_numeric():
            known[name] = "number"
        else:
            raise RuleError(
                f"{rule.origin}: column '{name}' has type {dtype}; "
                "rules read boolean, string and number tags."
            )
    source = RuleText(rule.text, rule.origin)
    source.tokenize()
    try:
        checked = check(rule.tree, source, known)
    except RuleError as error:
        found = ", ".join(f"{name} {kind}" for name, kind in known.items())
        raise RuleError(
            f"{error} Column types in the table: {found}.", line=error.line, column=error.column
        ) from None
    if checked.kind != rule.kind:
        raise RuleError(
            f"{rule.origin}: with the column types of the table the rule gives "
            f"{_ARTICLE.get(checked.kind, 'NULL')}, not {_ARTICLE[rule.kind]}."
        )
    try:
        return compile_tree(rule.tree, checked, table)
    except RecursionError:  # pragma: no cover - the checker refuses deeper trees first
        raise RuleError(f"{rule.origin}: the rule is nested too deeply. Split it into helper tags.") from None
