"""The scene page, entry and recommendation endpoints: answers, roles and clear 4xx errors."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from serve_shop import AS_OF, Tokens, copy_shop, make_tokens, serving

from huaxiang.history import find_snapshot
from huaxiang.scenes import SceneModel, entries


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_shop(tmp_path_factory, "scenes-api")


@pytest.fixture(scope="module")
def tokens(shop: Path) -> Tokens:
    return make_tokens(shop)


@pytest.fixture(scope="module")
def client(shop: Path, tokens: Tokens) -> Iterator[TestClient]:
    with serving(shop) as found:
        yield found


@pytest.fixture(scope="module")
def lover(shop: Path) -> str:
    table = pq.read_table(
        shop / "snapshots" / AS_OF.isoformat() / "tags.parquet", columns=["user_id", "scene_outing_score"]
    ).to_pylist()
    return str(max(table, key=lambda row: (row["scene_outing_score"] or 0, row["user_id"]))["user_id"])


def error_of(response: object, status: int) -> str:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"} and body["error"]["status"] == status
    return str(body["error"]["message"])


def test_page_entries_and_recommendations_are_the_library_calls(
    client: TestClient, tokens: Tokens, shop: Path, lover: str
) -> None:
    model = SceneModel(shop, find_snapshot(shop, AS_OF))
    page = client.get(f"/scenes/outing/page?user_id={lover}", headers=tokens.header("service")).json()
    expected = model.page("outing", lover)
    page.pop("milliseconds"), expected.pop("milliseconds")
    assert page == expected
    assert [w["kind"] for w in page["widgets"]] == [
        "promoted",
        "hot",
        "ordinary",
        "long_tail",
        "coupons",
        "content",
    ]
    found = client.get(f"/users/{lover}/entries", headers=tokens.header("analyst")).json()
    assert found == entries(model, lover) and found["entries"][0]["scene"] == "outing"
    recs = client.get(f"/users/{lover}/recommendations?k=7", headers=tokens.header("admin")).json()
    assert recs["k"] == 7 and len(recs["items"]) == 7 and recs["strategy"] == "personal"
    items, _, bought = model.data.history(lover)
    owned = {model.data.item_ids[i] for i in items[bought]}
    assert owned and not owned & {item["product_id"] for item in recs["items"]}
    assert [i["product_id"] for i in recs["items"]] == [
        i["product_id"] for i in model.recommendations(lover, 7)["items"]
    ]


def test_unknown_users_scenes_and_bad_parameters_get_clear_4xx(
    client: TestClient, tokens: Tokens, lover: str
) -> None:
    header = tokens.header("service")
    message = error_of(client.get(f"/scenes/outng/page?user_id={lover}", headers=header), 404)
    assert message.startswith("no page is defined for scene 'outng'. Did you mean 'outing'?")
    message = error_of(client.get("/scenes/outing/page?user_id=NOBODY", headers=header), 404)
    assert message.startswith("no user 'NOBODY' in the snapshot of 2026-10-31")
    assert error_of(client.get("/scenes/outing/page", headers=header), 422) == "query.user_id: Field required"
    assert error_of(client.get("/users/NOBODY/entries", headers=header), 404).startswith("no user 'NOBODY'")
    assert error_of(client.get("/users/NOBODY/recommendations", headers=header), 404).startswith("no user")
    for k, text in (
        ("0", "greater than or equal to 1"),
        ("201", "less than or equal to 200"),
        ("ten", "valid integer"),
    ):
        message = error_of(client.get(f"/users/{lover}/recommendations?k={k}", headers=header), 422)
        assert message.startswith("query.k: ") and text in message


def test_roles(client: TestClient, tokens: Tokens, lover: str) -> None:
    urls = (
        f"/scenes/outing/page?user_id={lover}",
        f"/users/{lover}/entries",
        f"/users/{lover}/recommendations",
    )
    for url in urls:
        for role in ("admin", "analyst", "service"):
            assert client.get(url, headers=tokens.header(role)).status_code == 200
        assert "role 'merchant'" in error_of(client.get(url, headers=tokens.header("merchant")), 403)
        assert client.get(url).status_code == 401


def test_a_broken_page_file_is_a_400_naming_the_file(
    tmp_path_factory: pytest.TempPathFactory, lover: str
) -> None:
    root = copy_shop(tmp_path_factory, "scenes-broken")
    (root / "scenes").mkdir(exist_ok=True)  # init installed the standard page there
    (root / "scenes" / "outing.yaml").write_text(
        "scene: outing\nname_zh: 郊游\nwidgets:\n  - {id: a, kind: hot, title_zh: 热, size: 0}\n",
        encoding="utf-8",
    )
    found = make_tokens(root)
    with serving(root) as client:
        response = client.get(f"/scenes/outing/page?user_id={lover}", headers=found.header("service"))
        message = error_of(response, 400)
        assert message.startswith(
            "outing.yaml:4: widgets[0].size: Input should be greater than or equal to 1"
        )


def test_real_time_scene_events_move_the_probability_and_the_entry(
    client: TestClient, tokens: Tokens, shop: Path
) -> None:
    scores = pq.read_table(
        shop / "snapshots" / AS_OF.isoformat() / "tags.parquet", columns=["user_id", "scene_outing_score"]
    ).to_pylist()
    user = next(str(row["user_id"]) for row in scores if not row["scene_outing_score"])
    header = tokens.header("service")
    assert client.get(f"/users/{user}/entries", headers=header).json()["entries"] == []
    products = pq.read_table(
        shop / "data" / "products.parquet", columns=["product_id", "scene_tags"]
    ).to_pylist()
    tent = next(p["product_id"] for p in products if "outing" in (p["scene_tags"] or []))
    # Two carts weigh 4 + 4 = 8 = the standard catalog's half score: probability 0.5 = its threshold.
    events = [{"user_id": user, "event_type": "cart", "product_id": tent}] * 2
    assert client.post("/events", json={"events": events}, headers=header).status_code == 200
    found = client.get(f"/users/{user}/entries", headers=header).json()["entries"]
    assert [e["scene"] for e in found] == ["outing"]
    assert found[0]["holds_scene_tag"] is True and found[0]["scene_probability"] == pytest.approx(0.5)
    page = client.get(f"/scenes/outing/page?user_id={user}", headers=header).json()
    assert page["realtime_increment"] == 8 and page["scene_probability"] == pytest.approx(0.5)
    ordinary = next(w for w in page["widgets"] if w["id"] == "ordinary")["items"]
    assert all(
        i["components"]["scene_interest"] == pytest.approx(0.5 * i["components"]["scene_match"])
        for i in ordinary
    )


def test_models_are_made_ahead_on_swap_once_used_and_dropped_with_their_snapshot(shop: Path) -> None:
    from huaxiang.scenes import online
    from huaxiang.serve.store import Generation, OnlineStore, StoreSnapshot

    store = OnlineStore(shop)
    store.refresh()
    warm = online.warm_on_swap(store)
    fresh = Generation(StoreSnapshot(find_snapshot(shop, AS_OF)), shop, None)
    warm(fresh)  # scenes never asked of this store: nothing is made
    assert fresh not in online._by_generation
    first = online.for_store(store)
    assert online.scene_model(store) is first and online.scene_model(store.current) is first
    warm(fresh)
    assert fresh in online._by_generation and online._by_generation[fresh] is not first
    # A model holds its generation weakly: a retired generation takes its model with it.
    retired, models = weakref.ref(fresh), len(online._by_generation)
    del fresh
    gc.collect()
    assert retired() is None and len(online._by_generation) == models - 1
    store.close()
