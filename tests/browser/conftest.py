"""Browser tests: Playwright for Python driving Debian's Chromium, with no network at all.

``page`` opens pages in headless Chromium (``/usr/bin/chromium``; ``playwright install``
cannot download here) and aborts every request that is not to localhost or a local
file; ``blocked`` lists the requests it aborted, so a test can assert there were none.
Without Chromium or Playwright the tests skip and say how to install them, unless
``HUAXIANG_REQUIRE_BROWSER=1`` (set by ``.ci/run``): then they fail with the same message.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

# The console's served shop (a session fixture shared by the console's page tests).
from console_server import console  # noqa: F401

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
LOCAL_SCHEMES = frozenset({"file", "data", "blob", "about"})


def _skip_reason() -> str | None:
    if not CHROMIUM.exists() or shutil.which(str(CHROMIUM)) is None:
        return "install chromium: apt-get install -y chromium"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "install playwright: .venv/bin/pip install playwright (pip install -e '.[dev]')"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _skip_reason()
    if reason is None:
        return
    here = Path(__file__).parent
    mine = [item for item in items if here in Path(str(item.fspath)).parents]
    if mine and os.environ.get("HUAXIANG_REQUIRE_BROWSER") == "1":
        raise pytest.UsageError(f"browser tests need a browser (HUAXIANG_REQUIRE_BROWSER=1): {reason}")
    for item in mine:
        item.add_marker(pytest.mark.skip(reason=reason))


def is_local(url: str) -> bool:
    """A request the tests allow: a local file, inline data, or localhost."""
    parsed = urlparse(url)
    if parsed.scheme in LOCAL_SCHEMES:
        return True
    return parsed.scheme in ("http", "https", "ws", "wss") and (parsed.hostname or "") in LOCAL_HOSTS


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture()
def blocked() -> list[str]:
    """URLs of the requests the page tried to make outside localhost and local files."""
    return []


@pytest.fixture()
def page(browser: Any, blocked: list[str]) -> Iterator[Any]:
    """A fresh page (1280 × 900) whose non-local requests are aborted and recorded in ``blocked``;
    page errors and console errors are collected in ``page.errors``."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")

    def route(request_route: Any) -> None:
        url = request_route.request.url
        if is_local(url):
            request_route.continue_()
        else:
            blocked.append(url)
            request_route.abort()

    context.route("**/*", route)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    opened.on(
        "console",
        lambda message: errors.append(f"console: {message.text}") if message.type == "error" else None,
    )
    opened.errors = errors
    yield opened
    context.close()
