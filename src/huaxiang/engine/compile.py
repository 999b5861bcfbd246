"""Compile a catalog onto one wide Ibis table keyed by ``user_id``: one column per tag.

Tags are compiled in the catalog's build order, so a rule always finds the
columns of the tags it reads. Nothing is executed here: the result is a lazy
Ibis expression (plus the one-row ``details`` tables of the model makers) that
:func:`huaxiang.engine.build.build` runs on the engine.

A tag is *skipped*, with a reason, when it reads a skipped tag, when its maker is
not implemented yet (an unregistered model) or when a canonical input it needs
(a table, or a column of one) is absent from the workspace data.

A scene template (``scene: {name: "*"}``) is the one place where compiling reads
data: it asks the engine for the distinct scenes in ``products.scene_tags`` and
``content.scene_tags`` (a small query) and makes ``scene_<slug>_score`` and
``scene_<slug>`` for each, listed in ``built`` like any tag.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir

from huaxiang.catalog import Catalog, TagDef, compile_rule, kind_of_tag_type
from huaxiang.catalog.makers import ActionSpec, MetricSpec, SceneSpec
from huaxiang.engine.backends import EngineCapabilityError
from huaxiang.engine.bins import bins_value
from huaxiang.engine.registry import (
    COLUMN_PARAM,
    MODEL_MAKERS,
    BuildSettings,
    ModelContext,
    ModelOutput,
    SharedTables,
    call_key,
)
from huaxiang.engine.scenes import PlannedScene, ScenePlan, plan_scene_tags
from huaxiang.errors import ConfigError, MissingInputError
from huaxiang.segment.rfm import day_start
from huaxiang.segment.scene import scene_strength, scene_values

#: Column of each canonical table that dates its rows (the as-of cut and windows use it).
TIME_COLUMNS = {"orders": "order_time", "events": "event_time", "touches": "touch_time"}

#: Product category columns an action's ``category`` filter matches, from the top level down.
PRODUCT_LEVELS = ("category_l1", "category_l2", "category_l3")

#: Name of a tag's value in per-user tables before it is joined (tag ids cannot start with _).
VALUE = "_value"

#: Value type of a literal for each tag type (``when`` values and defaults).
LITERAL_TYPES = {
    "boolean": "boolean",
    "enum": "string",
    "hierarchical_enum": "string",
    "integer": "int64",
    "number": "float64",
    "probability": "float64",
}


def cut_tables(tables: Mapping[str, ir.Table], as_of: dt.date) -> dict[str, ir.Table]:
    """The tables restricted to what was known before ``as_of`` (midnight at its start).

    Orders, events and touches keep rows strictly before ``as_of``; order lines
    keep lines of the kept orders; users keep those registered before ``as_of``
    or with no sign-up time. Products and content are not dated and stay whole.
    """
    end = day_start(as_of)
    cut: dict[str, ir.Table] = {}
    for name, table in tables.items():
        column = TIME_COLUMNS.get(name)
        if column is not None and column in table.columns:
            table = table.filter(table[column] < end)
        elif name == "users" and "register_time" in table.columns:
            table = table.filter(table.register_time.isnull() | (table.register_time < end))
        cut[name] = table
    items = cut.get("order_items")
    orders = cut.get("orders")
    if items is not None and orders is not None and "order_id" in items.columns:
        cut["order_items"] = items.semi_join(orders.select("order_id"), "order_id")
    return cut


@dataclass
class Compiled:
    """The outcome of compiling a catalog: the wide table and what was built or skipped."""

    wide: ir.Table
    built: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    partial: dict[str, list[str]] = field(default_factory=dict)
    """Rule tags built without some of their ``optional`` tags (skipped, read as NULL)."""
    details: dict[str, ir.Table] = field(default_factory=dict)
    """One-row tables of the model makers, keyed ``maker.detail`` (e.g. ``lifecycle.thresholds``)."""
    artifacts: dict[str, bytes] = field(default_factory=dict)
    """Fitted-model files of the makers, keyed ``maker.name`` (``maker-<params hash>.name`` with params)."""
    generated: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Tags a template made (not in the catalog), by id: ``template``, ``scene``, ``type``,
    ``category``, ``name_zh``, ``name_en``, ``hash`` (the template's), ``reads`` and ``inputs``."""


