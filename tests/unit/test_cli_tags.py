"""`huaxiang tags list|show`: the catalog as the operator sees it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from huaxiang import cli
from huaxiang.cli import app

VALID = Path(__file__).parents[1] / "fixtures" / "catalogs" / "valid" / "tags"
BROKEN = Path(__file__).parents[1] / "fixtures" / "broken_catalogs"
runner = CliRunner()


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.out, "_width", 300)
    monkeypatch.setattr(cli.err, "_width", 300)


def workspace_with(tmp_path: Path, tags: Path) -> Path:
    shutil.copytree(tags, tmp_path / "tags")
    (tmp_path / "huaxiang.yaml").write_text("name: t\n", encoding="utf-8")
    return tmp_path


def test_list_shows_every_tag_in_build_order(tmp_path: Path) -> None:
    root = workspace_with(tmp_path, VALID)

    result = runner.invoke(app, ["tags", "list", "-w", str(root)])

    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.startswith("│ ")]
    ids = [line.split("│")[1].strip() for line in lines]
    assert len(ids) == 10
    # A bins tag is listed after the rule it bins, which comes after its metrics.
    assert ids.index("monetary_365d") < ids.index("average_order_value") < ids.index(
        "purchasing_power_band"
    )
    band = next(line for line in lines if "purchasing_power_band" in line)
    assert "消费力" in band and "基础属性 basic" in band and "bins" in band
    assert "average_order_value" in band


def test_list_filters_by_category_and_refuses_an_unknown_one(tmp_path: Path) -> None:
    root = workspace_with(tmp_path, VALID)

    operable = runner.invoke(app, ["tags", "list", "-w", str(root), "--category", "operable"])
    unknown = runner.invoke(app, ["tags", "list", "-w", str(root), "--category", "operabel"])

    assert operable.exit_code == 0
    rows = [line for line in operable.stdout.splitlines() if line.startswith("│ ")]
    assert rows and all("operable" in row for row in rows)
    assert unknown.exit_code == 2
    assert "unknown category 'operabel'. Did you mean 'operable'?" in unknown.stderr


def test_show_gives_definition_location_and_dependencies(tmp_path: Path) -> None:
    root = workspace_with(tmp_path, VALID)

    result = runner.invoke(app, ["tags", "show", "average_order_value", "-w", str(root)])

    assert result.exit_code == 0, result.output
    assert "average_order_value  客单价 / Average order value" in result.stdout
    assert "defined in tags/groups.yaml:" in result.stdout
    assert "reads tags: frequency_365d, monetary_365d" in result.stdout
    assert "read by: purchasing_power_band" in result.stdout
    assert "expr: monetary_365d / nullif(frequency_365d, 0)" in result.stdout


def test_show_unknown_tag_suggests_the_closest(tmp_path: Path) -> None:
    root = workspace_with(tmp_path, VALID)

    result = runner.invoke(app, ["tags", "show", "purchasing_power", "-w", str(root)])

    assert result.exit_code == 2
    assert result.stderr == (
        "error: no tag 'purchasing_power' in the catalog. Did you mean 'purchasing_power_band'?\n"
    )


def test_a_broken_catalog_is_reported_with_file_and_line(tmp_path: Path) -> None:
    root = workspace_with(tmp_path, BROKEN / "cycle" / "tags")

    result = runner.invoke(app, ["tags", "list", "-w", str(root)])

    assert result.exit_code == 2
    assert result.stderr == (
        "error: dependency cycle: tag_a (tags/tags.yaml:1) -> tag_b (tags/tags.yaml:8) -> tag_a. "
        "Each tag reads the next; break the cycle by changing one of these rules.\n"
    )
