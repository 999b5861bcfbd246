"""Real-time events: durable log (kill -9), real-time tags within a second, replay, and the fold."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from serve_shop import AS_OF, Tokens, copy_shop, make_tokens, serving

from huaxiang.serve.events import EventLog, fold


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_shop(tmp_path_factory, "serve-events")


@pytest.fixture(scope="module")
def tokens(shop: Path) -> Tokens:
    return make_tokens(shop)


def outing_product(shop: Path) -> str:
    products = pq.read_table(
        shop / "data" / "products.parquet", columns=["product_id", "scene_tags"]
    ).to_pylist()
    return next(p["product_id"] for p in products if p["scene_tags"] and "outing" in p["scene_tags"])


def realtime(client: Any, tokens: Tokens, user: str) -> dict[str, Any]:
    response = client.get(f"/users/{user}/tags", headers=tokens.header("service"))
    assert response.status_code == 200, response.text
    return dict(response.json()["realtime"])


def test_an_event_shows_in_the_realtime_tags_at_once(shop: Path, tokens: Tokens) -> None:
    product = outing_product(shop)
    with serving(shop) as client:
        user = "U00000003"
        before = realtime(client, tokens, user)
        assert before["rt_cart_1h"] == 0 and before["rt_cart_not_bought_1h"] is False
        sent = time.monotonic()
        posted = client.post(
            "/events",
            json={
                "events": [
                    {"user_id": user, "event_type": "cart", "product_id": product},
                    {"user_id": user, "event_type": "view", "product_id": product},
                ]
            },
            headers=tokens.header("service"),
        )
        assert posted.status_code == 200 and posted.json() == {"accepted": 2}
        after = realtime(client, tokens, user)
        assert time.monotonic() - sent < 1.0
        assert after["rt_cart_1h"] == 1 and after["rt_cart_24h"] == 1 and after["rt_view_1h"] == 1
        assert after["rt_cart_not_bought_1h"] is True
        # Catalog weights: view 1, cart 4 (templates/tags/scenes.yaml).
        assert after["rt_scene_outing_increment"] == before["rt_scene_outing_increment"] + 5.0
        assert after["rt_last_visit_time"] is not None
        bought = client.post(
            "/events",
            json={"events": [{"user_id": user, "event_type": "purchase", "product_id": product}]},
            headers=tokens.header("service"),
        )
        assert bought.status_code == 200
        assert realtime(client, tokens, user)["rt_cart_not_bought_1h"] is False


def test_windows_count_only_recent_events_and_times_are_local(shop: Path, tokens: Tokens) -> None:
    user = "U00000004"
    two_hours_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).isoformat()
    with serving(shop) as client:
        client.post(
            "/events",
            json={"events": [{"user_id": user, "event_type": "cart", "event_time": two_hours_ago}]},
            headers=tokens.header("service"),
        )
        found = realtime(client, tokens, user)
    assert found["rt_cart_1h"] == 0 and found["rt_cart_24h"] == 1 and found["rt_cart_not_bought_1h"] is False
    shanghai = dt.datetime.fromisoformat(two_hours_ago).astimezone(dt.timezone(dt.timedelta(hours=8)))
    assert found["rt_last_visit_time"] == shanghai.replace(tzinfo=None).isoformat()


def test_a_new_user_gets_realtime_tags_only(shop: Path, tokens: Tokens) -> None:
    with serving(shop) as client:
        client.post(
            "/events",
            json={"events": [{"user_id": "NEW-1", "event_type": "visit"}]},
            headers=tokens.header("service"),
        )
        body = client.get("/users/NEW-1/tags", headers=tokens.header("service")).json()
    assert body["in_snapshot"] is False and body["tags"] == {} and body["realtime"]["rt_visit_1h"] == 1


def test_another_process_sees_the_event_within_a_second(shop: Path, tokens: Tokens) -> None:
    """Two services on one workspace stand for two worker processes: each follows the shared log."""
    with serving(shop) as first, serving(shop) as second:
        user = "U00000005"
        start = realtime(second, tokens, user)["rt_favorite_24h"]
        first.post(
            "/events",
            json={"events": [{"user_id": user, "event_type": "favorite"}]},
            headers=tokens.header("service"),
        )
        sent = time.monotonic()
        while realtime(second, tokens, user)["rt_favorite_24h"] == start:
            assert time.monotonic() - sent < 1.0, "the other process did not see the event within a second"
            time.sleep(0.02)


def test_a_restart_replays_the_log(shop: Path, tokens: Tokens) -> None:
    user = "U00000006"
    with serving(shop) as client:
        client.post(
            "/events",
            json={"events": [{"user_id": user, "event_type": "search", "keyword": "帐篷"}] * 3},
            headers=tokens.header("service"),
        )
    with serving(shop) as client:
        assert realtime(client, tokens, user)["rt_search_1h"] == 3


def test_the_fold_appends_logged_events_to_the_canonical_events_once(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    shop = copy_shop(tmp_path_factory, "serve-fold")
    tokens = make_tokens(shop)
    before = pq.read_table(shop / "data" / "events.parquet")
    with serving(shop) as client:
        client.post(
            "/events",
            json={
                "events": [
                    {
                        "user_id": "U00000001",
                        "event_type": "view",
                        "product_id": "NOT-A-PRODUCT",
                        "event_time": "2026-11-01T10:00:00",
                    },
                    {"user_id": "U00000002", "event_type": "cart", "event_time": "2026-11-01T10:05:00+08:00"},
                ]
            },
            headers=tokens.header("service"),
        )
    result = fold(shop)
    after = pq.read_table(shop / "data" / "events.parquet")
    assert result.folded == 2 and after.num_rows == before.num_rows + 2 == result.events_total
    assert after.schema == before.schema
    new = after.slice(before.num_rows).to_pylist()
    assert new[0]["event_time"] == dt.datetime(2026, 11, 1, 10, 0) and new[0]["is_orphan"] is True
    assert new[1]["user_id"] == "U00000002" and new[1]["event_type"] == "cart"
    assert fold(shop).folded == 0
    assert pq.read_table(shop / "data" / "events.parquet").num_rows == after.num_rows
    counts = pc.value_counts(after.column("user_id")).to_pylist()
    assert counts  # the table is readable as a whole
    assert (shop / "data").is_symlink() and AS_OF.isoformat() in os.listdir(shop / "snapshots")


# ---------------------------------------------------------------------------- kill -9


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(shop: Path, port: int, output: Path) -> subprocess.Popen[bytes]:
    """``huaxiang serve`` in a child process, its output in ``output``; returns once /health answers."""
    command = [sys.executable, "-m", "huaxiang.cli", "serve", "-w", str(shop), "--port", str(port)]
    with open(output, "wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    process.wait()
    raise AssertionError("the service did not start: " + output.read_text())


@pytest.mark.slow
def test_acknowledged_events_survive_kill_9(tmp_path_factory: pytest.TempPathFactory) -> None:
    shop = copy_shop(tmp_path_factory, "serve-kill")
    port = _free_port()
    process = _start(shop, port, shop / "first.out")
    try:
        printed = (shop / "first.out").read_text()
        assert f"http://127.0.0.1:{port}" in printed
        token = re.search(r"admin token \(shown once, keep it\): (hx_\S+)", printed)
        assert token is not None, printed
        header = {"Authorization": f"Bearer {token.group(1)}"}
        acknowledged: list[str] = []
        stop = threading.Event()

        def send() -> None:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=header, timeout=5) as client:
                batch = 0
                while not stop.is_set():
                    users = [f"KILL-{batch}-{i}" for i in range(20)]
                    try:
                        response = client.post(
                            "/events",
                            json={"events": [{"user_id": user, "event_type": "cart"} for user in users]},
                        )
                    except httpx.HTTPError:
                        return  # the server died mid-request: this batch was never acknowledged
                    if response.status_code == 200:
                        acknowledged.extend(users)
                    batch += 1

        sender = threading.Thread(target=send)
        sender.start()
        time.sleep(1.5)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        stop.set()
        sender.join(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert len(acknowledged) >= 100, "too few batches were acknowledged to test anything"
    logged = {e["user_id"] for path in EventLog(shop).segments() for e in EventLog.read(path, 0)[0]}
    assert set(acknowledged) <= logged
    # And the restarted service serves them (it replays the log); no new admin token is printed.
    port = _free_port()
    process = _start(shop, port, shop / "second.out")
    try:
        assert "admin token" not in (shop / "second.out").read_text()
        response = httpx.get(
            f"http://127.0.0.1:{port}/users/{acknowledged[-1]}/tags", headers=header, timeout=5
        )
        assert response.status_code == 200 and response.json()["realtime"]["rt_cart_1h"] == 1
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
