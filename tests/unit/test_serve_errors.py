"""One JSON error shape for every error of the tag service, and a bounded schemathesis run (no 5xx)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from serve_shop import Tokens, copy_shop, make_tokens, serving

from huaxiang.serve.store import StoreSnapshot


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_shop(tmp_path_factory, "serve-errors")


@pytest.fixture(scope="module")
def tokens(shop: Path) -> Tokens:
    return make_tokens(shop, merchant=3)


@pytest.fixture(scope="module")
def client(shop: Path, tokens: Tokens) -> Iterator[TestClient]:
    with serving(shop, max_body_bytes=4_096, max_events_per_batch=5) as found:
        yield found


def assert_shape(response: Any, status: int, kind: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"type", "message", "status", "details"}
    assert error["status"] == status and isinstance(error["details"], dict)
    assert isinstance(error["message"], str) and len(error["message"]) > 10
    if kind is not None:
        assert error["type"] == kind
    return error


def test_every_kind_of_error_has_the_one_shape(client: TestClient, tokens: Tokens) -> None:
    analyst, merchant = tokens.header("analyst"), tokens.header("merchant")
    assert_shape(client.get("/catalog"), 401, "AuthError")
    assert_shape(client.get("/catalog", headers={"Authorization": "Bearer hx_0000"}), 401, "AuthError")
    assert_shape(client.get("/users/U1/tags", headers=merchant), 403, "ForbiddenError")
    assert_shape(client.get("/no/such/endpoint", headers=analyst), 404, "HTTPError")
    assert_shape(client.get("/users/NOBODY/tags", headers=analyst), 404, "NotFoundError")
    assert_shape(client.delete("/catalog", headers=analyst), 405, "HTTPError")
    error = assert_shape(
        client.post(
            "/audiences/estimate",
            content=b'{"definition": ',
            headers={**analyst, "content-type": "application/json"},
        ),
        400,
        "MalformedJSON",
    )
    assert "not valid JSON" in error["message"]
    error = assert_shape(
        client.post(
            "/audiences/estimate", json={"definition": "gender = 'male'", "extra": 1}, headers=analyst
        ),
        422,
        "ValidationError",
    )
    assert "extra" in error["message"]
    error = assert_shape(
        client.post(
            "/audiences/top",
            json={"definition": "gender = 'male'", "by": "age", "n": "many"},
            headers=analyst,
        ),
        422,
    )
    assert "body.n" in error["message"]
    assert_shape(client.post("/audiences/estimate", json=["not", "an", "object"], headers=analyst), 422)
    error = assert_shape(
        client.post("/audiences/estimate", json={"definition": "rfm_clas = 'x'"}, headers=analyst),
        400,
        "DefinitionError",
    )
    assert "Did you mean 'rfm_class'?" in error["message"]
    assert_shape(
        client.post(
            "/audiences/export",
            json={"definition": "gender = 'male'", "file_name": "../x.csv"},
            headers=analyst,
        ),
        400,
        "ExportError",
    )
    assert_shape(
        client.post(
            "/audiences/top",
            json={"definition": "gender = 'male' AND gender = 'female'", "by": "age", "n": 3},
            headers=analyst,
        ),
        422,
        "EmptyAudienceError",
    )


def test_bad_events_name_the_field(client: TestClient, tokens: Tokens) -> None:
    service = tokens.header("service")
    error = assert_shape(
        client.post("/events", json={"events": [{"user_id": "U1", "event_type": "carts"}]}, headers=service),
        422,
        "RequestError",
    )
    assert "events[0].event_type" in error["message"] and "Did you mean 'cart'?" in error["message"]
    error = assert_shape(
        client.post(
            "/events",
            json={"events": [{"user_id": "U1", "event_type": "cart", "event_time": "2999-01-01T00:00:00"}]},
            headers=service,
        ),
        422,
    )
    assert "in the future" in error["message"]
    assert_shape(
        client.post(
            "/events", json={"events": [{"user_id": "U1", "event_type": "cart", "price": 3}]}, headers=service
        ),
        422,
        "ValidationError",
    )
    assert_shape(client.post("/events", json={"events": []}, headers=service), 422)
    six = {"events": [{"user_id": f"U{i}", "event_type": "visit"} for i in range(6)]}
    error = assert_shape(client.post("/events", json=six, headers=service), 400, "RequestError")
    assert "at most 5 events" in error["message"]


def test_request_size_is_limited(client: TestClient, tokens: Tokens) -> None:
    big = {"definition": "gender = 'male' OR " * 400 + "gender = 'female'"}
    error = assert_shape(
        client.post("/audiences/estimate", json=big, headers=tokens.header("analyst")), 413, "PayloadTooLarge"
    )
    assert "4,096 bytes" in error["message"]

    def chunks() -> Iterator[bytes]:
        yield b'{"definition": "'
        for _ in range(100):
            yield b"gender = 'male' OR " * 10
        yield b"gender = 'male'\"}"

    streamed = client.post(
        "/audiences/estimate",
        content=chunks(),
        headers={**tokens.header("analyst"), "content-type": "application/json"},
    )
    assert_shape(streamed, 413, "PayloadTooLarge")


def test_rate_limit_has_the_shape(client: TestClient, tokens: Tokens) -> None:
    codes = [client.get("/catalog", headers=tokens.header("merchant")) for _ in range(6)]
    limited = [r for r in codes if r.status_code == 429]
    assert limited
    assert assert_shape(limited[0], 429, "RateLimitError")["details"]["retry_after_s"] > 0


def test_an_unexpected_failure_is_a_500_in_the_shape(
    client: TestClient, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: StoreSnapshot, user_id: str) -> None:
        raise ZeroDivisionError("bug")

    monkeypatch.setattr(StoreSnapshot, "lookup", broken)
    error = assert_shape(client.get("/users/U1/tags", headers=tokens.header("analyst")), 500, "InternalError")
    assert "bug" not in error["message"]


# ---------------------------------------------------------------------------- schemathesis


def test_no_generated_request_gets_a_5xx(client: TestClient, tokens: Tokens) -> None:
    """Schemathesis generates requests for every operation of the OpenAPI spec (bounded: 6 examples each)."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    seen: list[int] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=6,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=True,
        )
        def run(case: Any) -> None:
            response = case.call(headers=tokens.header("admin"))
            seen.append(response.status_code)
            assert response.status_code < 500, (case.method, case.path, response.text)
            if response.status_code >= 400:
                assert set(response.json()["error"]) == {"type", "message", "status", "details"}

        run()
    assert len(seen) >= len(operations) and any(code < 300 for code in seen)
