"""Console: the scene page preview, compared with ``GET /scenes/{scene}/page``."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import httpx
import pytest
from console_server import Console, sign_in

pytestmark = pytest.mark.slow
SCREENSHOTS = Path(__file__).parents[2] / "docs" / "img"
USER = "U00000038"


def test_preview_a_scene_page_for_a_user(page: Any, blocked: list[str], console: Console) -> None:
    sign_in(page, console, "analyst", "/console/scenes")
    page.select_option("#scene", "outing")
    page.fill("#user_id", USER)
    page.click("#scene-run")
    page.wait_for_selector("#scene-summary")
    expected = console.api("GET", "/scenes/outing/page", "analyst", params={"user_id": USER}).json()
    assert page.get_attribute("#scene-summary", "data-scene") == "outing"
    assert page.text_content("#scene-probability") == f"{expected['scene_probability']:.3f}"
    for widget in expected["widgets"]:
        rows = page.locator(f".widget[data-widget='{widget['id']}'] tbody tr")
        assert rows.count() == len(widget["items"])
        for row, item in zip(rows.all(), widget["items"], strict=True):
            assert row.get_attribute("data-rank") == str(item["rank"])
            assert row.locator("td").nth(3).text_content() == f"{item['score']:.3f}"
    page.wait_for_selector("#components-chart[data-drawn='1']")
    first = next(w for w in expected["widgets"] if w["items"])
    bars = page.locator("#components-chart .barlayer .trace").count()
    assert bars == sum(1 for weight in first["weights"].values() if weight)
    page.screenshot(path=str(SCREENSHOTS / "console-scenes.png"), full_page=True)
    assert page.errors == []
    assert blocked == []


def test_unknown_user_and_merchants(page: Any, console: Console) -> None:
    sign_in(page, console, "analyst", "/console/scenes")
    response = page.goto(f"{console.url}/console/scenes?scene=outing&user_id=nobody")
    assert response.status == 404
    response = page.goto(f"{console.url}/console/scenes?scene=outingg&user_id={USER}")
    assert response.status == 404
    assert "outing" in (page.text_content("#error") or "")
    merchant = {"cookie": f"hx_console={console.tokens.merchant}"}
    answer = httpx.get(
        f"{console.url}/console/scenes?scene=outing&user_id={USER}", headers=merchant, timeout=30
    )
    assert answer.status_code == 403
    assert "may not open the console page 'scenes'" in html.unescape(answer.text)
