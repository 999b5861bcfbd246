"""``huaxiang token create|list|revoke``, ``huaxiang audit`` and ``huaxiang events fold``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from serve_shop import copy_shop, serving
from typer.testing import CliRunner

from huaxiang.audience.store import default_url
from huaxiang.cli import app
from huaxiang.serve.auth import TokenStore

runner = CliRunner()


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_shop(tmp_path_factory, "serve-cli")


def test_token_create_list_revoke(shop: Path) -> None:
    created = runner.invoke(
        app,
        [
            "token",
            "create",
            "-w",
            str(shop),
            "--role",
            "merchant",
            "--tag-categories",
            "basic,scene",
            "--min-audience",
            "1000",
        ],
    )
    assert created.exit_code == 0, created.output
    token = created.output.splitlines()[1].strip()
    principal = TokenStore(default_url(shop)).verify(token)
    assert principal.name == "merchant-1" and principal.role == "merchant"
    assert (
        principal.tag_categories == frozenset({"basic", "category_scene"}) and principal.min_audience == 1000
    )
    assert "export salt" in created.output and principal.export_salt in created.output
    listed = runner.invoke(app, ["token", "list", "-w", str(shop), "--json"])
    rows = {row["name"]: row for row in json.loads(listed.output)}
    assert rows["merchant-1"]["tag_categories"] == ["basic", "category_scene"]
    assert token not in listed.output
    revoked = runner.invoke(app, ["token", "revoke", "merchant-1", "-w", str(shop)])
    assert revoked.exit_code == 0
    assert json.loads(runner.invoke(app, ["token", "list", "-w", str(shop), "--json"]).output)[0][
        "revoked_at"
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "owner"], "unknown role 'owner'"),
        (["--role", "merchant"], "a merchant token needs --tag-categories"),
        (["--role", "merchant", "--tag-categories", "basics"], "Did you mean 'basic'?"),
        (["--role", "analyst", "--min-audience", "5"], "apply to merchant tokens only"),
    ],
)
def test_token_create_refuses_bad_options_clearly(shop: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["token", "create", "-w", str(shop), *args])
    assert result.exit_code == 2 and message in result.output


def test_audit_and_fold_from_the_command_line(shop: Path) -> None:
    store = TokenStore(default_url(shop))
    token = store.create("desk", "service").token
    store.close()
    with serving(shop) as client:
        header = {"Authorization": f"Bearer {token}"}
        assert client.get("/users/U00000002/tags", headers=header).status_code == 200
        client.post(
            "/events", json={"events": [{"user_id": "U00000002", "event_type": "view"}]}, headers=header
        )
    audit = runner.invoke(app, ["audit", "-w", str(shop), "--action", "lookup", "--json"])
    assert audit.exit_code == 0, audit.output
    records = json.loads(audit.output)
    assert records[0]["who"] == "desk" and records[0]["target"] == "U00000002" and records[0]["count"] == 1
    folded = runner.invoke(app, ["events", "fold", "-w", str(shop)])
    assert folded.exit_code == 0 and "folded 1 events" in folded.output
    again = runner.invoke(app, ["events", "fold", "-w", str(shop)])
    assert "folded 0 events" in again.output
