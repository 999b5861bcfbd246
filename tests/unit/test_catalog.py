"""The tag catalog: tag definitions, loading tags/*.yaml, references and build order."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from huaxiang.catalog import CATEGORY_LABELS_ZH, Catalog, Category, TagDef, load_catalog
from huaxiang.catalog.makers import BinsSpec, RuleSpec, parse_window
from huaxiang.errors import CatalogError, ConfigError

FIXTURES = Path(__file__).parent.parent / "fixtures"
VALID = FIXTURES / "catalogs" / "valid" / "tags"
BROKEN = FIXTURES / "broken_catalogs"

HEAD = "  name_zh: 测试\n  name_en: Test\n  category: custom\n"


def write_tags(tmp_path: Path, text: str, name: str = "t.yaml") -> Path:
    tags = tmp_path / "tags"
    tags.mkdir(exist_ok=True)
    (tags / name).write_text(text, encoding="utf-8")
    return tags


def load_error(tags: Path) -> str:
    with pytest.raises(CatalogError) as caught:
        load_catalog(tags)
    return str(caught.value)


# ---------------------------------------------------------------------------- a valid catalog


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(VALID)


def test_valid_catalog_loads_in_build_order(catalog: Catalog) -> None:
    assert catalog.order == [
        "fav_bluemoon_detergent_30d",
        "monetary_365d",
        "frequency_365d",
        "age",
        "city_tier",
        "spend_band",
        "average_order_value",
        "urban_spender",
        "finance_group",
        "purchasing_power_band",
    ]
    position = {tag_id: index for index, tag_id in enumerate(catalog.order)}
    for tag_id, deps in catalog.dependencies.items():
        assert all(position[dep] < position[tag_id] for dep in deps)
    assert [tag.id for tag in catalog] == catalog.order
    assert len(catalog) == 10


def test_dependencies_and_dependents(catalog: Catalog) -> None:
    assert catalog.dependencies["urban_spender"] == {"city_tier", "monetary_365d", "frequency_365d"}
    assert catalog.dependencies["purchasing_power_band"] == {"average_order_value"}
    assert catalog.dependencies["monetary_365d"] == frozenset()  # where reads columns, not tags
    assert catalog.dependents("frequency_365d") == ["average_order_value", "urban_spender"]
    assert catalog.dependents("frequency_365d", transitive=True) == [
        "average_order_value",
        "urban_spender",
        "purchasing_power_band",
    ]
    with pytest.raises(
        CatalogError, match=r"no tag 'monetary_356d' in the catalog. Did you mean 'monetary_365d'\?"
    ):
        catalog.dependents("monetary_356d")


def test_makers_are_parsed(catalog: Catalog) -> None:
    metric = catalog["monetary_365d"].metric
    assert metric is not None
    assert (metric.from_, metric.window, metric.days, str(metric.agg)) == (
        "orders",
        "365d",
        365,
        "sum(amount)",
    )
    assert catalog["frequency_365d"].metric is not None
    assert str(catalog["frequency_365d"].metric.agg) == "count()"

    action = catalog["fav_bluemoon_detergent_30d"].action
    assert action is not None
    assert (action.events, action.brand, action.category, action.days) == (
        ["favorite"],
        ["蓝月亮"],
        ["洗衣液"],
        30,
    )

    bins = catalog["spend_band"].bins
    assert bins is not None and bins.bin_labels() == ["无消费", "低", "中", "高"]
    band = catalog["purchasing_power_band"].bins
    assert band is not None and band.band_label(35.0) == "35-40"

    rules = catalog.rules["urban_spender"]
    assert [rule.kind for rule in rules.cases] == ["boolean", "boolean"]
    assert rules.cases[1].origin == "tags/groups.yaml:36 (tag urban_spender, case 都市蓝领)"
    assert catalog.rules["monetary_365d"].where is not None
    assert catalog.rules["average_order_value"].expr is not None
    assert catalog["finance_group"].type == "hierarchical_enum"
    assert catalog.locations["finance_group"].line == 39
    assert str(catalog.locations["monetary_365d"]) == "tags/metrics.yaml:2"


def test_by_category_follows_spec_order(catalog: Catalog) -> None:
    groups = catalog.by_category()
    assert list(groups) == [Category.basic, Category.extended, Category.operable, Category.action]
    assert [tag.id for tag in groups[Category.extended]] == ["city_tier", "finance_group"]


def test_hash_is_stable_across_runs(catalog: Catalog, tmp_path: Path) -> None:
    assert len(catalog.hash) == 64
    script = "from pathlib import Path; from huaxiang.catalog import load_catalog; "
    script += f"print(load_catalog(Path({str(VALID)!r})).hash)"
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == catalog.hash

    # Comments, key order, flow style and file names do not matter; a definition does.
    copy = tmp_path / "tags"
    copy.mkdir()
    for path in VALID.glob("*.yaml"):
        (copy / f"z_{path.name}").write_text(path.read_text(encoding="utf-8") + "\n# a comment\n", "utf-8")
    assert load_catalog(copy).hash == catalog.hash
    metrics = copy / "z_metrics.yaml"
    metrics.write_text(
        metrics.read_text(encoding="utf-8").replace("window: 365d", "window: 180d", 1), "utf-8"
    )
    assert load_catalog(copy).hash != catalog.hash


def test_compact_and_full_cases_are_the_same_definition() -> None:
    compact = RuleSpec.model_validate({"when": [{"学生一族": "age <= 25"}], "default": "未识别"})
    full = RuleSpec.model_validate({"when": [{"value": "学生一族", "if": "age <= 25"}], "default": "未识别"})
    assert compact == full
    assert RuleSpec.model_validate("age + 1") == RuleSpec(expr="age + 1")


def test_bins_default_labels_and_width_bands() -> None:
    bins = BinsSpec.model_validate({"of": "spend", "edges": [0, 1000, 2500.5]})
    assert bins.bin_labels() == ["<=0", "0-1000", "1000-2500.5", ">2500.5"]
    assert BinsSpec.model_validate({"of": "x", "quantiles": 4}).bin_labels() == ["Q1", "Q2", "Q3", "Q4"]
    width = BinsSpec.model_validate({"of": "aov", "width": 5, "format": "{lo}~{hi}元"})
    assert width.bin_labels() is None and width.band_label(10) == "10~15元"


@pytest.mark.parametrize(("text", "days"), [("30d", 30), ("365d", 365), ("4w", 28), ("all", None)])
def test_windows(text: str, days: int | None) -> None:
    assert parse_window(text) == days


def test_empty_folder_is_an_empty_catalog(tmp_path: Path) -> None:
    tags = write_tags(tmp_path, "# nothing yet\n")
    catalog = load_catalog(tags)
    assert (catalog.order, catalog.tags, catalog.by_category()) == ([], {}, {})


def test_missing_folder(tmp_path: Path) -> None:
    assert load_error(tmp_path / "tags") == f"{tmp_path / 'tags'}: tag folder not found."


# ---------------------------------------------------------------------------- broken catalogs

BROKEN_MESSAGES = {
    "unknown_tag": "tags/tags.yaml:13 (tag big_spender): unknown tag 'monetary_356d' (line 1, column 1). "
    "Did you mean 'monetary_365d'?",
    "cycle": "dependency cycle: tag_a (tags/tags.yaml:1) -> tag_b (tags/tags.yaml:8) -> tag_a. "
    "Each tag reads the next; break the cycle by changing one of these rules.",
    "forbidden_function": "tags/tags.yaml:13 (tag rich): function 'read_csv' is not allowed "
    "(line 1, column 1). "
    "Allowed functions: abs, ceil, coalesce, exp, floor, greatest, least, length, ln, lower, nullif, power, "
    "round, sqrt, upper; statistics: mean, median, quantile, min_of, max_of, share.",
    "sql_injection": "tags/tags.yaml:8 (tag monetary_365d, where over orders): ';' is not allowed "
    "(line 1, column 4). A rule is one expression, not a list of statements: remove the ';' and anything "
    "after it.",
    "wrong_type_arithmetic": 'tags/tags.yaml:13 (tag gender_plus_one): type error in "gender + 1" '
    "(line 1, column 1): '+' needs a number, but gender is a string.",
    "wrong_type_boolean": "tags/tags.yaml:13 (tag is_big_spender): expected a condition (true/false), but "
    '"monetary_365d * 2" gives a number (line 1, column 1). Write a comparison, e.g. monetary_365d >= 1000.',
    "duplicate_id": "tags/b.yaml:3: duplicate tag id 'monetary_365d'; it is already defined at "
    "tags/a.yaml:1. Rename one of them.",
    "misspelt_key": "tags/tags.yaml:8: tag monetary_365d: metric.windw: unknown field 'windw'. "
    "Allowed: from, where, window, agg. Did you mean 'window'?",
    "bad_window": "tags/tags.yaml:8: tag monetary_365d: metric.window: window '365 days' is not understood; "
    "write days as 30d or 365d, weeks as 4w, or all for no time limit.",
    "optional_not_read": "tags/tags.yaml:20 (tag big_spender, optional): 'frequency_365d' is not read by "
    "the rule; optional lists tags the rule reads (monetary_365d).",
    "optional_not_rule": "tags/tags.yaml:6: tag monetary_365d: optional: optional applies to rule tags "
    "(a rule reads NULL for a skipped optional tag); this tag is made by metric.",
    "bins_non_numeric": "tags/tags.yaml:13 (tag gender_band, bins.of): bins need a numeric tag, but 'gender' "
    "has type enum. Bin an integer, number or probability tag.",
}


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def test_every_broken_catalog_has_a_message() -> None:
    assert sorted(p.name for p in BROKEN.iterdir() if p.is_dir()) == sorted(BROKEN_MESSAGES)


@pytest.mark.parametrize("case", sorted(BROKEN_MESSAGES))
def test_broken_catalog_fails_with_exact_message(case: str, tmp_path: Path) -> None:
    workspace = tmp_path / case
    shutil.copytree(BROKEN / case, workspace)
    before = _snapshot(workspace)
    message = load_error(workspace / "tags")
    assert message == BROKEN_MESSAGES[case]
    assert _snapshot(workspace) == before  # nothing is written


def test_catalog_errors_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        load_catalog(BROKEN / "cycle" / "tags")
    assert CatalogError.http_status == 400


# ---------------------------------------------------------------------------- more problems, inline

AGE = "- id: age\n" + HEAD + "  type: integer\n  declared: {column: age}\n"
PROBABILITY = "- id: child\n" + HEAD + "  type: probability\n  declared: {column: child_probability}\n"

INLINE = {
    "case value not in values": (
        AGE + "- id: group\n" + HEAD + "  type: enum\n  values: [学生一族, 银发一族]\n"
        "  rule:\n    when:\n      - 学生一族: 'age <= 25'\n      - 银法一族: 'age >= 56'\n",
        "tags/t.yaml:16: tag group: rule.when[1]: case value '银法一族' is not one of values: "
        "学生一族, 银发一族. "
        "Did you mean '银发一族'?",
    ),
    "number for an enum": (
        "- id: x\n" + HEAD + "  type: enum\n  rule:\n    when:\n      - 1: 'TRUE'\n",
        "tags/t.yaml:8: tag x: rule.when[0]: case value 1 does not fit type enum, which takes text "
        "(put it in quotes).",
    ),
    "bad hierarchical value": (
        "- id: x\n" + HEAD + "  type: hierarchical_enum\n  rule:\n    when:\n      - 千禧一代/: 'TRUE'\n",
        "tags/t.yaml:8: tag x: rule.when[0]: hierarchical value '千禧一代/' must be non-empty parts "
        "separated by '/', e.g. 千禧一代/精英青年.",
    ),
    "action makes a boolean": (
        "- id: x\n" + HEAD + "  type: number\n  action: {events: [view]}\n",
        "tags/t.yaml:5: tag x: type: a tag made by action has type boolean, not number.",
    ),
    "two makers": (
        "- id: x\n" + HEAD + "  type: number\n  declared: {column: age}\n  rule: 'age + 1'\n",
        "tags/t.yaml:1: tag x: (top level): give exactly one way to make the value (metric, rule, bins, "
        "action, scene, declared, model); got rule and declared.",
    ),
    "unknown aggregate": (
        "- id: x\n" + HEAD + "  type: number\n  metric: {from: orders, agg: summ(amount)}\n",
        "tags/t.yaml:6: tag x: metric.agg: unknown aggregate 'summ' in 'summ(amount)'; allowed: count, "
        "count_distinct, sum, avg, min, max, days_since_max, days_since_min. Did you mean 'sum'?",
    ),
    "sum of text": (
        "- id: x\n" + HEAD + "  type: number\n  metric: {from: orders, agg: sum(channel)}\n",
        "tags/t.yaml:6: tag x: metric.agg: sum(channel) needs a numeric column, but orders.channel is string "
        "(got 'sum(channel)').",
    ),
    "where over an unknown column": (
        "- id: x\n" + HEAD + "  type: integer\n  metric: {from: orders, where: is_aftersale, agg: count}\n",
        "tags/t.yaml:6 (tag x, where over orders): unknown tag 'is_aftersale' (line 1, column 1). "
        "Did you mean 'is_after_sale'?",
    ),
    "self reference": (
        "- id: x\n" + HEAD + "  type: number\n  rule: 'x + 1'\n",
        "tags/t.yaml:1: tag 'x' reads itself. A tag cannot be made from its own value.",
    ),
    "unknown event": (
        "- id: x\n" + HEAD + "  type: boolean\n  action: {events: [favourite]}\n",
        "tags/t.yaml:6: tag x: action.events: unknown event type 'favourite'. Did you mean 'favorite'? "
        "Event types: visit, view, search, click, favorite, cart, cart_remove, purchase, share, ad_click, "
        "task, review.",
    ),
    "label count": (
        PROBABILITY
        + "- id: x\n"
        + HEAD
        + "  type: enum\n  bins: {of: child, edges: [0, 1], labels: [a, b]}\n",
        "tags/t.yaml:12: tag x: bins: 2 labels for 3 bins; 2 edges make 3 bins: (-inf, first edge], ..., "
        "(last edge, +inf).",
    ),
    "declared type": (
        "- id: x\n" + HEAD + "  type: boolean\n  declared: {column: age}\n",
        "tags/t.yaml:6: tag x: declared.column: users.age is int; a tag declared from it has type integer or "
        "number, not boolean.",
    ),
    "bad id": (
        "- id: MonetaryTotal\n" + HEAD + "  type: number\n  declared: {column: age}\n",
        "tags/t.yaml:1: tag MonetaryTotal: id: tag id must be snake_case (a-z, 0-9, _; starting with a "
        "letter), got 'MonetaryTotal'.",
    ),
    "unknown model feature": (
        AGE + "- id: x\n" + HEAD + "  type: enum\n  model: {name: value_groups, features: [age, agee]}\n",
        "tags/t.yaml:12 (tag x, model.features): unknown tag 'agee'. Did you mean 'age'?",
    ),
    "boolean scene without threshold": (
        "- id: x\n" + HEAD + "  type: boolean\n  scene: {name: outing, weights: {view: 1}}\n",
        "tags/t.yaml:6: tag x: scene: a boolean scene tag needs scene.threshold (strength at or above it is "
        "true).",
    ),
    "not a list": (
        "id: x\n",
        "tags/t.yaml:1: a tag file holds a list of tags, each starting with '- id: ...'.",
    ),
    "invalid yaml": (
        "- id: x\n  name_zh: [\n",
        "tags/t.yaml:3: invalid YAML: expected the node content, but found '<stream end>'.",
    ),
}


@pytest.mark.parametrize("case", sorted(INLINE))
def test_inline_problem(case: str, tmp_path: Path) -> None:
    text, expected = INLINE[case]
    assert load_error(write_tags(tmp_path, text)) == expected


def test_all_problems_of_a_stage_are_reported(tmp_path: Path) -> None:
    text = (
        "- id: a\n" + HEAD + "  type: number\n  metric: {from: orders, window: 1 year, agg: sum(amount)}\n"
        "- id: b\n" + HEAD + "  type: boolean\n  action: {events: [view], within: 0d}\n"
    )
    assert load_error(write_tags(tmp_path, text)).splitlines() == [
        "tags/t.yaml:6: tag a: metric.window: window '1 year' is not understood; write days as 30d or 365d, "
        "weeks as 4w, or all for no time limit.",
        "tags/t.yaml:12: tag b: action.within: window '0d' is not understood; write days as 30d or 365d, "
        "weeks as 4w, or all for no time limit.",
    ]


def test_tag_model_directly() -> None:
    tag = TagDef.model_validate(
        {
            "id": "scene_outing",
            "name_zh": "郊游",
            "name_en": "Outing",
            "category": "category_scene",
            "type": "probability",
            "scene": {"name": "outing", "weights": {"search": 1.0, "cart": 3.0}, "half_life_days": 7},
        }
    )
    assert tag.maker == "scene" and tag.refresh == "daily"
    assert tag.definition_hash == TagDef.model_validate(tag.normalised()).definition_hash
    with pytest.raises(ValueError, match="frozen"):
        tag.id = "other"  # type: ignore[misc]


# ---------------------------------------------------------------------------- the docs


def test_examples_in_docs_load_as_one_catalog(tmp_path: Path) -> None:
    text = (Path(__file__).parents[2] / "docs" / "tags.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.DOTALL)
    catalog = load_catalog(write_tags(tmp_path, "\n".join(blocks)))
    makers = {tag.maker for tag in catalog.tags.values()}
    assert makers == {"metric", "rule", "bins", "action", "scene", "declared", "model"}
    assert catalog.order.index("monetary_365d") < catalog.order.index("spend_band")
    assert catalog.dependencies["value_group_15"] == {"age", "city_tier", "average_order_value"}


def test_when_on_the_tag_is_short_for_rule_when() -> None:
    base = {"id": "x", "name_zh": "x", "name_en": "x", "category": "custom", "type": "enum"}
    short = TagDef.model_validate({**base, "when": [{"a": "TRUE"}], "default": "b"})
    long = TagDef.model_validate({**base, "rule": {"when": [{"value": "a", "if": "TRUE"}], "default": "b"}})
    assert short == long and short.definition_hash == long.definition_hash


def test_every_category_has_a_chinese_label() -> None:
    assert set(CATEGORY_LABELS_ZH) == set(Category)


def test_inputs_of_each_maker(catalog: Catalog) -> None:
    assert catalog.inputs("monetary_365d") == (
        "orders.amount",
        "orders.is_after_sale",
        "orders.order_time",
        "orders.user_id",
    )
    assert catalog.inputs("age") == ("users.age",)
    assert catalog.inputs("spend_band") == ()  # reads tags only
    assert "products.brand" in catalog.inputs("fav_bluemoon_detergent_30d")


def test_yml_files_are_not_silently_ignored(tmp_path: Path) -> None:
    tags = write_tags(tmp_path, "- id: x\n", name="rfm.yml")
    assert load_error(tags) == "tags/rfm.yml: tag files end in .yaml; rename it to rfm.yaml."
