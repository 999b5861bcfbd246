"""Makers: how a tag gets its value (metric, rule, bins, action, scene, declared, model).

Each maker checks its own structure; :class:`huaxiang.catalog.model.TagDef` checks
that the maker fits the tag's value type.
"""

from __future__ import annotations

import re
import string
from typing import TYPE_CHECKING, Any, Literal, get_args

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from huaxiang.errors import did_you_mean
from huaxiang.model.schema import EVENT_TYPES, TABLES

TAG_ID = re.compile(r"^[a-z][a-z0-9_]*$")
SLUG = re.compile(r"^[a-z][a-z0-9_-]*$")
_WINDOW = re.compile(r"^(\d+)([dw])$")


ENUM_TYPES = ("enum", "hierarchical_enum")
NUMERIC_TYPES = ("integer", "number", "probability")
MAKERS = ("metric", "rule", "bins", "action", "scene", "declared", "model")

Scalar = bool | int | float | str
"""A constant a tag value can take (a ``when`` case's value, a default)."""


def parse_window(text: str) -> int | None:
    """Days in a window written ``30d``, ``4w`` or ``all`` (``None``: no limit)."""
    if text == "all":
        return None
    match = _WINDOW.match(text)
    if match is None or int(match.group(1)) == 0:
        raise ValueError(
            f"window {text!r} is not understood; write days as 30d or 365d, weeks as 4w, "
            "or all for no time limit"
        )
    count, unit = int(match.group(1)), match.group(2)
    return count * 7 if unit == "w" else count


def format_bound(value: float) -> str:
    """A bin bound as analysts write it: ``5`` not ``5.0``, ``2.5`` stays."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


class FieldError(ValueError):
    """A problem a whole-tag check finds in one field; ``loc`` says which (for the line number)."""

    def __init__(self, message: str, loc: tuple[int | str, ...]) -> None:
        super().__init__(message)
        self.loc = loc


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _as_list(value: Any) -> Any:
    """Let a one-item list be written as the item (``brand: 蓝月亮``)."""
    return [value] if isinstance(value, str) else value


# ---------------------------------------------------------------------------- values


AggFunction = Literal[
    "count", "count_distinct", "sum", "avg", "min", "max", "days_since_max", "days_since_min"
]
_AGG_FUNCTIONS: tuple[str, ...] = get_args(AggFunction)
_AGG_TEXT = re.compile(r"^([A-Za-z_]+)\s*(?:\(\s*([^()]*?)\s*\))?$")
_NUMBER_COLUMNS = ("int", "float", "decimal")
_TIME_COLUMNS = ("timestamp", "date")


class Aggregate(Strict):
    """A metric's aggregate, e.g. ``sum(amount)``: a function and the column it reads."""

    function: AggFunction
    column: str | None = None

    def __str__(self) -> str:
        return f"{self.function}({self.column or ''})"

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: Any) -> Any:
        if not isinstance(data, str):
            return data
        match = _AGG_TEXT.match(data.strip())
        if match is None:
            raise ValueError(
                f"agg {data!r} is not understood; write a function and a column such as sum(amount), "
                f"or count. Functions: {', '.join(_AGG_FUNCTIONS)}"
            )
        function, column = match.group(1).lower(), match.group(2)
        if function not in _AGG_FUNCTIONS:
            raise ValueError(
                f"unknown aggregate {function!r} in {data!r}; allowed: {', '.join(_AGG_FUNCTIONS)}."
                f"{did_you_mean(function, _AGG_FUNCTIONS)}"
            )
        if column in ("", "*"):
            column = None
        if function == "count" and column is not None:
            raise ValueError(f"count takes no column in {data!r}; write count, or count_distinct({column})")
        if function != "count" and column is None:
            raise ValueError(f"{function} needs a column in {data!r}, e.g. {function}(amount)")
        return {"function": function, "column": column}


