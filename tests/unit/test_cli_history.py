"""`huaxiang diff`, `bins suggest` and `profile` on the sample shop: thin layers over the library.

The catalog is written here (not the standard one, which grows): two metrics, an
imputation chain for age (real-name age, else profile age, flagged), lifecycle,
and a stand-in ``aipl_stage`` rule, so that every command has something to show.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from huaxiang import cli
from huaxiang.bins import suggest_bins
from huaxiang.cli import app
from huaxiang.history import diff
from huaxiang.profile import profile
from huaxiang.workspace import Workspace

runner = CliRunner()
D1, D2 = dt.date(2026, 10, 1), dt.date(2026, 11, 1)

CATALOG = """
- id: monetary_365d
  name_zh: 近一年消费金额
  name_en: Spend, last 365 days
  category: operable
  type: number
  metric: {from: orders, where: "NOT is_after_sale", window: 365d, agg: sum(amount)}
- id: frequency_365d
  name_zh: 近一年有效订单数
  name_en: Valid orders, last 365 days
  category: operable
  type: integer
  metric: {from: orders, where: "NOT is_after_sale", window: 365d, agg: count}
- id: real_name_age
  name_zh: 实名年龄
  name_en: Real-name age
  category: basic
  type: integer
  declared: {column: real_name_age}
- id: profile_age
  name_zh: 资料年龄
  name_en: Profile age
  category: basic
  type: integer
  declared: {column: profile_age}
- id: age
  name_zh: 年龄
  name_en: Age
  category: basic
  type: integer
  rule: "CASE WHEN real_name_age IS NOT NULL THEN real_name_age ELSE profile_age END"
- id: age_imputed
  name_zh: 年龄为推断
  name_en: Age imputed
  category: basic
  type: boolean
  rule: "real_name_age IS NULL AND profile_age IS NOT NULL"
- id: age_band
  name_zh: 年龄段
  name_en: Age band
  category: basic
  type: enum
  bins: {of: age, edges: [25, 35, 45]}
- id: lifecycle_stage
  name_zh: 生命周期阶段
  name_en: Lifecycle stage
  category: operable
  type: enum
  values:
    - {value: potential, name_zh: 潜客}
    - {value: high_potential, name_zh: 高潜}
    - {value: new, name_zh: 新客}
    - {value: active, name_zh: 老客}
    - {value: silent, name_zh: 沉默客}
    - {value: churned, name_zh: 流失客}
  model: {name: lifecycle, params: {column: lifecycle_stage}}
- id: aipl_stage
  name_zh: AIPL阶段
  name_en: AIPL stage
  category: operable
  type: enum
  values: [awareness, interest, purchase, loyalty]
  when:
    - loyalty: "frequency_365d >= 5"
    - purchase: "frequency_365d >= 1"
    - interest: "lifecycle_stage = 'high_potential'"
  default: awareness
- id: repeat_buyer
  name_zh: 复购用户
  name_en: Repeat buyer
  category: style
  type: boolean
  rule: "frequency_365d >= 2"
