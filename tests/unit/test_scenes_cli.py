"""``huaxiang scenes page|tag-products`` and ``huaxiang evaluate-recs``: thin layers, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from serve_shop import AS_OF, copy_shop
from typer.testing import CliRunner

from huaxiang.cli import app
from huaxiang.scenes import scene_page

runner = CliRunner()


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_shop(tmp_path_factory, "scenes-cli")


def test_scenes_page_prints_the_library_page(shop: Path) -> None:
    user = str(pq.read_table(shop / "snapshots" / AS_OF.isoformat() / "tags.parquet").column("user_id")[3])
    result = runner.invoke(app, ["scenes", "page", "outing", "--user", user, "-w", str(shop), "--json"])
    assert result.exit_code == 0, result.output
    page = json.loads(result.output)
    expected = scene_page(shop, "outing", user)
    page.pop("milliseconds"), expected.pop("milliseconds")
    assert page == expected
    table = runner.invoke(app, ["scenes", "page", "outing", "--user", user, "-w", str(shop)])
    assert table.exit_code == 0 and "郊游季 Outing season" in table.output and "郊游爆款" in table.output
    missing = runner.invoke(app, ["scenes", "page", "outng", "--user", user, "-w", str(shop)])
    assert missing.exit_code == 2 and "Did you mean 'outing'?" in missing.output


def test_tag_products_checks_and_adds_a_list(shop: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("product_id,scene\nP000001,outing\nNOPE,outing\n", encoding="utf-8")
    result = runner.invoke(app, ["scenes", "tag-products", "-w", str(shop), "--list", str(bad)])
    assert result.exit_code == 2
    assert "bad.csv: 1 bad row(s):" in result.output and "line 3: product_id 'NOPE'" in result.output
    assert not (shop / "scenes" / "lists" / "bad.csv").exists()
    good = tmp_path / "good.csv"
    good.write_text("product_id,scene,strength\nP000001,picnic,0.8\n", encoding="utf-8")
    result = runner.invoke(
        app, ["scenes", "tag-products", "-w", str(shop), "--list", str(good), "--json", "--scene", "picnic"]
    )
    assert result.exit_code == 0, result.output
    assert (shop / "scenes" / "lists" / "good.csv").is_file()
    body = json.loads(result.output[result.output.index("{") :])
    assert body["scenes"]["picnic"] == {"own": 0, "rule": 0, "list": 1}
    assert body["products"] == [{"product_id": "P000001", "strength": 0.8, "source": "list"}]


def test_evaluate_recs_reports_both_recommenders(shop: Path) -> None:
    result = runner.invoke(
        app, ["evaluate-recs", "-w", str(shop), "--train-days", "600", "--test-days", "30", "--json"]
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert set(body["model"]) == {"all", "new"} and body["k"] == 10
    assert body["model"]["all"]["hit_rate"] > body["popularity"]["all"]["hit_rate"]
    too_long = runner.invoke(app, ["evaluate-recs", "-w", str(shop), "--train-days", "2000"])
    assert too_long.exit_code == 2 and "use fewer --train-days" in too_long.output


def test_tag_products_needs_no_snapshot_and_names_a_missing_table(tmp_path: Path) -> None:
    import pyarrow as pa

    (tmp_path / "data").mkdir()
    products = pa.table(
        {
            "product_id": ["A", "B", "C"],
            "name": ["郊游野餐篮", "洗衣液", "木炭 5kg"],
            "category_l3": ["篮子", "洗衣液", "木炭"],
            "scene_tags": pa.array([[], [], ["bbq"]], pa.list_(pa.string())),
        }
    )
    pq.write_table(products, tmp_path / "data" / "products.parquet")
    result = runner.invoke(
        app, ["scenes", "tag-products", "-w", str(tmp_path), "--scene", "outing", "--json"]
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["scenes"] == {
        "bbq": {"own": 1, "rule": 0, "list": 0},
        "outing": {"own": 0, "rule": 2, "list": 0},
    }
    assert body["products"] == [
        {"product_id": "C", "strength": 0.9, "source": "rule"},  # 木炭 by category
        {"product_id": "A", "strength": 0.7, "source": "rule"},  # 郊游 / 野餐 in the name
    ]
    missing = runner.invoke(app, ["scenes", "tag-products", "-w", str(tmp_path / "none")])
    assert missing.exit_code == 2 and "no products table" in missing.output
