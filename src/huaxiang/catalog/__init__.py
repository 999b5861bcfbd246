"""The tag catalog: tag definitions, the rule language and their dependency order."""

from __future__ import annotations

from huaxiang.catalog.rules import (
    Rule,
    RuleError,
    ValueKind,
    compile_rule,
    kind_of_tag_type,
    parse_rule,
)

__all__ = ["Rule", "RuleError", "ValueKind", "compile_rule", "kind_of_tag_type", "parse_rule"]
