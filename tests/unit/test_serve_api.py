"""The tag service's API by role: what each role may and may not do, merchants' limits, the audit trail."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from serve_shop import AS_OF, MERCHANT_MIN, USERS, Tokens, copy_shop, make_tokens, serving

from huaxiang import __version__
from huaxiang.audience import AudienceEngine
from huaxiang.profile import profile

ADMIN_ONLY = ("admin",)
SMALL = "city_tier = 1 AND gender = 'female' AND age_band = '26-35'"  # tens of users, below the minimum
LARGE = "gender = 'female'"


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_shop(tmp_path_factory, "serve-api")


@pytest.fixture(scope="module")
def tokens(shop: Path) -> Tokens:
    return make_tokens(shop)


@pytest.fixture(scope="module")
def client(shop: Path, tokens: Tokens) -> Iterator[TestClient]:
    with serving(shop) as found:
        yield found


def some_user(shop: Path) -> str:
    return str(
        pq.read_table(shop / "snapshots" / AS_OF.isoformat() / "tags.parquet", columns=["user_id"])
        .column(0)[17]
        .as_py()
    )


def size_of(shop: Path, definition: str) -> int:
    engine = AudienceEngine(shop, AS_OF)
    try:
        return engine.estimate(definition).size
    finally:
        engine.close()


def test_health_and_version_need_no_token(client: TestClient) -> None:
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["as_of"] == AS_OF.isoformat() and health["users"] == USERS
    assert client.get("/version").json() == {"version": __version__, "api": "1"}
    assert client.get("/docs").status_code == 200
    assert "/users/{user_id}/tags" in client.get("/openapi.json").json()["paths"]


def test_lookup_returns_every_tag_the_imputed_flags_and_the_snapshot_date(
    client: TestClient, tokens: Tokens, shop: Path
) -> None:
    user = some_user(shop)
    body = client.get(f"/users/{user}/tags", headers=tokens.header("service")).json()
    expected = profile(shop, user)
    entries = {e.tag: e for g in expected.groups for e in g.entries}
    assert body["as_of"] == AS_OF.isoformat() and body["in_snapshot"] is True
    assert set(body["tags"]) == set(entries)
    for tag, entry in entries.items():
        value = body["tags"][tag]
        if isinstance(value, float):
            assert value == pytest.approx(float(entry.value))
        else:
            assert value == entry.value, tag
    assert sorted(body["imputed"]) == sorted(tag for tag, e in entries.items() if e.imputed)
    assert {"rt_last_visit_time", "rt_cart_1h", "rt_cart_not_bought_1h"} <= set(body["realtime"])


def test_unknown_user_is_404_naming_the_user(client: TestClient, tokens: Tokens) -> None:
    response = client.get("/users/NOPE-1/tags", headers=tokens.header("analyst"))
    assert response.status_code == 404
    assert "no user 'NOPE-1'" in response.json()["error"]["message"]
    trail = client.get("/audit", params={"action": "lookup"}, headers=tokens.header("admin")).json()
    assert any(r["target"] == "NOPE-1" and r["count"] == 0 and r["who"] == "analyst" for r in trail)


@pytest.mark.parametrize(
    ("method", "path", "body", "allowed"),
    [
        ("get", "/catalog", None, ("admin", "analyst", "service", "merchant")),
        ("get", "/users/{user}/tags", None, ("admin", "analyst", "service")),
        ("post", "/audiences/estimate", {"definition": LARGE}, ("admin", "analyst", "merchant")),
        (
            "post",
            "/audiences/venn",
            {"definitions": [LARGE, "city_tier <= 2"]},
            ("admin", "analyst", "merchant"),
        ),
        ("post", "/audiences/top", {"definition": LARGE, "by": "age", "n": 5}, ("admin", "analyst")),
        (
            "post",
            "/audiences/split",
            {"definition": LARGE, "ratios": [0.5, 0.5], "salt": "s1"},
            ("admin", "analyst", "merchant"),
        ),
        ("get", "/audiences", None, ("admin", "analyst", "merchant")),
        (
            "post",
            "/events",
            {"events": [{"user_id": "U-roles", "event_type": "visit"}]},
            ("admin", "service"),
        ),
        ("get", "/audit", None, ADMIN_ONLY),
        ("get", "/experiments", None, ("admin", "analyst")),
        ("get", "/reports/segments?tag=rfm_class", None, ("admin", "analyst")),
    ],
)
def test_every_role_is_allowed_or_refused(
    client: TestClient,
    tokens: Tokens,
    shop: Path,
    method: str,
    path: str,
    body: dict | None,
    allowed: tuple[str, ...],
) -> None:
    url = path.format(user=some_user(shop))
    for role in ("admin", "analyst", "service", "merchant"):
        response = client.request(method.upper(), url, json=body, headers=tokens.header(role))
        if role in allowed:
            assert response.status_code < 300, (role, url, response.text)
        else:
            assert response.status_code == 403, (role, url, response.text)
            assert f"role '{role}'" in response.json()["error"]["message"]
    assert client.request(method.upper(), url, json=body).status_code == 401


def test_save_and_export_by_role(client: TestClient, tokens: Tokens) -> None:
    for index, role in enumerate(("admin", "analyst", "merchant", "service")):
        saved = client.post(
            "/audiences", json={"name": f"women_{role}", "definition": LARGE}, headers=tokens.header(role)
        )
        exported = client.post(
            "/audiences/export",
            json={"definition": LARGE, "file_name": f"w{index}.csv"},
            headers=tokens.header(role),
        )
        expected = 403 if role == "service" else 201
        assert (saved.status_code, exported.status_code) == (expected, expected), (role, saved.text)


def test_merchant_sees_only_its_categories(client: TestClient, tokens: Tokens) -> None:
    tags = client.get("/catalog", headers=tokens.header("merchant")).json()["tags"]
    assert tags and {t["category"] for t in tags} <= {"basic", "extended", "category_scene"}
    assert "rfm_class" not in {t["id"] for t in tags}
    everything = client.get("/catalog", headers=tokens.header("analyst")).json()["tags"]
    assert "rfm_class" in {t["id"] for t in everything}
    gender = next(t for t in everything if t["id"] == "gender")
    assert gender["coverage"] > 0.5 and gender["distribution"]["top"]
    refused = client.get("/catalog/rfm_class", headers=tokens.header("merchant"))
    assert refused.status_code == 404


def test_merchant_is_refused_a_tag_outside_its_categories_by_name(client: TestClient, tokens: Tokens) -> None:
    response = client.post(
        "/audiences/estimate",
        json={"definition": "gender = 'male' AND rfm_class = '重要价值客户'"},
        headers=tokens.header("merchant"),
    )
    assert response.status_code == 403
    message = response.json()["error"]["message"]
    assert "'rfm_class'" in message and "operable" in message


def test_merchant_never_sees_a_size_below_its_minimum(client: TestClient, tokens: Tokens, shop: Path) -> None:
    small = size_of(shop, SMALL)
    assert 0 < small < MERCHANT_MIN
    merchant = client.post(
        "/audiences/estimate", json={"definition": SMALL}, headers=tokens.header("merchant")
    )
    assert merchant.json()["size"] is None and merchant.json()["withheld"] is True
    assert merchant.json()["share"] is None
    analyst = client.post("/audiences/estimate", json={"definition": SMALL}, headers=tokens.header("analyst"))
    assert analyst.json()["size"] == small and analyst.json()["withheld"] is False
    large = client.post("/audiences/estimate", json={"definition": LARGE}, headers=tokens.header("merchant"))
    assert large.json()["size"] == size_of(shop, LARGE) >= MERCHANT_MIN
    venn = client.post(
        "/audiences/venn", json={"definitions": [SMALL, LARGE]}, headers=tokens.header("merchant")
    )
    sizes = [region["size"] for region in venn.json()["regions"]]
    assert None in sizes and all(size is None or size >= MERCHANT_MIN for size in sizes)
    refused = client.post(
        "/audiences/export",
        json={"definition": SMALL, "file_name": "small.csv"},
        headers=tokens.header("merchant"),
    )
    assert refused.status_code == 403 and str(small) not in refused.text


def test_merchant_exports_only_salted_hashes(client: TestClient, tokens: Tokens, shop: Path) -> None:
    response = client.post(
        "/audiences/export",
        json={"definition": LARGE, "file_name": "partner.csv"},
        headers=tokens.header("merchant"),
    )
    assert response.status_code == 201, response.text
    assert response.json()["id_mode"] == "sha256"
    table = pacsv.read_csv(shop / "exports" / "partner.csv")
    assert table.column_names == ["user_id_sha256"] and table.num_rows == size_of(shop, LARGE)
    engine = AudienceEngine(shop, AS_OF)
    try:
        members = engine.user_ids(engine.members(LARGE))
    finally:
        engine.close()
    salted = client.post(
        "/audiences/export",
        json={"definition": LARGE, "file_name": "partner2.csv", "hash_salt": "shared-secret-1"},
        headers=tokens.header("merchant"),
    )
    rows = set(pacsv.read_csv(shop / "exports" / "partner2.csv").column(0).to_pylist())
    assert salted.status_code == 201
    assert rows == {hashlib.sha256(f"shared-secret-1{m}".encode()).hexdigest() for m in members}


def test_export_names_cannot_escape_the_export_folder(client: TestClient, tokens: Tokens, shop: Path) -> None:
    for name in ("../escape.csv", "/tmp/escape.csv", "..csv", ".hidden.csv", "sub/dir.csv", "x.txt"):
        response = client.post(
            "/audiences/export",
            json={"definition": LARGE, "file_name": name},
            headers=tokens.header("analyst"),
        )
        assert response.status_code == 400, name
        assert response.json()["error"]["type"] == "ExportError"
    assert not (shop / "escape.csv").exists() and not Path("/tmp/escape.csv").exists()


def test_audience_definitions_go_through_the_validator(client: TestClient, tokens: Tokens) -> None:
    response = client.post(
        "/audiences/estimate", json={"definition": "rfm_class = '重要价值'"}, headers=tokens.header("analyst")
    )
    assert response.status_code == 400
    assert "Did you mean '重要价值客户'?" in response.json()["error"]["message"]
    json_form = client.post(
        "/audiences/estimate",
        json={"definition": {"and": [{"tag": "city_tier", "op": "=", "value": "3"}]}},
        headers=tokens.header("analyst"),
    )
    assert json_form.status_code == 400 and json_form.json()["error"]["details"]["path"] == "$.and[0]"


def test_saved_audiences_are_listed_and_used_by_name(client: TestClient, tokens: Tokens, shop: Path) -> None:
    created = client.post(
        "/audiences",
        json={"name": "small_towns", "definition": "city_tier >= 3"},
        headers=tokens.header("analyst"),
    )
    assert created.status_code == 201 and created.json()["size"] == size_of(shop, "city_tier >= 3")
    listed = {a["name"]: a for a in client.get("/audiences", headers=tokens.header("analyst")).json()}
    assert listed["small_towns"]["created_by"] == "analyst"
    by_name = client.post(
        "/audiences/estimate", json={"definition": "@small_towns"}, headers=tokens.header("merchant")
    )
    assert by_name.json()["size"] == created.json()["size"]
    client.post(
        "/audiences",
        json={"name": "rfm_only", "definition": "rfm_score >= 10"},
        headers=tokens.header("analyst"),
    )
    merchant_list = {a["name"] for a in client.get("/audiences", headers=tokens.header("merchant")).json()}
    assert "small_towns" in merchant_list and "rfm_only" not in merchant_list
    refused = client.post(
        "/audiences/estimate", json={"definition": "@rfm_only"}, headers=tokens.header("merchant")
    )
    assert refused.status_code == 403 and "rfm_score" in refused.text


def test_every_lookup_save_and_export_is_audited(client: TestClient, tokens: Tokens, shop: Path) -> None:
    user = some_user(shop)
    client.get(f"/users/{user}/tags", headers=tokens.header("analyst"))
    client.post(
        "/audiences", json={"name": "audited", "definition": "city_tier <= 2"}, headers=tokens.header("admin")
    )
    client.post(
        "/audiences/export",
        json={"definition": "city_tier <= 2", "file_name": "audited.parquet"},
        headers=tokens.header("analyst"),
    )
    trail = client.get("/audit", params={"limit": 500}, headers=tokens.header("admin")).json()
    lookup = next(
        r for r in trail if r["action"] == "lookup" and r["who"] == "analyst" and r["target"] == user
    )
    assert lookup["count"] == 1 and lookup["role"] == "analyst"
    saved = next(r for r in trail if r["action"] == "audience_save" and r["target"] == "audited")
    assert saved["who"] == "admin" and saved["count"] == size_of(shop, "city_tier <= 2")
    exported = next(r for r in trail if r["action"] == "export" and r["target"] == "audited.parquet")
    assert exported["count"] == saved["count"] and exported["detail"].startswith("plain")
    only = client.get(
        "/audit", params={"action": "export", "who": "merchant"}, headers=tokens.header("admin")
    ).json()
    assert only and all(r["who"] == "merchant" and r["detail"].startswith("sha256") for r in only)


def test_rate_limits_answer_429(shop: Path) -> None:
    from huaxiang.audience.store import default_url
    from huaxiang.serve.auth import TokenStore

    store = TokenStore(default_url(shop))
    token = store.create("slow-service", "service", rate_per_s=3).token
    store.close()
    with serving(shop) as client:
        codes = [
            client.get("/catalog", headers={"Authorization": f"Bearer {token}"}).status_code for _ in range(8)
        ]
        assert codes[:3] == [200, 200, 200] and 429 in codes
        limited = client.get("/catalog", headers={"Authorization": f"Bearer {token}"})
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
        time.sleep(1.1)
        assert client.get("/catalog", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_revoked_and_bad_tokens_are_401(shop: Path) -> None:
    from huaxiang.audience.store import default_url
    from huaxiang.serve.auth import TokenStore, token_hash

    store = TokenStore(default_url(shop))
    created = store.create("to-revoke", "analyst")
    with serving(shop) as client:
        header = {"Authorization": f"Bearer {created.token}"}
        assert client.get("/catalog", headers=header).status_code == 200
        store.revoke("to-revoke")
        client.app.state.service.tokens.revoke("to-revoke")
        response = client.get("/catalog", headers=header)
        assert response.status_code == 401 and "revoked" in response.json()["error"]["message"]
        assert client.get("/catalog", headers={"Authorization": "Bearer nonsense"}).status_code == 401
        forged = created.token[:-1] + ("A" if created.token[-1] != "A" else "B")
        assert client.get("/catalog", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    rows = store.engine.connect().exec_driver_sql("SELECT token_sha256 FROM service_tokens").fetchall()
    store.close()
    assert created.token not in str(rows) and token_hash(created.token) in {r[0] for r in rows}


# ---------------------------------------------------------------------------- experiments and report data


def assert_close(found: object, expected: object, where: str = "") -> None:
    """Equal JSON data, floats within a relative 1e-9."""
    if isinstance(expected, float) and isinstance(found, float | int):
        assert found == pytest.approx(expected, rel=1e-9, abs=1e-12), where
    elif isinstance(expected, dict) and isinstance(found, dict):
        assert sorted(found) == sorted(expected), where
        for key in expected:
            assert_close(found[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list) and isinstance(found, list):
        assert len(found) == len(expected), where
        for index, (item, wanted) in enumerate(zip(found, expected, strict=True)):
            assert_close(item, wanted, f"{where}[{index}]")
    else:
        assert found == expected, where


def test_experiments_and_their_results_are_the_library_calls(
    client: TestClient, tokens: Tokens, shop: Path
) -> None:
    """The sample shop's planted campaign as an experiment: listed, shown, its results as the library's."""
    from huaxiang.analysis.experiments import experiment_from_touches
    from huaxiang.analysis.metrics import experiment_results

    experiment_from_touches(shop, "camp_2026_double11_coupon", name="double11")
    listed = client.get("/experiments", headers=tokens.header("analyst")).json()
    assert [item["name"] for item in listed] == ["double11"]
    one = client.get("/experiments/double11", headers=tokens.header("admin")).json()
    assert one["sizes"] == listed[0]["sizes"] and sum(one["sizes"].values()) > 0
    body = client.get(
        "/experiments/double11/results", params={"by": "lifecycle_stage"}, headers=tokens.header("analyst")
    ).json()
    expected = experiment_results(shop, "double11", by="lifecycle_stage", save=False).to_dict()
    # Floats to 1e-9: DuckDB adds them in parallel, so two runs may differ in the last bits.
    assert_close(body, json.loads(json.dumps(expected)))
    assert body["segment_tag"] == "lifecycle_stage" and body["metrics"]
    missing = client.get("/experiments/double12/results", headers=tokens.header("admin"))
    assert missing.status_code == 404 and "double12" in missing.json()["error"]["message"]
    assert client.get("/experiments", headers=tokens.header("merchant")).status_code == 403


def test_segment_sizes_and_arpu_are_the_reports_data(client: TestClient, tokens: Tokens, shop: Path) -> None:
    from huaxiang.analysis.report import segment_summary

    body = client.get(
        "/reports/segments", params={"tag": "rfm_class"}, headers=tokens.header("analyst")
    ).json()
    assert_close(body, json.loads(json.dumps(segment_summary(shop, "rfm_class"))))
    assert body["as_of"] == AS_OF.isoformat() and body["users"] == USERS
    buyers = pq.read_table(shop / "snapshots" / AS_OF.isoformat() / "tags.parquet", columns=["rfm_class"])
    assert sum(s["users"] for s in body["segments"]) == USERS - buyers.column(0).null_count
    assert body["segments"][0]["label"].startswith(body["segments"][0]["value"])
    numeric = client.get("/reports/segments", params={"tag": "age"}, headers=tokens.header("admin"))
    assert numeric.status_code == 400 and "enum or boolean" in numeric.json()["error"]["message"]
    unknown = client.get("/reports/segments", params={"tag": "rfm_clas"}, headers=tokens.header("admin"))
    assert unknown.status_code == 404 and "rfm_class" in unknown.json()["error"]["message"]
