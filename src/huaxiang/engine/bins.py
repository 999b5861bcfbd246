"""The value of a ``bins`` tag: edges with labels, fixed-width bands, or quantiles."""

from __future__ import annotations

import string

import ibis
import ibis.expr.types as ir

from huaxiang.catalog.makers import BinsSpec


def bins_value(value: ir.NumericValue, spec: BinsSpec, user_id: ir.Value) -> ir.Value:
    """The bin label of ``value`` (NULL stays NULL)."""
    if spec.edges is not None:
        labels = spec.bin_labels() or []
        branches = [(value <= edge, labels[index]) for index, edge in enumerate(spec.edges)]
        return ibis.cases(*branches, (value.notnull(), labels[-1]), else_=ibis.null("string"))
    if spec.width is not None:
        return _band_label(value, spec)
    quantiles = spec.quantiles or 2
    labels = spec.bin_labels() or []
    window = ibis.window(group_by=value.isnull(), order_by=[value, user_id])
    index = ibis.ntile(quantiles).over(window)  # Ibis 12 counts from 0
    branches = [(index == position, label) for position, label in enumerate(labels)]
    return ibis.ifelse(value.isnull(), ibis.null("string"), ibis.cases(*branches, else_=ibis.null("string")))


def _band_label(value: ir.NumericValue, spec: BinsSpec) -> ir.Value:
    """``format`` with ``{lo}`` and ``{hi}`` of the band ``[k*w, (k+1)*w)`` holding ``value``."""
    width = float(spec.width or 1.0)
    index = (value.cast("float64") / width).floor()
    lo = index * width
    hi = lo + width
    bounds = {"lo": _bound_text(lo), "hi": _bound_text(hi)}
    parts: list[ir.Value] = []
    for literal, name, _, _ in string.Formatter().parse(spec.format):
        if literal:
            parts.append(ibis.literal(literal))
        if name is not None:
            parts.append(bounds[name])
    if not parts:
        parts.append(ibis.literal(spec.format))
    label = parts[0].cast("string")
    for part in parts[1:]:
        label = label.concat(part)
    return ibis.ifelse(value.isnull(), ibis.null("string"), label)


def _bound_text(bound: ir.FloatingValue) -> ir.StringValue:
    """A bound as :func:`format_bound` writes it: ``5`` not ``5.0``, ``2.5`` stays."""
    whole = bound.floor() == bound
    return ibis.ifelse(whole, bound.cast("int64").cast("string"), bound.cast("string"))


__all__ = ["bins_value"]