class Windowed(Strict):
    """A maker that looks back over a window before the as-of date (``30d``, ``4w`` or ``all``).

    Each maker declares its own ``window`` field (default and position differ);
    this base checks it and gives its length in days.
    """

    if TYPE_CHECKING:
        window: str

    @field_validator("window", check_fields=False)
    @classmethod
    def _window(cls, value: str) -> str:
        parse_window(value)
        return value

    @property
    def days(self) -> int | None:
        """Length of the window in days (``None``: all history)."""
        return parse_window(self.window)


class MetricSpec(Windowed):
    """An aggregate over a window of rows of one canonical table, per user."""

    from_: Literal["orders", "order_items", "events", "users"] = Field(alias="from")
    where: str | None = None
    window: str = "all"
    agg: Aggregate

    @field_validator("agg")
    @classmethod
    def _column_of_table(cls, value: Aggregate, info: ValidationInfo) -> Aggregate:
        table_name = info.data.get("from_")
        if table_name is None or value.column is None:
            return value
        table = TABLES[table_name]
        if value.column not in table.column_names:
            hint = did_you_mean(value.column, table.column_names)
            raise ValueError(
                f"table {table_name} has no column {value.column!r}.{hint}"
                f" Columns: {', '.join(table.column_names)}"
            )
        kind = table.column(value.column).kind
        if value.function in ("sum", "avg", "min", "max") and kind not in _NUMBER_COLUMNS:
            raise ValueError(f"{value} needs a numeric column, but {table_name}.{value.column} is {kind}")
        if value.function.startswith("days_since") and kind not in _TIME_COLUMNS:
            raise ValueError(
                f"{value} needs a time column, but {table_name}.{value.column} is {kind}; "
                f"e.g. {value.function}(order_time)"
            )
        return value



class WhenCase(Strict):
    """One case of a rule: the value the tag takes when the condition (``if``) holds."""

    value: Scalar
    condition: str = Field(alias="if")

    @model_validator(mode="before")
    @classmethod
    def _compact(cls, data: Any) -> Any:
        # The compact form "- 学生一族: 'has_grade_stage AND age <= 25'".
        if isinstance(data, dict) and len(data) == 1 and not {"value", "if"} & set(data):
            ((value, condition),) = data.items()
            return {"value": value, "if": condition}
        return data


