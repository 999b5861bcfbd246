"""Load ``tags/*.yaml`` into a :class:`Catalog`: tags checked, rules parsed, build order fixed.

Loading is in stages, and each stage reports every problem it finds before the
next one runs: the structure of each tag (pydantic), duplicate ids, the rules
and references of each tag against the whole catalog, then dependency cycles.
Every message starts with ``tags/FILE.yaml:LINE``. Nothing is written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from huaxiang.catalog.model import Category, FieldError, TagDef
from huaxiang.catalog.rules import Rule, ValueKind, kind_of_tag_type, parse_rule
from huaxiang.errors import CatalogError, ConfigError, RuleError, did_you_mean
from huaxiang.model.schema import TABLES, Kind
from huaxiang.yamlfile import describe_error, format_loc, load_yaml, named_key, node_line

#: How a rule sees a canonical column, by schema kind (times and lists are not readable).
COLUMN_KINDS: dict[Kind, ValueKind] = {
    "string": "string",
    "enum": "string",
    "int": "number",
    "float": "number",
    "decimal": "number",
    "bool": "boolean",
}


@dataclass(frozen=True)
class Location:
    """Where a tag is defined: the file as shown in messages (``tags/a.yaml``) and the line."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class TagRules:
    """The parsed rule texts of one tag (each a checked :class:`Rule` with its origin)."""

    expr: Rule | None = None
    cases: tuple[Rule, ...] = ()
    where: Rule | None = None


@dataclass(frozen=True)
class Catalog:
    """A loaded, checked catalog: tags by id in definition order, and their build order."""

    tags: dict[str, TagDef]
    order: list[str]
    """Tag ids in build order: every tag after the tags it reads."""
    dependencies: dict[str, frozenset[str]]
    """Tag id -> ids of the tags it reads directly."""
    locations: dict[str, Location] = field(default_factory=dict)
    rules: dict[str, TagRules] = field(default_factory=dict)

    def inputs(self, tag_id: str) -> tuple[str, ...]:
        """Canonical inputs (``table.column``) the tag reads itself, sorted; tags it reads are not listed.

        The maker's own needs (a metric's table, aggregate column, time column and
        ``where`` columns; an action's event and product columns ...) plus the
        tag's declared ``inputs``. A tag whose inputs are absent cannot be built.
        """
        tag = self[tag_id]
        found = set(tag.inputs) | set(_maker_inputs(tag))
        where = self.rules.get(tag_id, TagRules()).where
        if tag.metric is not None and where is not None:
            found |= {f"{tag.metric.from_}.{column}" for column in where.references}
        return tuple(sorted(found))

    def __len__(self) -> int:
        return len(self.tags)

    def __iter__(self) -> Iterator[TagDef]:
        """Tags in build order."""
        return (self.tags[tag_id] for tag_id in self.order)

    def __getitem__(self, tag_id: str) -> TagDef:
        try:
            return self.tags[tag_id]
        except KeyError:
            raise CatalogError(
                f"no tag '{tag_id}' in the catalog.{did_you_mean(tag_id, self.tags)}"
            ) from None

    def dependents(self, tag_id: str, *, transitive: bool = False) -> list[str]:
        """Ids of the tags that read ``tag_id`` (directly, or through others), in build order."""
        self[tag_id]
        found = {other for other, deps in self.dependencies.items() if tag_id in deps}
        if transitive:
            pending = list(found)
            while pending:
                current = pending.pop()
                for other, deps in self.dependencies.items():
                    if current in deps and other not in found:
                        found.add(other)
                        pending.append(other)
        return [other for other in self.order if other in found]

    def by_category(self) -> dict[Category, list[TagDef]]:
        """Tags grouped by category (categories in SPEC order, tags in build order)."""
        groups: dict[Category, list[TagDef]] = {category: [] for category in Category}
        for tag in self:
            groups[tag.category].append(tag)
        return {category: tags for category, tags in groups.items() if tags}

    @property
    def hash(self) -> str:
        """sha256 of the normalised definitions, sorted by id: the same catalog gives the same hash."""
        data = [self.tags[tag_id].normalised() for tag_id in sorted(self.tags)]
        text = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------- loading


@dataclass
class _Raw:
    """A tag as read from its file, before checking."""

    file: str
    index: int
    data: Any
    node: yaml.Node | None

    @property
    def line(self) -> int:
        return self.node.start_mark.line + 1 if self.node is not None else 1

    def where(self, loc: tuple[int | str, ...] = ()) -> str:
        return f"{self.file}:{self.line_of(loc)}"

    def line_of(self, loc: tuple[int | str, ...]) -> int:
        """Line of the field at ``loc``; ``rule.when`` also finds a ``when`` written at the top."""
        if loc[:1] == ("rule",) and isinstance(self.data, dict) and "rule" not in self.data:
            loc = loc[1:]
        return node_line(self.node, loc) or self.line


