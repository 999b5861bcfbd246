"""`huaxiang tags plan`: what a catalog change rebuilds, against the latest snapshot's manifest."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from huaxiang import cli
from huaxiang.catalog import load_catalog
from huaxiang.catalog.plan import plan_catalog
from huaxiang.cli import app
from huaxiang.errors import WorkspaceError
from huaxiang.workspace import Workspace

VALID = Path(__file__).parents[1] / "fixtures" / "catalogs" / "valid" / "tags"
AS_OF = dt.date(2026, 7, 1)
runner = CliRunner()

USERS = pa.table({"user_id": ["u1", "u2"], "city_tier": [1, 3]})
ORDERS = pa.table(
    {
        "order_id": ["o1", "o2"],
        "user_id": ["u1", "u2"],
        "order_time": pa.array([dt.datetime(2026, 6, 1), dt.datetime(2026, 5, 1)], pa.timestamp("us")),
        "amount": pa.array([Decimal("100.00"), Decimal("30.00")], pa.decimal128(18, 2)),
        "is_after_sale": [False, False],
    }
)
# What the valid fixture catalog's tags read (build order).
MONETARY_READERS = ["spend_band", "average_order_value", "urban_spender", "finance_group",
                    "purchasing_power_band"]


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.out, "_width", 300)
    monkeypatch.setattr(cli.err, "_width", 300)


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    pq.write_table(USERS, tmp_path / "data" / "users.parquet")
    pq.write_table(ORDERS, tmp_path / "data" / "orders.parquet")
    shutil.copytree(VALID, tmp_path / "tags")
    (tmp_path / "huaxiang.yaml").write_text("name: t\n", encoding="utf-8")
    return tmp_path


def edit(root: Path, file: str, old: str, new: str) -> None:
    path = root / "tags" / file
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_the_manifest_records_every_definition(shop: Path) -> None:
    result = Workspace(shop).build(AS_OF)
    catalog = load_catalog(shop / "tags")
    definitions = result.manifest["definitions"]
    assert list(definitions) == catalog.order  # skipped tags too
    assert definitions["average_order_value"] == {
        "hash": catalog["average_order_value"].definition_hash,
        "type": "number",
        "category": "basic",
        "name_zh": "客单价",
        "name_en": "Average order value",
        "reads": ["frequency_365d", "monetary_365d"],
        "inputs": [],
    }
    assert definitions["urban_spender"]["values"] == [
        {"value": "都市中产"}, {"value": "都市蓝领"}, {"value": "未识别"}
    ]
    assert definitions["monetary_365d"]["inputs"] == [
        "orders.amount", "orders.is_after_sale", "orders.order_time", "orders.user_id"
    ]
    assert result.manifest["manifest_version"] == 2


def test_no_snapshot_means_every_tag_is_new(shop: Path) -> None:
    plan = Workspace(shop).plan()
    catalog = load_catalog(shop / "tags")
    assert plan.as_of is None and plan.added == catalog.order
    assert (plan.removed, plan.changed, plan.rebuilt, plan.unchanged) == ([], [], {}, [])


def test_unchanged_catalog_plans_nothing_and_predicts_the_builds_skips(shop: Path) -> None:
    built = Workspace(shop).build(AS_OF)
    plan = Workspace(shop).plan()
    assert plan.as_of == AS_OF and not plan.has_changes
    assert plan.unchanged == load_catalog(shop / "tags").order
    # The data has no events and no users.age: the plan names the tags the build skips, as the build did.
    assert plan.skipped == built.skipped == {
        "fav_bluemoon_detergent_30d": "missing inputs: table events, table products",
        "age": "missing input: column users.age",
        "finance_group": "depends on skipped tag age",
    }


def test_a_changed_tag_rebuilds_what_reads_it(shop: Path) -> None:
    Workspace(shop).build(AS_OF)
    edit(shop, "metrics.yaml", "    window: 365d\n", "    window: 180d\n")
    plan = Workspace(shop).plan(check_data=False)
    assert plan.changed == ["monetary_365d"]
    assert list(plan.rebuilt) == MONETARY_READERS
    assert plan.rebuilt["purchasing_power_band"] == ["monetary_365d"]  # through average_order_value
    assert plan.unchanged == ["fav_bluemoon_detergent_30d", "frequency_365d", "age", "city_tier"]
    assert plan.added == [] and plan.removed == [] and plan.skipped == {}


def test_added_removed_and_two_changes(shop: Path) -> None:
    Workspace(shop).build(AS_OF)
    edit(shop, "metrics.yaml", "agg: count}", "agg: count}\n\n- id: orders_all\n  name_zh: 全部订单数\n"
         "  name_en: All orders\n  category: operable\n  type: integer\n  metric: {from: orders, agg: count}")
    edit(shop, "metrics.yaml", "name_zh: 城市等级", "name_zh: 城市级别")  # any field counts
    edit(shop, "metrics.yaml", "name_en: Orders, last 365 days", "name_en: Valid orders, 365 days")
    text = (shop / "tags" / "groups.yaml").read_text(encoding="utf-8")
    (shop / "tags" / "groups.yaml").write_text(text.split("- id: fav_bluemoon_detergent_30d")[0],
                                               encoding="utf-8")
    plan = plan_catalog(load_catalog(shop / "tags"), Workspace(shop).snapshots()[-1].manifest)
    assert plan.added == ["orders_all"]
    assert plan.removed == ["fav_bluemoon_detergent_30d"]
    assert plan.changed == ["frequency_365d", "city_tier"]
    assert plan.rebuilt == {
        "average_order_value": ["frequency_365d"],
        "urban_spender": ["frequency_365d", "city_tier"],
        "purchasing_power_band": ["frequency_365d"],
    }


def test_a_manifest_without_definitions(shop: Path) -> None:
    Workspace(shop).build(AS_OF)
    path = shop / "snapshots" / "2026-07-01" / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    del manifest["definitions"]
    path.write_text(json.dumps(manifest), encoding="utf-8")
    catalog = load_catalog(shop / "tags")
    assert not plan_catalog(catalog, manifest).has_changes  # same catalog hash: nothing changed
    edit(shop, "metrics.yaml", "    window: 365d\n", "    window: 180d\n")
    with pytest.raises(WorkspaceError) as error:
        plan_catalog(load_catalog(shop / "tags"), manifest)
    assert str(error.value) == (
        "the snapshot of 2026-07-01 was built before huaxiang recorded each tag's definition in the "
        "manifest, and the catalog has changed since; the plan cannot tell which tags changed. "
        "Rebuild that snapshot once (huaxiang build --as-of 2026-07-01)."
    )


def test_cli_plan(shop: Path) -> None:
    first = runner.invoke(app, ["tags", "plan", "-w", str(shop)])
    assert first.exit_code == 0, first.output
    assert (f"No snapshot yet 尚无快照: the first build builds all 10 tags "
            f"(huaxiang build -w {shop} --as-of YYYY-MM-DD).") in first.stdout
    assert "将跳过 Will be skipped: 3 tags (missing inputs)" in first.stdout
    Workspace(shop).build(AS_OF)
    same = runner.invoke(app, ["tags", "plan", "-w", str(shop)])
    catalog_hash = load_catalog(shop / "tags").hash
    assert f"No change 无变更: the catalog ({catalog_hash[:12]}) matches the snapshot of 2026-07-01." in (
        same.stdout)
    edit(shop, "metrics.yaml", "    window: 365d\n", "    window: 180d\n")
    changed = runner.invoke(app, ["tags", "plan", "-w", str(shop)])
    rows = [" ".join(line.replace("│", " ").split()) for line in changed.stdout.splitlines()]
    assert "修改 changed monetary_365d definition changed" in rows
    assert "连带 rebuilt purchasing_power_band reads monetary_365d" in rows
    assert "不变 unchanged: 4 tags." in rows
    as_json = runner.invoke(app, ["tags", "plan", "-w", str(shop), "--json"])
    data = json.loads(as_json.stdout)
    assert data["changed"] == ["monetary_365d"] and data["as_of"] == "2026-07-01"
    assert list(data["rebuilt"]) == MONETARY_READERS
