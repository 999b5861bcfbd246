"""Console: user 360 — search, tags by category with imputed values marked, scene scores, timeline."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import httpx
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from console_server import AS_OF, Console, sign_in

from huaxiang.activity import user_activity
from huaxiang.history import find_snapshot
from huaxiang.profile import profile

pytestmark = pytest.mark.slow
SCREENSHOTS = Path(__file__).parents[2] / "docs" / "img"


def imputed_user_with_activity(root: Path) -> str:
    """A user of the snapshot with an imputed age and both orders and events on the timeline."""
    tags = pq.read_table(find_snapshot(root, AS_OF).tags_path, columns=["user_id", "age_imputed"])
    candidates = tags.filter(pc.equal(tags.column("age_imputed"), True)).column("user_id").to_pylist()
    for user_id in sorted(candidates):
        activity = user_activity(root, user_id, as_of=AS_OF)
        if activity.orders and len({event.event_type for event in activity.events}) >= 2:
            return str(user_id)
    raise AssertionError("the sample shop has no user with an imputed age and recent orders and events")


def test_search_a_user_and_see_the_360(page: Any, blocked: list[str], console: Console) -> None:
    user_id = imputed_user_with_activity(console.root)
    expected = profile(console.root, user_id, as_of=AS_OF)
    activity = user_activity(console.root, user_id, as_of=AS_OF)

    sign_in(page, console, "analyst", "/console/users")
    page.fill("#q", user_id[-4:])  # part of the id: a list of matches
    page.click("#user-search-run")
    page.wait_for_selector("#matches")
    page.click(f"#matches a[data-user='{user_id}']")
    page.wait_for_url(f"**/console/users/{user_id}")
    assert page.text_content("h1") == user_id

    # Tags grouped by category, in the profile's order, with the imputed age marked.
    categories = page.eval_on_selector_all(".tag-group", "els => els.map(e => e.dataset.category)")
    assert categories == [group.category for group in expected.groups]
    age = page.locator(".tag-group tr[data-tag='age']")
    assert age.locator(".badge.imputed").count() == 1
    assert (age.locator("td").nth(1).text_content() or "").startswith(str(expected.entry("age").value))
    not_imputed = [e.tag for g in expected.groups for e in g.entries if not e.imputed and e.value is not None]
    assert page.locator(f"tr[data-tag='{not_imputed[0]}'] .badge.imputed").count() == 0
    marked = page.eval_on_selector_all("tr.imputed", "els => els.map(e => e.dataset.tag)")
    assert marked == [e.tag for g in expected.groups for e in g.entries if e.imputed]

    # Scene scores as bars; orders and events on the timeline.
    page.wait_for_selector("#scene-chart[data-drawn='1']")
    page.wait_for_selector("#timeline[data-drawn='1']")
    points = page.locator("#timeline .scatterlayer .point").count()
    assert points == len(activity.orders) + len(activity.events)
    counts = page.text_content("#activity-counts") or ""
    assert f"{activity.orders_total:,} 订单" in counts and f"{activity.events_total:,} 行为" in counts
    first_day = activity.by_day()[0]
    assert page.locator(f"#by-day tr[data-day='{first_day.day}'] td").nth(1).text_content() == str(
        first_day.orders
    )
    page.screenshot(path=str(SCREENSHOTS / "console-user360.png"), full_page=True)

    # An exact id in the search box opens the user directly; the lookups are audited.
    page.goto(f"{console.url}/console/users")
    page.fill("#q", user_id)
    page.click("#user-search-run")
    page.wait_for_url(f"**/console/users/{user_id}")
    audit = console.api("GET", "/audit", "admin", params={"action": "lookup", "who": "analyst"}).json()
    assert sum(1 for entry in audit if entry["target"] == user_id and entry["count"] == 1) == 2
    assert page.errors == []
    assert blocked == []


def test_unknown_user_is_a_404_with_a_suggestion(page: Any, console: Console) -> None:
    sign_in(page, console, "analyst", "/console/users")
    response = page.goto(f"{console.url}/console/users/U1")
    assert response.status == 404
    message = page.text_content("#error") or ""
    assert "no user 'U1' in the snapshot of 2026-10-31" in message
    assert "Did you mean 'U00000001'?" in message
    audit = console.api("GET", "/audit", "admin", params={"action": "lookup", "who": "analyst"}).json()
    assert any(entry["target"] == "U1" and entry["count"] == 0 for entry in audit)


def test_merchants_may_not_look_up_users(console: Console) -> None:
    cookies = {"cookie": f"hx_console={console.tokens.merchant}"}
    response = httpx.get(f"{console.url}/console/users/U00000001", headers=cookies, timeout=30)
    assert response.status_code == 403
    assert "may not open the console page 'users'" in html.unescape(response.text)
    assert httpx.get(f"{console.url}/console/users?q=U1", headers=cookies, timeout=30).status_code == 403
