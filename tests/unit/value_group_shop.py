"""The sample shop the value-group tests share: 3,000 users (seed 7) built with value_groups.yaml alone.

Built once per test process; ``truth.parquet`` (the planted persona per user) is in
``sources/`` as the sample generator writes it.
"""

from __future__ import annotations

import datetime as dt
import shutil
from importlib import resources
from pathlib import Path

import pytest

from huaxiang.engine import BuildResult
from huaxiang.workspace import Workspace

AS_OF = dt.date(2026, 11, 1)
_built: dict[str, tuple[Workspace, BuildResult]] = {}


def value_group_shop(factory: pytest.TempPathFactory) -> tuple[Workspace, BuildResult]:
    """The workspace and its build as of :data:`AS_OF` (the same objects for every caller)."""
    if "shop" not in _built:
        workspace = Workspace.create_sample(factory.mktemp("value_groups") / "shop", users=3_000, seed=7)
        workspace.ingest()
        tags = workspace.path / "tags"
        for old in tags.glob("*.yaml"):
            old.unlink()
        packaged = Path(str(resources.files("huaxiang.templates").joinpath("tags")))
        shutil.copy(packaged / "value_groups.yaml", tags)
        _built["shop"] = (workspace, workspace.build(AS_OF))
    return _built["shop"]
