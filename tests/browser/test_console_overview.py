"""Console: sign-in, the overview page, the language switch, roles, and no outside requests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from console_server import AS_OF, BEFORE, Console, sign_in

from huaxiang.analysis.overview import snapshot_overview
from huaxiang.analysis.segment_stats import shop_segments

pytestmark = pytest.mark.slow
SCREENSHOTS = Path(__file__).parents[2] / "docs" / "img"
CHARTS = (
    "chart-sizes-lifecycle_stage",
    "chart-sizes-rfm_class",
    "chart-rfm-heatmap",
    "chart-value-grid",
    "chart-aipl-funnel",
    "chart-aipl-flows",
)


def wait_for_charts(page: Any, charts: tuple[str, ...] = CHARTS) -> None:
    """Plotly drew an SVG into each chart (generous timeouts: the machine is shared)."""
    for chart in charts:
        page.wait_for_selector(f"#{chart} .main-svg", timeout=30_000)


def test_overview_after_sign_in(page: Any, blocked: list[str], console: Console) -> None:
    page.goto(f"{console.url}/console/")
    assert "/console/signin" in page.url  # not signed in: sent to the form
    sign_in(page, console, "analyst")
    assert page.url.rstrip("/").endswith("/console")
    expected = snapshot_overview(console.root, AS_OF)
    assert page.text_content("[data-kpi=users] .value") == f"{expected.users:,}"
    assert page.text_content("[data-kpi=buyers] .value") == f"{expected.buyers:,}"
    assert page.text_content("[data-kpi=arpu] .value") == f"{expected.arpu:,.2f}"
    assert page.text_content("h1") == "概览"  # Chinese by default
    wait_for_charts(page)
    page.screenshot(path=str(SCREENSHOTS / "console-overview.png"), full_page=True)

    page.select_option("#as_of", BEFORE.isoformat())  # the snapshot picker reloads the page
    page.wait_for_url(f"**as_of={BEFORE.isoformat()}**")
    before = snapshot_overview(console.root, BEFORE)
    assert page.text_content("[data-kpi=users] .value") == f"{before.users:,}"

    page.click("#lang-switch")
    page.wait_for_url("**lang=en**")
    assert page.text_content("h1") == "Overview"
    assert page.input_value("#as_of") == BEFORE.isoformat()  # the switch keeps the page's query
    page.goto(f"{console.url}/console/")  # the language sticks (cookie)
    assert page.text_content("h1") == "Overview"
    assert page.errors == []
    assert blocked == []


def test_sign_in_refuses_a_bad_token(page: Any, console: Console) -> None:
    page.goto(f"{console.url}/console/signin")
    page.fill("#token", "hx_00000000_" + "A" * 40)
    page.click("#sign-in")
    assert "unknown API token" in (page.text_content("#signin-error") or "")


def test_sign_out_ends_the_session(page: Any, console: Console) -> None:
    sign_in(page, console, "admin")
    page.click("#sign-out")
    page.goto(f"{console.url}/console/")
    assert "/console/signin" in page.url


def test_a_page_the_role_may_not_open_says_so(page: Any, console: Console) -> None:
    sign_in(page, console, "merchant", path="/console/catalog")
    response = page.goto(f"{console.url}/console/")
    assert response.status == 403
    assert "may not open the console page 'overview'" in (page.text_content("#error") or "")
    assert page.locator("[data-nav=overview]").count() == 0  # the navigation hides it
    assert page.get_attribute("#error-home", "href") == "/console/catalog"  # back to a page it may open


def test_bad_snapshot_date_is_a_clear_page(page: Any, console: Console) -> None:
    sign_in(page, console, "admin")
    response = page.goto(f"{console.url}/console/?as_of=2026-13-01")
    assert response.status == 400
    assert "use YYYY-MM-DD" in (page.text_content("#error") or "")
    response = page.goto(f"{console.url}/console/?as_of=2020-01-01")
    assert response.status == 404
    assert "no snapshot for 2020-01-01" in (page.text_content("#error") or "")


def test_overview_charts_show_the_librarys_numbers(page: Any, blocked: list[str], console: Console) -> None:
    sign_in(page, console, "analyst")
    wait_for_charts(page)
    expected = shop_segments(console.root, AS_OF)
    assert expected.lifecycle is not None and expected.rfm is not None
    for tag, sizes in (("lifecycle_stage", expected.lifecycle), ("rfm_class", expected.rfm)):
        shown = page.locator(f"table[data-tag={tag}] tbody tr")
        assert shown.count() == len(sizes.rows)
        for index, row in enumerate(sizes.rows):
            line = shown.nth(index)
            assert line.get_attribute("data-segment") == row["segment"]
            assert line.locator(".users").text_content() == f"{row['users']:,}"
            assert line.locator(".arpu").text_content() == f"{row['arpu']:,.2f}"
    # The charts draw the same numbers (Plotly keeps the figure's data on the element).
    bars = page.evaluate("document.getElementById('chart-sizes-lifecycle_stage').data[0].y")
    assert bars == [row["users"] for row in expected.lifecycle.rows]
    assert expected.rfm_cells is not None and expected.value_grid is not None
    assert page.evaluate("document.getElementById('chart-rfm-heatmap').data[0].z") == expected.rfm_cells.users
    assert page.evaluate("document.getElementById('chart-value-grid').data[0].z") == expected.value_grid.users
    heatmap = page.locator("#chart-rfm-heatmap").text_content() or ""
    assert "R 得分" in heatmap and "F5" in heatmap
    assert expected.aipl_counts is not None and expected.aipl_flows is not None
    funnel = page.evaluate("document.getElementById('chart-aipl-funnel').data[0].x")
    assert funnel == list(expected.aipl_counts.values())
    for flow in expected.aipl_flows.flows:
        assert flow.rate is not None
        rate = page.text_content(f"#aipl-flows tr[data-flow='{flow.name}'] .rate")
        assert rate == f"{flow.rate:.1%}"

    page.click("#lang-switch")  # the charts follow the language
    page.wait_for_url("**lang=en**")
    wait_for_charts(page)
    heatmap = page.locator("#chart-rfm-heatmap").text_content() or ""
    assert "recency score" in heatmap and "得分" not in heatmap
    assert "A awareness" in (page.locator("#chart-aipl-funnel").text_content() or "")
    page.goto(f"{console.url}/console/?as_of={BEFORE.isoformat()}&lang=zh")  # the first snapshot: no flows
    wait_for_charts(page, CHARTS[:5])
    assert "没有更早的快照" in (page.text_content("#aipl-no-flows") or "")
    assert page.errors == []
    assert blocked == []
