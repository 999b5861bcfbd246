"""The registry of model makers: functions that give the values of ``model`` tags.

A ``model`` tag names a registered maker and its parameters::

    - id: rfm_class
      type: enum
      model: {name: rfm, params: {column: rfm_class, window_days: 365}}

Convention:

- ``params.column`` picks the column of the maker's output that becomes the tag's
  value; without it the column named like the tag id is taken.
- Every other parameter goes to the maker. The maker is called once per
  ``(name, parameters other than column)`` in a build and its output is shared by
  all tags that pick columns from it: ``rfm_class`` and ``rfm_cell`` with the same
  ``window_days`` cost one RFM computation.
- A maker declares the canonical inputs it needs (``table`` or ``table.column``);
  a tag whose maker's inputs are absent from the workspace data is skipped.
- A maker takes a :class:`ModelContext` (the canonical tables present, already cut
  at the as-of date) and its parameters, and returns a :class:`ModelOutput`: an Ibis
  table keyed by ``user_id`` with one row per user, plus optional one-row
  ``details`` tables the snapshot manifest records (e.g. lifecycle thresholds).

Makers are registered with :func:`model_maker`; registering a name twice fails at
import. The functions themselves live in :mod:`huaxiang.segment`, which never
imports the engine.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import ibis.expr.types as ir

from huaxiang.config import DEFAULT_PROMOS, Promo, Windows, WorkspaceConfig
from huaxiang.errors import ConfigError, did_you_mean
from huaxiang.segment.lifecycle import lifecycle_table, lifecycle_thresholds
from huaxiang.segment.rfm import rfm_table
from huaxiang.segment.value_grid import RECENCY_EDGES, SPEND_EDGES, value_grid_table

COLUMN_PARAM = "column"
"""The parameter of a ``model`` tag that picks the output column (not passed to the maker)."""


@dataclass(frozen=True)
class BuildSettings:
    """Workspace settings a maker may read (from ``huaxiang.yaml``; defaults without one)."""

    promo_calendar: tuple[Promo, ...] = DEFAULT_PROMOS
    windows: Windows = field(default_factory=Windows)

    @classmethod
    def from_config(cls, config: WorkspaceConfig | None) -> BuildSettings:
        if config is None:
            return cls()
        return cls(promo_calendar=tuple(config.promo_calendar), windows=config.windows)


class SharedTables:
    """Tables several makers read, computed once per build: a memo by name.

    ``get(name, make)`` returns the table stored under ``name``, else calls ``make()``,
    runs the result into an engine table with the build's ``materialise`` (when the
    build gives one; a lazy compile keeps the expression) and stores it. The name
    must say everything the table depends on (e.g. its window), since a second
    ``get`` with that name returns the first table whatever ``make`` it passes.
    """

    def __init__(self, materialise: Callable[[ir.Table], ir.Table] | None = None) -> None:
        self.materialise = materialise
        self.tables: dict[str, ir.Table] = {}

    def get(self, name: str, make: Callable[[], ir.Table]) -> ir.Table:
        table = self.tables.get(name)
        if table is None:
            table = make()
            if self.materialise is not None:
                table = self.materialise(table)
            self.tables[name] = table
        return table


@dataclass(frozen=True)
class ModelContext:
    """What a maker reads: the canonical tables present (cut at ``as_of``), the date and the settings.

    Columns that are entirely null in the workspace data are dropped from ``tables``
    before a build, so ``"age" in tables["users"].columns`` means the data has ages.
    ``shared`` holds tables computed once per build for several makers (e.g. the
    recent events), see :class:`SharedTables`.
    """

    tables: Mapping[str, ir.Table]
    as_of: dt.date
    settings: BuildSettings = field(default_factory=BuildSettings)
    shared: SharedTables = field(default_factory=SharedTables)


@dataclass(frozen=True)
class ModelOutput:
    """A maker's result: ``table`` keyed by ``user_id``; ``details`` one-row tables for the manifest.

    ``artifacts``: files of a fitted model (name → bytes, e.g. ``value_groups.json``), written
    into the snapshot's ``models/`` folder in the same atomic step as the tags.
    """

    table: ir.Table
    details: Mapping[str, ir.Table] = field(default_factory=dict)
    artifacts: Mapping[str, bytes] = field(default_factory=dict)


MakerFunction = Callable[[ModelContext, Mapping[str, Any]], ModelOutput]


@dataclass(frozen=True)
class ModelMaker:
    """A registered maker: its name, function, needed inputs and accepted parameters."""

    name: str
    function: MakerFunction
    needs: tuple[str, ...]
    params: tuple[str, ...] = ()
    description: str = ""

    def check_params(self, params: Mapping[str, Any], origin: str) -> dict[str, Any]:
        """The parameters passed to the maker (``column`` removed); unknown ones are a ConfigError."""
        passed = {key: value for key, value in params.items() if key != COLUMN_PARAM}
        for key in passed:
            if key not in self.params:
                allowed = ", ".join((COLUMN_PARAM, *self.params))
                raise ConfigError(
                    f"{origin}: model {self.name} takes no parameter {key!r}."
                    f"{did_you_mean(key, self.params)} Parameters: {allowed}."
                )
        return passed


def int_param(params: Mapping[str, Any], name: str, default: int) -> int:
    """A whole-number parameter of a maker, or a ConfigError naming it (the build adds the tag and file)."""
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"parameter {name} takes a whole number, got {value!r}.")
    return value


def float_param(params: Mapping[str, Any], name: str, default: float) -> float:
    """A numeric parameter of a maker, or a ConfigError naming it."""
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"parameter {name} takes a number, got {value!r}.")
    return float(value)


MODEL_MAKERS: dict[str, ModelMaker] = {}
"""Registered model makers by name."""


def model_maker(
    name: str, *, needs: tuple[str, ...], params: tuple[str, ...] = ()
) -> Callable[[MakerFunction], MakerFunction]:
    """Register the decorated function as the model maker ``name`` (a name may be registered once)."""

    def register(function: MakerFunction) -> MakerFunction:
        if name in MODEL_MAKERS:
            raise ValueError(f"model maker {name!r} is registered twice")
        doc = (function.__doc__ or "").strip().splitlines()
        MODEL_MAKERS[name] = ModelMaker(
            name=name, function=function, needs=needs, params=params, description=doc[0] if doc else ""
        )
        return function

    return register


def call_key(name: str, params: Mapping[str, Any]) -> str:
    """The key under which one maker call is shared: name and parameters (``column`` excluded)."""
    passed = {key: value for key, value in params.items() if key != COLUMN_PARAM}
    return f"{name}:{json.dumps(passed, sort_keys=True, default=str)}"


# ---------------------------------------------------------------------------- standard makers


@model_maker(
    "rfm",
    needs=("users.user_id", "orders.user_id", "orders.order_time", "orders.amount"),
    params=("window_days", "edges"),
)
def rfm(context: ModelContext, params: Mapping[str, Any]) -> ModelOutput:
    """RFM metrics, scores, class, cell and playbook (:func:`huaxiang.segment.rfm_table`)."""
    table = rfm_table(
        context.tables["users"],
        context.tables["orders"],
        context.as_of,
        window_days=int_param(params, "window_days", 365),
        edges=params.get("edges"),
    )
    return ModelOutput(table)


@model_maker(
    "lifecycle",
    needs=("users.user_id", "orders.user_id", "orders.order_time"),
    params=("churn_days", "silent_fraction", "recent_days"),
)
def lifecycle(context: ModelContext, params: Mapping[str, Any]) -> ModelOutput:
    """Lifecycle stage per user (:func:`huaxiang.segment.lifecycle_table`); events are used when present."""
    events = context.tables.get("events")
    if events is not None and not {"event_time", "event_type"} <= set(events.columns):
        events = None
    churn = params.get("churn_days")
    options: dict[str, Any] = {
        "churn_days": None if churn is None else int(churn),
        "silent_fraction": float_param(params, "silent_fraction", 0.5),
        "recent_days": int_param(params, "recent_days", 30),
    }
    orders = context.tables["orders"]
    table = lifecycle_table(context.tables["users"], orders, events, context.as_of, **options)
    thresholds = lifecycle_thresholds(orders, context.as_of, **options)
    return ModelOutput(table, {"thresholds": thresholds})


@model_maker(
    "value_grid",
    needs=("users.user_id", "orders.user_id", "orders.order_time", "orders.amount"),
    params=("spend_edges", "recency_edges"),
)
def value_grid(context: ModelContext, params: Mapping[str, Any]) -> ModelOutput:
    """Value grid layers 0-20 with names and strategies (:func:`huaxiang.segment.value_grid_table`)."""
    spend_edges = params.get("spend_edges")
    recency_edges = params.get("recency_edges")
    table = value_grid_table(
        context.tables["users"],
        context.tables["orders"],
        context.as_of,
        spend_edges=SPEND_EDGES if spend_edges is None else list(spend_edges),
        recency_edges=RECENCY_EDGES if recency_edges is None else list(recency_edges),
    )
    return ModelOutput(table)


# The other standard makers register themselves on import (they need model_maker above).
from huaxiang.engine import makers as _makers  # noqa: E402

__all__ = [
    "COLUMN_PARAM",
    "MODEL_MAKERS",
    "BuildSettings",
    "ModelContext",
    "ModelMaker",
    "ModelOutput",
    "SharedTables",
    "call_key",
    "float_param",
    "int_param",
    "model_maker",
]
_ = _makers