class RuleSpec(Strict):
    """A value computed from other tags: one expression, or ordered cases (first match wins)."""

    expr: str | None = None
    when: list[WhenCase] | None = Field(default=None, min_length=1)
    default: Scalar | None = None

    @model_validator(mode="before")
    @classmethod
    def _bare_text(cls, data: Any) -> Any:
        return {"expr": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _one_form(self) -> RuleSpec:
        if (self.expr is None) == (self.when is None):
            raise ValueError("give either expr (one expression) or when (a list of cases), not both")
        if self.expr is not None and self.default is not None:
            raise ValueError("default goes with when; for expr write coalesce(expression, default)")
        return self


class BinsSpec(Strict):
    """Bands of a numeric tag: fixed ``edges``, fixed-``width`` bands, or ``quantiles``.

    ``edges: [e0, ..., en]`` gives n + 2 right-closed bins: ``(-inf, e0]``,
    ``(e0, e1]``, ..., ``(en, +inf)``. ``width: w`` gives left-closed bands
    ``[k*w, (k+1)*w)`` labelled with ``format``. ``quantiles: q`` gives q bins of
    equal size cut from the data.
    """

    of: str
    edges: list[float] | None = Field(default=None, min_length=1)
    width: float | None = Field(default=None, gt=0)
    quantiles: int | None = Field(default=None, ge=2, le=100)
    labels: list[str] | None = None
    format: str = "{lo}-{hi}"

    @field_validator("edges")
    @classmethod
    def _increasing(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and any(b <= a for a, b in zip(value, value[1:], strict=False)):
            raise ValueError(f"edges must increase strictly, got {value}")
        return value

    @field_validator("format")
    @classmethod
    def _placeholders(cls, value: str) -> str:
        try:
            names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        except ValueError as error:
            raise ValueError(f"format {value!r} is not valid: {error}") from None
        unknown = names - {"lo", "hi"}
        if unknown:
            raise ValueError(f"format {value!r} may use {{lo}} and {{hi}} only, not {{{sorted(unknown)[0]}}}")
        return value

    @model_validator(mode="after")
    def _one_form(self) -> BinsSpec:
        given = [name for name in ("edges", "width", "quantiles") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of edges, width, quantiles; got {', '.join(given) or 'none'}")
        if self.labels is not None:
            if self.width is not None:
                raise ValueError("labels go with edges or quantiles; width bands are labelled by format")
            expected = len(self.edges) + 1 if self.edges is not None else self.quantiles
            if len(self.labels) != expected:
                raise ValueError(
                    f"{len(self.labels)} labels for {expected} bins; "
                    + (
                        f"{len(self.edges or [])} edges make {expected} bins: (-inf, first edge], ..., "
                        "(last edge, +inf)"
                        if self.edges is not None
                        else f"quantiles: {self.quantiles} makes {expected} bins"
                    )
                )
            if len(set(self.labels)) != len(self.labels):
                raise ValueError(f"labels must differ, got {self.labels}")
        return self

    def bin_labels(self) -> list[str] | None:
        """Labels of the bins in order (``None`` for width bands, whose labels depend on the data)."""
        if self.labels is not None:
            return list(self.labels)
        if self.edges is not None:
            edges = [format_bound(e) for e in self.edges]
            middle = [f"{lo}-{hi}" for lo, hi in zip(edges, edges[1:], strict=False)]
            return [f"<={edges[0]}", *middle, f">{edges[-1]}"]
        if self.quantiles is not None:
            return [f"Q{i}" for i in range(1, self.quantiles + 1)]
        return None

    def band_label(self, lo: float) -> str:
        """The label of the width band starting at ``lo``."""
        width = self.width or 0.0
        return self.format.format(lo=format_bound(lo), hi=format_bound(lo + width))


class ActionSpec(Windowed):
    """Did the user do one of ``events`` at least ``min_count`` times within ``window``?

    Filters are lists; a row matches a filter when it matches any of its values,
    and all filters given must match. ``category`` matches any category level.
    """

    events: list[str] = Field(min_length=1)
    window: str = Field("30d", validation_alias=AliasChoices("window", "within"))
    min_count: int = Field(1, ge=1)
    brand: list[str] | None = None
    category: list[str] | None = None
    product: list[str] | None = None
    shop: list[str] | None = None
    keyword: list[str] | None = None

    _lists = field_validator("events", "brand", "category", "product", "shop", "keyword", mode="before")(
        _as_list
    )

    @field_validator("events")
    @classmethod
    def _known_events(cls, value: list[str]) -> list[str]:
        for event in value:
            if event not in EVENT_TYPES:
                raise ValueError(
                    f"unknown event type {event!r}.{did_you_mean(event, EVENT_TYPES)} "
                    f"Event types: {', '.join(EVENT_TYPES)}"
                )
        return value




#: ``scene.name`` of a template: one pair of tags per scene found in the data.
EVERY_SCENE = "*"


class SceneLabel(Strict):
    """Names of a scene in tags a template makes; ``id`` replaces a scene value that is not a slug."""

    name_zh: str | None = Field(None, min_length=1)
    name_en: str | None = Field(None, min_length=1)
    id: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _plain_string(cls, data: Any) -> Any:
        return {"name_zh": data} if isinstance(data, str) else data

    @field_validator("id")
    @classmethod
    def _id_part(cls, value: str | None) -> str | None:
        if value is not None and not TAG_ID.match(value):
            raise ValueError(f"scene id must be snake_case such as outing, got {value!r}")
        return value


class SceneSpec(Windowed):
    """Scene strength (场景强度): events on the scene's products and content, weighted and decayed.

    Each counted event adds ``weight × 0.5^(age_days / half_life_days)`` to the score;
    the probability is ``1 − 2^(−score / half_score)`` (0.5 when the score equals
    ``half_score``) and a boolean tag holds when it is at least ``threshold``.
    ``name: "*"`` makes a template: tags ``scene_<slug>_score`` and ``scene_<slug>``
    for every scene found in ``products.scene_tags`` and ``content.scene_tags``.
    """

    name: str
    weights: dict[str, float] = Field(min_length=1)
    half_life_days: float = Field(7.0, gt=0)
    window: str = "90d"
    half_score: float = Field(5.0, gt=0)
    threshold: float | None = Field(None, gt=0, le=1)
    keywords: dict[str, list[str]] = Field(default_factory=dict)
    search_categories: bool = True
    labels: dict[str, SceneLabel] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if value != EVERY_SCENE and not SLUG.match(value):
            raise ValueError(
                f"scene name must be a lower-case slug such as outing, or \"{EVERY_SCENE}\" for every scene "
                f"in the data, got {value!r}"
            )
        return value

    @field_validator("weights")
    @classmethod
    def _event_weights(cls, value: dict[str, float]) -> dict[str, float]:
        for event, weight in value.items():
            if event not in EVENT_TYPES:
                raise ValueError(
                    f"unknown event type {event!r}.{did_you_mean(event, EVENT_TYPES)} "
                    f"Event types: {', '.join(EVENT_TYPES)}"
                )
            if weight <= 0:
                raise ValueError(f"weight of {event!r} must be positive, got {weight}")
        return value

    @field_validator("keywords", mode="before")
    @classmethod
    def _keyword_list(cls, value: Any, info: ValidationInfo) -> Any:
        # ``keywords: [露营, 野餐]`` on a tag for one scene is short for ``{outing: [露营, 野餐]}``.
        name = info.data.get("name")
        if isinstance(value, list | str) and name is not None and name != EVERY_SCENE:
            return {name: _as_list(value)}
        if isinstance(value, list | str):
            raise ValueError("a template (name \"*\") gives keywords per scene: {outing: [露营, 野餐], ...}")
        if isinstance(value, dict):
            return {key: _as_list(words) for key, words in value.items()}
        return value

    @field_validator("keywords")
    @classmethod
    def _keyword_scenes(cls, value: dict[str, list[str]], info: ValidationInfo) -> dict[str, list[str]]:
        name = info.data.get("name")
        for scene, words in value.items():
            if name not in (None, EVERY_SCENE) and scene != name:
                raise ValueError(f"keywords are given for scene {scene!r}, but this tag measures {name!r}")
            if any(not word.strip() for word in words):
                raise ValueError(f"keywords of scene {scene!r} must be non-empty words, got {words}")
        return value

    @model_validator(mode="after")
    def _template_fields(self) -> SceneSpec:
        if self.labels and not self.is_template:
            raise FieldError(
                f"labels name the tags of a template (name: \"{EVERY_SCENE}\"); this tag is scene "
                f"{self.name!r} and has its own name_zh and name_en",
                ("labels",),
            )
        return self

    @property
    def is_template(self) -> bool:
        """True when the tag stands for one pair of tags per scene found in the data."""
        return self.name == EVERY_SCENE



DECLARED_TYPES: dict[str, tuple[str, ...]] = {
    "bool": ("boolean",),
    "int": ("integer", "number"),
    "float": ("number", "probability"),
    "decimal": ("number",),
    "string": ENUM_TYPES,
    "enum": ENUM_TYPES,
    "list": ("enum",),
}


class DeclaredSpec(Strict):
    """A value the user provided: a column of the canonical ``users`` table."""

    column: str

    @field_validator("column")
    @classmethod
    def _users_column(cls, value: str) -> str:
        names = TABLES["users"].column_names
        if value not in names:
            raise ValueError(
                f"users has no column {value!r}.{did_you_mean(value, names)} Columns: {', '.join(names)}"
            )
        return value


class ModelSpec(Strict):
    """A value a model gives (clustering, prediction); the model itself comes in a later issue."""

    name: str = Field(min_length=1)
    features: list[str] = Field(default_factory=list)
    params: dict[str, Any] = Field(default_factory=dict)


# ---------------------------------------------------------------------------- the tag