"""


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.out, "_width", 300)
    monkeypatch.setattr(cli.err, "_width", 300)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shop")
    workspace = Workspace.create_sample(root, users=300, seed=3)
    workspace.ingest()
    shutil.rmtree(root / "tags")
    (root / "tags").mkdir()
    (root / "tags" / "history.yaml").write_text(CATALOG, encoding="utf-8")
    for as_of in (D1, D2):
        result = workspace.build(as_of)
        assert result.skipped == {}
    return root


def words(text: str) -> list[str]:
    """Table rows as single-spaced text, box characters removed."""
    return [" ".join(line.replace("│", " ").replace("┃", " ").split()) for line in text.splitlines()]


def test_diff_prints_matrix_drift_and_aipl(shop: Path) -> None:
    args = ["diff", "-w", str(shop), "2026-10-01", "2026-11-01", "--tag", "lifecycle_stage"]
    result = runner.invoke(app, args)

    assert result.exit_code == 0, result.output
    expected = diff(shop, D1, D2, tag="lifecycle_stage")
    rows = words(result.stdout)
    assert rows[0] == (
        f"快照对比 Snapshots 2026-10-01 → 2026-11-01: users {expected.users_before} → {expected.users_after} "
        f"(in both {expected.users_common}, new {expected.users_new}, gone {expected.users_gone})"
    )
    matrix = expected.migration
    assert matrix is not None and "active" in matrix.rows
    for row in matrix.rows:
        cells = " ".join(f"{matrix.count(row, c)} ({matrix.row_share(row, c):.0%})" for c in matrix.columns)
        assert f"{row} {cells} {matrix.row_total(row)}" in rows
    assert f"from \\ to {' '.join(matrix.columns)} total" in rows
    for item in expected.drift:
        line = next(r for r in rows if r.startswith(f"{item.tag} "))
        assert f"{item.psi:.3f} {item.flag}" in line
    assert expected.aipl is not None
    for flow in expected.aipl.flows:
        rate = "-" if flow.rate is None else f"{flow.rate:.1%}"
        assert f"{flow.name} {flow.stage} {' or '.join(flow.to)} {flow.users} {flow.moved} {rate}" in rows
    assert "AIPL 流转率 flow rates 2026-10-01 → 2026-11-01" in result.stdout


def test_diff_json_is_the_library_result(shop: Path) -> None:
    result = runner.invoke(app, ["diff", "-w", str(shop), "2026-10-01", "2026-11-01", "--json"])

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == diff(shop, D1, D2).to_dict()


def test_diff_errors(shop: Path, tmp_path: Path) -> None:
    unknown_date = runner.invoke(app, ["diff", "-w", str(shop), "2026-10-02", "2026-11-01"])
    assert unknown_date.exit_code == 2
    assert unknown_date.stderr == (
        f"error: no snapshot for 2026-10-02 in {shop / 'snapshots'}. Snapshots: 2026-10-01, 2026-11-01. "
        f"Build it with 'huaxiang build -w {shop} --as-of 2026-10-02'.\n"
    )
    numeric = runner.invoke(app, ["diff", "-w", str(shop), "2026-10-01", "2026-11-01", "--tag", "age"])
    assert numeric.exit_code == 2
    assert numeric.stderr == (
        "error: a migration matrix needs an enum or boolean tag; 'age' is integer. Tags that qualify: "
        "lifecycle_stage, age_imputed, aipl_stage, repeat_buyer, age_band. To follow a numeric tag, bin it "
        "first (a bins tag; see 'huaxiang bins suggest').\n"
    )
    typo = runner.invoke(app, ["diff", "-w", str(shop), "2026-10-01", "2026-11-01", "--tag", "lifecycle"])
    assert typo.stderr == (
        "error: no tag 'lifecycle' in the snapshots of 2026-10-01 and 2026-11-01. "
        "Did you mean 'lifecycle_stage'?\n"
    )
    empty = runner.invoke(app, ["diff", "-w", str(tmp_path), "2026-10-01", "2026-11-01"])
    assert empty.stderr == (
        f"error: no snapshots in {tmp_path / 'snapshots'} yet; build one first with "
        f"'huaxiang build -w {tmp_path} --as-of YYYY-MM-DD'.\n"
    )
    bad = runner.invoke(app, ["diff", "-w", str(shop), "2026-10-01", "2026-11-31"])
    assert bad.exit_code == 2
    assert "'2026-11-31' is not a date; write it as YYYY-MM-DD" in " ".join(words(bad.output))


def test_bins_suggest_prints_bins_checks_and_a_snippet_that_builds(shop: Path, tmp_path: Path) -> None:
    args = ["bins", "suggest", "monetary_365d", "-w", str(shop), "--k", "4", "--positive",
            "--trait", "repeat_buyer"]
    result = runner.invoke(app, args)

    assert result.exit_code == 0, result.output
    expected = suggest_bins(shop, "monetary_365d", k=4, positive=True, trait="repeat_buyer")
    assert expected.edges[0] == 0.0 and len(expected.edges) >= 2
    rows = words(result.stdout)
    assert rows[0] == (
        "分档建议 Cut points for monetary_365d — snapshot 2026-11-01: 300 users with a value (0 without); "
        "k=4, method levels, scale log1p, fitted on values above 0"
    )
    for item in expected.bins:
        rate = "-" if item.trait is None else f"{item.trait:.1%}"
        assert f"{item.label} {item.users:,} {item.share:.1%} {rate}" in rows
    for check in expected.checks:
        assert any(r.endswith("是 yes" if check.separates else "否 no") and r.startswith(
            f"{check.edge:,.0f} {check.users_below:,} {check.users_above:,} ") for r in rows)
    assert result.stdout.endswith(expected.snippet)

    # Paste the snippet into a copy of the workspace, build: the new tag's counts are the suggestion's.
    copy = tmp_path / "copy"
    shutil.copytree(shop, copy, symlinks=True)
    with (copy / "tags" / "history.yaml").open("a", encoding="utf-8") as tags:
        tags.write("\n" + expected.snippet)
    built = Workspace(copy).build(D2)
    counts = Counter(pq.read_table(built.path / "tags.parquet").column("monetary_365d_band").to_pylist())
    assert dict(counts) == {b.label: b.users for b in expected.bins if b.users}


def test_bins_suggest_json_and_errors(shop: Path) -> None:
    args = ["bins", "suggest", "frequency_365d", "-w", str(shop), "--as-of", "2026-10-01", "--json"]
    as_json = runner.invoke(app, args)
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout) == suggest_bins(shop, "frequency_365d", as_of=D1).to_dict()
    enum = runner.invoke(app, ["bins", "suggest", "aipl_stage", "-w", str(shop)])
    assert enum.exit_code == 2
    assert enum.stderr == (
        "error: bins need a numeric tag; 'aipl_stage' is enum. Numeric tags in snapshot 2026-11-01: "
        "monetary_365d, frequency_365d, real_name_age, profile_age, age.\n"
    )


def test_profile_shows_groups_and_imputed_values(shop: Path) -> None:
    users = pq.read_table(shop / "snapshots" / "2026-11-01" / "tags.parquet").to_pylist()
    imputed = next(u for u in users if u["age_imputed"])
    result = runner.invoke(app, ["profile", imputed["user_id"], "-w", str(shop)])

    assert result.exit_code == 0, result.output
    rows = words(result.stdout)
    assert rows[0] == f"用户画像 Profile of {imputed['user_id']} — snapshot 2026-11-01"
    assert "基础属性 basic" in rows and "可运营维度 operable" in rows and "风格 style" in rows
    assert f"age 年龄 Age {imputed['age']} (推断 imputed)" in rows
    assert f"age_band 年龄段 Age band {imputed['age_band']} (推断 imputed)" in rows
    assert f"profile_age 资料年龄 Profile age {imputed['profile_age']}" in rows
    assert "age_imputed 年龄为推断 Age imputed 是 true" in rows
    stage = imputed["lifecycle_stage"]
    label = {"potential": "潜客", "high_potential": "高潜", "new": "新客", "active": "老客",
             "silent": "沉默客", "churned": "流失客"}[stage]
    assert f"lifecycle_stage 生命周期阶段 Lifecycle stage {stage} {label}" in rows
    as_json = runner.invoke(app, ["profile", imputed["user_id"], "-w", str(shop), "--as-of", "2026-10-01",
                                  "--json"])
    assert json.loads(as_json.stdout) == profile(shop, imputed["user_id"], as_of=D1).to_dict()


def test_profile_of_an_unknown_user(shop: Path) -> None:
    result = runner.invoke(app, ["profile", "U0000001", "-w", str(shop)])

    assert result.exit_code == 2
    assert result.stderr == (
        "error: no user 'U0000001' in the snapshot of 2026-11-01 (300 users). Did you mean 'U00000001'? "
        "User ids look like U00000001 … U00000300.\n"
    )