Materialise = Callable[[ir.Table], ir.Table]
"""Runs an expression into a (temporary) table of the engine and returns that table."""

#: Layers (a batch of joins, a batch of projections) between two checkpoints: a longer
#: chain makes Ibis's SQL compilation slow and, past about a hundred layers, too deep to
#: compile. Tags are batched (see :class:`_Compiler`), so the standard catalog needs a
#: handful of layers however many tags it has.
CHECKPOINT_LAYERS = 8
#: Per-user tables joined in one layer: a join chain holds every hash table at once.
JOINS_PER_LAYER = 12


def compile_catalog(
    catalog: Catalog,
    tables: Mapping[str, ir.Table],
    as_of: dt.date,
    *,
    materialise: Materialise | None = None,
    settings: BuildSettings | None = None,
) -> Compiled:
    """Compile every tag of ``catalog`` over ``tables`` (already cut at ``as_of``).

    Tags that read no other tag (metrics, actions, declared values, models, scenes)
    are compiled first and give per-user tables that are joined onto the users in
    batches of :data:`JOINS_PER_LAYER`; the tags that read others (rules, bins) follow
    in build order, and those of one dependency level are added in one projection.
    With ``materialise``, each model maker's output is run into an engine table once,
    and the wide table every :data:`CHECKPOINT_LAYERS` layers, so the expression stays
    small whatever the size of the catalog; without it the result is one lazy
    expression. Columns come out in the catalog's build order either way.
    """
    if "users" not in tables:
        raise ConfigError("the workspace data has no users table; a build needs one row per user in users.")
    return _Compiler(catalog, tables, as_of, materialise, settings or BuildSettings()).run()


