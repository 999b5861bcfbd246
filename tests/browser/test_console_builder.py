"""Console: the audience builder, driven like an operator would, checked against the API."""

from __future__ import annotations

import csv
import html
import io
from pathlib import Path
from typing import Any

import pytest
from console_server import Console, sign_in
from serve_shop import MERCHANT_MIN

pytestmark = pytest.mark.slow
SCREENSHOTS = Path(__file__).parents[2] / "docs" / "img"
SETTLED = "() => ['ok', 'withheld', 'error'].includes(document.getElementById('size').dataset.state)"
FINAL_TEXT = (
    "lifecycle_stage IN ('active', 'new') AND (scene_outing_score >= 0.1 OR NOT trait_impulsive = TRUE)"
)


def settled_size(page: Any) -> tuple[str, str]:
    """Wait for the debounced estimate; its state and the definition text shown."""
    page.wait_for_function(SETTLED)
    return page.get_attribute("#size", "data-state"), page.text_content("#definition-text")


def api_size(console: Console, definition: Any, role: str = "analyst") -> dict[str, Any]:
    response = console.api("POST", "/audiences/estimate", role, json={"definition": definition})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def shown_size(page: Any) -> int:
    return int(page.get_attribute("#size", "data-size"))


def test_build_save_export_venn_top_split(page: Any, blocked: list[str], console: Console) -> None:
    churned = console.api(
        "POST",
        "/audiences",
        "analyst",
        json={"name": "churned_all", "definition": "lifecycle_stage = 'churned'"},
    )
    assert churned.status_code == 201, churned.text
    sign_in(page, console, "analyst", "/console/audiences")
    page.wait_for_selector("#builder[data-ready='1']")
    assert page.get_attribute("#size", "data-state") == "empty"
    sizes = []

    # 1. lifecycle_stage IN ('active', 'new')
    page.locator(".cond").nth(0).locator(".cond-tag").select_option("lifecycle_stage")
    page.locator(".cond").nth(0).locator(".cond-op").select_option("in")
    page.locator(".cond").nth(0).locator(".cond-enum").select_option(["active", "new"])
    state, text = settled_size(page)
    assert (state, text) == ("ok", "lifecycle_stage IN ('active', 'new')")
    sizes.append(shown_size(page))

    # 2. a nested group, switched to OR, with scene_outing_score >= 0.1
    page.click(".group.root > .group-head .add-group")
    group = page.locator(".group:not(.root)").nth(0)
    assert group.locator("> .group-head .group-op").input_value() == "or"
    group.locator(".cond").nth(0).locator(".cond-tag").select_option("scene_outing_score")
    group.locator(".cond").nth(0).locator(".cond-op").select_option(">=")
    group.locator(".cond").nth(0).locator(".cond-value-input").fill("0.1")
    state, text = settled_size(page)
    assert text == "lifecycle_stage IN ('active', 'new') AND scene_outing_score >= 0.1"
    sizes.append(shown_size(page))

    # 3. OR NOT trait_impulsive
    group.locator("> .group-head .add-cond").click()
    group.locator(".cond").nth(1).locator(".cond-tag").select_option("trait_impulsive")
    group.locator(".cond").nth(1).locator(".cond-not").check()
    state, text = settled_size(page)
    assert (state, text) == ("ok", FINAL_TEXT)
    sizes.append(shown_size(page))
    assert len(set(sizes)) == 3, sizes  # the size changed after each condition

    # The size shown is the API's estimate of the definition shown.
    expected = api_size(console, page.text_content("#definition-text"))
    assert shown_size(page) == expected["size"]
    assert page.text_content("#size") == f"{expected['size']:,}"
    size = expected["size"]

    # Save: it appears in the saved list (and in the API's).
    page.fill("#save-name", "console_builder_test")
    page.click("#save-run")
    page.wait_for_selector("#saved tr[data-name='console_builder_test']")
    assert page.text_content("#save-error") == ""
    saved = {item["name"]: item for item in console.api("GET", "/audiences", "analyst").json()}
    assert saved["console_builder_test"]["text"] == FINAL_TEXT
    assert saved["console_builder_test"]["sizes"][-1]["size"] == size

    # Export: plain ids, the link downloads the file.
    page.fill("#export-file", "console_builder_test.csv")
    page.click("#export-run")
    page.wait_for_selector("#export-done")
    assert page.get_attribute("#export-done", "data-id-mode") == "plain"
    assert int(page.get_attribute("#export-done", "data-rows")) == size
    exported = console.root / "exports" / "console_builder_test.csv"
    assert exported.is_file()
    download = page.request.get(console.url + page.get_attribute("#export-link", "href"))
    assert download.status == 200
    rows = list(csv.reader(io.StringIO(download.text())))
    assert rows[0] == ["user_id"] and len(rows) == size + 1
    assert download.body() == exported.read_bytes()

    # Venn of the current audience with a saved one.
    page.check("#saved tr[data-name='churned_all'] .venn-pick")
    page.click("#venn-run")
    page.wait_for_selector("#venn-result:not([hidden])")
    assert page.get_attribute("#venn-chart", "data-drawn") == "1"
    venn = console.api(
        "POST",
        "/audiences/venn",
        "analyst",
        json={"definitions": [FINAL_TEXT, "@churned_all"], "names": ["当前人群", "churned_all"]},
    ).json()
    shown = {row.get_attribute("data-in"): row for row in page.locator("#venn-regions tbody tr").all()}
    for region in venn["regions"]:
        cells = shown[",".join(region["in"])].locator("td")
        assert cells.nth(0).text_content() == region["label"]
        assert cells.nth(1).text_content() == f"{region['size']:,}"
    assert shown["当前人群"].locator("td").nth(1).text_content() == f"{size:,}"  # churned is not in it

    # Top N by a probability.
    page.select_option("#top-by", "scene_outing_score")
    page.fill("#top-n", "10")
    page.click("#top-run")
    page.wait_for_selector("#top-members")
    top = console.api(
        "POST",
        "/audiences/top",
        "analyst",
        json={"definition": FINAL_TEXT, "by": "scene_outing_score", "n": 10},
    ).json()
    assert page.get_attribute("#top-size", "data-size") == str(top["size"]) == "10"
    first = page.locator("#top-members tbody tr").nth(0).locator("td")
    assert first.nth(1).text_content() == top["members"][0]["user_id"]

    # Split into test and control (sizes add up to the audience).
    page.click("#split-run")
    page.wait_for_selector("#split-groups")
    groups = page.locator("#split-groups tbody tr").all()
    assert [g.locator("td").nth(0).text_content() for g in groups] == ["test", "control"]
    split_sizes = [int((g.locator("td").nth(2).text_content() or "").replace(",", "")) for g in groups]
    assert sum(split_sizes) == size and split_sizes[0] > split_sizes[1]

    page.screenshot(path=str(SCREENSHOTS / "console-builder.png"), full_page=True)
    assert page.errors == []
    assert blocked == []

    # A bad value is shown next to its condition (Chromium logs the API's 400).
    group.locator(".cond").nth(0).locator(".cond-value-input").fill("5")
    state, _ = settled_size(page)
    assert state == "error"
    message = group.locator(".cond").nth(0).locator(".cond-error").text_content() or ""
    assert "scene_outing_score" in message and "$.and[1].or[0]" in message
    assert group.locator(".cond").nth(1).locator(".cond-error").text_content() == ""
    assert [error for error in page.errors if "status of 400" not in error] == []