def load_catalog(tags_dir: Path) -> Catalog:
    """Read every ``*.yaml`` in ``tags_dir`` (each a list of tags) and check the catalog.

    Raises
    ------
    CatalogError
        (a :class:`~huaxiang.errors.ConfigError`) listing every problem of the
        first stage that failed, one per line, each starting with file:line.
    """
    if not tags_dir.is_dir():
        raise CatalogError(f"{tags_dir}: tag folder not found.")
    raws: list[_Raw] = []
    problems: list[str] = []
    for path in sorted(tags_dir.glob("*.yml")):
        problems.append(
            f"{tags_dir.name}/{path.name}: tag files end in .yaml; rename it to {path.stem}.yaml."
        )
    for path in sorted(tags_dir.glob("*.yaml")):
        shown = f"{tags_dir.name}/{path.name}"
        try:
            data, root = load_yaml(path)
        except ConfigError as error:
            problems.append(str(error).replace(str(path), shown, 1))
            continue
        if data is None:
            continue
        if not isinstance(data, list) or not isinstance(root, yaml.SequenceNode):
            problems.append(f"{shown}:1: a tag file holds a list of tags, each starting with '- id: ...'.")
            continue
        raws.extend(
            _Raw(shown, i, item, node) for i, (item, node) in enumerate(zip(data, root.value, strict=True))
        )
    _fail(problems)

    tags: dict[str, TagDef] = {}
    locations: dict[str, Location] = {}
    for raw in raws:
        tag = _validate(raw, problems)
        if tag is None:
            continue
        if tag.id in tags:
            problems.append(
                f"{raw.where(('id',))}: duplicate tag id '{tag.id}'; it is already defined at "
                f"{locations[tag.id]}. Rename one of them."
            )
            continue
        tags[tag.id] = tag
        locations[tag.id] = Location(raw.file, raw.line)
    _fail(problems)

    by_id = {raw.data["id"]: raw for raw in raws if isinstance(raw.data, dict) and raw.data.get("id") in tags}
    kinds = {tag_id: kind_of_tag_type(tag.type) for tag_id, tag in tags.items()}
    dependencies: dict[str, frozenset[str]] = {}
    rules: dict[str, TagRules] = {}
    for tag_id, tag in tags.items():
        found = _check_references(tag, by_id[tag_id], tags, kinds, problems)
        if found is not None:
            rules[tag_id], dependencies[tag_id] = found
    _fail(problems)

    order = _build_order(tags, dependencies, locations)
    return Catalog(tags=tags, order=order, dependencies=dependencies, locations=locations, rules=rules)


_TIME_COLUMN = {
    "orders": "orders.order_time",
    "order_items": "orders.order_time",
    "events": "events.event_time",
    "users": "users.register_time",
}
_ACTION_FILTERS = {
    "brand": ("products.brand",),
    # Any category level present matches; the top level is the one every source has (Taobao's ids).
    "category": ("products.category_l1",),
    "product": ("events.product_id",),
    "shop": ("products.shop",),
    "keyword": ("events.keyword",),
}


def _maker_inputs(tag: TagDef) -> list[str]:
    """The canonical columns the tag's maker reads (not counting a metric's ``where``)."""
    if tag.metric is not None:
        table_name = tag.metric.from_
        found = [f"{table_name}.user_id" if table_name != "order_items" else "orders.user_id"]
        if tag.metric.agg.column is not None:
            found.append(f"{table_name}.{tag.metric.agg.column}")
        if tag.metric.days is not None:
            found.append(_TIME_COLUMN[table_name])
        return found
    if tag.action is not None:
        found = ["events.user_id", "events.event_type", "events.event_time"]
        for name, columns in _ACTION_FILTERS.items():
            if getattr(tag.action, name) is not None:
                found.extend(columns)
        if any(getattr(tag.action, name) is not None for name in ("brand", "category", "shop")):
            found.append("events.product_id")
        return found
    if tag.scene is not None:
        return [
            "events.user_id",
            "events.event_type",
            "events.event_time",
            "events.product_id",
            "products.scene_tags",
        ]
    if tag.declared is not None:
        return [f"users.{tag.declared.column}"]
    return []


def _fail(problems: list[str]) -> None:
    if problems:
        raise CatalogError("\n".join(problems))


def _validate(raw: _Raw, problems: list[str]) -> TagDef | None:
    """The tag as a :class:`TagDef`, or ``None`` with its problems added."""
    data = raw.data
    name = (
        f"tag {data['id']}"
        if isinstance(data, dict) and isinstance(data.get("id"), str)
        else f"tag #{raw.index + 1}"
    )
    if not isinstance(data, dict):
        problems.append(
            f"{raw.where()}: {name}: a tag is a mapping of fields (id, name_zh, ...), got {data!r}."
        )
        return None
    try:
        return TagDef.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            loc = tuple(error["loc"])
            cause = error.get("ctx", {}).get("error")
            if isinstance(cause, FieldError):
                loc += cause.loc
            line = raw.line_of(loc + named_key(error))
            problems.append(f"{raw.file}:{line}: {name}: {format_loc(loc)}: {describe_error(error, TagDef)}")
        return None


