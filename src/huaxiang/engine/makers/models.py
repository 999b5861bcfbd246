"""Model makers: fitted models (registered on import).

``value_groups``: the fifteen value groups (15大靶群), connected components or k-means
on the banded feature grid (:mod:`huaxiang.segment.value_groups`); ``clv``: probability
alive and expected purchases / spend from BG/NBD + Gamma-Gamma
(:mod:`huaxiang.segment.clv`, needs ``huaxiang[clv]``). Both save the fitted model
with the snapshot (``models/<maker>.model.json``) and their parameters in the manifest.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import ibis
import pyarrow as pa

from huaxiang.engine.registry import ModelContext, ModelOutput, float_param, int_param, model_maker
from huaxiang.errors import ConfigError
from huaxiang.segment.clv import CLV_NEEDS, clv_table
from huaxiang.segment.group_report import evaluate_grid
from huaxiang.segment.value_features import FEATURES
from huaxiang.segment.value_group_fit import value_group_table
from huaxiang.segment.value_groups import ConnectedValueGroups

_VALUE_GROUP_PARAMS = (
    "method",
    "n_groups",
    "tolerance",
    "smoothing",
    "min_share",
    "max_share",
    "value_weight",
    "random_state",
    "window_days",
    "bands",
    "features",
)


def _features(params: Mapping[str, Any]) -> list[str]:
    value = params.get("features", list(FEATURES))
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        raise ConfigError(
            f"parameter features takes a list of feature names ({', '.join(FEATURES)}), got {value!r}."
        )
    return list(value)


def _one_row(row: Mapping[str, Any]) -> ibis.Table:
    return ibis.memtable(pa.Table.from_pylist([dict(row)]))


@model_maker("value_groups", needs=("users.user_id",), params=_VALUE_GROUP_PARAMS)
def value_groups(context: ModelContext, params: Mapping[str, Any]) -> ModelOutput:
    """Value groups L0.. by ARPU, fitted on the banded feature grid (:func:`value_group_table`)."""
    tolerance = params.get("tolerance")
    method = params.get("method", "connected")
    if not isinstance(method, str):
        raise ConfigError(f"parameter method takes connected or kmeans, got {method!r}.")
    result = value_group_table(
        context.tables,
        context.as_of,
        method=method,
        n_groups=int_param(params, "n_groups", 15),
        tolerance=None if tolerance is None else float_param(params, "tolerance", 0.0),
        smoothing=float_param(params, "smoothing", 20.0),
        min_share=float_param(params, "min_share", 0.01),
        max_share=float_param(params, "max_share", 0.1),
        value_weight=float_param(params, "value_weight", 3.0),
        random_state=int_param(params, "random_state", 0),
        window_days=int_param(params, "window_days", 365),
        bands=int_param(params, "bands", 4),
        features=_features(params),
        # The per-user numbers run once into a build table (three queries read them).
        materialise=lambda table: context.shared.get(f"value_groups:{sorted(params.items())}", lambda: table),
    )
    found, fitted = result.features, result.fitted
    report = evaluate_grid(fitted.cells, found.present, measure=found.measure, missing_features=found.missing)
    names = pa.table(
        {
            "value_group": [g.group for g in report.groups],
            "value_group_name": [g.auto_name for g in report.groups],
        }
    )
    named = result.table.left_join(ibis.memtable(names), "value_group")
    table = named.select("user_id", "value_group", "value_group_name")
    model = fitted.model
    fit: dict[str, Any] = {
        "method": "connected_components" if isinstance(model, ConnectedValueGroups) else "kmeans",
        "n_groups": len(report.groups),
        "measure": found.measure,
        "features": ",".join(found.present),
        "missing_features": "; ".join(f"{name}: {why}" for name, why in found.missing.items()) or None,
        "cells": len(fitted.cells),
        "window_days": int_param(params, "window_days", 365),
        "bands": int_param(params, "bands", 4),
        "population_value": round(
            float(fitted.cells["value"].astype("float64").sum()) / max(int(fitted.cells["users"].sum()), 1), 6
        ),
        "monotone": report.monotone,
    }
    if isinstance(model, ConnectedValueGroups):
        fit.update(
            tolerance=round(model.tolerance_, 6),
            n_components=model.n_components_,
            merges=model.merges_,
            splits=model.splits_,
        )
    else:
        fit.update(random_state=model.random_state, inertia=round(model.inertia_, 6))
    groups = pa.Table.from_pylist(
        [
            {
                "group": g.group,
                "users": g.users,
                "value_per_user": round(g.value_per_user, 6),
                "auto_name": g.auto_name,
            }
            for g in report.groups
        ]
    )
    artifact = fitted.artifact(
        {
            "as_of": context.as_of.isoformat(),
            "fit": fit,
            "sources": found.sources,
            "missing_features": found.missing,
        }
    )
    return ModelOutput(
        table, {"fit": _one_row(fit), "groups": ibis.memtable(groups)}, {"model.json": artifact}
    )


@model_maker("clv", needs=CLV_NEEDS, params=("horizon_days", "sample_size", "seed", "fitter"))
def clv(context: ModelContext, params: Mapping[str, Any]) -> ModelOutput:
    """Probability alive, expected purchases and spend over a horizon (BG/NBD + Gamma-Gamma)."""
    fitter = params.get("fitter", "pymc")
    if fitter not in ("pymc", "scipy"):
        raise ConfigError(f"parameter fitter takes pymc (pymc-marketing, MAP) or scipy, got {fitter!r}.")
    result = clv_table(
        context.tables["users"],
        context.tables["orders"],
        context.as_of,
        horizon_days=int_param(params, "horizon_days", 180),
        sample_size=int_param(params, "sample_size", 200_000),
        seed=int_param(params, "seed", 0),
        fitter=fitter,
    )
    fit = result.fit.to_dict()
    artifact = (json.dumps(fit, ensure_ascii=False, sort_keys=True, indent=1) + "\n").encode("utf-8")
    return ModelOutput(result.table, {"fit": _one_row(fit)}, {"model.json": artifact})
