"""Console: the segments page — the migration Sankey between two chosen snapshots (lifecycle, RFM
class, value layer) and the value groups, with the numbers of the library."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from console_server import AS_OF, BEFORE, Console, sign_in

from huaxiang.analysis.segment_flows import migration, value_groups

pytestmark = pytest.mark.slow
SCREENSHOTS = Path(__file__).parents[2] / "docs" / "img"


def sankey_links(page: Any) -> list[int]:
    values: list[int] = page.evaluate("document.getElementById('chart-migration-sankey').data[0].link.value")
    return values


def test_migration_and_value_groups(page: Any, blocked: list[str], console: Console) -> None:
    sign_in(page, console, "analyst", path="/console/segments")
    page.wait_for_selector("#chart-migration-sankey .main-svg", timeout=30_000)
    lifecycle = migration(console.root, BEFORE, AS_OF, "lifecycle_stage")  # the default: the two latest
    assert page.text_content("#migration-stayed") == f"{lifecycle.stayed:,}"
    assert page.text_content("#migration-moved") == f"{lifecycle.moved:,}"
    assert sorted(sankey_links(page)) == sorted(c for row in lifecycle.migration.counts for c in row if c)
    sankey = page.locator("#chart-migration-sankey").text_content() or ""
    assert f"老客 ({BEFORE})" in sankey and f"流失客 ({AS_OF})" in sankey

    for tag in ("rfm_class", "value_layer_name"):  # change the tag (and state the dates)
        page.select_option("#migration-tag", tag)
        page.select_option("#migration-before", BEFORE.isoformat())
        page.select_option("#migration-after", AS_OF.isoformat())
        page.click("#migration-show")
        page.wait_for_url(f"**tag={tag}**")
        page.wait_for_selector("#chart-migration-sankey .main-svg", timeout=30_000)
        expected = migration(console.root, BEFORE, AS_OF, tag)
        assert page.text_content("#migration-stayed") == f"{expected.stayed:,}"
        assert sum(sankey_links(page)) == sum(sum(row) for row in expected.migration.counts)
        assert page.input_value("#migration-tag") == tag
    layers = page.locator("#chart-migration-sankey").text_content() or ""
    assert "L0 未购" in layers and "never bought" not in layers  # the value layer's Chinese names

    # Value groups: loaded after the page (the first report of a snapshot takes seconds).
    page.wait_for_selector("#value-groups[data-loaded='1']", timeout=60_000)
    page.wait_for_selector("#chart-value-groups .main-svg", timeout=30_000)
    groups = value_groups(console.root, AS_OF)
    if groups is None:
        assert "value_group_15" in (page.text_content("#value-groups-none") or "")
    else:
        rows = page.locator("#value-groups-table tbody tr")
        assert rows.count() == len(groups.groups)
        for index, group in enumerate(groups.groups):
            assert rows.nth(index).get_attribute("data-group") == group.group
            assert rows.nth(index).locator(".users").text_content() == f"{group.users:,}"
            assert rows.nth(index).locator(".arpu").text_content() == f"{group.value_per_user:,.2f}"
        monotone = page.get_attribute("#value-groups-monotone", "data-monotone")
        assert monotone == ("true" if groups.monotone else "false")
    page.select_option("#migration-tag", "lifecycle_stage")
    page.click("#migration-show")
    page.wait_for_selector("#chart-migration-sankey .main-svg", timeout=30_000)
    page.wait_for_selector("#value-groups[data-loaded='1']", timeout=60_000)
    page.screenshot(path=str(SCREENSHOTS / "console-segments.png"), full_page=True)
    assert page.errors == []
    assert blocked == []


def test_dates_in_the_wrong_order_say_so(page: Any, console: Console) -> None:
    sign_in(page, console, "admin", path="/console/segments")
    page.select_option("#migration-before", AS_OF.isoformat())
    page.select_option("#migration-after", BEFORE.isoformat())
    page.click("#migration-show")
    page.wait_for_load_state("load")
    assert f"the first snapshot ({AS_OF}) must be before the second ({BEFORE})" in (
        page.text_content("#error") or ""
    )
    response = page.goto(f"{console.url}/console/segments?tag=gender")
    assert response.status == 400
    assert "lifecycle_stage, rfm_class, value_layer_name" in (page.text_content("#error") or "")
