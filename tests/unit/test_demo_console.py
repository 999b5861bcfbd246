"""``huaxiang demo`` ends with the console's URL and an admin token to sign in with."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from huaxiang.audience.store import default_url
from huaxiang.cli import _print_console
from huaxiang.cli_common import out
from huaxiang.serve.auth import TokenStore


def test_console_url_and_a_new_admin_token_then_no_second_one(tmp_path: Path) -> None:
    with out.capture() as first:
        _print_console(tmp_path)
    text = first.get()
    assert f"huaxiang serve -w {tmp_path}" in text
    assert "http://127.0.0.1:8000/console/" in text
    found = re.search(r"admin token \(shown once, keep it\): (hx_\S+)", text)
    assert found is not None, text
    store = TokenStore(default_url(tmp_path))
    try:
        assert store.verify(found.group(1)).role == "admin"
    finally:
        store.close()

    with out.capture() as second:
        _print_console(tmp_path)
    again = second.get()
    assert "hx_" not in again  # the workspace has an admin token now: none is made or shown
    assert f"huaxiang token create -w {tmp_path} --role admin" in again


def test_make_console_is_named_for_the_make_demo_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo").mkdir()
    with out.capture() as captured:
        _print_console(Path("demo"))
    assert "huaxiang serve -w demo          (or: make console)" in captured.get()