def _check_references(
    tag: TagDef,
    raw: _Raw,
    tags: Mapping[str, TagDef],
    kinds: Mapping[str, ValueKind],
    problems: list[str],
) -> tuple[TagRules, frozenset[str]] | None:
    """Parse the tag's rules and check the tags it names; ``None`` with problems added."""
    before = len(problems)
    references: set[str] = set()
    expect = kind_of_tag_type(tag.type)

    def parse(
        text: str,
        loc: tuple[int | str, ...],
        known: Mapping[str, ValueKind],
        what: str,
        kind: ValueKind | None,
    ) -> Rule | None:
        origin = f"{raw.where(loc)} (tag {tag.id}{what})"
        try:
            return parse_rule(text, known, origin=origin, expect=kind)
        except RuleError as error:
            problems.append(str(error))
            return None

    def named(tag_id: str, loc: tuple[int | str, ...], role: str) -> None:
        if tag_id not in tags:
            problems.append(
                f"{raw.where(loc)} (tag {tag.id}, {role}): unknown tag '{tag_id}'."
                f"{did_you_mean(tag_id, tags) or ' Check the spelling, or define the tag in the catalog.'}"
            )
        else:
            references.add(tag_id)

    found = TagRules()
    if tag.rule is not None and tag.rule.expr is not None:
        rule = parse(tag.rule.expr, ("rule", "expr"), kinds, "", expect)
        found = TagRules(expr=rule)
    elif tag.rule is not None and tag.rule.when is not None:
        cases = []
        for index, case in enumerate(tag.rule.when):
            rule = parse(
                case.condition, ("rule", "when", index, "if"), kinds, f", case {case.value}", "boolean"
            )
            if rule is not None:
                cases.append(rule)
        found = TagRules(cases=tuple(cases))
    elif tag.metric is not None and tag.metric.where is not None:
        table = TABLES[tag.metric.from_]
        columns = {c.name: COLUMN_KINDS[c.kind] for c in table.columns if c.kind in COLUMN_KINDS}
        where = parse(tag.metric.where, ("metric", "where"), columns, f", where over {table.name}", "boolean")
        found = TagRules(where=where)
    elif tag.bins is not None:
        named(tag.bins.of, ("bins", "of"), "bins.of")
        other = tags.get(tag.bins.of)
        if other is not None and kinds[other.id] != "number":
            problems.append(
                f"{raw.where(('bins', 'of'))} (tag {tag.id}, bins.of): bins need a numeric tag, but "
                f"'{other.id}' has type {other.type}. Bin an integer, number or probability tag."
            )
    elif tag.model is not None:
        for index, feature in enumerate(tag.model.features):
            named(feature, ("model", "features", index), "model.features")

    if len(problems) > before:
        return None
    for rule in (found.expr, *found.cases):  # a metric's where reads columns, not tags
        if rule is not None:
            references |= rule.references
    for index, tag_id in enumerate(tag.optional):
        if tag_id not in references:
            read = ", ".join(sorted(references)) or "no tag"
            problems.append(
                f"{raw.where(('optional', index))} (tag {tag.id}, optional): '{tag_id}' is not read by "
                f"the rule; optional lists tags the rule reads ({read}).{did_you_mean(tag_id, references)}"
            )
    if len(problems) > before:
        return None
    return found, frozenset(references)


def _build_order(
    tags: Mapping[str, TagDef], dependencies: Mapping[str, frozenset[str]], locations: Mapping[str, Location]
) -> list[str]:
    """Tag ids in build order; ties keep definition order. A cycle is a CatalogError."""
    position = {tag_id: index for index, tag_id in enumerate(tags)}
    sorter: TopologicalSorter[str] = TopologicalSorter()
    for tag_id in tags:
        sorter.add(tag_id, *sorted(dependencies.get(tag_id, ()), key=position.__getitem__))
    try:
        sorter.prepare()
    except CycleError as error:
        cycle: list[str] = list(error.args[1])[:-1]
        # graphlib lists a cycle from dependency to dependent; report it as "a reads b".
        cycle.reverse()
        start = min(range(len(cycle)), key=lambda i: position[cycle[i]])
        cycle = cycle[start:] + cycle[:start]
        if len(cycle) == 1:
            raise CatalogError(
                f"{locations[cycle[0]]}: tag '{cycle[0]}' reads itself. "
                "A tag cannot be made from its own value."
            ) from None
        steps = " -> ".join(f"{tag_id} ({locations[tag_id]})" for tag_id in cycle)
        raise CatalogError(
            f"dependency cycle: {steps} -> {cycle[0]}. Each tag reads the next; "
            "break the cycle by changing one of these rules."
        ) from None
    order: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=position.__getitem__)
        order.extend(ready)
        sorter.done(*ready)
    return order
