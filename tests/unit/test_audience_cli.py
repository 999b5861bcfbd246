"""``huaxiang audience``: the Typer sub-app, run through CliRunner on a synthetic snapshot."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.csv as pacsv
import pytest
from typer.testing import CliRunner

from huaxiang.audience import AudienceEngine
from huaxiang.audience.cli import audience_app
from huaxiang.audience.synthetic import synthetic_snapshot

runner = CliRunner()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    synthetic_snapshot(root, 3_000, seed=9)
    return root


@pytest.fixture(scope="module")
def engine(workspace: Path) -> AudienceEngine:
    found = AudienceEngine(workspace)
    yield found
    found.close()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(audience_app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.output


def test_estimate(workspace: Path, engine: AudienceEngine) -> None:
    text = "segment = 'vip' OR (city_tier IN (3, 4) AND NOT is_member)"
    size = len(engine.members(text))
    code, output = run("estimate", text, "-w", str(workspace), "--json")
    assert code == 0, output
    data = json.loads(output)
    assert (data["as_of"], data["size"], data["users"]) == ("2026-10-31", size, 3_000)
    assert data["definition"] == "segment = 'vip' OR (city_tier IN (3, 4) AND NOT is_member = TRUE)"
    code, output = run("estimate", text, "-w", str(workspace), "--sample", "2")
    assert code == 0, output
    assert f"人数 size: {size:,} / 3,000 用户 users ({size / 3000:.2%})" in output
    assert "样本 sample" in output


def test_errors_are_printed_plainly_with_exit_2(workspace: Path) -> None:
    code, output = run("estimate", "segment = 'vpi'", "-w", str(workspace))
    assert code == 2
    assert (
        "错误 error: audience definition at $ (segment = 'vpi'): tag 'segment' (enum, 客群) never takes the "
        "value 'vpi'. Did you mean 'vip'?"
    ) in output
    assert "Traceback" not in output
    code, output = run("top", "segment = 'dormant'", "--by", "age", "-w", str(workspace))
    assert code == 2 and "the audience is empty (0 of 3,000 users match)" in output
    code, output = run("estimate", "is_member", "-w", str(workspace), "--as-of", "2026-02-30")
    assert code == 2 and "'2026-02-30' is not a date" in output
    code, output = run("estimate", "is_member", "-w", str(workspace), "--as-of", "2026-01-01")
    assert code == 2 and "no snapshot for 2026-01-01" in output


def test_venn(workspace: Path, engine: AudienceEngine) -> None:
    a, b = engine.members("is_member"), engine.members("viewed_dyson_30d")
    code, output = run(
        "venn", "is_member", "viewed_dyson_30d", "-w", str(workspace), "--names", "m,d", "--json"
    )
    assert code == 0, output
    data = json.loads(output)
    assert data["sizes"] == {"m": len(a), "d": len(b)}
    assert data["regions"] == [
        {"in": ["m", "d"], "size": len(a & b)},
        {"in": ["m"], "size": len(a - b)},
        {"in": ["d"], "size": len(b - a)},
    ]
    code, output = run("venn", "is_member", "viewed_dyson_30d", "-w", str(workspace))
    assert code == 0 and "韦恩图 Venn" in output and f"{len(a | b):,}" in output


def test_top_with_export(workspace: Path, engine: AudienceEngine) -> None:
    code, output = run("top", "is_member", "--by", "outing_score", "-n", "50", "-w", str(workspace), "--json")
    assert code == 0, output
    rows = json.loads(output)["rows"]
    expected = engine.top("is_member", "outing_score", 50)
    assert [r["user_id"] for r in rows] == expected.column("user_id").to_pylist()
    code, output = run(
        "top", "is_member", "--by", "outing_score", "-n", "50", "-w", str(workspace), "--export", "push.csv"
    )
    assert code == 0, output
    written = pacsv.read_csv(workspace / "exports" / "push.csv").column("user_id").to_pylist()
    assert written == expected.column("user_id").to_pylist()
    assert engine.store.exports()[-1].audience == "top 50 by outing_score descending of: is_member"


def test_split(workspace: Path, engine: AudienceEngine) -> None:
    code, output = run(
        "split",
        "is_member",
        "--salt",
        "exp-1",
        "--ratios",
        "3,1",
        "--names",
        "t,c",
        "-w",
        str(workspace),
        "--json",
    )
    assert code == 0, output
    sizes = engine.split("is_member", [3, 1], "exp-1", names=["t", "c"]).sizes()
    assert json.loads(output)["groups"] == [
        {"name": "t", "ratio": 0.75, "size": sizes["t"]},
        {"name": "c", "ratio": 0.25, "size": sizes["c"]},
    ]
    code, output = run("split", "is_member", "--salt", "exp-1", "--ratios", "a,b", "-w", str(workspace))
    assert code == 2 and "write numbers separated by commas" in output


def test_save_list_export(workspace: Path, engine: AudienceEngine) -> None:
    code, output = run("save", "towns", "city_tier >= 3", "-w", str(workspace), "--by", "ana")
    assert code == 0, output
    size = len(engine.members("city_tier >= 3"))
    assert f"已保存 saved: towns (动态 dynamic), {size:,} 人 users @ 2026-10-31" in output
    code, output = run("save", "towns_frozen", "@towns", "--static", "-w", str(workspace))
    assert code == 0 and "静态 static" in output
    code, output = run("list", "-w", str(workspace), "--json")
    listed = {a["name"]: a for a in json.loads(output)}
    assert listed["towns"]["sizes"] == [{"as_of": "2026-10-31", "size": size}]
    assert listed["towns_frozen"]["definition"] == "in_audience('towns')"
    code, output = run("list", "-w", str(workspace))
    assert code == 0 and "已保存人群 saved audiences" in output and "towns_frozen" in output
    code, output = run(
        "export", "@towns", "--file", "towns.parquet", "--hash-salt", "s3cret-salt", "-w", str(workspace)
    )
    assert code == 0, output
    assert f"{size:,} 行 rows, 加盐哈希 salted SHA-256" in output
    code, output = run("export", "@towns", "--file", "../towns.csv", "-w", str(workspace))
    assert code == 2 and "must be a bare file name" in output


def test_split_export_and_the_export_log(workspace: Path, engine: AudienceEngine) -> None:
    code, output = run(
        "split", "is_member", "--salt", "exp-2", "--export", "exp2.csv", "-w", str(workspace), "--json"
    )
    assert code == 0, output
    assert json.loads(output)["file"] == str(workspace / "exports" / "exp2.csv")
    written = pacsv.read_csv(workspace / "exports" / "exp2.csv")
    expected = engine.split("is_member", [0.5, 0.5], "exp-2").assignment
    assert written.column_names == ["user_id", "group"]
    assert written.column("user_id").to_pylist() == expected.column("user_id").to_pylist()
    assert written.column("group").to_pylist() == expected.column("group").to_pylist()
    code, output = run(
        "split",
        "is_member",
        "--salt",
        "exp-2",
        "--export",
        "exp2.parquet",
        "--hash-salt",
        "partner-salt",
        "-w",
        str(workspace),
    )
    assert code == 0 and "已导出 exported" in output
    code, output = run("list", "--exports", "-w", str(workspace), "--json")
    log = json.loads(output)
    assert [(Path(r["file"]).name, r["id_mode"], r["rows"]) for r in log[-2:]] == [
        ("exp2.csv", "plain", expected.num_rows),
        ("exp2.parquet", "sha256", expected.num_rows),
    ]
    assert log[-1]["audience"] == "split 0.5,0.5 salt=exp-2 of: is_member"
    code, output = run("list", "--exports", "-w", str(workspace))
    assert code == 0 and "导出记录 export log" in output and "exp2.parquet" in output
