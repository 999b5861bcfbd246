"""Console: the experiments list and double11's page — lift with 95 % intervals per variant and per
segment (switching ``by``), and the follow-up funnel, with the numbers of the library."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from console_server import Console, sign_in

from huaxiang.analysis.experiment_views import experiment_summaries
from huaxiang.analysis.metrics import ExperimentResults, MetricResult, experiment_results

pytestmark = pytest.mark.slow
SCREENSHOTS = Path(__file__).parents[2] / "docs" / "img"


def lift_text(row: MetricResult) -> tuple[str, str]:
    """The lift and its interval as the page writes them."""
    comparison = row.comparison
    assert comparison is not None and comparison.lift is not None
    assert comparison.lift_ci_low is not None and comparison.lift_ci_high is not None
    return (
        f"{comparison.lift:+.1%}",
        f"[{comparison.lift_ci_low:+.1%}, {comparison.lift_ci_high:+.1%}]",
    )


def check_segments(page: Any, results: ExperimentResults, metric: str) -> None:
    assert page.get_attribute("#segment-table", "data-by") == results.segment_tag
    checked = 0
    for segment, rows in results.segments.items():
        for row in rows:
            if row.metric != metric or row.comparison is None or row.comparison.lift is None:
                continue
            line = page.locator(f"#segment-table tr[data-segment='{segment}'][data-variant='{row.variant}']")
            assert (line.locator(".lift").text_content(), line.locator(".ci").text_content()) == lift_text(
                row
            )
            checked += 1
    assert checked >= 3
    bars = page.evaluate("document.getElementById('chart-segment-lift').data[0].y")
    assert len(bars) == checked


def test_double11_lift_per_variant_and_segment(page: Any, blocked: list[str], console: Console) -> None:
    sign_in(page, console, "analyst", path="/console/experiments")
    (summary,) = experiment_summaries(console.root)
    line = page.locator("tr[data-experiment=double11]")
    assert line.locator(".status").get_attribute("data-status") == summary.status == "results"
    assert "camp_2026_double11_coupon" in (line.text_content() or "")

    line.locator("a").click()
    page.wait_for_url("**/console/experiments/double11")
    for chart in ("chart-lift", "chart-segment-lift", "chart-funnel"):
        page.wait_for_selector(f"#{chart} .main-svg", timeout=30_000)
    results = experiment_results(console.root, "double11", by="lifecycle_stage", save=False)
    for row in results.metrics:  # lift per variant: the table and the chart
        if row.variant == results.control or row.comparison is None or row.comparison.lift is None:
            continue
        shown = page.locator(f"#lift-table tr[data-metric={row.metric}][data-variant={row.variant}]")
        assert (shown.locator(".lift").text_content(), shown.locator(".ci").text_content()) == lift_text(row)
    lifts = page.evaluate("document.getElementById('chart-lift').data[0].y")
    expected = [
        m.comparison.lift * 100
        for m in results.metrics
        if m.variant == "treatment" and m.comparison is not None and m.comparison.lift is not None
    ]
    assert lifts == pytest.approx(expected)
    check_segments(page, results, "conversion")
    for variant in results.funnel:  # the follow-up funnel
        for stage, count in variant.counts.items():
            cell = page.text_content(f"#funnel-table tr[data-variant={variant.variant}] [data-stage={stage}]")
            assert (cell or "").startswith(f"{count:,}")
    page.screenshot(path=str(SCREENSHOTS / "console-experiments.png"), full_page=True)

    page.select_option("#by", "rfm_class")  # switch the breakdown
    page.wait_for_url("**by=rfm_class**")
    page.wait_for_selector("#chart-segment-lift .main-svg", timeout=30_000)
    by_rfm = experiment_results(console.root, "double11", by="rfm_class", save=False)
    check_segments(page, by_rfm, "conversion")
    page.select_option("#metric", "order_count")
    page.wait_for_url("**metric=order_count**")
    page.wait_for_selector("#chart-segment-lift .main-svg", timeout=30_000)
    check_segments(page, by_rfm, "order_count")
    assert page.input_value("#by") == "rfm_class"
    assert page.errors == []
    assert blocked == []


def test_unknown_experiment_is_a_clear_page(page: Any, console: Console) -> None:
    sign_in(page, console, "admin", path="/console/experiments")
    response = page.goto(f"{console.url}/console/experiments/double12")
    assert response.status == 404
    assert "no experiment 'double12'" in (page.text_content("#error") or "")
    response = page.goto(f"{console.url}/console/experiments/double11?by=monetary_365d")
    assert response.status == 400
    assert "needs an enum or boolean tag" in (page.text_content("#error") or "")
