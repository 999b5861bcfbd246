"""Audience definitions as ClickHouse SQL over bitmaps (``groupBitmap``, ``bitmapAnd`` ...).

The same checked tree the bitmap index evaluates (:mod:`huaxiang.audience.evaluate`)
compiles to one ClickHouse query, for a cluster that holds the tags (docs/audiences.md,
"ClickHouse / Doris"). Two layouts:

``mode="wide"``
    the snapshot's tags as a table with one row per user: ``uid`` (the dense id of
    the bitmap index, a UInt32: the user's row in ``tags.parquet`` ordered by
    ``user_id``), ``user_id`` and a column per tag (:func:`tag_table_sql`). Each
    condition is a ``groupBitmapStateIf(uid, ...)`` in one scan of the table.
``mode="bitmap"``
    a pre-aggregated table of one bitmap per (tag, value), ``AggregateFunction(groupBitmap,
    UInt32)``, as ClickHouse and Doris tag systems keep them (:func:`bitmap_table_sql`):
    boolean and enum conditions read the stored bitmaps; number conditions read the
    wide table.

The bitmaps are combined with ``bitmapAnd`` / ``bitmapOr`` / ``bitmapAndnot``; the
query returns ``bitmapCardinality`` (``output="size"``), the dense ids (``"ids"``)
or the members' ``user_id`` (``"user_ids"``). NULL follows the index (SQL's
three-valued logic): every node has a *true* set and, under a ``NOT``, a *false*
set, and a condition on a null tag is in neither, so ``NOT segment = 'vip'`` leaves
out users without a segment exactly as :func:`~huaxiang.audience.evaluate.evaluate`
does.

Nothing the user typed reaches the SQL unescaped: tags are checked against the
snapshot's tags and quoted as identifiers, values are written as ClickHouse
literals (strings with backslash escapes, numbers from Python numbers), and table
names must be plain identifiers. ``in_audience('x')`` is inlined when the caller
resolves saved audiences to their definitions (``audiences=``), else refused.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

import pyarrow as pa

from huaxiang.audience.definition import (
    And,
    Condition,
    InAudience,
    Node,
    Not,
    Or,
    Scalar,
    TagSpec,
    check,
    parse,
)
from huaxiang.audience.errors import AudienceError, DefinitionError
from huaxiang.errors import did_you_mean

Mode = Literal["wide", "bitmap"]
Output = Literal["size", "ids", "user_ids"]
MODES: tuple[str, ...] = ("wide", "bitmap")
OUTPUTS: tuple[str, ...] = ("size", "ids", "user_ids")
DEFAULT_TABLE = "tags"
DEFAULT_BITMAP_TABLE = "tag_bitmaps"
UID = "uid"
"""The dense user number column of the tag table (the bitmap index's numbering)."""

Resolver = Callable[[str], Node]
"""Gives the definition of the saved audience of that name (to inline ``in_audience``)."""

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_BITMAP_KINDS = frozenset({"boolean", "enum"})


# ---------------------------------------------------------------------------- literals


def quote_string(text: str) -> str:
    """A ClickHouse string literal: backslash and quote escaped, control characters as ``\\xHH``."""
    parts = ["'"]
    for char in text:
        if char == "\\":
            parts.append("\\\\")
        elif char == "'":
            parts.append("\\'")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            parts.append(f"\\x{ord(char):02X}")
        else:
            parts.append(char)
    parts.append("'")
    return "".join(parts)


def quote_identifier(name: str) -> str:
    """A ClickHouse identifier in backquotes (backquote and backslash escaped)."""
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def table_name(name: str, what: str = "table") -> str:
    """``table`` or ``database.table`` quoted; anything else (spaces, quotes, SQL) is refused."""
    parts = name.split(".")
    if not 1 <= len(parts) <= 2 or not all(_IDENTIFIER.match(part) for part in parts):
        raise AudienceError(
            f"ClickHouse {what} name {name!r} is not an identifier: use letters, digits and _ "
            "(not starting with a digit), optionally database.table."
        )
    return ".".join(quote_identifier(part) for part in parts)


def _number(value: Scalar, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DefinitionError(f"{where}: expected a number, got {value!r}.")
    if isinstance(value, float) and not math.isfinite(value):
        raise DefinitionError(f"{where}: {value!r} is not a number ClickHouse SQL can compare with.")
    return str(value) if isinstance(value, int) else repr(value)


# ---------------------------------------------------------------------------- compiler


class _Compiler:
    """Collects one aggregate per distinct condition set and builds the bitmap expression."""

    def __init__(
        self,
        specs: Mapping[str, TagSpec],
        mode: Mode,
        resolve: Resolver | None,
    ) -> None:
        self.specs = specs
        self.mode = mode
        self.resolve = resolve
        self.wide: dict[str, str] = {}  # condition SQL -> alias, aggregated over the tag table
        self.stored: dict[str, str] = {}  # condition SQL -> alias, aggregated over the bitmap table
        self.stored_tags: dict[str, set[str]] = {}  # tag -> aliases of its aggregates
        self.resolving: list[str] = []

    def _wide(self, condition: str) -> str:
        return self.wide.setdefault(condition, f"__w{len(self.wide)}")

    def _stored(self, tag: str, condition: str) -> str:
        alias = self.stored.setdefault(condition, f"__b{len(self.stored)}")
        self.stored_tags.setdefault(tag, set()).add(alias)
        return alias

    def node(self, node: Node, *, need_false: bool) -> tuple[str, str | None]:
        """(true set, false set or None) of ``node`` as bitmap expressions."""
        if isinstance(node, Condition):
            return self.condition(node, need_false=need_false)
        if isinstance(node, InAudience):
            return self.saved(node, need_false=need_false)
        if isinstance(node, Not):
            true, false = self.node(node.item, need_false=True)
            assert false is not None
            return false, true
        results = [self.node(item, need_false=need_false) for item in node.items]
        trues = [true for true, _ in results]
        falses = [false for _, false in results if false is not None]
        if isinstance(node, And):
            return _fold("bitmapAnd", trues), _fold("bitmapOr", falses) if need_false else None
        assert isinstance(node, Or)
        return _fold("bitmapOr", trues), _fold("bitmapAnd", falses) if need_false else None

    def saved(self, node: InAudience, *, need_false: bool) -> tuple[str, str | None]:
        if self.resolve is None:
            raise DefinitionError(
                f"in_audience('{node.name}') cannot be compiled to ClickHouse SQL: saved audiences live in "
                "huaxiang's metadata database, not in ClickHouse. Write the saved audience's definition in "
                "its place (huaxiang audience list shows it), or let the caller resolve saved audiences "
                "(to_clickhouse(..., audiences=...); the CLI does for dynamic ones)."
            )
        if node.name in self.resolving:
            chain = " -> ".join([*self.resolving, node.name])
            raise DefinitionError(f"saved audiences refer to each other in a circle: {chain}.")
        self.resolving.append(node.name)
        try:
            definition = check(parse(self.resolve(node.name)), self.specs)
            return self.node(definition, need_false=need_false)
        finally:
            self.resolving.pop()

    def condition(self, node: Condition, *, need_false: bool) -> tuple[str, str | None]:
        spec = self.specs[node.tag]
        if self.mode == "bitmap" and spec.kind in _BITMAP_KINDS:
            return self._stored_condition(node, spec, need_false=need_false)
        column = quote_identifier(node.tag)
        present = f"{column} IS NOT NULL"
        if node.op in ("is null", "is not null"):
            null = self._wide(f"{column} IS NULL")
            not_null = self._wide(present)
            true, false = (null, not_null) if node.op == "is null" else (not_null, null)
            return true, false if need_false else None
        matched = self._predicate(node, spec, column)
        # Guarded by IS NOT NULL, so neither set holds a user without a value (SQL's unknown).
        yes = self._wide(f"{present} AND ({matched})")
        no = self._wide(f"{present} AND NOT ({matched})") if need_false or node.op == "!=" else None
        if node.op == "!=":
            assert no is not None
            return no, yes if need_false else None
        return yes, no

    def _predicate(self, node: Condition, spec: TagSpec, column: str) -> str:
        """The condition as SQL on a non-null value (``!=`` as its ``=``)."""
        where = f"condition on tag '{node.tag}'"
        op, value = node.op, node.value
        if spec.kind == "number":
            if op == "between":
                assert isinstance(value, tuple)
                return f"{column} >= {_number(value[0], where)} AND {column} <= {_number(value[1], where)}"
            if op == "in":
                assert isinstance(value, tuple)
                return f"{column} IN ({', '.join(_number(v, where) for v in value)})"
            sign = "=" if op in ("=", "!=") else op
            assert not isinstance(value, tuple) and value is not None
            return f"{column} {sign} {_number(value, where)}"
        items = value if isinstance(value, tuple) else (value,)
        if spec.kind == "boolean":
            literals = ["true" if item is True else "false" for item in items]
            return (
                f"{column} = {literals[0]}" if len(literals) == 1 else f"{column} IN ({', '.join(literals)})"
            )
        texts = [str(item) for item in items]
        if spec.type == "hierarchical_enum":  # a parent path matches its children
            return " OR ".join(
                f"{column} = {quote_string(text)} OR startsWith({column}, {quote_string(text + '/')})"
                for text in texts
            )
        if len(texts) == 1:
            return f"{column} = {quote_string(texts[0])}"
        return f"{column} IN ({', '.join(quote_string(text) for text in texts)})"

    def _stored_condition(
        self, node: Condition, spec: TagSpec, *, need_false: bool
    ) -> tuple[str, str | None]:
        tag = quote_string(node.tag)
        not_null = self._stored(node.tag, f"tag = {tag} AND is_null = 0")
        if node.op in ("is null", "is not null"):
            null = self._stored(node.tag, f"tag = {tag} AND is_null = 1")
            true, false = (null, not_null) if node.op == "is null" else (not_null, null)
            return true, false if need_false else None
        items = node.value if isinstance(node.value, tuple) else (node.value,)
        keys = sorted(
            {("true" if v is True else "false") if spec.kind == "boolean" else str(v) for v in items}
        )
        listed = ", ".join(quote_string(key) for key in keys)
        matched = self._stored(node.tag, f"tag = {tag} AND is_null = 0 AND value IN ({listed})")
        unmatched = f"bitmapAndnot({not_null}, {matched})"
        if node.op == "!=":
            return unmatched, matched if need_false else None
        return matched, unmatched if need_false else None


def _fold(function: str, items: Sequence[str]) -> str:
    """``function`` over ``items`` as a balanced tree of two-argument calls (depth log2 n)."""
    if len(items) == 1:
        return items[0]
    middle = len(items) // 2
    return f"{function}({_fold(function, items[:middle])}, {_fold(function, items[middle:])})"


def to_clickhouse(
    definition: str | Mapping[str, object] | Node,
    tags: Mapping[str, TagSpec],
    *,
    table: str = DEFAULT_TABLE,
    mode: Mode = "wide",
    output: Output = "size",
    bitmap_table: str = DEFAULT_BITMAP_TABLE,
    audiences: Mapping[str, object] | Resolver | None = None,
) -> str:
    """One ClickHouse query for the audience: its size, its dense ids or its members' user ids.

    Parameters
    ----------
    definition
        The audience in any form (:func:`~huaxiang.audience.definition.parse`); it is
        checked against ``tags`` first.
    tags
        The snapshot's tags (``SnapshotIndex.specs``): only these are columns.
    table
        The wide tag table (``uid``, ``user_id``, a column per tag; :func:`tag_table_sql`).
    mode
        ``"wide"``: every condition over ``table``; ``"bitmap"``: boolean and enum
        conditions read ``bitmap_table`` (:func:`bitmap_table_sql`), numbers ``table``.
    output
        ``"size"`` (one row, ``size``), ``"ids"`` (``uid`` ascending) or ``"user_ids"``
        (``user_id`` in ``uid`` order, read from ``table``).
    audiences
        Saved audiences to inline: a mapping or a function from name to definition.
        Without it ``in_audience`` is refused.
    """
    if mode not in MODES:
        raise AudienceError(
            f"unknown mode {mode!r}; use one of {', '.join(MODES)}.{did_you_mean(mode, MODES)}"
        )
    if output not in OUTPUTS:
        raise AudienceError(
            f"unknown output {output!r}; use one of {', '.join(OUTPUTS)}.{did_you_mean(output, OUTPUTS)}"
        )
    wide_table = table_name(table)
    stored_table = table_name(bitmap_table, "bitmap table")
    node = check(parse(definition), tags)
    resolve: Resolver | None
    if audiences is None or callable(audiences):
        resolve = audiences
    else:
        saved = audiences

        def resolve(name: str) -> Node:
            if name not in saved:
                raise DefinitionError(f"no saved audience '{name}'.{did_you_mean(name, saved)}")
            return parse(saved[name])  # type: ignore[arg-type]

    compiler = _Compiler(tags, mode, resolve)
    members, _ = compiler.node(node, need_false=False)
    # A NOT computes both sets of what is under it; keep only the aggregates the result reads.
    used = set(re.findall(r"__[wb]\d+", members))
    kept_stored = [(a, c) for c, a in compiler.stored.items() if a in used]
    kept_wide = [(a, c) for c, a in compiler.wide.items() if a in used]
    renamed = {a: f"__b{n}" for n, (a, _) in enumerate(kept_stored)}
    renamed.update({a: f"__w{n}" for n, (a, _) in enumerate(kept_wide)})
    members = re.sub(r"__[wb]\d+", lambda found: renamed[found.group(0)], members)
    stored = {renamed[a]: c for a, c in kept_stored}
    wide = {renamed[a]: c for a, c in kept_wide}
    sources: list[str] = []
    if stored:
        aggregates = ",\n        ".join(
            f"groupBitmapOrStateIf(users, {condition}) AS {alias}" for alias, condition in stored.items()
        )
        read = ", ".join(quote_string(tag) for tag, aliases in compiler.stored_tags.items() if aliases & used)
        sources.append(
            f"(\n    SELECT\n        {aggregates}\n    FROM {stored_table}\n"
            f"    WHERE tag IN ({read})\n) AS stored"
        )
    if wide:
        uid = quote_identifier(UID)
        aggregates = ",\n        ".join(
            f"groupBitmapStateIf({uid}, {condition}) AS {alias}" for alias, condition in wide.items()
        )
        sources.append(f"(\n    SELECT\n        {aggregates}\n    FROM {wide_table}\n) AS wide")
    source = "\nCROSS JOIN ".join(sources)
    if output == "size":
        return f"SELECT bitmapCardinality({members}) AS size\nFROM {source}"
    ids = f"SELECT arrayJoin(bitmapToArray({members})) AS {quote_identifier(UID)}\nFROM {source}"
    if output == "ids":
        return ids
    uid = quote_identifier(UID)
    indented = ids.replace("\n", "\n    ")
    return f"SELECT user_id\nFROM {wide_table}\nWHERE {uid} IN (\n    {indented}\n)\nORDER BY {uid}"


# ---------------------------------------------------------------------------- tables


def _column_type(name: str, kind: pa.DataType, spec: TagSpec) -> str:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if pa.types.is_boolean(kind):
        return "Nullable(Bool)"
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return "LowCardinality(Nullable(String))" if spec.kind == "enum" else "Nullable(String)"
    if pa.types.is_integer(kind):
        return f"Nullable({'U' if pa.types.is_unsigned_integer(kind) else ''}Int{kind.bit_width})"
    if pa.types.is_floating(kind):
        return "Nullable(Float64)"
    if pa.types.is_decimal(kind):
        return f"Nullable(Decimal({kind.precision}, {kind.scale}))"
    raise AudienceError(f"tag '{name}' has column type {kind}, which the ClickHouse tag table does not take.")


def tag_table_sql(
    schema: pa.Schema,
    tags: Mapping[str, TagSpec],
    source: str,
    *,
    table: str = DEFAULT_TABLE,
) -> list[str]:
    """``CREATE TABLE`` and ``INSERT ... SELECT`` of the wide tag table, from a snapshot's ``tags.parquet``.

    ``schema`` is the Parquet file's schema; only the columns in ``tags`` (the indexed
    tags) are loaded. ``source`` is a ClickHouse table expression reading the file,
    written by the operator (e.g. :func:`parquet_source`, or ``s3('https://…/tags.parquet',
    Parquet)`` on a cluster). ``uid`` is the row number in ``user_id`` order, the bitmap
    index's numbering; a NaN in a float tag becomes NULL, as the index counts it.
    """
    wide_table = table_name(table)
    if "user_id" not in schema.names:
        raise AudienceError("the tags table has no user_id column.")
    columns = [name for name in schema.names if name in tags]
    definitions = [f"{quote_identifier(UID)} UInt32", "user_id String"]
    selected = [f"toUInt32(row_number() OVER (ORDER BY user_id) - 1) AS {quote_identifier(UID)}", "user_id"]
    for name in columns:
        kind = schema.field(name).type
        column = quote_identifier(name)
        definitions.append(f"{column} {_column_type(name, kind, tags[name])}")
        selected.append(f"if(isNaN({column}), NULL, {column})" if pa.types.is_floating(kind) else column)
    body = ",\n    ".join(definitions)
    create = (
        f"CREATE TABLE {wide_table}\n(\n    {body}\n)\nENGINE = MergeTree\nORDER BY {quote_identifier(UID)}"
    )
    listed = ", ".join([quote_identifier(UID), "user_id", *(quote_identifier(name) for name in columns)])
    insert = (
        f"INSERT INTO {wide_table} ({listed})\nSELECT\n    " + ",\n    ".join(selected) + f"\nFROM {source}"
    )
    return [create, insert]


def parquet_source(path: str) -> str:
    """``file('path', Parquet)``: a local Parquet file as a ClickHouse table expression."""
    return f"file({quote_string(path)}, Parquet)"


def bitmap_table_sql(
    tags: Mapping[str, TagSpec],
    *,
    table: str = DEFAULT_TABLE,
    bitmap_table: str = DEFAULT_BITMAP_TABLE,
) -> list[str]:
    """``CREATE TABLE`` of the bitmap table and one ``INSERT ... SELECT`` per boolean / enum tag.

    A row per (tag, value) holds the users with that value (booleans: ``'true'``,
    ``'false'``; a hierarchical tag also has a row per parent path, the union of its
    children) and a row with ``is_null = 1`` the users without a value, as the bitmap
    index keeps them. Number tags stay in the wide table.
    """
    wide_table = table_name(table)
    stored_table = table_name(bitmap_table, "bitmap table")
    uid = quote_identifier(UID)
    statements = [
        f"CREATE TABLE {stored_table}\n(\n    tag LowCardinality(String),\n    is_null UInt8,\n"
        "    value String,\n    users AggregateFunction(groupBitmap, UInt32)\n)\n"
        "ENGINE = AggregatingMergeTree\nORDER BY (tag, is_null, value)"
    ]
    for name, spec in tags.items():
        if spec.kind not in _BITMAP_KINDS:
            continue
        column, tag = quote_identifier(name), quote_string(name)
        into = f"INSERT INTO {stored_table} (tag, is_null, value, users)\n"
        if spec.kind == "boolean":
            value, join = f"if({column}, 'true', 'false')", ""
        elif spec.type == "hierarchical_enum":
            parts = f"splitByChar('/', assumeNotNull({column}))"
            value = "__value"
            join = (
                f"\nARRAY JOIN arrayMap(i -> arrayStringConcat(arraySlice({parts}, 1, i), '/'), "
                f"range(1, length({parts}) + 1)) AS __value"
            )
        else:
            value, join = f"assumeNotNull({column})", ""
        statements.append(
            f"{into}SELECT {tag}, 0, {value}, groupBitmapState({uid})\nFROM {wide_table}{join}\n"
            f"WHERE {column} IS NOT NULL\nGROUP BY {value}"
        )
        statements.append(
            f"{into}SELECT {tag}, 1, '', groupBitmapState({uid})\nFROM {wide_table}\nWHERE {column} IS NULL"
        )
    return statements
