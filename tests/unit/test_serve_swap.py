"""A new snapshot is swapped in under load: every lookup in flight succeeds, none mixes two snapshots."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
import uvicorn
from serve_shop import AS_OF, copy_shop, make_tokens

from huaxiang.serve.app import create_app
from huaxiang.serve.settings import Settings
from huaxiang.workspace import Workspace

pytestmark = pytest.mark.slow
NEXT = AS_OF + dt.timedelta(days=1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _recency(shop: Path, as_of: dt.date) -> dict[str, int | None]:
    table = pq.read_table(
        shop / "snapshots" / as_of.isoformat() / "tags.parquet", columns=["user_id", "recency_days"]
    )
    return dict(zip(table.column(0).to_pylist(), table.column(1).to_pylist(), strict=True))


def test_lookups_in_flight_all_succeed_while_a_new_snapshot_is_published(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    shop = copy_shop(tmp_path_factory, "serve-swap")
    tokens = make_tokens(shop, service=100_000)
    before = _recency(shop, AS_OF)
    users = [user for user, days in before.items() if days is not None][:50]
    app = create_app(Settings(workspace=shop, watch_interval_s=0.1))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = threading.Thread(target=server.run, daemon=True)
    serving.start()
    while not server.started:
        time.sleep(0.05)
    stop = threading.Event()
    seen: list[tuple[str, str, int | None]] = []
    failures: list[str] = []

    def hammer(offset: int) -> None:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers=tokens.header("service"), timeout=10
        ) as c:
            i = offset
            while not stop.is_set():
                user = users[i % len(users)]
                i += 1
                try:
                    response = c.get(f"/users/{user}/tags")
                except httpx.HTTPError as error:
                    failures.append(f"{user}: {error!r}")
                    continue
                if response.status_code != 200:
                    failures.append(f"{user}: {response.status_code} {response.text[:200]}")
                    continue
                body = response.json()
                seen.append((body["as_of"], user, body["tags"]["recency_days"]))

    threads = [threading.Thread(target=hammer, args=(k * 7,)) for k in range(4)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        Workspace(shop).build(NEXT)  # publishes snapshots/NEXT by a symlink swap while lookups run
        deadline = time.monotonic() + 20
        while sum(1 for as_of, _, _ in seen[-200:] if as_of == NEXT.isoformat()) < 100:
            assert time.monotonic() < deadline, "the new snapshot was not swapped in"
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=20)
        server.should_exit = True
        serving.join(timeout=20)
    assert failures == []
    dates = Counter(as_of for as_of, _, _ in seen)
    assert dates[AS_OF.isoformat()] > 50 and dates[NEXT.isoformat()] > 50, dates
    after = _recency(shop, NEXT)
    expected = {AS_OF.isoformat(): before, NEXT.isoformat(): after}
    assert any(before[u] != after[u] for u in users)
    # Every answer is wholly from one snapshot: its values are those of the date it reports.
    assert all(expected[as_of][user] == days for as_of, user, days in seen)
    # Once the new snapshot is served, no answer goes back to the old one (beyond the few requests
    # the other threads had in flight when the first new answer came back).
    first_new = next(i for i, (as_of, _, _) in enumerate(seen) if as_of == NEXT.isoformat())
    late = [as_of for as_of, _, _ in seen[first_new + 20 :]]
    assert late and set(late) == {NEXT.isoformat()}
