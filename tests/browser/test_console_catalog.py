"""Console: the tag catalog (search, category filter) and a tag's page (definition, distribution,
drift, dependents), with the numbers of the library; a merchant sees only its categories."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from console_server import AS_OF, Console, sign_in

from huaxiang.analysis.tag_catalog import find_tag, tag_detail, tag_list
from huaxiang.audience.store import default_url
from huaxiang.serve.auth import TokenStore

pytestmark = pytest.mark.slow
SCREENSHOTS = Path(__file__).parents[2] / "docs" / "img"


def shown_tags(page: Any) -> list[str]:
    rows = page.locator("#catalog-tags tbody tr[data-tag]")
    return [rows.nth(i).get_attribute("data-tag") for i in range(rows.count())]


def test_search_filter_and_open_a_tag(page: Any, blocked: list[str], console: Console) -> None:
    sign_in(page, console, "analyst", path="/console/catalog")
    everything = tag_list(console.root, AS_OF)
    assert shown_tags(page) == [entry.id for entry in everything.tags]
    assert page.get_attribute("#catalog-count", "data-total") == str(everything.total)

    page.fill("#catalog-search", "365")  # search (server-side: ?q=)
    page.click("#catalog-go")
    page.wait_for_url("**q=365**")
    searched = tag_list(console.root, AS_OF, query="365")
    assert shown_tags(page) == [entry.id for entry in searched.tags]
    assert "frequency_365d" in shown_tags(page) and len(searched.tags) < everything.total

    category = find_tag(console.root, "frequency_365d").category
    page.select_option("#catalog-category", category)  # the filter keeps the search
    page.wait_for_url(f"**category={category}**")
    filtered = tag_list(console.root, AS_OF, query="365", category=category)
    assert shown_tags(page) == [entry.id for entry in filtered.tags]
    assert {page.get_attribute(f"tr[data-tag={t}]", "data-category") for t in shown_tags(page)} == {category}

    page.click("tr[data-tag=frequency_365d] a")  # the tag's page
    page.wait_for_url("**/console/catalog/frequency_365d")
    page.wait_for_selector("#chart-distribution .main-svg", timeout=30_000)
    detail = tag_detail(console.root, "frequency_365d", AS_OF)
    shown = detail.distribution
    assert shown is not None and shown.kind == "numeric"
    assert page.text_content("#tag-name-zh") == detail.entry.name_zh
    assert page.text_content("#tag-type") == "integer"
    assert page.evaluate("document.getElementById('chart-distribution').data[0].y") == shown.counts
    assert sum(shown.counts) == shown.non_null
    assert page.text_content("[data-stat=max]") == f"{shown.max:,.4g}"
    assert f"({shown.non_null:,} / {shown.users:,})" in (page.text_content("#tag-coverage") or "")
    assert "model:" in (page.text_content("#tag-yaml") or "")  # the YAML definition
    assert detail.drift is not None and detail.drift.psi is not None
    assert float(page.get_attribute("#drift-psi", "data-psi") or "nan") == pytest.approx(detail.drift.psi)
    dependents = page.locator("[data-dependent]")
    assert [dependents.nth(i).get_attribute("data-dependent") for i in range(dependents.count())] == (
        detail.dependents_all
    )
    assert "style_promo_driven" in detail.dependents
    page.screenshot(path=str(SCREENSHOTS / "console-catalog.png"), full_page=True)

    page.click("[data-dependent=style_promo_driven] a")  # follow the graph to a rule tag
    page.wait_for_url("**/console/catalog/style_promo_driven")
    page.wait_for_selector("#chart-distribution .main-svg", timeout=30_000)
    assert "frequency_365d >= 2" in (page.text_content("#tag-rules") or "")
    rule = tag_detail(console.root, "style_promo_driven", AS_OF).distribution
    assert rule is not None and rule.kind == "categorical"
    for value, count in zip(rule.values, rule.counts, strict=True):  # bars for a boolean
        assert page.text_content(f"#distribution-table tr[data-value='{value}'] .users") == f"{count:,}"
    assert page.evaluate("document.getElementById('chart-distribution').data[0].y") == rule.counts
    assert page.errors == []
    assert blocked == []


def test_an_enum_tag_in_english(page: Any, blocked: list[str], console: Console) -> None:
    sign_in(page, console, "admin", path="/console/catalog/lifecycle_stage?lang=en")
    page.wait_for_selector("#chart-distribution .main-svg", timeout=30_000)
    detail = tag_detail(console.root, "lifecycle_stage", AS_OF)
    assert detail.distribution is not None
    assert detail.distribution.values[:2] == ["potential", "high_potential"]  # declared order
    bars = page.locator("#chart-distribution").text_content() or ""
    assert "high potential" in bars  # the declared English names
    rows = page.locator("#distribution-table tbody tr")
    assert [
        rows.nth(i).get_attribute("data-value") for i in range(rows.count())
    ] == detail.distribution.values
    assert page.errors == []
    assert blocked == []


def test_a_merchant_sees_only_its_categories(page: Any, blocked: list[str], console: Console) -> None:
    sign_in(page, console, "merchant", path="/console/catalog")
    store = TokenStore(default_url(console.root))
    try:
        allowed = store.verify(console.tokens.merchant).tag_categories
    finally:
        store.close()
    assert allowed is not None and "operable" not in allowed
    listed = tag_list(console.root, AS_OF, allowed=allowed)
    assert shown_tags(page) == [entry.id for entry in listed.tags]
    assert {page.get_attribute(f"tr[data-tag={t}]", "data-category") for t in shown_tags(page)} <= allowed
    options = page.locator("#catalog-category option")
    offered = {options.nth(i).get_attribute("value") for i in range(options.count())} - {""}
    assert offered and offered <= allowed  # only its categories to filter by
    response = page.goto(f"{console.url}/console/catalog/lifecycle_stage")
    assert response.status == 403
    assert "may not see tag 'lifecycle_stage' (category 'operable')" in (page.text_content("#error") or "")
    response = page.goto(f"{console.url}/console/catalog?category=operable")
    assert response.status == 403
    response = page.goto(f"{console.url}/console/catalog/no_such_tag")
    assert response.status == 404
    assert blocked == []
