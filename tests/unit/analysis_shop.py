"""The sample shop the analysis tests share: built once per test process (4,000 users, seed 7).

Two snapshots (2026-09-30 and 2026-10-31) so the report has AIPL flows and a migration
Sankey. The planted pre-双11 campaign (touches on 2026-10-18) is in the ``touches`` table.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from huaxiang.workspace import Workspace

USERS = 4_000
SEED = 7
BEFORE = dt.date(2026, 9, 30)
AS_OF = dt.date(2026, 10, 31)
CAMPAIGN = "camp_2026_double11_coupon"
_built: dict[str, Path] = {}


def sample_shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh copy of the built sample shop (the build itself runs once per process)."""
    if "shop" not in _built:
        root = tmp_path_factory.mktemp("analysis_shop_master") / "shop"
        workspace = Workspace.create_sample(root, users=USERS, seed=SEED)
        workspace.ingest()
        workspace.build(BEFORE)
        workspace.build(AS_OF)
        _built["shop"] = root
    copy = tmp_path_factory.mktemp("analysis_shop") / "shop"
    shutil.copytree(_built["shop"], copy, symlinks=True)
    # The published links point inside the workspace by relative paths, so the copy stands alone.
    return copy


def planted(root: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((root / "sources" / "planted.json").read_text(encoding="utf-8"))
    return data
