"""The console's browser tests share one served sample shop: built once per test process.

The shop is the analysis tests' (4,000 users, seed 7, snapshots 2026-09-30 and 2026-10-31)
with the planted 双11 campaign as the experiment ``double11`` and its results saved. The
service runs in a thread (uvicorn on a free localhost port) for the whole session; tokens
of every role are made for it.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from huaxiang.analysis.experiments import experiment_from_touches
from huaxiang.analysis.metrics import experiment_results
from huaxiang.serve.app import create_app
from huaxiang.serve.settings import Settings

sys.path.insert(0, str(Path(__file__).parents[1] / "unit"))
from analysis_shop import AS_OF, BEFORE, CAMPAIGN, sample_shop  # noqa: E402
from serve_shop import Tokens, make_tokens  # noqa: E402

__all__ = ["AS_OF", "BEFORE", "Console", "sign_in"]


@dataclass
class Console:
    """A served shop: its folder, base URL (``http://127.0.0.1:PORT``) and a token per role."""

    root: Path
    url: str
    tokens: Tokens

    def api(self, method: str, path: str, role: str = "admin", **kwargs: Any) -> httpx.Response:
        """Call the service's API as ``role`` (to compare what a page shows with the API)."""
        return httpx.request(method, self.url + path, headers=self.tokens.header(role), timeout=60, **kwargs)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    root = sample_shop(tmp_path_factory)
    experiment_from_touches(root, CAMPAIGN, name="double11")
    experiment_results(root, "double11")
    tokens = make_tokens(root)
    app = create_app(Settings(workspace=root))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the console's server did not start")
        time.sleep(0.05)
    try:
        yield Console(root, f"http://127.0.0.1:{port}", tokens)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def sign_in(page: Any, console: Console, role: str = "admin", path: str = "/console/") -> None:
    """Sign in through the form as ``role`` and land on ``path``."""
    page.goto(f"{console.url}/console/signin?next={path}")
    page.fill("#token", getattr(console.tokens, role))
    page.click("#sign-in")
    page.wait_for_load_state("load")
