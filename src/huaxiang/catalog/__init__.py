"""The tag catalog: tag definitions, the rule language and their dependency order."""

from __future__ import annotations

from huaxiang.catalog.loader import Catalog, Location, TagRules, load_catalog
from huaxiang.catalog.model import CATEGORY_LABELS_ZH, Category, TagDef
from huaxiang.catalog.rules import (
    Rule,
    RuleError,
    ValueKind,
    compile_rule,
    kind_of_tag_type,
    parse_rule,
)

__all__ = [
    "CATEGORY_LABELS_ZH",
    "Catalog",
    "Category",
    "Location",
    "Rule",
    "RuleError",
    "TagDef",
    "TagRules",
    "ValueKind",
    "compile_rule",
    "kind_of_tag_type",
    "load_catalog",
    "parse_rule",
]
