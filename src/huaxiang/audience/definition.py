"""Audience definitions: a tree of tag conditions under AND / OR / NOT, as JSON or as text.

The JSON form (what the API and saved audiences store)::

    {"and": [
        {"tag": "rfm_class", "op": "=", "value": "重要价值客户"},
        {"tag": "city_tier", "op": "in", "value": [3, 4, 5, 6]},
        {"not": {"tag": "lifecycle_stage", "op": "=", "value": "churned"}},
        {"in_audience": "dyson_fans"}
    ]}

The text form is the same tree written as SQL, read with the rule language's
tokenizer and parser (:class:`huaxiang.catalog.rules.syntax.RuleText`), so
syntax errors point at a line and column the same way::

    rfm_class = '重要价值客户' AND city_tier IN (3, 4, 5, 6) AND NOT lifecycle_stage = 'churned'

:func:`check` validates a tree against the snapshot's tags (:class:`TagSpec`):
unknown tags and values get a did-you-mean, values must fit the tag's type, and
the tree may be at most :data:`MAX_DEPTH` levels deep. The semantics are SQL's,
including NULL (docs/audiences.md).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from sqlglot import exp

from huaxiang.audience.errors import DefinitionError
from huaxiang.catalog.rules.syntax import RuleText
from huaxiang.errors import RuleError, did_you_mean

MAX_DEPTH = 16
"""Deepest nesting of and / or / not allowed (a condition at the top is depth 1)."""

MAX_CONDITIONS = 1_000
"""Most conditions one definition may hold."""

Op = Literal["=", "!=", "in", "between", ">=", "<=", ">", "<", "is null", "is not null"]
OPS: tuple[str, ...] = ("=", "!=", "in", "between", ">=", "<=", ">", "<", "is null", "is not null")
RANGE_OPS = frozenset({">=", "<=", ">", "<", "between"})
Scalar: TypeAlias = bool | int | float | str
Value: TypeAlias = Scalar | tuple[Scalar, ...] | None

TagKind = Literal["boolean", "enum", "number"]
_KIND_OF_TYPE: dict[str, TagKind] = {
    "boolean": "boolean",
    "enum": "enum",
    "hierarchical_enum": "enum",
    "integer": "number",
    "number": "number",
    "probability": "number",
}


# ---------------------------------------------------------------------------- the tree


@dataclass(frozen=True)
class Condition:
    """``tag op value``: ``value`` is a scalar, a tuple (``in``; ``between`` low, high) or None."""

    tag: str
    op: Op
    value: Value = None


@dataclass(frozen=True)
class InAudience:
    """Members of a saved audience (by name)."""

    name: str


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


Node: TypeAlias = Condition | InAudience | And | Or | Not


@dataclass(frozen=True)
class TagSpec:
    """What an audience needs to know about one tag of a snapshot.

    ``values``: every value the tag can be compared with (enum and hierarchical
    tags: the catalog's values, the values seen in the snapshot and, for
    hierarchical tags, every parent path); empty for other types.
    """

    id: str
    type: str
    name_zh: str | None = None
    name_en: str | None = None
    values: tuple[str, ...] = ()

    @property
    def kind(self) -> TagKind:
        return _KIND_OF_TYPE.get(self.type, "enum")


# ---------------------------------------------------------------------------- JSON form


def from_json(data: Any, path: str = "$") -> Node:
    """Read the JSON form (a dict, or its text) into a tree; shape errors name the JSON path."""
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as error:
            raise DefinitionError(
                f"the definition is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno}).",
                line=error.lineno,
                column=error.colno,
            ) from None
    if not isinstance(data, Mapping):
        raise _shape(path, f"expected an object, got {_json_type(data)}")
    keys = set(data)
    if keys in ({"and"}, {"or"}):
        key = next(iter(keys))
        items = data[key]
        if not isinstance(items, list) or not items:
            raise _shape(f"{path}.{key}", "expected a non-empty list of conditions")
        children = tuple(from_json(item, f"{path}.{key}[{i}]") for i, item in enumerate(items))
        return And(children) if key == "and" else Or(children)
    if keys == {"not"}:
        return Not(from_json(data["not"], f"{path}.not"))
    if keys == {"in_audience"}:
        name = data["in_audience"]
        if not isinstance(name, str) or not name:
            raise _shape(f"{path}.in_audience", "expected the name of a saved audience")
        return InAudience(name)
    if "tag" in keys:
        extra = keys - {"tag", "op", "value"}
        if extra:
            raise _shape(path, f"unknown key {sorted(extra)[0]!r}; a condition has tag, op and value")
        tag, op = data["tag"], data.get("op", "=")
        if not isinstance(tag, str) or not tag:
            raise _shape(f"{path}.tag", "expected a tag id")
        if not isinstance(op, str) or op.lower() not in OPS:
            raise _shape(
                f"{path}.op",
                f"unknown operator {op!r}; use one of {', '.join(OPS)}.{did_you_mean(str(op), OPS)}",
            )
        op = op.lower()
        raw = data.get("value")
        value: Value
        if op in ("is null", "is not null"):
            if raw is not None:
                raise _shape(f"{path}.value", f"'{op}' takes no value")
            value = None
        elif op in ("in", "between"):
            if not isinstance(raw, list) or not raw:
                raise _shape(f"{path}.value", f"'{op}' takes a list of values")
            value = tuple(_scalar(item, f"{path}.value[{i}]") for i, item in enumerate(raw))
        else:
            value = _scalar(raw, f"{path}.value")
        return Condition(tag, op, value)  # type: ignore[arg-type]
    known = "and, or, not, in_audience, or tag/op/value"
    raise _shape(path, f"unknown keys {sorted(keys)}; a node has one of {known}")


def to_json(node: Node) -> dict[str, Any]:
    """The JSON form of a tree (inverse of :func:`from_json`)."""
    if isinstance(node, And):
        return {"and": [to_json(item) for item in node.items]}
    if isinstance(node, Or):
        return {"or": [to_json(item) for item in node.items]}
    if isinstance(node, Not):
        return {"not": to_json(node.item)}
    if isinstance(node, InAudience):
        return {"in_audience": node.name}
    data: dict[str, Any] = {"tag": node.tag, "op": node.op}
    if isinstance(node.value, tuple):
        data["value"] = list(node.value)
    elif node.value is not None:
        data["value"] = node.value
    return data


def _scalar(value: Any, path: str) -> Scalar:
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    raise _shape(path, f"expected text, a number or true/false, got {_json_type(value)}")


def _shape(path: str, what: str) -> DefinitionError:
    end = "" if what.endswith((".", "?")) else "."
    return DefinitionError(f"audience definition at {path}: {what}{end}", path=path)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return {dict: "an object", list: "a list", str: "text", bool: "a boolean"}.get(type(value), repr(value))


# ---------------------------------------------------------------------------- text form

_COMPARISONS: dict[type[exp.Expr], Op] = {
    exp.EQ: "=",
    exp.NEQ: "!=",
    exp.GTE: ">=",
    exp.LTE: "<=",
    exp.GT: ">",
    exp.LT: "<",
}
_FLIPPED: dict[str, Op] = {"=": "=", "!=": "!=", ">=": "<=", "<=": ">=", ">": "<", "<": ">"}
ORIGIN = "audience"


def from_text(text: str, *, origin: str = ORIGIN) -> Node:
    """Parse the text form into a tree; errors give the line and column in ``text``."""
    source = RuleText(text, origin)
    try:
        return _from_sql(source.parse(), source)
    except RuleError as error:
        raise DefinitionError(str(error), line=error.line, column=error.column) from None
    except RecursionError:
        raise DefinitionError(
            f"{origin}: the definition is nested too deeply (at most {MAX_DEPTH} levels). Flatten it or save "
            "a part as an audience and use in_audience('name')."
        ) from None


def _from_sql(node: exp.Expr, source: RuleText) -> Node:
    if isinstance(node, exp.Paren):
        return _from_sql(node.this, source)
    if isinstance(node, exp.And | exp.Or):
        kind = type(node)
        parts: list[exp.Expr] = []
        stack: list[exp.Expr] = [node]
        while stack:  # flatten a AND b AND c (sqlglot nests binary nodes) without recursion
            current = stack.pop()
            if isinstance(current, kind):
                stack.extend([current.expression, current.this])
            else:
                parts.append(current)
        items = tuple(_from_sql(part, source) for part in parts)
        return And(items) if kind is exp.And else Or(items)
    if isinstance(node, exp.Not):
        inner = node.this
        while isinstance(inner, exp.Paren):
            inner = inner.this
        if isinstance(inner, exp.Is):
            condition = _from_sql(inner, source)
            assert isinstance(condition, Condition)
            return Condition(condition.tag, "is not null")
        return Not(_from_sql(node.this, source))
    if isinstance(node, exp.Column):
        return Condition(_tag_name(node, source), "=", True)
    if isinstance(node, exp.Anonymous) and node.name.lower() == "in_audience":
        args = node.expressions
        if len(args) != 1 or not (isinstance(args[0], exp.Literal) and args[0].is_string):
            raise source.error(
                "in_audience takes one quoted name", node=node, detail=", e.g. in_audience('dyson_fans')."
            )
        return InAudience(args[0].this)
    if type(node) in _COMPARISONS:
        op = _COMPARISONS[type(node)]
        left, right = node.this, node.expression
        if not isinstance(left, exp.Column) and isinstance(right, exp.Column):
            left, right, op = right, left, _FLIPPED[op]
        return Condition(_tag_name(left, source), op, _literal(right, source))
    if isinstance(node, exp.In):
        if node.args.get("query") is not None or node.args.get("unnest") is not None:
            raise source.error("IN takes a list of values", node=node, detail=", e.g. city_tier IN (3, 4).")
        values = tuple(_literal(item, source) for item in node.expressions)
        return Condition(_tag_name(node.this, source), "in", values)
    if isinstance(node, exp.Between):
        low, high = _literal(node.args["low"], source), _literal(node.args["high"], source)
        return Condition(_tag_name(node.this, source), "between", (low, high))
    if isinstance(node, exp.Is):
        if not isinstance(node.expression, exp.Null):
            raise source.error(
                "IS compares with NULL only", node=node, detail="; write tag = value for other values."
            )
        return Condition(_tag_name(node.this, source), "is null")
    raise source.error(
        f'"{source.excerpt(node)}" is not an audience condition',
        node=node,
        detail=". Write tag = value, tag IN (...), tag BETWEEN a AND b, tag >= x, tag IS NULL, "
        "in_audience('name'), combined with AND, OR, NOT and parentheses.",
    )


def _tag_name(node: exp.Expr, source: RuleText) -> str:
    if isinstance(node, exp.Column) and not node.table:
        return str(node.name)
    raise source.error(
        f'expected a tag id, got "{source.excerpt(node)}"',
        node=node,
        detail=". Conditions compare one tag with values, e.g. city_tier >= 3.",
    )


def _literal(node: exp.Expr, source: RuleText) -> Scalar:
    if isinstance(node, exp.Paren):
        return _literal(node.this, source)
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal) and not node.this.is_string:
        value = _literal(node.this, source)
        assert isinstance(value, int | float)
        return -value
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Literal):
        if node.is_string:
            return str(node.this)
        text = str(node.this)
        try:
            return int(text)
        except ValueError:
            return float(text)
    if isinstance(node, exp.Null):
        raise source.error(
            "NULL is not a value to compare with", node=node, detail=": write tag IS NULL or tag IS NOT NULL."
        )
    if isinstance(node, exp.Column):
        raise source.error(
            f'"{source.excerpt(node)}" is a name, not a value',
            node=node,
            detail=f". Put text in single quotes: '{node.name}'.",
        )
    raise source.error(
        f'expected a value, got "{source.excerpt(node)}"',
        node=node,
        detail=". Values are text in single quotes, numbers, TRUE or FALSE.",
    )


def to_text(node: Node, *, top: bool = True) -> str:
    """The text form of a tree; :func:`from_text` reads it back to the same tree."""
    if isinstance(node, And | Or):
        word = " AND " if isinstance(node, And) else " OR "
        text = word.join(to_text(item, top=False) for item in node.items)
        return text if top else f"({text})"
    if isinstance(node, Not):
        return f"NOT {to_text(node.item, top=False)}"
    if isinstance(node, InAudience):
        return f"in_audience({_quote(node.name)})"
    tag = node.tag
    if node.op == "is null":
        return f"{tag} IS NULL"
    if node.op == "is not null":
        return f"{tag} IS NOT NULL"
    if node.op == "in":
        assert isinstance(node.value, tuple)
        return f"{tag} IN ({', '.join(_sql_value(v) for v in node.value)})"
    if node.op == "between":
        assert isinstance(node.value, tuple)
        low, high = node.value
        return f"{tag} BETWEEN {_sql_value(low)} AND {_sql_value(high)}"
    assert node.value is not None and not isinstance(node.value, tuple)
    return f"{tag} {node.op} {_sql_value(node.value)}"


def _sql_value(value: Scalar) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, str):
        return _quote(value)
    return repr(value)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def parse(definition: str | Mapping[str, Any] | Node) -> Node:
    """A tree from any form: a tree, a JSON object, JSON text (starting with ``{``) or the text form."""
    if isinstance(definition, Condition | InAudience | And | Or | Not):
        return definition
    if isinstance(definition, Mapping):
        return from_json(definition)
    if isinstance(definition, str) and definition.lstrip().startswith("{"):
        return from_json(definition)
    if isinstance(definition, str):
        return from_text(definition)
    raise DefinitionError(
        f"an audience definition is text or a JSON object, not {type(definition).__name__}."
    )


# ---------------------------------------------------------------------------- checking


def check(node: Node, tags: Mapping[str, TagSpec], audiences: Sequence[str] | None = None) -> Node:
    """Validate ``node`` against the snapshot's tags; the tree with values normalised.

    ``audiences`` are the names of the saved audiences ``in_audience`` may name
    (``None``: do not check names here). Raises :class:`DefinitionError` naming
    the tag, the value, what the tag takes and how to fix it.
    """
    counter = [0]
    return _check(node, tags, audiences, "$", 1, counter)


def _check(
    node: Node,
    tags: Mapping[str, TagSpec],
    audiences: Sequence[str] | None,
    path: str,
    depth: int,
    counter: list[int],
) -> Node:
    if depth > MAX_DEPTH:
        raise DefinitionError(
            f"audience definition at {path}: the tree is nested more than {MAX_DEPTH} levels deep. "
            "Flatten it (a AND (b AND c) is a AND b AND c) or save a part as an audience and use "
            "in_audience('name').",
            path=path,
        )
    if isinstance(node, And | Or):
        key = "and" if isinstance(node, And) else "or"
        items = tuple(
            _check(item, tags, audiences, f"{path}.{key}[{i}]", depth + 1, counter)
            for i, item in enumerate(node.items)
        )
        return And(items) if isinstance(node, And) else Or(items)
    if isinstance(node, Not):
        return Not(_check(node.item, tags, audiences, f"{path}.not", depth + 1, counter))
    counter[0] += 1
    if counter[0] > MAX_CONDITIONS:
        raise DefinitionError(
            f"the audience definition has more than {MAX_CONDITIONS} conditions. Save parts as audiences "
            "and combine them with in_audience('name').",
            path=path,
        )
    if isinstance(node, InAudience):
        if audiences is not None and node.name not in audiences:
            saved = ", ".join(sorted(audiences)[:20]) or "none yet"
            raise DefinitionError(
                f"audience definition at {path}: no saved audience '{node.name}'."
                f"{did_you_mean(node.name, audiences)} Saved audiences: {saved}.",
                path=path,
            )
        return node
    return _check_condition(node, tags, path)


def _check_condition(node: Condition, tags: Mapping[str, TagSpec], path: str) -> Condition:
    where = f"audience definition at {path} ({to_text(node)})"
    spec = tags.get(node.tag)
    if spec is None:
        raise DefinitionError(
            f"{where}: unknown tag '{node.tag}'.{did_you_mean(node.tag, tags)} "
            "List the snapshot's tags with 'huaxiang tags list' (a tag the build skipped has no column).",
            path=path,
        )
    label = f"tag '{spec.id}' ({spec.type}{', ' + spec.name_zh if spec.name_zh else ''})"
    if node.op in ("is null", "is not null"):
        return node
    if node.op in RANGE_OPS and spec.kind != "number":
        hint = "use = or in" if spec.kind == "enum" else "use = true or = false"
        raise DefinitionError(
            f"{where}: '{node.op}' compares numbers, but {label} is not a number; {hint}.", path=path
        )
    values = node.value if isinstance(node.value, tuple) else (node.value,)
    if node.op == "between" and len(values) != 2:
        raise DefinitionError(f"{where}: between takes two values (low, high), got {len(values)}.", path=path)
    checked = tuple(_check_value(value, spec, label, where, path) for value in values)
    if node.op == "between" and checked[0] > checked[1]:  # type: ignore[operator]
        raise DefinitionError(
            f"{where}: {spec.id} BETWEEN {checked[0]} AND {checked[1]} is empty (low > high); "
            "swap the bounds.",
            path=path,
        )
    return Condition(node.tag, node.op, checked if isinstance(node.value, tuple) else checked[0])


def _check_value(value: Scalar | None, spec: TagSpec, label: str, where: str, path: str) -> Scalar:
    if spec.kind == "boolean":
        if not isinstance(value, bool):
            raise DefinitionError(
                f"{where}: {label} is true or false, got {value!r}. Write {spec.id} = true "
                f"(or just {spec.id}), or NOT {spec.id}.",
                path=path,
            )
        return value
    if spec.kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise DefinitionError(
                f"{where}: {label} takes a number, got {_shown(value)}. "
                f"Remove the quotes, e.g. {spec.id} >= {_number_hint(value)}.",
                path=path,
            )
        if spec.type == "probability" and not 0 <= value <= 1:
            raise DefinitionError(
                f"{where}: {label} is a probability between 0 and 1, got {value}.", path=path
            )
        return value
    if not isinstance(value, str):
        raise DefinitionError(
            f"{where}: {label} takes text, got {_shown(value)}. Put the value in single quotes: '{value}'.",
            path=path,
        )
    if value not in spec.values:
        shown = ", ".join(spec.values[:30]) + (" ..." if len(spec.values) > 30 else "")
        raise DefinitionError(
            f"{where}: {label} never takes the value '{value}'.{did_you_mean(value, spec.values)} "
            f"Its values: {shown or '(none in this snapshot)'}.",
            path=path,
        )
    return value


def _shown(value: Scalar | None) -> str:
    if isinstance(value, str):
        return f"text '{value}'"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def _number_hint(value: Scalar | None) -> str:
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return "3"
        return value
    return "3"


def referenced_tags(node: Node) -> list[str]:
    """Tag ids the tree reads, in order of first appearance."""
    found: dict[str, None] = {}
    stack: list[Node] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, Condition):
            found.setdefault(current.tag)
        elif isinstance(current, And | Or):
            stack.extend(reversed(current.items))
        elif isinstance(current, Not):
            stack.append(current.item)
    return list(found)


def referenced_audiences(node: Node) -> list[str]:
    """Names of the saved audiences the tree reads."""
    found: dict[str, None] = {}
    stack: list[Node] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, InAudience):
            found.setdefault(current.name)
        elif isinstance(current, And | Or):
            stack.extend(current.items)
        elif isinstance(current, Not):
            stack.append(current.item)
    return list(found)
