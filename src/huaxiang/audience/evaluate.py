"""Evaluate a checked definition: on the bitmap index, or as an Ibis filter over ``tags.parquet``.

Both follow SQL's three-valued logic, so a definition selects exactly the rows a
``WHERE`` clause with the same text would: a condition on a null tag is
*unknown*; ``NOT`` of unknown is unknown; ``AND`` is false if either side is
false, ``OR`` is true if either side is true; a user is a member only when the
whole tree is *true*. So ``lifecycle_stage != 'churned'`` and ``NOT
lifecycle_stage = 'churned'`` both leave out users without a lifecycle stage
(add ``OR lifecycle_stage IS NULL`` to keep them).

On the index each node gives its *true* set and, when a ``NOT`` above it needs
it, its *false* set (never computed otherwise): a condition is false for the
users with a value that does not match; unknown users are in neither set.
"""

from __future__ import annotations

from collections.abc import Callable

import ibis
import ibis.expr.types as ir
from pyroaring import BitMap

from huaxiang.audience.definition import And, Condition, InAudience, Node, Not, Or
from huaxiang.audience.index import SnapshotIndex

MembersOf = Callable[[str], BitMap]
"""Resolves ``in_audience(name)`` to the saved audience's members (dense ids of the index)."""


def evaluate(node: Node, index: SnapshotIndex, members_of: MembersOf | None = None) -> BitMap:
    """The members of a checked tree: the users for whom it is true (a new bitmap, the caller's own)."""
    true, _ = _evaluate(node, index, members_of, need_false=False)
    # The result may be a bitmap the index caches (a lone condition, NOT NOT x): hand out a copy.
    return BitMap(true)


def _evaluate(
    node: Node, index: SnapshotIndex, members_of: MembersOf | None, *, need_false: bool
) -> tuple[BitMap, BitMap | None]:
    if isinstance(node, Condition):
        true = index.match(node.tag, node.op, node.value)
        if not need_false:
            return true, None
        if node.op in ("is null", "is not null"):
            return true, index.universe - true
        return true, index.not_null(node.tag) - true
    if isinstance(node, InAudience):
        if members_of is None:
            raise LookupError(f"in_audience('{node.name}') needs saved audiences; none are available here.")
        members = members_of(node.name)
        return members, (index.universe - members) if need_false else None
    if isinstance(node, Not):
        true, false = _evaluate(node.item, index, members_of, need_false=True)
        assert false is not None
        return false, true
    results = [_evaluate(item, index, members_of, need_false=need_false) for item in node.items]
    trues = [true for true, _ in results]
    falses = [false for _, false in results if false is not None]
    if isinstance(node, And):
        true = BitMap.intersection(*trues) if len(trues) > 1 else trues[0]
        false = (BitMap.union(*falses) if len(falses) > 1 else falses[0]) if need_false else None
    else:
        assert isinstance(node, Or)
        true = BitMap.union(*trues) if len(trues) > 1 else trues[0]
        false = (BitMap.intersection(*falses) if len(falses) > 1 else falses[0]) if need_false else None
    return true, false


MemberIds = Callable[[str], list[str]]
"""Resolves ``in_audience(name)`` to the saved audience's user ids (for the Ibis filter)."""


def to_ibis(
    node: Node,
    table: ir.Table,
    member_ids: MemberIds | None = None,
    hierarchical: frozenset[str] = frozenset(),
) -> ir.BooleanValue:
    """The same tree as an Ibis boolean expression over a table with a column per tag.

    ``hierarchical`` names the hierarchical tags: ``tag = '千禧一代'`` then also
    matches ``千禧一代/精英青年`` and every other child path.
    """
    if isinstance(node, And | Or):
        parts = [to_ibis(item, table, member_ids, hierarchical) for item in node.items]
        combined = parts[0]
        for part in parts[1:]:
            combined = (combined & part) if isinstance(node, And) else (combined | part)
        return combined
    if isinstance(node, Not):
        return ~to_ibis(node.item, table, member_ids, hierarchical)
    if isinstance(node, InAudience):
        if member_ids is None:
            raise LookupError(f"in_audience('{node.name}') needs saved audiences; none are available here.")
        ids = member_ids(node.name)
        return table.user_id.isin(ids) if ids else ibis.literal(False)
    column = table[node.tag]
    op, value = node.op, node.value

    def equals(item: object) -> ir.BooleanValue:
        if node.tag in hierarchical:
            assert isinstance(item, str)
            return (column == item) | column.startswith(item + "/")
        return column == item

    if op == "is null":
        return column.isnull()
    if op == "is not null":
        return column.notnull()
    if op == "=":
        return equals(value)
    if op == "!=":
        return ~equals(value)
    if op == "in":
        assert isinstance(value, tuple)
        if node.tag in hierarchical:
            matched = equals(value[0])
            for item in value[1:]:
                matched = matched | equals(item)
            return matched
        return column.isin(list(value))
    if op == "between":
        assert isinstance(value, tuple)
        return column.between(value[0], value[1])
    comparisons = {
        ">=": column.__ge__,
        "<=": column.__le__,
        ">": column.__gt__,
        "<": column.__lt__,
    }
    result: ir.BooleanValue = comparisons[op](value)
    return result
