"""The evaluation report of a grouping: hand-made cells, persona files, and the sample shop via the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner
from value_group_shop import value_group_shop

from huaxiang.cli import app
from huaxiang.errors import ConfigError, NotFoundError
from huaxiang.groups import compare_groupings, group_report
from huaxiang.segment.group_report import auto_name, evaluate_grid, load_personas, persona_template

FEATURES = ["gender", "city_tier", "age_band", "purchasing_power"]


def cells() -> pd.DataFrame:
    """Two groups of 100 users: A urban women 26-35 with high power, B town men without orders."""
    rows = [
        # group, gender, tier, age, power, users, value
        ("A", "female", "1", "26-35", "high", 70, 70_000.0),
        ("A", "female", "2", "26-35", "mid", 20, 10_000.0),
        ("A", "male", "1", "36-45", "high", 10, 8_000.0),
        ("B", "male", "4", "46-55", "none", 60, 0.0),
        ("B", "male", "5", "56+", "none", 30, 0.0),
        ("B", "female", "3", "unknown", "low", 10, 500.0),
    ]
    return pd.DataFrame(rows, columns=["group", *FEATURES, "users", "value"])


def test_report_gives_sizes_arpu_lift_and_names() -> None:
    report = evaluate_grid(cells(), FEATURES)
    a, b = report.groups
    assert (a.group, a.users, a.share, a.value_per_user) == ("A", 100, 0.5, 880.0)
    assert (b.group, b.users, b.value_per_user) == ("B", 100, 5.0)
    assert report.monotone and report.violations == []
    # A: 90 % aged 26-35 against 45 % in the population -> lift 2; the four largest lifts are listed.
    young = next(lift for lift in a.distinguishing if (lift.feature, lift.value) == ("age_band", "26-35"))
    assert (young.share_in_group, young.share_in_population, young.lift) == (0.9, 0.45, 2.0)
    assert len(a.distinguishing) == 4 and all(lift.lift >= 2.0 for lift in a.distinguishing)
    assert a.auto_name == "都市·女·26-35·高购买力"
    assert b.auto_name == "小镇·男·46-55·未购买"
    assert all(lift.value != "unknown" for lift in b.distinguishing)


def test_report_shows_where_arpu_is_not_monotone() -> None:
    report = evaluate_grid(cells(), FEATURES, order=["B", "A"])
    assert not report.monotone and report.violations == [("B", "A")]
    text = report.monotonicity_text()
    assert text.startswith("ARPU 非单调 not monotone") and "B < A" in text
    assert json.loads(json.dumps(report.to_dict(), ensure_ascii=False))["violations"] == [["B", "A"]]


def test_auto_name_uses_only_clear_parts() -> None:
    assert auto_name({"gender": {"male": 0.55, "female": 0.45}, "city_tier": {"1": 0.5, "4": 0.5}}) == "大众"
    assert auto_name({"purchase_band": {"0": 0.9, "1-2": 0.1}}) == "未购买"
    assert auto_name({"purchase_band": {"0": 0.1, "1-2": 0.2, "13+": 0.7}}) == "高频购买"


def test_persona_file_names_groups_and_errors_name_file_line_and_group(tmp_path: Path) -> None:
    good = tmp_path / "personas.yaml"
    good.write_text(
        "groups:\n  A: {name_zh: 都市精英成功男, name_en: urban elite men}\n  B: 小镇悠闲勤俭男\n",
        encoding="utf-8",
    )
    report = evaluate_grid(cells(), FEATURES, personas=load_personas(good))
    assert [(g.persona_zh, g.persona_en) for g in report.groups] == [
        ("都市精英成功男", "urban elite men"), ("小镇悠闲勤俭男", None),
    ]
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("groups:\n  L0: 都市精英成功男\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"unknown.yaml: groups.L0: no such group in this grouping"):
        evaluate_grid(cells(), FEATURES, personas=load_personas(unknown))
    typo = tmp_path / "typo.yaml"
    typo.write_text("groups:\n  A: {name_zh: 都市精英成功男, name_eng: x}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"typo.yaml:2: groups.A.name_eng"):
        load_personas(typo)
    empty = tmp_path / "empty.yaml"
    empty.write_text("groups:\n  A: ''\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"empty.yaml:2: groups.A.name_zh"):
        load_personas(empty)


def test_persona_template_round_trips(tmp_path: Path) -> None:
    report = evaluate_grid(cells(), FEATURES)
    path = tmp_path / "personas.yaml"
    path.write_text(persona_template(report), encoding="utf-8")
    names = load_personas(path)
    assert {key: value.name_zh for key, value in names.groups.items()} == {
        "A": "都市·女·26-35·高购买力", "B": "小镇·男·46-55·未购买",
    }


# ---------------------------------------------------------------------------- the sample shop


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return value_group_shop(tmp_path_factory)


def test_workspace_report_matches_the_build_and_explains_every_group(shop: Any) -> None:
    workspace, result = shop
    report = group_report(workspace.path)
    built = result.manifest["models"]["value_groups.groups"]
    assert [(g.group, g.users, g.auto_name) for g in report.groups] == [
        (g["group"], g["users"], g["auto_name"]) for g in built
    ]
    assert [round(g.value_per_user, 6) for g in report.groups] == [g["value_per_user"] for g in built]
    assert report.monotone and report.missing_features == {} and report.ungrouped_users == 0
    assert all(g.distinguishing for g in report.groups)


def test_any_enum_tag_can_be_reported_and_unknown_tags_are_named(shop: Any) -> None:
    workspace, _ = shop
    report = group_report(workspace.path, tag="value_group_15_name")
    assert sum(g.users for g in report.groups) == 3_000
    with pytest.raises(NotFoundError, match="has no tag 'value_group_16'. Did you mean 'value_group_15'?"):
        group_report(workspace.path, tag="value_group_16")


def test_compare_reports_both_methods_and_the_agreement(shop: Any, record_property: Any) -> None:
    workspace, result = shop
    comparison = compare_groupings(workspace.path)
    # The refit reproduces the snapshot's connected groups exactly.
    tags = pq.read_table(result.path / "tags.parquet", columns=["value_group_15"]).to_pandas()
    sizes = tags.value_group_15.value_counts().to_dict()
    assert {g.group: g.users for g in comparison.connected.groups} == sizes
    assert comparison.kmeans.monotone and len(comparison.kmeans.groups) == 15
    assert 0 < comparison.ari_between < 1
    assert set(comparison.ari_truth) == {"connected", "kmeans"}
    record_property("ari_connected_vs_kmeans", comparison.ari_between)
    record_property("ari_vs_planted_persona", comparison.ari_truth)


def test_cli_report_and_compare(shop: Any, tmp_path: Path) -> None:
    workspace, _ = shop
    runner = CliRunner()
    shown = runner.invoke(app, ["groups", "report", "-w", str(workspace.path)])
    assert shown.exit_code == 0, shown.output
    assert "L14" in shown.output and "ARPU 单调递减 monotone" in shown.output
    personas = tmp_path / "personas.yaml"
    root = str(workspace.path)
    written = runner.invoke(app, ["groups", "report", "-w", root, "--write-personas", str(personas)])
    assert written.exit_code == 0 and personas.is_file()
    text = personas.read_text(encoding="utf-8")
    text = text.replace("  L0: {name_zh: ", "  L0: {name_zh: 都市精英成功男, x: ", 1)
    personas.write_text(text, encoding="utf-8")
    broken = runner.invoke(app, ["groups", "report", "-w", str(workspace.path), "--personas", str(personas)])
    assert broken.exit_code == 2 and "personas.yaml" in broken.output and "groups.L0" in broken.output
    as_json = runner.invoke(app, ["groups", "compare", "-w", str(workspace.path), "--json"])
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.output)
    assert set(data) == {"connected", "kmeans", "ari_between", "ari_truth"}
    missing = runner.invoke(app, ["groups", "report", "-w", str(tmp_path)])
    assert missing.exit_code == 2 and "no snapshots" in missing.output
