"""Audience definitions: the JSON and text forms, their round trip, and checking against tags."""

from __future__ import annotations

import pytest

from huaxiang.audience import (
    MAX_DEPTH,
    And,
    Condition,
    DefinitionError,
    InAudience,
    Not,
    Or,
    TagSpec,
    check,
    from_json,
    from_text,
    parse,
    to_json,
    to_text,
)

TAGS = {
    "rfm_class": TagSpec("rfm_class", "enum", "RFM八类客户", values=("重要价值客户", "一般价值客户")),
    "city_tier": TagSpec("city_tier", "integer", "城市等级"),
    "lifecycle_stage": TagSpec("lifecycle_stage", "enum", values=("active", "churned", "new")),
    "trait_impulsive": TagSpec("trait_impulsive", "boolean", "冲动型"),
    "scene_outing_score": TagSpec("scene_outing_score", "probability"),
    "finance_group_14": TagSpec(
        "finance_group_14", "hierarchical_enum", values=("千禧一代", "千禧一代/精英青年", "其他人群")
    ),
}


def test_text_form_reads_into_the_tree():
    node = from_text(
        "rfm_class = '重要价值客户' AND city_tier IN (3,4,5,6) AND NOT lifecycle_stage = 'churned'"
    )
    assert node == And(
        (
            Condition("rfm_class", "=", "重要价值客户"),
            Condition("city_tier", "in", (3, 4, 5, 6)),
            Not(Condition("lifecycle_stage", "=", "churned")),
        )
    )


def test_text_form_operators_and_shorthands():
    node = from_text(
        "trait_impulsive OR (city_tier BETWEEN 2 AND 4 AND city_tier <> 3) OR city_tier IS NULL "
        "OR rfm_class IS NOT NULL OR -1 < city_tier OR in_audience('dyson_fans') OR city_tier NOT IN (1, 2)"
    )
    assert node == Or(
        (
            Condition("trait_impulsive", "=", True),
            And((Condition("city_tier", "between", (2, 4)), Condition("city_tier", "!=", 3))),
            Condition("city_tier", "is null"),
            Condition("rfm_class", "is not null"),
            Condition("city_tier", ">", -1),
            InAudience("dyson_fans"),
            Not(Condition("city_tier", "in", (1, 2))),
        )
    )


def test_json_form_and_round_trips():
    data = {
        "or": [
            {"tag": "rfm_class", "op": "=", "value": "重要价值客户"},
            {"and": [{"tag": "city_tier", "op": "between", "value": [3, 6]}, {"not": {"in_audience": "x"}}]},
            {"tag": "scene_outing_score", "op": ">=", "value": 0.5},
            {"tag": "rfm_class", "op": "is null"},
        ]
    }
    node = from_json(data)
    assert to_json(node) == data
    assert from_text(to_text(node)) == node
    assert to_text(node) == (
        "rfm_class = '重要价值客户' OR (city_tier BETWEEN 3 AND 6 AND NOT in_audience('x')) "
        "OR scene_outing_score >= 0.5 OR rfm_class IS NULL"
    )
    assert parse('{"tag": "city_tier", "op": "IN", "value": [1]}') == Condition("city_tier", "in", (1,))


def test_quotes_survive_the_round_trip():
    node = Condition("rfm_class", "=", "it's")
    assert to_text(node) == "rfm_class = 'it''s'"
    assert from_text(to_text(node)) == node


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([1], "audience definition at $: expected an object, got a list."),
        ({"and": []}, "audience definition at $.and: expected a non-empty list of conditions."),
        (
            {"and": [{"tag": "city_tier", "op": "=>", "value": 3}]},
            "audience definition at $.and[0].op: unknown operator '=>'; use one of =, !=, in, between, >=, "
            "<=, >, <, is null, is not null. Did you mean '>'?",
        ),
        (
            {"not": {"tag": "city_tier", "op": "in", "value": 3}},
            "audience definition at $.not.value: 'in' takes a list of values.",
        ),
        (
            {"tag": "city_tier", "op": "=", "value": None},
            "audience definition at $.value: expected text, a number or true/false, got null.",
        ),
        (
            {"tag": "city_tier", "value": 3, "vlaue": 4},
            "audience definition at $: unknown key 'vlaue'; a condition has tag, op and value.",
        ),
        (
            {"xor": []},
            "audience definition at $: unknown keys ['xor']; a node has one of and, or, not, "
            "in_audience, or tag/op/value.",
        ),
    ],
)
def test_json_shape_errors_name_the_path(data, message):
    with pytest.raises(DefinitionError) as caught:
        from_json(data)
    assert str(caught.value) == message


