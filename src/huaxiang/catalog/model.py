"""Tag definitions: what analysts write in ``tags/*.yaml``, as pydantic models.

A tag has metadata (id, names, category, value type, owner ...) and exactly one
*maker*, the way its value is made: ``metric``, ``rule``, ``bins``, ``action``,
``scene``, ``declared`` or ``model``. These models check the structure of one
tag on its own and that its maker can give its value type; rule texts and
references to other tags are checked by :mod:`huaxiang.catalog.loader`, which
knows the whole catalog. The format is described for analysts in docs/tags.md.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from typing import Any, Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from huaxiang.catalog.makers import (
    DECLARED_TYPES,
    ENUM_TYPES,
    MAKERS,
    TAG_ID,
    ActionSpec,
    BinsSpec,
    DeclaredSpec,
    FieldError,
    MetricSpec,
    ModelSpec,
    RuleSpec,
    Scalar,
    SceneSpec,
    Strict,
)
from huaxiang.errors import did_you_mean
from huaxiang.model.schema import TABLES


class Category(StrEnum):
    """The tag categories of the SPEC (标签分类)."""

    basic = "basic"
    extended = "extended"
    brand_shop = "brand_shop"
    operable = "operable"
    action = "action"
    style = "style"
    category_scene = "category_scene"
    consumption_trait = "consumption_trait"
    behaviour_preference = "behaviour_preference"
    custom = "custom"
    declared = "declared"


CATEGORY_LABELS_ZH: dict[Category, str] = {
    Category.basic: "基础属性",
    Category.extended: "拓展属性",
    Category.brand_shop: "品牌/店铺",
    Category.operable: "可运营维度",
    Category.action: "行为",
    Category.style: "风格",
    Category.category_scene: "品类/场景",
    Category.consumption_trait: "消费特征",
    Category.behaviour_preference: "行为偏好",
    Category.custom: "自定义",
    Category.declared: "自选(注册时)",
}

TagType = Literal["boolean", "enum", "hierarchical_enum", "integer", "number", "probability"]
class EnumValue(Strict):
    """An allowed value of an enum tag, with optional labels."""

    value: str = Field(min_length=1)
    name_zh: str | None = None
    name_en: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _plain_string(cls, data: Any) -> Any:
        return {"value": data} if isinstance(data, str) else data


# ---------------------------------------------------------------------------- makers

class TagDef(Strict):
    """One tag of the catalog: metadata and exactly one maker."""

    id: str
    name_zh: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    category: Category
    type: TagType
    values: list[EnumValue] | None = None
    owner: str | None = None
    description: str | None = None
    inputs: list[str] = Field(default_factory=list)
    inputs_any: list[str] = Field(default_factory=list)
    """Canonical columns of which at least one must hold data, or the tag is skipped."""
    optional: list[str] = Field(default_factory=list)
    """Tags a rule reads that may be skipped: the rule then reads NULL in their place."""
    refresh: Literal["daily", "weekly", "monthly", "manual"] = "daily"

    metric: MetricSpec | None = None
    rule: RuleSpec | None = None
    bins: BinsSpec | None = None
    action: ActionSpec | None = None
    scene: SceneSpec | None = None
    declared: DeclaredSpec | None = None
    model: ModelSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _top_level_cases(cls, data: Any) -> Any:
        # The short form of a rule: "when:" and "default:" written on the tag itself.
        if isinstance(data, dict) and "rule" not in data and "when" in data:
            data = dict(data)
            rule = {"when": data.pop("when")}
            if "default" in data:
                rule["default"] = data.pop("default")
            data["rule"] = rule
        return data

    @field_validator("id")
    @classmethod
    def _snake_case(cls, value: str) -> str:
        if not TAG_ID.match(value):
            raise ValueError(
                f"tag id must be snake_case (a-z, 0-9, _; starting with a letter), got {value!r}"
            )
        return value

    @field_validator("inputs", "inputs_any")
    @classmethod
    def _canonical_inputs(cls, value: list[str]) -> list[str]:
        for item in value:
            table_name, _, column = item.partition(".")
            if table_name not in TABLES:
                raise ValueError(
                    f"input {item!r} names no canonical table.{did_you_mean(table_name, TABLES)} "
                    "Write table or table.column, e.g. orders.amount"
                )
            names = TABLES[table_name].column_names
            if column and column not in names:
                raise ValueError(
                    f"input {item!r}: {table_name} has no column {column!r}.{did_you_mean(column, names)}"
                )
        return value

    @model_validator(mode="after")
    def _maker_fits_type(self) -> TagDef:
        makers = [name for name in MAKERS if getattr(self, name) is not None]
        if len(makers) != 1:
            got = " and ".join(makers) if makers else "none"
            raise ValueError(f"give exactly one way to make the value ({', '.join(MAKERS)}); got {got}")
        maker = makers[0]
        if self.values is not None:
            self._check_values()
        allowed = _MAKER_TYPES.get(maker)
        if allowed is not None and self.type not in allowed:
            raise FieldError(
                f"a tag made by {maker} has type {' or '.join(allowed)}, not {self.type}", ("type",)
            )
        if self.scene is not None and self.type == "boolean" and self.scene.threshold is None:
            raise FieldError(
                "a boolean scene tag needs scene.threshold (strength at or above it is true)", ("scene",)
            )
        if self.scene is not None and self.type != "boolean" and self.scene.threshold is not None:
            raise FieldError(
                "scene.threshold applies to boolean scene tags; a probability tag holds the probability "
                "itself (remove threshold, or make the tag boolean)",
                ("scene", "threshold"),
            )
        if self.scene is not None and self.scene.is_template and self.type != "boolean":
            raise FieldError(
                'a scene template (name: "*") has type boolean and a threshold: it makes scene_<slug> '
                "(boolean) and scene_<slug>_score (probability) for every scene in the data",
                ("type",),
            )
        if self.optional and self.rule is None:
            raise FieldError(
                f"optional applies to rule tags (a rule reads NULL for a skipped optional tag); "
                f"this tag is made by {maker}",
                ("optional",),
            )
        if self.declared is not None:
            kind = TABLES["users"].column(self.declared.column).kind
            fits = DECLARED_TYPES[kind]
            if self.type not in fits:
                raise FieldError(
                    f"users.{self.declared.column} is {kind}; a tag declared from it has type "
                    f"{' or '.join(fits)}, not {self.type}",
                    ("declared", "column"),
                )
        if self.rule is not None and self.rule.when is not None:
            for index, case in enumerate(self.rule.when):
                self._check_constant(case.value, f"case value {case.value!r}", ("rule", "when", index))
            if self.rule.default is not None:
                self._check_constant(self.rule.default, f"default {self.rule.default!r}", ("rule", "default"))
        if self.bins is not None and self.values is not None and self.bins.width is None:
            names = [v.value for v in self.values]
            for label in self.bins.bin_labels() or []:
                if label not in names:
                    raise FieldError(
                        f"bin label {label!r} is not one of values: {', '.join(names)}", ("bins",)
                    )
        return self

    def _check_values(self) -> None:
        values = self.values or []
        if self.type not in ENUM_TYPES:
            raise FieldError(
                f"values apply to enum and hierarchical_enum tags, not to type {self.type}", ("values",)
            )
        seen: set[str] = set()
        for index, value in enumerate(values):
            if value.value in seen:
                raise FieldError(f"value {value.value!r} is listed twice", ("values", index))
            seen.add(value.value)
            if self.type == "hierarchical_enum":
                _check_path(value.value, ("values", index))

    def _check_constant(self, value: Scalar, what: str, loc: tuple[int | str, ...]) -> None:
        """A ``when`` value or default must have the tag's type (and be one of ``values``)."""
        if self.type == "boolean":
            ok, takes = isinstance(value, bool), "true or false"
        elif self.type in ENUM_TYPES:
            ok, takes = isinstance(value, str), "text (put it in quotes)"
        elif self.type == "integer":
            ok, takes = isinstance(value, int) and not isinstance(value, bool), "a whole number"
        else:
            ok, takes = isinstance(value, int | float) and not isinstance(value, bool), "a number"
        if not ok:
            raise FieldError(f"{what} does not fit type {self.type}, which takes {takes}", loc)
        if self.type == "probability" and not 0 <= float(value) <= 1:
            raise FieldError(f"{what} is not a probability between 0 and 1", loc)
        if self.type == "hierarchical_enum":
            _check_path(str(value), loc)
        if self.values is not None:
            names = [v.value for v in self.values]
            allowed = set(names)
            if self.type == "hierarchical_enum":
                # A parent (千禧一代) stands for the union of its children (千禧一代/精英青年 ...).
                allowed |= {name.rsplit("/", i)[0] for name in names for i in range(name.count("/") + 1)}
            if value not in allowed:
                raise FieldError(
                    f"{what} is not one of values: {', '.join(names)}.{did_you_mean(str(value), names)}", loc
                )

    @property
    def maker(self) -> str:
        """The name of the way the value is made: ``metric``, ``rule``, ..."""
        return next(name for name in MAKERS if getattr(self, name) is not None)

    def normalised(self) -> dict[str, Any]:
        """The definition as plain JSON data, defaults filled in and empty makers left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    @property
    def definition_hash(self) -> str:
        """sha256 of the normalised definition (stable across runs and key order)."""
        text = json.dumps(self.normalised(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


_MAKER_TYPES: dict[str, tuple[str, ...]] = {
    "metric": ("integer", "number"),
    "bins": ("enum",),
    "action": ("boolean",),
    "scene": ("probability", "boolean"),
}


def _check_path(value: str, loc: tuple[int | str, ...]) -> None:
    """A hierarchical value is non-empty parts separated by '/' (``千禧一代/精英青年``)."""
    if not all(part.strip() and part == part.strip() for part in value.split("/")):
        raise FieldError(
            f"hierarchical value {value!r} must be non-empty parts separated by '/', e.g. 千禧一代/精英青年",
            loc,
        )
