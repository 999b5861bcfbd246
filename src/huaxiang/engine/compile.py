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
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir

from huaxiang.catalog import Catalog, TagDef, compile_rule, kind_of_tag_type
from huaxiang.catalog.makers import TAG_ID, BinsSpec, MetricSpec, SceneSpec
from huaxiang.engine.registry import (
    COLUMN_PARAM,
    MODEL_MAKERS,
    BuildSettings,
    ModelContext,
    ModelOutput,
    call_key,
)
from huaxiang.errors import ConfigError, MissingInputError
from huaxiang.segment.rfm import day_start
from huaxiang.segment.scene import scene_strength, scene_values

#: Column of each canonical table that dates its rows (the as-of cut and windows use it).
TIME_COLUMNS = {"orders": "order_time", "events": "event_time", "touches": "touch_time"}

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
    generated: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Tags a template made (not in the catalog), by id: ``template``, ``scene``, ``type``,
    ``category``, ``name_zh``, ``name_en``, ``hash`` (the template's), ``reads`` and ``inputs``."""


Materialise = Callable[[ir.Table], ir.Table]
"""Runs an expression into a (temporary) table of the engine and returns that table."""

#: Tags compiled between two checkpoints: a longer chain of joins and projections
#: makes Ibis's SQL compilation slow and, past about a hundred tags, too deep to compile.
CHECKPOINT_EVERY = 8


def compile_catalog(
    catalog: Catalog,
    tables: Mapping[str, ir.Table],
    as_of: dt.date,
    *,
    materialise: Materialise | None = None,
    settings: BuildSettings | None = None,
) -> Compiled:
    """Compile every tag of ``catalog`` over ``tables`` (already cut at ``as_of``).

    With ``materialise``, the wide table is run into an engine table every
    :data:`CHECKPOINT_EVERY` tags and each model maker's output once, so the
    expression stays small whatever the size of the catalog; without it the
    result is one lazy expression.
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
        self.models: dict[str, ModelOutput] = {}
        self.missing_inputs: dict[str, MissingInputError] = {}
        self.attached: set[str] = set()
        """Model tags whose column was joined with an earlier tag of the same maker call."""

    @property
    def wide(self) -> ir.Table:
        return self.result.wide

    def run(self) -> Compiled:
        for tag_id in self.catalog.order:
            tag = self.catalog[tag_id]
            reason = self.skip_reason(tag)
            if reason is not None:
                self.result.skipped[tag_id] = reason
                continue
            if tag.scene is not None and tag.scene.is_template:
                self.scene_template(tag, tag.scene)
                continue
            try:
                self.compile(tag)
            except MissingInputError as error:
                self.result.skipped[tag_id] = f"missing input: {error}"
                continue
            self.result.built.append(tag_id)
            if self.materialise is not None and len(self.result.built) % CHECKPOINT_EVERY == 0:
                self.result.wide = self.materialise(self.wide)
        # Columns joined ahead for tags later skipped are dropped; the rest is in build order.
        self.result.wide = self.wide.select("user_id", *self.result.built)
        return self.result

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
            self.set(tag.id, bins_value(self.wide[tag.bins.of], tag.bins, self.wide.user_id))
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

    def set(self, tag_id: str, value: ir.Value) -> None:
        self.result.wide = self.wide.mutate(**{tag_id: value})

    def attach(self, tag_id: str, per_user: ir.Table, default: Any = None) -> None:
        """Left-join ``per_user`` (``user_id``, ``value``) as column ``tag_id``; fill ``default``."""
        columns = self.wide.columns
        joined = self.wide.left_join(per_user, "user_id").select(*columns, VALUE)
        if default is not None:
            joined = joined.mutate(**{VALUE: joined[VALUE].fill_null(default)})
        self.result.wide = joined.rename({tag_id: VALUE})

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
            self.result.wide = self.wide.mutate(**absent)
        self._rule(tag)
        if absent:
            self.result.wide = self.wide.drop(*absent)

    def _rule(self, tag: TagDef) -> None:
        rules = self.catalog.rules[tag.id]
        if rules.expr is not None:
            self.set(tag.id, compile_rule(rules.expr, self.wide))
            return
        literal_type = LITERAL_TYPES[tag.type]
        cases = tag.rule.when if tag.rule is not None and tag.rule.when is not None else []
        branches = [
            (compile_rule(condition, self.wide), ibis.literal(case.value, type=literal_type))
            for condition, case in zip(rules.cases, cases, strict=True)
        ]
        default = tag.rule.default if tag.rule is not None else None
        otherwise = ibis.null(literal_type) if default is None else ibis.literal(default, type=literal_type)
        self.set(tag.id, ibis.cases(*branches, else_=otherwise))

    def action(self, tag: TagDef) -> None:
        spec = tag.action
        assert spec is not None
        events = self.tables["events"]
        events = events.filter(events.event_type.isin(spec.events))
        if spec.days is not None:
            events = events.filter(events.event_time >= day_start(self.as_of - dt.timedelta(days=spec.days)))
        if spec.product is not None:
            events = events.filter(events.product_id.isin(spec.product))
        if spec.keyword is not None:
            events = events.filter(events.keyword.isin(spec.keyword))
        if spec.brand is not None or spec.category is not None or spec.shop is not None:
            products = self.tables["products"]
            if spec.brand is not None:
                products = products.filter(products.brand.isin(spec.brand))
            if spec.shop is not None:
                products = products.filter(products.shop.isin(spec.shop))
            if spec.category is not None:
                levels = [
                    products[column].isin(spec.category)
                    for column in ("category_l1", "category_l2", "category_l3")
                    if column in products.columns
                ]
                products = products.filter(ibis.or_(*levels))
            events = events.semi_join(products.select("product_id"), "product_id")
        counts = events.group_by("user_id").aggregate(events_count=events.count())
        doers = counts.filter(counts.events_count >= spec.min_count)
        self.attach(tag.id, doers.select("user_id", **{VALUE: ibis.literal(True)}), False)

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
        kept = self.wide.columns
        joined = self.wide.left_join(per_user, "user_id").select(*kept, *inner)
        threshold = float(spec.threshold or 0.0)
        made: dict[str, ir.Value] = {}
        for index, scene in enumerate(plan.scenes):
            probability = joined[f"_scene_{index}"].fill_null(0.0)
            if scene.score_id is not None:
                made[scene.score_id] = probability
            if scene.flag_id is not None:
                made[scene.flag_id] = probability >= threshold
        self.result.wide = joined.select(*kept, **made)
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
        if self.materialise is not None:
            self.result.wide = self.materialise(self.wide)

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
                output = maker.function(ModelContext(self.tables, self.as_of, self.settings), params)
            except MissingInputError as error:  # the tag is skipped; so are the others of this call
                self.missing_inputs[key] = error
                raise
            except ConfigError as error:  # name the tag and its file in a maker's complaint
                raise type(error)(f"{origin}: {error}") from None
            if self.materialise is not None:
                output = ModelOutput(self.materialise(output.table), output.details)
            self.models[key] = output
            prefix = spec.name if not params else key
            for detail, table in output.details.items():
                self.result.details[f"{prefix}.{detail}"] = table
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
        kept = self.wide.columns
        per_user = output.table.select("user_id", **columns)
        self.result.wide = self.wide.left_join(per_user, "user_id").select(*kept, *columns)

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


# ---------------------------------------------------------------------------- scene templates


@dataclass(frozen=True)
class PlannedScene:
    """One scene of a template: its value in the data, names and the ids of the tags it gets.

    An id is ``None`` when the catalog already defines a tag with it (the explicit tag wins).
    """

    value: str
    name_zh: str
    name_en: str
    score_id: str | None
    flag_id: str | None


@dataclass
class ScenePlan:
    """What a scene template makes: the scenes with tags, and the scene values it cannot use."""

    template: str
    scenes: list[PlannedScene] = field(default_factory=list)
    taken: list[str] = field(default_factory=list)
    """Scene values whose two tags are both defined already (catalog or an earlier template)."""
    unusable: dict[str, str] = field(default_factory=dict)
    """Scene value -> why no tag id can be made from it."""

    def table(self) -> ir.Table:
        """The plan as rows for the manifest: scene, names, tag ids and a note."""
        rows: list[dict[str, Any]] = [
            {
                "scene": scene.value,
                "name_zh": scene.name_zh,
                "name_en": scene.name_en,
                "score_tag": scene.score_id,
                "flag_tag": scene.flag_id,
                "note": None,
            }
            for scene in self.scenes
        ]
        rows += [
            {"scene": value, "name_zh": None, "name_en": None, "score_tag": None, "flag_tag": None,
             "note": "both tags are defined already (in the catalog or by another template)"}
            for value in self.taken
        ]
        rows += [
            {"scene": value, "name_zh": None, "name_en": None, "score_tag": None, "flag_tag": None,
             "note": reason}
            for value, reason in self.unusable.items()
        ]
        schema = dict.fromkeys(("scene", "name_zh", "name_en", "score_tag", "flag_tag", "note"), "string")
        return ibis.memtable(rows, schema=schema)


def plan_scene_tags(tag: TagDef, spec: SceneSpec, found: list[str], defined: set[str]) -> ScenePlan:
    """The tags a scene template makes for the scene values ``found`` in the data.

    Scene ``outing`` gets ``scene_outing_score`` (probability) and ``scene_outing``
    (boolean). The id part is ``labels[value].id`` when given, else the value with
    ``-`` written ``_``; a value that still is not snake_case (``郊游``) is unusable
    until a label gives it an id. Ids in ``defined`` (the catalog's, an earlier
    template's) are not made again.
    """
    plan = ScenePlan(tag.id)
    made: dict[str, str] = {}
    for value in found:
        label = spec.labels.get(value)
        part = label.id if label is not None and label.id is not None else value.replace("-", "_")
        score_id, flag_id = f"scene_{part}_score", f"scene_{part}"
        if not TAG_ID.match(flag_id):
            plan.unusable[value] = (
                f"scene {value!r} (products/content scene_tags) cannot form a tag id; give it one in "
                f"scene.labels, e.g. {{{value}: {{id: outing, name_zh: {value}}}}}"
            )
            continue
        if flag_id in made:
            plan.unusable[value] = (
                f"scene {value!r} would make {flag_id}, which scene {made[flag_id]!r} makes already; "
                "give one of them another id in scene.labels"
            )
            continue
        made[flag_id] = value
        name_zh = label.name_zh if label is not None and label.name_zh is not None else value
        default_en = value.replace("_", " ").replace("-", " ").capitalize()
        name_en = label.name_en if label is not None and label.name_en is not None else default_en
        planned = PlannedScene(
            value=value,
            name_zh=name_zh,
            name_en=name_en,
            score_id=None if score_id in defined else score_id,
            flag_id=None if flag_id in defined else flag_id,
        )
        if planned.score_id is None and planned.flag_id is None:
            plan.taken.append(value)
        else:
            plan.scenes.append(planned)
    return plan


# ---------------------------------------------------------------------------- bins


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


__all__ = [
    "CHECKPOINT_EVERY",
    "Compiled",
    "Materialise",
    "PlannedScene",
    "ScenePlan",
    "bins_value",
    "compile_catalog",
    "cut_tables",
    "plan_scene_tags",
]
