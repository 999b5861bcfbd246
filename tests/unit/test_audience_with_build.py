"""The audience index is published with each snapshot; builds record saved audiences' sizes.

A tiny hand-made workspace (the fixture catalog over three users) is built, then
the index is used through the main CLI (``huaxiang audience``), an audience is
saved, and later builds record its size or say why they cannot.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from huaxiang.audience import AudienceEngine
from huaxiang.audience.index import INDEX_DIR
from huaxiang.cli import app
from huaxiang.workspace import Workspace

VALID = Path(__file__).parents[1] / "fixtures" / "catalogs" / "valid" / "tags"
runner = CliRunner()
VIP = """
- id: vip
  name_zh: 高消费
  name_en: Big spender
  category: custom
  type: boolean
  rule: "monetary_365d >= 1000"
"""


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shop")
    workspace = Workspace.create_sample(root, users=300, seed=3)
    workspace.ingest()
    shutil.rmtree(root / "tags")
    shutil.copytree(VALID, root / "tags")
    return root


def test_the_index_is_published_with_the_snapshot(shop: Path) -> None:
    result = Workspace(shop).build(dt.date(2026, 10, 1))

    assert (result.path / INDEX_DIR).is_dir()
    assert {"write_s", "index_s", "total_s"} <= set(result.timings)
    tags = pq.read_table(result.path / "tags.parquet").to_pylist()
    expected = sum(1 for row in tags if row["city_tier"] in (1, 2) and row["frequency_365d"] >= 2)
    out = runner.invoke(
        app, ["audience", "estimate", "city_tier IN (1, 2) AND frequency_365d >= 2", "-w", str(shop),
              "--as-of", "2026-10-01", "--json"],
    )
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["size"] == expected > 0


def test_builds_record_saved_audience_sizes_and_say_when_they_cannot(shop: Path) -> None:
    workspace = Workspace(shop)
    first = workspace.build(dt.date(2026, 10, 1))
    engine = AudienceEngine(shop, dt.date(2026, 10, 1))
    try:
        engine.save("urban_buyers", "city_tier IN (1, 2) AND frequency_365d >= 2")
    finally:
        engine.close()

    second = workspace.build(dt.date(2026, 11, 1))
    assert second.audiences == {}
    tags = pq.read_table(second.path / "tags.parquet").to_pylist()
    size = sum(1 for row in tags if row["city_tier"] in (1, 2) and row["frequency_365d"] >= 2)
    engine = AudienceEngine(shop, dt.date(2026, 11, 1))
    try:
        sizes = dict(engine.store.get("urban_buyers").sizes)
    finally:
        engine.close()
    assert sizes["2026-11-01"] == size and "2026-10-01" in sizes
    assert first.path != second.path

    # An audience on a tag the catalog later drops: the build goes on and names the audience.
    extra = shop / "tags" / "vip.yaml"
    extra.write_text(VIP, encoding="utf-8")
    workspace.build(dt.date(2026, 11, 2))
    engine = AudienceEngine(shop, dt.date(2026, 11, 2))
    try:
        engine.save("vips", "vip")
    finally:
        engine.close()
    extra.unlink()
    third = workspace.build(dt.date(2026, 11, 3))
    assert set(third.audiences) == {"vips"}
    assert "'vip'" in third.audiences["vips"]
    out = runner.invoke(app, ["build", "-w", str(shop), "--as-of", "2026-11-04"])
    assert out.exit_code == 0
    assert "人群 audience 'vips' has no size in this snapshot:" in " ".join(out.output.split())
