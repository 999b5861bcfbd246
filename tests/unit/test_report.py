"""The HTML report: self-contained (Plotly inlined, no outside reference), every section present,
numbers that agree with the snapshot. tests/browser renders it in Chromium."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import ibis
import pandas as pd
import pytest
from analysis_shop import AS_OF, BEFORE, CAMPAIGN, sample_shop
from typer.testing import CliRunner

from huaxiang.analysis.experiments import experiment_from_touches
from huaxiang.analysis.metrics import experiment_results
from huaxiang.analysis.report import _by_segment, _value_grid, build_report, plotly_js
from huaxiang.cli import app
from huaxiang.errors import NotFoundError, RequestError

pytestmark = pytest.mark.slow


def _shows(page: str, text: str) -> bool:
    """Text in the page, as HTML or inside a chart's JSON (where Plotly writes non-ASCII as \\uXXXX)."""
    return text in page or json.dumps(text)[1:-1] in page


SECTIONS = ("segments", "rfm", "value-grid", "aipl", "migration", "value-groups", "experiments")


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample_shop(tmp_path_factory)


def test_report_is_self_contained(shop: Path) -> None:
    path = build_report(shop, AS_OF)
    assert path == shop / "reports" / f"report-{AS_OF}.html"
    page = path.read_text(encoding="utf-8")
    assert plotly_js()[:2000] in page  # Plotly's own bundle, inlined
    assert '<link rel="icon" href="data:,">' in page
    # Nothing is loaded from elsewhere: no src / href to another place, no CDN.
    # (Plotly's bundle itself holds attribution links for map tiles, never requested here.)
    own = page.replace(plotly_js(), "")
    references = re.findall(r'(?:src|href)\s*=\s*["\']([^"\']+)', own)
    assert all(ref.startswith(("data:", "#")) for ref in references), references
    assert "cdn.plot.ly" not in own and "<script src" not in own
    for section in SECTIONS:
        assert f'<section id="{section}">' in page
    for label in (
        "老客 active",
        "重要价值客户",
        "R 得分 recency score",
        "认知 A awareness",
        "A→I",
        "生命周期迁移 · lifecycle migration 2026-09-30 → 2026-10-31",
    ):
        assert _shows(page, label), label
    assert "还没有实验 · no experiments yet" in page


def test_report_numbers_match_the_snapshot(shop: Path) -> None:
    tags_path = shop / "snapshots" / AS_OF.isoformat() / "tags.parquet"
    frame = pd.read_parquet(tags_path, columns=["lifecycle_stage", "monetary_365d", "value_layer"])
    con = ibis.duckdb.connect()
    try:
        tags = con.read_parquet(tags_path)
        rows = {r["segment"]: r for r in _by_segment(tags, "lifecycle_stage")}
        figure, never = _value_grid(tags)
    finally:
        con.disconnect()
    for stage, group in frame.groupby("lifecycle_stage"):
        assert rows[stage]["users"] == len(group)
        assert rows[stage]["arpu"] == pytest.approx(group.monetary_365d.astype(float).fillna(0).mean())
    assert never == int((frame.value_layer == 0).sum())
    cells = figure.data[0].z
    assert sum(sum(row) for row in cells) == int((frame.value_layer > 0).sum())
    assert len(cells) == 4 and len(cells[0]) == 5  # spend bins × recency bins


def test_report_with_experiments_and_options(shop: Path, tmp_path: Path) -> None:
    experiment_from_touches(shop, CAMPAIGN, name="double11")
    experiment_results(shop, "double11")
    target = tmp_path / "out" / "report.html"
    path = build_report(shop, AS_OF, compare_to=BEFORE, output=target)
    page = path.read_text(encoding="utf-8")
    assert path == target and 'id="chart-experiment-0"' in page
    assert _shows(page, "double11: 相对提升及95%置信区间")
    single = build_report(shop, BEFORE, output=tmp_path / "first.html").read_text(encoding="utf-8")
    assert "one snapshot only" in single  # no earlier snapshot: no flows, no Sankey
    with pytest.raises(RequestError, match="must be before the report's date"):
        build_report(shop, BEFORE, compare_to=AS_OF)
    with pytest.raises(NotFoundError, match="no snapshot for 2026-10-01"):
        build_report(shop, dt.date(2026, 10, 1))
    runner = CliRunner()
    written = runner.invoke(app, ["report", "-w", str(shop), "--as-of", AS_OF.isoformat()])
    assert written.exit_code == 0, written.output
    assert (shop / "reports" / f"report-{AS_OF}.html").is_file()
    missing = runner.invoke(app, ["report", "-w", str(shop), "--as-of", "2026-10-01"])
    assert missing.exit_code == 2 and "huaxiang build" in missing.output