def test_merchant_sees_its_categories_withheld_sizes_and_hashed_exports(
    page: Any, blocked: list[str], console: Console
) -> None:
    sign_in(page, console, "merchant", "/console/audiences")
    page.wait_for_selector("#builder[data-ready='1']")
    catalog = console.api("GET", "/catalog", "merchant").json()["tags"]
    allowed = {tag["id"] for tag in catalog if not tag["realtime"] and tag["type"] != "timestamp"}
    offered = set(
        page.eval_on_selector_all(".cond-tag option", "els => els.map(e => e.value).filter(Boolean)")
    )
    assert offered == allowed
    assert {tag["category"] for tag in catalog} <= {"basic", "extended", "category_scene"}
    assert "rfm_class" not in offered  # operable: not the merchant's
    assert page.locator("#top-card").count() == 0  # no lists of user ids for merchants
    assert page.locator("[data-nav=users]").count() == 0

    # A small audience: its size is withheld, as the API does.
    small = "scene_outing_score >= 0.97"
    assert api_size(console, small, "admin")["size"] < MERCHANT_MIN
    cond = page.locator(".cond").nth(0)
    cond.locator(".cond-tag").select_option("scene_outing_score")
    cond.locator(".cond-value-input").fill("0.97")
    state, text = settled_size(page)
    assert (state, text) == ("withheld", small)
    assert page.text_content("#size") == f"不显示 (< {MERCHANT_MIN:,})"
    assert api_size(console, small, "merchant")["withheld"] is True

    # A larger one is shown and exports as salted SHA-256 only.
    cond.locator(".cond-value-input").fill("0")
    state, text = settled_size(page)
    assert (state, text) == ("ok", "scene_outing_score >= 0")
    assert page.is_checked("#export-hashed") and page.is_disabled("#export-hashed")
    page.fill("#export-file", "merchant_test.csv")
    page.click("#export-run")
    page.wait_for_selector("#export-done")
    assert page.get_attribute("#export-done", "data-id-mode") == "sha256"
    header = (console.root / "exports" / "merchant_test.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header.strip('"') == "user_id_sha256"
    page.screenshot(path=str(SCREENSHOTS / "console-builder-merchant.png"), full_page=True)
    assert page.errors == []
    assert blocked == []


def test_an_export_downloads_only_for_the_token_that_made_it(page: Any, console: Console) -> None:
    made = console.api(
        "POST",
        "/audiences/export",
        "analyst",
        json={"definition": "gender = 'female'", "file_name": "mine.csv"},
    )
    assert made.status_code == 201, made.text
    sign_in(page, console, "admin", "/console/audiences")
    response = page.request.get(f"{console.url}/console/audiences/exports/mine.csv")
    assert response.status == 404
    assert "no export 'mine.csv' made by token 'admin'" in html.unescape(response.text())
    sign_in(page, console, "analyst", "/console/audiences")
    assert page.request.get(f"{console.url}/console/audiences/exports/mine.csv").status == 200
    assert page.request.get(f"{console.url}/console/audiences/exports/..%2Fhuaxiang.yaml").status == 404
