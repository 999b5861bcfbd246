"""Hypothesis strategies for random audience trees, for the parity tests (needs ``hypothesis``).

Not imported by :mod:`huaxiang.audience`: only tests use it, and hypothesis is a
development dependency.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hypothesis import strategies as st

from huaxiang.audience.definition import And, Condition, Node, Not, Op, Or, TagSpec

NULL_OPS: tuple[Op, ...] = ("is null", "is not null")
EQUAL_OPS: tuple[Op, ...] = ("=", "!=")
COMPARE_OPS: tuple[Op, ...] = ("=", "!=", ">=", "<=", ">", "<")


def _unary(name: str) -> Callable[[Op], Node]:
    def make(op: Op) -> Node:
        return Condition(name, op)

    return make


def _binary(name: str) -> Callable[[tuple[Op, Any]], Node]:
    def make(pair: tuple[Op, Any]) -> Node:
        return Condition(name, pair[0], pair[1])

    return make


def _among(name: str) -> Callable[[list[str]], Node]:
    def make(values: list[str]) -> Node:
        return Condition(name, "in", tuple(values))

    return make


def _between(name: str) -> Callable[[tuple[float, float]], Node]:
    def make(pair: tuple[float, float]) -> Node:
        return Condition(name, "between", (min(pair), max(pair)))

    return make


def audience_trees(
    specs: Mapping[str, TagSpec], tags: Mapping[str, Sequence[object]], *, max_leaves: int = 8
) -> st.SearchStrategy[Node]:
    """Random and / or / not trees of conditions on ``tags`` (tag id -> the snapshot's values).

    Each tag gets ``is null`` / ``is not null``; booleans ``=`` / ``!=``; enums ``=``,
    ``!=`` and ``in`` over their values; numbers the comparisons and ``between`` over
    values seen in the snapshot (rounded to 2 decimals, so some fall between two values).
    """
    conditions: list[st.SearchStrategy[Node]] = []
    for name, values in tags.items():
        spec = specs[name]
        nulls = st.sampled_from(NULL_OPS)
        conditions.append(nulls.map(_unary(name)))
        if spec.kind == "boolean":
            equal = st.tuples(st.sampled_from(EQUAL_OPS), st.booleans())
            conditions.append(equal.map(_binary(name)))
        elif spec.kind == "enum":
            one = st.sampled_from(list(spec.values))
            equal_value = st.tuples(st.sampled_from(EQUAL_OPS), one)
            conditions.append(equal_value.map(_binary(name)))
            some = st.lists(one, min_size=1, max_size=3)
            conditions.append(some.map(_among(name)))
        else:
            seen = sorted({round(float(v), 2) for v in values if v is not None})  # type: ignore[arg-type]
            number = st.sampled_from(seen)
            ops = st.sampled_from(COMPARE_OPS)
            conditions.append(st.tuples(ops, number).map(_binary(name)))
            conditions.append(st.tuples(number, number).map(_between(name)))
    return st.recursive(
        st.one_of(conditions),
        lambda children: st.one_of(
            st.lists(children, min_size=2, max_size=3).map(lambda xs: And(tuple(xs))),
            st.lists(children, min_size=2, max_size=3).map(lambda xs: Or(tuple(xs))),
            children.map(Not),
        ),
        max_leaves=max_leaves,
    )