class _Compiler:
    def __init__(
        self,
        catalog: Catalog,
        tables: Mapping[str, ir.Table],
        as_of: dt.date,
        materialise: Materialise | None,
        settings: BuildSettings,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.tables = tables
        self.as_of = as_of
        self.materialise = materialise
        self.result = Compiled(wide=tables["users"].select("user_id"))
        self.joins: list[tuple[ir.Table, dict[str, Any]]] = []
        """Per-user tables (``user_id`` + tag columns) waiting to be joined, with NULL fills."""
        self.actions: dict[str, ActionSpec] = {}
        """Action tags waiting to be made in one pass over the events (:meth:`flush_actions`)."""
        self.projections: dict[str, ir.Value] = {}
        """Columns over the current wide table waiting to be added in one projection."""
        self.layers = 0
        """Layers since the last checkpoint."""
        self.models: dict[str, ModelOutput] = {}
        self.shared = SharedTables(materialise)
        """Tables several makers read, made once in this build (``ModelContext.shared``)."""
        self.missing_inputs: dict[str, MissingInputError] = {}
        self.attached: set[str] = set()
        """Model tags whose column was joined with an earlier tag of the same maker call."""

    @property
    def wide(self) -> ir.Table:
        """The wide table as joined and projected so far (pending work not included)."""
        return self.result.wide

    def run(self) -> Compiled:
        order = self.catalog.order
        # Tags that read no tag first (their per-user tables are joined in batches), then the
        # others in build order: still a dependency order, with far fewer layers.
        derived = [tag_id for tag_id in order if self.reads_tags(self.catalog[tag_id])]
        first = [tag_id for tag_id in order if tag_id not in set(derived)]
        position = {tag_id: index for index, tag_id in enumerate(order)}
        for tag_id in first + derived:
            if tag_id == (derived[0] if derived else None):
                self.flush_actions()
            tag = self.catalog[tag_id]
            reason = self.skip_reason(tag)
            if reason is not None:
                self.result.skipped[tag_id] = reason
                continue
            if tag.scene is not None and tag.scene.is_template:
                made = len(self.result.built)
                self.scene_template(tag, tag.scene)
                for generated in self.result.built[made:]:
                    position[generated] = position[tag_id]
                continue
            try:
                self.compile(tag)
            except MissingInputError as error:
                self.result.skipped[tag_id] = f"missing input: {error}"
                continue
            self.result.built.append(tag_id)
        self.flush_actions()
        self.flush_joins()
        # Columns added for tags later skipped are dropped; the rest is in the catalog's order
        # (a template's tags where the template stands; sorted() is stable).
        self.result.built.sort(key=position.__getitem__)
        self.result.wide = self.wide.select("user_id", *self.result.built)
        return self.result

    def reads_tags(self, tag: TagDef) -> bool:
        """Whether the tag reads other tags (rules, bins): it is compiled after those that do not."""
        return bool(self.catalog.dependencies.get(tag.id)) or tag.rule is not None or tag.bins is not None

    # ------------------------------------------------------------------ batching

    def join_later(self, per_user: ir.Table, fills: Mapping[str, Any] | None = None) -> None:
        """Join ``per_user`` (``user_id`` + tag columns) with the next batch; NULLs take ``fills``."""
        self.joins.append((per_user, dict(fills or {})))

    def project_later(self, tag_id: str, value: ir.Value) -> None:
        """Add column ``tag_id`` (an expression over :attr:`wide`) with the next projection."""
        self.projections[tag_id] = value

    def ready(self, needs: Iterable[str]) -> ir.Table:
        """The wide table holding the columns ``needs``: pending work that makes them is applied."""
        wanted = set(needs)
        if any(wanted & set(table.columns) for table, _ in self.joins):
            self.flush_joins()
        elif wanted & set(self.projections):
            self.flush_projections()
        return self.wide

    def flush_projections(self) -> None:
        if not self.projections:
            return
        self.result.wide = self.wide.mutate(**self.projections)
        self.projections = {}
        self.layer()

    def flush_joins(self) -> None:
        """Apply pending projections, then join the pending per-user tables in batches."""
        self.flush_projections()
        while self.joins:
            batch, self.joins = self.joins[:JOINS_PER_LAYER], self.joins[JOINS_PER_LAYER:]
            kept = self.wide.columns
            joined = self.wide
            for per_user, _ in batch:
                joined = joined.left_join(per_user, joined.user_id == per_user.user_id)
            added: dict[str, ir.Value] = {}
            for per_user, fills in batch:
                for column in per_user.columns:
                    if column == "user_id":
                        continue
                    value = joined[column]
                    added[column] = value.fill_null(fills[column]) if column in fills else value
            self.result.wide = joined.select(*kept, **added)
            self.layer()

    def layer(self) -> None:
        """Count a layer; run the wide table into an engine table every :data:`CHECKPOINT_LAYERS`."""
        self.layers += 1
        if self.materialise is not None and self.layers >= CHECKPOINT_LAYERS:
            self.result.wide = self.materialise(self.wide)
            self.layers = 0

    # ------------------------------------------------------------------ skipping

    def skip_reason(self, tag: TagDef) -> str | None:
        if tag.id == "user_id":
            return "user_id is the key column of the snapshot; give the tag another id"
        skipped = sorted(self.catalog.dependencies.get(tag.id, frozenset()) & set(self.result.skipped))
        required = [tag_id for tag_id in skipped if tag_id not in tag.optional]
        if required:
            return f"depends on skipped tag {', '.join(required)}"
        if tag.inputs_any and all(self.missing([item]) for item in tag.inputs_any):
            return f"missing inputs: none of {', '.join(sorted(set(tag.inputs_any)))} holds data"
        needs = list(self.catalog.inputs(tag.id))
        if tag.model is not None:
            maker = MODEL_MAKERS.get(tag.model.name)
            if maker is None:
                known = ", ".join(sorted(MODEL_MAKERS)) or "none"
                return f"not implemented yet: no model maker named {tag.model.name!r} (registered: {known})"
            needs.extend(maker.needs)
        missing = self.missing(needs)
        if missing:
            return f"missing input{'s' if len(missing) > 1 else ''}: {', '.join(missing)}"
        return None

    def missing(self, needs: list[str]) -> list[str]:
        """The needed inputs absent from the data: ``table events`` or ``column users.age``.

        A column that is entirely null in the data has been dropped by the build, so it
        is reported as absent too.
        """
        found: list[str] = []
        for item in sorted(set(needs)):
            table_name, _, column = item.partition(".")
            table = self.tables.get(table_name)
            if table is None:
                text = f"table {table_name}"
            elif column and column not in table.columns:
                text = f"column {item}"
            else:
                continue
            if text not in found:
                found.append(text)
        return found

    # ------------------------------------------------------------------ makers

    def compile(self, tag: TagDef) -> None:
        if tag.metric is not None:
            self.metric(tag, tag.metric)
        elif tag.rule is not None:
            self.rule(tag)
        elif tag.bins is not None:
            wide = self.ready([tag.bins.of])
            self.project_later(tag.id, bins_value(wide[tag.bins.of], tag.bins, wide.user_id))
        elif tag.action is not None:
            self.action(tag)
        elif tag.declared is not None:
            self.attach(tag.id, self.tables["users"].select("user_id", **{VALUE: tag.declared.column}))
        elif tag.model is not None:
            self.model(tag)
        elif tag.scene is not None:
            self.scene(tag, tag.scene)
        else:  # pragma: no cover - TagDef requires one maker
            raise AssertionError(f"tag {tag.id}: no maker to compile")

    def attach(self, tag_id: str, per_user: ir.Table, default: Any = None) -> None:
        """Left-join ``per_user`` (``user_id``, ``value``) as column ``tag_id``; fill ``default``."""
        fills = {tag_id: default} if default is not None else {}
        self.join_later(per_user.select("user_id", **{tag_id: VALUE}), fills)

    def metric(self, tag: TagDef, spec: MetricSpec) -> None:
        rows, time_column = self.metric_rows(spec.from_)
        rules = self.catalog.rules.get(tag.id)
        if rules is not None and rules.where is not None:
            rows = rows.filter(compile_rule(rules.where, rows).fill_null(False))
        if spec.days is not None:
            start = day_start(self.as_of - dt.timedelta(days=spec.days))
            rows = rows.filter(rows[time_column] >= start)
        agg = spec.agg
        function = agg.function
        if function == "count":
            per_user = rows.group_by("user_id").aggregate(**{VALUE: rows.count()})
        else:
            column = rows[agg.column or ""]
            if function == "count_distinct":
                value = column.nunique()
            elif function == "sum":
                # DuckDB widens a sum of DECIMAL(18, 2) to DECIMAL(38, 2); keep the column's type.
                value = column.sum().cast(column.type()) if column.type().is_decimal() else column.sum()
            elif function == "avg":
                # Ibis 12 truncates the mean of a decimal: average it as float64.
                value = column.cast("float64").mean() if column.type().is_decimal() else column.mean()
            elif function in ("min", "days_since_min"):
                value = column.min()
            else:
                value = column.max()
            per_user = rows.group_by("user_id").aggregate(**{VALUE: value})
            if function.startswith("days_since"):
                moment = per_user[VALUE]
                if moment.type().is_timestamp():
                    moment = moment.date()
                per_user = per_user.mutate(**{VALUE: ibis.literal(self.as_of).delta(moment, unit="day")})
        default: Any = None
        if function in ("count", "count_distinct"):
            default = 0
        elif function == "sum":
            default = ibis.literal(0).cast(per_user[VALUE].type())
        if tag.type == "integer":
            per_user = per_user.mutate(**{VALUE: per_user[VALUE].cast("int64")})
        self.attach(tag.id, per_user, default)

    def metric_rows(self, table_name: str) -> tuple[ir.Table, str]:
        """The rows a metric aggregates (with ``user_id``) and the column that dates them."""
        if table_name == "order_items":
            items, orders = self.tables["order_items"], self.tables["orders"]
            columns = [c for c in ("user_id", "order_time") if c in orders.columns]
            return items.inner_join(orders.select("order_id", *columns), "order_id"), "order_time"
        if table_name == "users":
            return self.tables["users"], "register_time"
        return self.tables[table_name], TIME_COLUMNS[table_name]

    def rule(self, tag: TagDef) -> None:
        # Skipped optional tags are read as NULL: a condition on them is unknown, so it never holds.
        absent = {
            tag_id: ibis.null(LITERAL_TYPES[self.catalog[tag_id].type])
            for tag_id in tag.optional
            if tag_id in self.result.skipped
        }
        if absent:
            self.result.partial[tag.id] = sorted(absent)
        wide = self.ready(self.catalog.dependencies.get(tag.id, ()))
        # The NULL columns stay on the wide table (the final selection drops them).
        missing = {tag_id: value for tag_id, value in absent.items() if tag_id not in wide.columns}
        if missing:
            self.projections.update(missing)
            self.flush_projections()
        self._rule(tag)

    def _rule(self, tag: TagDef) -> None:
        rules = self.catalog.rules[tag.id]
        if rules.expr is not None:
            self.project_later(tag.id, compile_rule(rules.expr, self.wide))
            return
        literal_type = LITERAL_TYPES[tag.type]
        cases = tag.rule.when if tag.rule is not None and tag.rule.when is not None else []
        branches = [
            (compile_rule(condition, self.wide), ibis.literal(case.value, type=literal_type))
            for condition, case in zip(rules.cases, cases, strict=True)
        ]
        default = tag.rule.default if tag.rule is not None else None
        otherwise = ibis.null(literal_type) if default is None else ibis.literal(default, type=literal_type)
        self.project_later(tag.id, ibis.cases(*branches, else_=otherwise))

    def action(self, tag: TagDef) -> None:
        """Collected, then made with every other action tag in one pass over the events."""
        assert tag.action is not None
        self.actions[tag.id] = tag.action

    def flush_actions(self) -> None:
        """All action tags from one aggregation of the events: a count per tag, with its filter.

        A tag holds when its count reaches ``min_count``; users without a counted event get
        false. Product filters (brand, shop, category) read the product of each event.
        """
        if not self.actions:
            return
        specs, self.actions = self.actions, {}
        events = self.tables["events"]
        days = [spec.days for spec in specs.values()]
        if all(day is not None for day in days):
            longest = max(day for day in days if day is not None)
            events = events.filter(events.event_time >= day_start(self.as_of - dt.timedelta(days=longest)))
        types = sorted({event for spec in specs.values() for event in spec.events})
        events = events.filter(events.event_type.isin(types))
        if any(spec.brand or spec.category or spec.shop for spec in specs.values()):
            products = self.tables["products"]
            columns = [c for c in ("brand", "shop", *PRODUCT_LEVELS) if c in products.columns]
            events = events.left_join(products.select("product_id", *columns), "product_id")
        counted = {
            tag_id: events.count(where=self.action_condition(events, spec)) for tag_id, spec in specs.items()
        }
        counts = events.group_by("user_id").aggregate(**counted)
        made = {tag_id: counts[tag_id] >= spec.min_count for tag_id, spec in specs.items()}
        self.join_later(counts.select("user_id", **made), dict.fromkeys(specs, False))

    def action_condition(self, events: ir.Table, spec: ActionSpec) -> ir.BooleanValue:
        """Whether an event counts for the action ``spec`` (``events`` carry their product's columns)."""
        holds = events.event_type.isin(spec.events)
        if spec.days is not None:
            holds &= events.event_time >= day_start(self.as_of - dt.timedelta(days=spec.days))
        if spec.product is not None:
            holds &= events.product_id.isin(spec.product)
        if spec.keyword is not None:
            holds &= events.keyword.isin(spec.keyword)
        if spec.brand is not None:
            holds &= events.brand.isin(spec.brand)
        if spec.shop is not None:
            holds &= events.shop.isin(spec.shop)
        if spec.category is not None:
            holds &= ibis.or_(*(events[c].isin(spec.category) for c in PRODUCT_LEVELS if c in events.columns))
        return holds.fill_null(False)

    def scene_strength(self, spec: SceneSpec, scenes: list[str] | None) -> ir.Table:
        """Score and probability per user and scene (:func:`huaxiang.segment.scene.scene_strength`)."""
        return scene_strength(
            self.tables["events"],
            self.tables["products"],
            self.as_of,
            weights=spec.weights,
            half_life_days=spec.half_life_days,
            window_days=spec.days,
            half_score=spec.half_score,
            content=self.tables.get("content"),
            scenes=scenes,
            keywords=spec.keywords,
            search_categories=spec.search_categories,
        )

    def scene(self, tag: TagDef, spec: SceneSpec) -> None:
        """One scene: its probability, or for a boolean tag whether it reaches the threshold."""
        strength = self.scene_strength(spec, [spec.name])
        value = strength.probability
        if tag.type == "boolean":
            value = value >= (spec.threshold or 0.0)
        default = False if tag.type == "boolean" else 0.0
        self.attach(tag.id, strength.select("user_id", **{VALUE: value}), default)

    def scene_template(self, tag: TagDef, spec: SceneSpec) -> None:
        """``scene_<slug>_score`` and ``scene_<slug>`` for every scene in the data (see the module doc)."""
        # Ids of the catalog and of an earlier template are taken: the first definition wins.
        taken = set(self.catalog.tags) | set(self.result.built)
        plan = plan_scene_tags(tag, spec, self.found_scenes(), taken)
        for value, reason in plan.unusable.items():
            self.result.skipped[f"{tag.id}:{value}"] = reason
        self.result.details[f"scene.{tag.id}"] = plan.table()
        if not plan.scenes:
            if plan.taken:
                reason = "every scene in the data has both its tags already (catalog or another template)"
            elif plan.unusable:
                reason = f"no usable scene: see the entries {tag.id}:<scene> for each scene value"
            else:
                reason = "no scene in the data: products.scene_tags and content.scene_tags are empty"
            self.result.skipped[tag.id] = reason
            return
        strength = self.scene_strength(spec, [scene.value for scene in plan.scenes])
        if self.materialise is not None:
            strength = self.materialise(strength)
        # One pass over the strengths: column _scene_<i> holds the probability of scene i.
        inner = {
            f"_scene_{index}": strength.probability.max(where=strength.scene == scene.value)
            for index, scene in enumerate(plan.scenes)
        }
        per_user = strength.group_by("user_id").aggregate(**inner)
        threshold = float(spec.threshold or 0.0)
        made: dict[str, ir.Value] = {}
        fills: dict[str, Any] = {}
        for index, scene in enumerate(plan.scenes):
            probability = per_user[f"_scene_{index}"].fill_null(0.0)
            if scene.score_id is not None:
                made[scene.score_id] = probability
                fills[scene.score_id] = 0.0
            if scene.flag_id is not None:
                made[scene.flag_id] = probability >= threshold
                fills[scene.flag_id] = 0.0 >= threshold  # a user without the scene has probability 0
        self.join_later(per_user.select("user_id", **made), fills)
        self.result.built.extend(made)
        for scene in plan.scenes:
            for tag_id, tag_type, name_zh, name_en in (
                (scene.score_id, "probability", f"{scene.name_zh}场景概率", f"{scene.name_en} probability"),
                (scene.flag_id, "boolean", scene.name_zh, scene.name_en),
            ):
                if tag_id is not None:
                    self.result.generated[tag_id] = {
                        "template": tag.id,
                        "scene": scene.value,
                        "hash": tag.definition_hash,
                        "type": tag_type,
                        "category": tag.category.value,
                        "name_zh": name_zh,
                        "name_en": name_en,
                        "reads": [],
                        "inputs": list(self.catalog.inputs(tag.id)),
                    }

    def found_scenes(self) -> list[str]:
        """The distinct scene values in the data, sorted (runs a small query on the engine)."""
        names = scene_values(self.tables["products"], self.tables.get("content"))
        return sorted(str(value) for value in names.scene.to_pyarrow().to_pylist())

    def model(self, tag: TagDef) -> None:
        spec = tag.model
        assert spec is not None
        maker = MODEL_MAKERS[spec.name]
        origin = f"{self.catalog.locations.get(tag.id, 'tags')} (tag {tag.id})"
        params = maker.check_params(spec.params, origin)
        key = call_key(spec.name, spec.params)
        if key in self.missing_inputs:
            raise self.missing_inputs[key]
        output = self.models.get(key)
        if output is None:
            try:
                context = ModelContext(self.tables, self.as_of, self.settings, self.shared)
                output = maker.function(context, params)
            except MissingInputError as error:  # the tag is skipped; so are the others of this call
                self.missing_inputs[key] = error
                raise
            except ConfigError as error:  # name the tag and its file in a maker's complaint
                raise type(error)(f"{origin}: {error}") from None
            if self.materialise is not None:
                try:
                    output = ModelOutput(self.materialise(output.table), output.details, output.artifacts)
                except EngineCapabilityError as error:  # name the tags, not the maker's columns
                    users = [
                        t.id
                        for t in self.catalog
                        if t.model is not None and call_key(t.model.name, t.model.params) == key
                    ]
                    raise error.naming(users) from None
            self.models[key] = output
            prefix = spec.name if not params else key
            for detail, table in output.details.items():
                self.result.details[f"{prefix}.{detail}"] = table
            stem = spec.name if not params else f"{spec.name}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"
            for name, content in output.artifacts.items():
                self.result.artifacts[f"{stem}.{name}"] = content
        if tag.id in self.attached:
            return  # joined with an earlier tag of the same maker call
        # Every tag that picks a column of this call is joined now, in one join: a maker's
        # output feeds many tags (RFM: eleven), and one join per tag is what costs.
        siblings = [
            other
            for other in self.catalog
            if other.model is not None
            and call_key(other.model.name, other.model.params) == key
            and other.id not in self.result.skipped
            and other.id not in self.result.built
        ]
        columns = {other.id: self.model_column(other, output) for other in siblings}
        self.attached.update(other.id for other in siblings)
        self.join_later(output.table.select("user_id", **columns))

    def model_column(self, tag: TagDef, output: ModelOutput) -> str:
        """The column of ``output`` that ``tag`` picks, checked against the tag's type."""
        spec = tag.model
        assert spec is not None
        origin = f"{self.catalog.locations.get(tag.id, 'tags')} (tag {tag.id})"
        column = str(spec.params.get(COLUMN_PARAM, tag.id))
        if column not in output.table.columns:
            given = ", ".join(c for c in output.table.columns if c != "user_id")
            raise ConfigError(
                f"{origin}: model {spec.name} gives no column {column!r}; pick one with "
                f"params: {{column: ...}}. Columns: {given}."
            )
        dtype = output.table[column].type()
        kind = "boolean" if dtype.is_boolean() else "string" if dtype.is_string() else str(dtype)
        if dtype.is_numeric():
            kind = "number"
        if kind != kind_of_tag_type(tag.type):
            raise ConfigError(
                f"{origin}: model {spec.name} gives column {column!r} as {dtype}, "
                f"which does not fit the tag's type {tag.type}."
            )
        return column


__all__ = [
    "CHECKPOINT_LAYERS",
    "Compiled",
    "Materialise",
    "PlannedScene",
    "ScenePlan",
    "bins_value",
    "compile_catalog",
    "cut_tables",
    "plan_scene_tags",
]