def test_text_syntax_errors_point_at_line_and_column():
    with pytest.raises(DefinitionError) as caught:
        from_text("city_tier IN (3, 4")
    assert caught.value.line == 1
    assert "syntax error" in str(caught.value)
    with pytest.raises(DefinitionError) as caught:
        from_text("trait_impulsive AND city_tier + 1 > 3")
    assert str(caught.value) == (
        'audience: expected a tag id, got "city_tier + 1" (line 1, column 21). Conditions compare one tag '
        "with values, e.g. city_tier >= 3."
    )
    assert (caught.value.line, caught.value.column) == (1, 21)
    with pytest.raises(DefinitionError) as caught:
        from_text("city_tier > 1 OR\n  length(rfm_class) > 2")
    assert str(caught.value).startswith(
        'audience: expected a tag id, got "length(rfm_class)" (line 2, column 3)'
    )
    with pytest.raises(DefinitionError) as caught:
        from_text("rfm_class = 重要价值客户")
    assert str(caught.value) == (
        'audience: "重要价值客户" is a name, not a value (line 1, column 13). '
        "Put text in single quotes: '重要价值客户'."
    )
    with pytest.raises(DefinitionError) as caught:
        from_text("city_tier = NULL")
    assert str(caught.value) == (
        "audience: NULL is not a value to compare with (line 1, column 13): "
        "write tag IS NULL or tag IS NOT NULL."
    )
    with pytest.raises(DefinitionError, match="in_audience takes one quoted name"):
        from_text("in_audience(x)")
    with pytest.raises(DefinitionError, match=r"';' is not allowed"):
        from_text("city_tier = 1; DROP TABLE users")


def test_unknown_tag_gets_did_you_mean():
    with pytest.raises(DefinitionError) as caught:
        check(from_text("rfm_clas = '重要价值客户'"), TAGS)
    assert str(caught.value) == (
        "audience definition at $ (rfm_clas = '重要价值客户'): unknown tag 'rfm_clas'. "
        "Did you mean 'rfm_class'? "
        "List the snapshot's tags with 'huaxiang tags list' (a tag the build skipped has no column)."
    )


def test_value_the_tag_never_takes_gets_did_you_mean():
    with pytest.raises(DefinitionError) as caught:
        check(from_text("city_tier > 2 AND rfm_class = '重要价值'"), TAGS)
    assert str(caught.value) == (
        "audience definition at $.and[1] (rfm_class = '重要价值'): "
        "tag 'rfm_class' (enum, RFM八类客户) never takes "
        "the value '重要价值'. Did you mean '重要价值客户'? Its values: 重要价值客户, 一般价值客户."
    )
    assert caught.value.path == "$.and[1]"


def test_wrong_types_are_explained():
    cases = {
        "city_tier = '3'": "tag 'city_tier' (integer, 城市等级) takes a number, got text '3'. "
        "Remove the quotes, e.g. city_tier >= 3.",
        "rfm_class IN (1, 2)": "tag 'rfm_class' (enum, RFM八类客户) takes text, got 1. "
        "Put the value in single quotes: '1'.",
        "rfm_class > '重要价值客户'": "'>' compares numbers, but tag 'rfm_class' "
        "(enum, RFM八类客户) is not a number; use = or in.",
        "trait_impulsive = 1": "tag 'trait_impulsive' (boolean, 冲动型) is true or false, got 1. Write "
        "trait_impulsive = true (or just trait_impulsive), or NOT trait_impulsive.",
        "scene_outing_score >= 2": "tag 'scene_outing_score' (probability) is a probability between 0 and 1, "
        "got 2.",
        "city_tier BETWEEN 5 AND 3": "city_tier BETWEEN 5 AND 3 is empty (low > high); swap the bounds.",
    }
    for text, message in cases.items():
        with pytest.raises(DefinitionError) as caught:
            check(from_text(text), TAGS)
        assert str(caught.value).endswith(message), text


def test_hierarchical_parent_is_a_value():
    node = check(from_text("finance_group_14 IN ('千禧一代', '其他人群')"), TAGS)
    assert node == Condition("finance_group_14", "in", ("千禧一代", "其他人群"))


def test_too_deep_tree_is_refused_with_the_limit():
    node = Condition("trait_impulsive", "=", True)
    for _ in range(MAX_DEPTH - 1):
        node = Not(node)
    check(node, TAGS)  # exactly at the limit
    with pytest.raises(DefinitionError) as caught:
        check(Not(node), TAGS)
    assert str(caught.value).startswith(
        f"audience definition at $.not{'.not' * (MAX_DEPTH - 1)}: the tree is nested more than {MAX_DEPTH} "
        "levels deep."
    )


def test_unknown_saved_audience_gets_did_you_mean():
    with pytest.raises(DefinitionError) as caught:
        check(from_text("in_audience('dyson_fan')"), TAGS, audiences=["dyson_fans", "vip"])
    assert str(caught.value) == (
        "audience definition at $: no saved audience 'dyson_fan'. Did you mean 'dyson_fans'? "
        "Saved audiences: dyson_fans, vip."
    )


def test_the_docs_text_and_json_examples_are_the_same_tree():
    import json
    import re
    from pathlib import Path

    docs = (Path(__file__).parents[2] / "docs" / "audiences.md").read_text(encoding="utf-8")
    section = docs[docs.index("## Definitions") :]
    text = re.search(r"```sql\n(.*?)```", section, re.S).group(1)
    data = json.loads(re.search(r"```json\n(.*?)```", section, re.S).group(1))
    assert from_text(text) == from_json(data)
