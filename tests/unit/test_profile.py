"""huaxiang.profile: one user's tags by category, bilingual names, value labels and imputed flags."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from huaxiang.engine.snapshot import snapshot_path, write_snapshot
from huaxiang.errors import NotFoundError
from huaxiang.profile import IMPUTED_BY, profile
from huaxiang.workspace import Workspace

AS_OF = dt.date(2026, 11, 1)

DEFINITIONS: dict[str, dict[str, Any]] = {
    "lifecycle_stage": {"type": "enum", "category": "operable", "name_zh": "生命周期阶段",
                        "name_en": "Lifecycle stage",
                        "values": [{"value": "new", "name_zh": "新客", "name_en": "new"},
                                   {"value": "active", "name_zh": "老客"}]},
    "age": {"type": "integer", "category": "basic", "name_zh": "年龄", "name_en": "Age"},
    "age_imputed": {"type": "boolean", "category": "basic", "name_zh": "年龄为推断",
                    "name_en": "Age imputed"},
    "age_band": {"type": "enum", "category": "basic", "name_zh": "年龄段", "name_en": "Age band"},
    "city_tier": {"type": "integer", "category": "extended", "name_zh": "城市等级", "name_en": "City tier"},
    "city_tier_imputed": {"type": "boolean", "category": "extended", "name_zh": "城市等级为推断",
                          "name_en": "City tier imputed"},
    "monetary_365d": {"type": "number", "category": "operable", "name_zh": "近一年消费金额",
                      "name_en": "Spend, last 365 days"},
}

TAGS = pa.table(
    {
        "user_id": ["U00000001", "U00000002", "U00000010"],
        "lifecycle_stage": ["new", "active", None],
        "age": [30, 41, None],
        "age_imputed": [True, False, None],
        "age_band": ["25-35", "36-45", None],
        "city_tier": [2, 1, None],
        "city_tier_imputed": [False, True, None],
        "monetary_365d": pa.array([Decimal("120.50"), Decimal("0.00"), None], pa.decimal128(18, 2)),
    }
)


def write(root: Path, definitions: dict[str, Any] | None = DEFINITIONS) -> Path:
    manifest: dict[str, Any] = {"as_of": AS_OF.isoformat(), "catalog_hash": "x" * 64}
    if definitions is not None:
        manifest["definitions"] = definitions
    write_snapshot(snapshot_path(root, AS_OF), TAGS, manifest)
    return root


def test_profile_groups_tags_by_category_with_names_and_labels(tmp_path: Path) -> None:
    result = profile(write(tmp_path), "U00000001")
    assert (result.user_id, result.as_of) == ("U00000001", AS_OF)
    assert [(g.category, g.label_zh) for g in result.groups] == [
        ("basic", "基础属性"), ("extended", "拓展属性"), ("operable", "可运营维度")
    ]
    assert [e.tag for e in result.groups[0].entries] == ["age", "age_imputed", "age_band"]
    stage = result.entry("lifecycle_stage")
    assert (stage.name_zh, stage.name_en, stage.type, stage.value, stage.value_zh) == (
        "生命周期阶段", "Lifecycle stage", "enum", "new", "新客")
    assert result.entry("monetary_365d").value == Decimal("120.50")


def test_imputed_flags_follow_the_convention_and_the_mapping(tmp_path: Path) -> None:
    write(tmp_path)
    first = profile(tmp_path, "U00000001")
    # age_imputed is true: age is imputed, and age_band too (IMPUTED_BY); city_tier_imputed is false.
    assert IMPUTED_BY["age_band"] == "age_imputed"
    assert {e.tag for g in first.groups for e in g.entries if e.imputed} == {"age", "age_band"}
    second = profile(tmp_path, "U00000002")
    assert {e.tag for g in second.groups for e in g.entries if e.imputed} == {"city_tier"}
    empty = profile(tmp_path, "U00000010")  # a null flag is not an imputation
    assert not any(e.imputed for g in empty.groups for e in g.entries)
    assert empty.entry("lifecycle_stage").value is None and empty.entry("lifecycle_stage").value_zh is None


def test_to_dict_is_plain_json(tmp_path: Path) -> None:
    data = profile(write(tmp_path), "U00000001").to_dict()
    assert json.loads(json.dumps(data, ensure_ascii=False)) == data
    operable = data["groups"][2]
    assert operable["category"] == "operable"
    assert operable["entries"][1] == {
        "tag": "monetary_365d", "name_zh": "近一年消费金额", "name_en": "Spend, last 365 days",
        "type": "number", "value": 120.5, "value_zh": None, "imputed": False,
    }


def test_unknown_users_get_a_hint(tmp_path: Path) -> None:
    write(tmp_path)
    cases = {
        "u00000001": "no user 'u00000001' in the snapshot of 2026-11-01 (3 users). "
        "Did you mean 'U00000001'? (user ids are case-sensitive)",
        "U0000010": "no user 'U0000010' in the snapshot of 2026-11-01 (3 users). "
        "Did you mean 'U00000010'? User ids look like U00000001 … U00000010.",
        "42": "no user '42' in the snapshot of 2026-11-01 (3 users). "
        "User ids look like U00000001 … U00000010.",
        # The number without its padding or prefix finds the id.
        "10": "no user '10' in the snapshot of 2026-11-01 (3 users). "
        "Did you mean 'U00000010'? User ids look like U00000001 … U00000010.",
        "u2": "no user 'u2' in the snapshot of 2026-11-01 (3 users). "
        "Did you mean 'U00000002'? User ids look like U00000001 … U00000010.",
    }
    for user_id, message in cases.items():
        with pytest.raises(NotFoundError) as error:
            profile(tmp_path, user_id)
        assert str(error.value) == message
        assert error.value.http_status == 404


def test_no_snapshot_and_unknown_date(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError) as none:
        profile(tmp_path, "U00000001")
    assert str(none.value) == (
        f"no snapshots in {tmp_path / 'snapshots'} yet; build one first with "
        f"'huaxiang build -w {tmp_path} --as-of YYYY-MM-DD'."
    )
    write(tmp_path)
    with pytest.raises(NotFoundError, match=r"^no snapshot for 2026-10-01 in .*Snapshots: 2026-11-01\. "):
        profile(tmp_path, "U00000001", as_of=dt.date(2026, 10, 1))


def test_an_old_manifest_is_labelled_by_the_current_catalog(tmp_path: Path) -> None:
    write(tmp_path, definitions=None)
    (tmp_path / "tags").mkdir()
    (tmp_path / "tags" / "t.yaml").write_text(
        "- id: age\n  name_zh: 年龄\n  name_en: Age\n  category: basic\n  type: integer\n"
        "  declared: {column: age}\n",
        encoding="utf-8",
    )
    result = Workspace(tmp_path).profile("U00000001")
    age = result.entry("age")
    assert (age.name_zh, age.name_en, age.type, age.imputed) == ("年龄", "Age", "integer", True)
    # Tags the catalog no longer has keep their id as name, under custom.
    stage = result.entry("lifecycle_stage")
    assert (stage.name_zh, stage.type) == ("lifecycle_stage", "enum")
    assert [g.category for g in result.groups] == ["basic", "custom"]
