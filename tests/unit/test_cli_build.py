"""`huaxiang build`: a dated snapshot from the CLI, a thin layer over Workspace.build."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from huaxiang import Workspace, cli
from huaxiang.cli import app

VALID = Path(__file__).parents[1] / "fixtures" / "catalogs" / "valid" / "tags"
runner = CliRunner()


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.out, "_width", 300)
    monkeypatch.setattr(cli.err, "_width", 300)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shop")
    workspace = Workspace.create_sample(root, users=300, seed=3)
    workspace.ingest()
    # Replace the standard catalog by the small fixture catalog whose values are known.
    shutil.rmtree(root / "tags")
    shutil.copytree(VALID, root / "tags")
    return root


def test_build_writes_the_snapshot_and_reports_it(shop: Path) -> None:
    result = runner.invoke(app, ["build", "-w", str(shop), "--as-of", "2026-11-01"])

    assert result.exit_code == 0, result.output
    assert f"Built 8 tags for 300 users as of 2026-11-01 into {shop / 'snapshots' / '2026-11-01'}." in (
        result.stdout
    )
    # The sample shop knows no declared age (users.age is null throughout): the column counts
    # as missing, and the tag reading it is skipped with the reason.
    assert "missing input: column users.age" in result.stdout
    assert "depends on skipped tag age" in result.stdout
    snapshot = shop / "snapshots" / "2026-11-01"
    tags = pq.read_table(snapshot / "tags.parquet")
    assert tags.num_rows == 300
    assert "purchasing_power_band" in tags.column_names
    manifest = json.loads((snapshot / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["as_of"] == "2026-11-01"


def test_build_refuses_a_date_that_is_not_one(shop: Path) -> None:
    result = runner.invoke(app, ["build", "-w", str(shop), "--as-of", "2026-13-01"])

    assert result.exit_code == 2
    words = " ".join(result.output.replace("│", " ").split())  # Typer's error box wraps the line
    assert "Invalid value for '--as-of': '2026-13-01' is not a date; write it as YYYY-MM-DD" in words


def test_demo_runs_sample_ingest_build_and_summary(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", str(tmp_path / "demo"), "--users", "300", "--seed", "3"])

    assert result.exit_code == 0, result.output
    out = result.stdout
    for step in ("1. sample shop", "2. ingest", "3. what is there", "4. tags as of 2026-11-01"):
        assert step in out
    # 82 + the value groups (2) + the CLV tags (3), which need the optional extra huaxiang[clv].
    built = 87 if importlib.util.find_spec("pymc_marketing") is not None else 84
    assert f"Built {built} tags for 300 users" in out
    assert "生命周期 lifecycle stage" in out and "RFM 分层 RFM class" in out
    assert "十大靶群 ten target groups" in out and "AIPL 链路 AIPL stage" in out
    assert "│ users 用户             │ 300" in out
    snapshot = tmp_path / "demo" / "snapshots" / "2026-11-01" / "tags.parquet"
    stages = set(pq.read_table(snapshot).column("lifecycle_stage").to_pylist())
    assert stages <= {"potential", "high_potential", "new", "active", "silent", "churned"}
