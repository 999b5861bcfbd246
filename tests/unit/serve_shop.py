"""Shared by the tag-service tests: one sample shop built once per session, copied per module."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from huaxiang.audience.store import default_url
from huaxiang.serve.app import create_app
from huaxiang.serve.auth import TokenStore
from huaxiang.serve.settings import Settings
from huaxiang.workspace import Workspace

AS_OF = dt.date(2026, 10, 31)
USERS = 1_500
MERCHANT_MIN = 100
_built: dict[str, Path] = {}


def built_shop(factory: pytest.TempPathFactory) -> Path:
    """The sample shop (1,500 users, seed 7) ingested and built as of 2026-10-31, once per session."""
    if "shop" not in _built:
        root = factory.mktemp("serve-shop-base")
        workspace = Workspace.create_sample(root, users=USERS, seed=7)
        workspace.ingest()
        workspace.build(AS_OF)
        _built["shop"] = root
    return _built["shop"]


def copy_shop(factory: pytest.TempPathFactory, name: str) -> Path:
    """A private copy of the built shop (the snapshot links are relative, so they survive the copy)."""
    target = factory.mktemp(name) / "shop"
    shutil.copytree(built_shop(factory), target, symlinks=True)
    return target


@dataclass
class Tokens:
    admin: str
    analyst: str
    service: str
    merchant: str

    def header(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {getattr(self, role)}"}


def make_tokens(root: Path, **rates: int) -> Tokens:
    store = TokenStore(default_url(root))
    try:
        made = {
            role: store.create(role, role, rate_per_s=rates.get(role, 1_000)).token
            for role in ("admin", "analyst", "service")
        }
        made["merchant"] = store.create(
            "merchant",
            "merchant",
            tag_categories="basic,extended,scene",
            min_audience=MERCHANT_MIN,
            rate_per_s=rates.get("merchant", 1_000),
        ).token
    finally:
        store.close()
    return Tokens(**made)


@contextmanager
def serving(root: Path, **settings: Any) -> Iterator[TestClient]:
    """A TestClient over ``create_app`` for the workspace (closed at the end)."""
    app = create_app(Settings(workspace=root, **settings))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client
